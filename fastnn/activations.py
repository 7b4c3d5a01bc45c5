"""Elementwise activations: ReLU with a bit-packed mask, the logistic sigmoid, leaky ReLU and tanh."""
import math
import numbers

import numpy as np

from . import _validation as v
from ._config import resolve


def relu_forward(X, *, backend=None):
    """Y = max(X, 0) and the bit-packed mask of X > 0.

    Parameters
    ----------
    X : float32 or float64 array of any shape with at least one dimension

    Returns
    -------
    Y : same shape and dtype as X; entries where X > 0 is false (including NaN) are 0
    mask : uint8 of shape X.shape[:-1] + (ceil(X.shape[-1] / 8),), exactly
        np.packbits(X > 0, axis=-1, bitorder='little'): one bit per activation.
    """
    X = v.float_array("X", X, min_ndim=1)
    Y = np.empty_like(X)
    mask = np.empty(X.shape[:-1] + ((X.shape[-1] + 7) // 8,), dtype=np.uint8)
    resolve(backend).relu_forward(_rows(X), _rows(Y), _rows(mask))
    return Y, mask


def relu_backward(dY, mask, *, backend=None):
    """dX = dY where the mask bit is set, else 0.

    Parameters
    ----------
    dY : float32 or float64 array, the gradient w.r.t. the ReLU output
    mask : uint8, the mask relu_forward returned for the same activations

    Returns
    -------
    dX : same shape and dtype as dY
    """
    dY = v.float_array("dY", dY, min_ndim=1)
    mask = v.relu_mask(mask, dY.shape)
    dX = np.empty_like(dY)
    resolve(backend).relu_backward(_rows(dY), _rows(mask), _rows(dX))
    return dX


def sigmoid_forward(X, *, backend=None):
    """Y = 1 / (1 + exp(-X)), computed without overflow for any finite X.

    X : float32 or float64 array of any shape. Returns Y with the same shape and dtype.
    """
    return _elementwise(backend, "sigmoid_forward", X)


def sigmoid_backward(dY, Y, *, backend=None):
    """dX = dY * Y * (1 - Y), where Y is the output of sigmoid_forward.

    dY, Y : float32 or float64 arrays of the same shape and dtype. Returns dX like dY.
    """
    return _elementwise_backward(backend, "sigmoid_backward", dY, "Y", Y)


def leaky_relu_forward(X, *, negative_slope=0.01, backend=None):
    """Y = X where X > 0, else negative_slope * X (PyTorch's leaky_relu; default slope 0.01).

    X : float32 or float64 array of any shape; negative_slope : a finite real number, applied in X's
    dtype. Returns Y with the same shape and dtype.
    """
    return _elementwise(backend, "leaky_relu_forward", X, _slope(negative_slope))


def leaky_relu_backward(dY, X, *, negative_slope=0.01, backend=None):
    """dX = dY where X > 0, else negative_slope * dY; X is leaky_relu_forward's input.

    dY, X : float32 or float64 arrays of the same shape and dtype. Returns dX like dY.
    """
    return _elementwise_backward(backend, "leaky_relu_backward", dY, "X", X, _slope(negative_slope))


def tanh_forward(X, *, backend=None):
    """Y = tanh(X). X : float32 or float64 array of any shape. Returns Y with the same shape and dtype."""
    return _elementwise(backend, "tanh_forward", X)


def tanh_backward(dY, Y, *, backend=None):
    """dX = dY * (1 - Y * Y), where Y is the output of tanh_forward.

    dY, Y : float32 or float64 arrays of the same shape and dtype. Returns dX like dY.
    """
    return _elementwise_backward(backend, "tanh_backward", dY, "Y", Y)


def _elementwise(backend, kernel, X, *scalars):
    """The backend's element-wise `kernel`(X flat, *scalars, Y flat) on a checked copy-free X; Y like X."""
    X = v.float_array("X", X, min_ndim=1)
    Y = np.empty_like(X)
    getattr(resolve(backend), kernel)(X.reshape(-1), *scalars, Y.reshape(-1))
    return Y


def _elementwise_backward(backend, kernel, dY, name, saved, *scalars):
    """The backend's `kernel`(dY flat, saved flat, *scalars, dX flat), `saved` (named `name` in errors)
    being the forward's input or output: same shape and dtype as dY. dX like dY."""
    dY = v.float_array("dY", dY, min_ndim=1)
    saved = v.float_array(name, saved, min_ndim=1, dtype=dY.dtype)
    v.same_shape(name, saved, "dY", dY.shape)
    dX = np.empty_like(dY)
    getattr(resolve(backend), kernel)(dY.reshape(-1), saved.reshape(-1), *scalars, dX.reshape(-1))
    return dX


def _slope(value):
    """negative_slope as a finite Python float; ValueError otherwise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"negative_slope must be a finite real number, got {value!r}")
    return float(value)


def _rows(array):
    """View a C-contiguous array as 2-D (rows, last axis) without copying."""
    return array.reshape(-1, array.shape[-1])
