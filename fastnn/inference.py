"""Compiled inference: the logits of a whole dense or conv stack in one backend call.

fastnn.mlp_forward and fastnn.cnn1d_forward run the forward pass of the fused training epochs
(fastnn.mlp_train_epoch, fastnn.cnn1d_train_epoch) without the backward: every layer, over chunks
of rows small enough that a chunk's activations stay in cache, with no Python between layers. The
networks and the flat parameter layouts are those of the epochs. predict, predict_proba, score,
validation during fit and fastnn.nn.Sequential.predict_logits use them for the stacks they support.

The public functions validate everything (finite X and params included, as the epochs do);
dense_logits and conv_logits skip the finiteness scan for callers that have validated their input
(Sequential, the estimators) and only check shapes and dtypes.
"""
import numpy as np

from . import _validation as v
from ._config import resolve
from .backends import cnn_training_ref as cnn_ref
from .backends import training_ref as dense_ref
from .cnn_training import conv_stack_geometry
from .training import ACTIVATIONS, _layer_sizes, _positive_int


def _params(params, dtype, n_params):
    params = v.float_array("params", params, ndim=1, dtype=dtype)
    v.same_shape("params", params, f"the network's {n_params} parameters", (n_params,))
    return params


def dense_logits(X, params, sizes, activation, backend=None):
    """The logits (N, sizes[-1]) of a dense network; X, params as for mlp_forward, not scanned for NaN."""
    X = v.float_array("X", X, ndim=2)
    sizes = _layer_sizes(sizes)
    if sizes[0] != X.shape[1]:
        raise ValueError(f"sizes[0] = {sizes[0]} but X has {X.shape[1]} features (shape {X.shape})")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    params = _params(params, X.dtype, dense_ref.n_parameters(sizes.tolist()))
    out = np.empty((X.shape[0], int(sizes[-1])), dtype=X.dtype)
    resolve(backend).mlp_forward(X, sizes, ACTIVATIONS[activation], params, out)
    return out


def mlp_forward(X, params, *, sizes, activation="relu", backend=None):
    """The logits of a dense network for every row of X, in one compiled call.

    The network is fastnn.mlp_train_epoch's: sizes[0] -> ... -> sizes[-1] fully connected layers,
    `activation` after each but the last.

    Parameters
    ----------
    X : (N, sizes[0]) float32 or float64, finite
    params : (P,) dtype of X, finite: W_0, b_0, W_1, b_1, ... flattened (mlp_train_epoch's layout)
    sizes : sequence of L+1 positive ints
    activation : 'relu' or 'sigmoid'

    Returns
    -------
    logits : (N, sizes[-1]) dtype of X
    """
    X = v.float_array("X", X, ndim=2)
    v.finite("X", X)
    params = v.float_array("params", params, ndim=1, dtype=X.dtype)
    v.finite("params", params)
    return dense_logits(X, params, sizes, activation, backend)


def conv_logits(X, params, channels, kernel_sizes, strides, paddings, n_classes, backend=None):
    """The logits (N, n_classes) of a conv stack; X, params as for cnn1d_forward, not scanned for NaN."""
    X = v.float_array("X", X, ndim=3)
    conv = conv_stack_geometry(X.shape[1:], channels, kernel_sizes, strides, paddings)
    n_classes = _positive_int("n_classes", n_classes)
    params = _params(params, X.dtype, cnn_ref.n_parameters(conv.tolist(), n_classes))
    out = np.empty((X.shape[0], n_classes), dtype=X.dtype)
    resolve(backend).cnn1d_forward(X, conv, n_classes, params, out)
    return out


def cnn1d_forward(X, params, *, channels, kernel_sizes, strides, paddings, n_classes, backend=None):
    """The logits of a conv-ReLU stack with a linear head for every example of X, in one compiled call.

    The network and the parameter layout are fastnn.cnn1d_train_epoch's.

    Parameters
    ----------
    X : (N, C_in, L) float32 or float64, finite
    params : (P,) dtype of X, finite: w_0, b_0, ..., the head's W and b flattened (cnn1d_train_epoch's layout)
    channels, kernel_sizes, strides, paddings : one int per conv layer
    n_classes : int >= 1

    Returns
    -------
    logits : (N, n_classes) dtype of X
    """
    X = v.float_array("X", X, ndim=3)
    v.finite("X", X)
    params = v.float_array("params", params, ndim=1, dtype=X.dtype)
    v.finite("params", params)
    return conv_logits(X, params, channels, kernel_sizes, strides, paddings, n_classes, backend)
