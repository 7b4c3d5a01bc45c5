"""Linear (fully connected) layer kernels: Y = X @ W + b and its gradients."""
import numpy as np

from . import _validation as v
from ._config import resolve


def linear_forward(X, W, b=None, *, backend=None):
    """Y = X @ W + b.

    Parameters
    ----------
    X : (N, D_in) float32 or float64
    W : (D_in, D_out), same dtype as X
    b : (D_out,), same dtype as X, or None for no bias
    backend : 'numpy', 'numba', 'cython' or None for the current backend

    Returns
    -------
    Y : (N, D_out), dtype of X, a new C-contiguous array
    """
    X = v.float_array("X", X, ndim=2)
    W = v.float_array("W", W, ndim=2, dtype=X.dtype)
    if W.shape[0] != X.shape[1]:
        raise ValueError(f"W has shape {W.shape} but X has shape {X.shape}: W.shape[0] must equal X.shape[1]")
    if b is not None:
        b = v.float_array("b", b, ndim=1, dtype=X.dtype)
        if b.shape[0] != W.shape[1]:
            raise ValueError(f"b has shape {b.shape} but W has shape {W.shape}: expected ({W.shape[1]},)")
    Y = np.empty((X.shape[0], W.shape[1]), dtype=X.dtype)
    resolve(backend).linear_forward(X, W, b, Y)
    return Y


def linear_backward(X, W, dY, *, mask=None, need_dX=True, backend=None):
    """Gradients of Y = X @ W + b, optionally through a ReLU applied to Y.

    With `mask` (the bit-packed mask `relu_forward` returned for this layer's output), the ReLU
    backward is fused in: dZ = dY where the mask bit is set, else 0. Without it, dZ = dY.
    Then dW = X.T @ dZ, db = dZ.sum(axis=0) and dX = dZ @ W.T.

    Parameters
    ----------
    X : (N, D_in) float32 or float64, the layer's input
    W : (D_in, D_out), same dtype
    dY : (N, D_out), same dtype, gradient of the loss w.r.t. the layer's output
    mask : (N, ceil(D_out / 8)) uint8 or None
    need_dX : bool; False skips the dX product (first layer of a network)

    Returns
    -------
    (dX or None, dW, db) with shapes (N, D_in), (D_in, D_out), (D_out,) and the dtype of X.
    """
    X = v.float_array("X", X, ndim=2)
    W = v.float_array("W", W, ndim=2, dtype=X.dtype)
    dY = v.float_array("dY", dY, ndim=2, dtype=X.dtype)
    n, d_in = X.shape
    if W.shape[0] != d_in:
        raise ValueError(f"W has shape {W.shape} but X has shape {X.shape}: W.shape[0] must equal X.shape[1]")
    v.same_shape("dY", dY, "X @ W", (n, W.shape[1]))
    if mask is not None:
        mask = v.relu_mask(mask, dY.shape)
    dX = np.empty_like(X) if need_dX else None
    dW = np.empty_like(W)
    db = np.empty(W.shape[1], dtype=X.dtype)
    resolve(backend).linear_backward(X, W, dY, mask, dX, dW, db)
    return dX, dW, db
