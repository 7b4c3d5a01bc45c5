"""Reference conv-2D, 2-D max-pooling, leaky ReLU and tanh kernels: plain NumPy, written to be read.

Layout as in PyTorch: x (N, C_in, H, W), w (C_out, C_in, KH, KW), y (N, C_out, H_out, W_out) with
H_out = (H + 2 ph - KH) // sh + 1 and W_out alike. The convolution is a cross-correlation over the
input zero-padded by (ph, pw):

    y[n, o, i, j] = b[o] + sum_{c, p, q} w[o, c, p, q] * xpad[n, c, i sh + p, j sw + q]

The windows windows[n, c, i, j, p, q] = xpad[n, c, i sh + p, j sw + q] are a strided view
(sliding_window_view: nothing is copied) and every product is one einsum over them.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _padded(x, padding):
    ph, pw = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x


def windows(x, kernel_size, stride, padding=(0, 0)):
    """Read-only view (N, C, H_out, W_out, KH, KW): windows[n, c, i, j, p, q] = xpad[n, c, i sh + p, j sw + q]."""
    every = sliding_window_view(_padded(x, padding), kernel_size, axis=(2, 3))
    return every[:, :, ::stride[0], ::stride[1]]


def conv2d_forward(x, w, b, stride, padding, y):
    """y (N, C_out, H_out, W_out) = conv(x (N, C_in, H, W), w (C_out, C_in, KH, KW)) + b (C_out,) or no bias."""
    patches = windows(x, w.shape[2:], stride, padding)
    y[...] = np.einsum("ncijpq,ocpq->noij", patches, w, optimize=True)
    if b is not None:
        y += b[:, None, None]


def conv2d_backward(x, w, dy, stride, padding, dx, dw, db):
    """Gradients of conv2d_forward given dy (N, C_out, H_out, W_out): dw, db, and dx (None: not needed).

    dw[o, c, p, q] = sum_{n, i, j} dy[n, o, i, j] xpad[n, c, i sh + p, j sw + q];  db[o] = sum dy[:, o];
    dxpad[n, c, i sh + p, j sw + q] += sum_o dy[n, o, i, j] w[o, c, p, q]  (then the padding is cut off).
    """
    patches = windows(x, w.shape[2:], stride, padding)
    dw[...] = np.einsum("noij,ncijpq->ocpq", dy, patches, optimize=True)
    db[...] = dy.sum(axis=(0, 2, 3))
    if dx is None:
        return
    dpatches = np.einsum("noij,ocpq->ncijpq", dy, w, optimize=True)  # gradient of every window entry
    (sh, sw), (ph, pw) = stride, padding
    n, channels, height, width = x.shape
    h_out, w_out = dy.shape[2:]
    dxpad = np.zeros((n, channels, height + 2 * ph, width + 2 * pw), dtype=x.dtype)
    for p in range(w.shape[2]):  # window offset (p, q) touches rows p, p + sh, ... and columns q, q + sw, ...
        for q in range(w.shape[3]):
            dxpad[:, :, p:p + sh * (h_out - 1) + 1:sh, q:q + sw * (w_out - 1) + 1:sw] += dpatches[..., p, q]
    dx[...] = dxpad[:, :, ph:ph + height, pw:pw + width]


def maxpool2d_forward(x, kernel_size, stride, y, argmax):
    """y[n, c, i, j] = max of the window x[n, c, i sh : i sh + KH, j sw : j sw + KW] (no padding);
    argmax (int64) holds its flat position h W + w in the plane, the first maximum in row-major order."""
    n, channels, height, width = x.shape
    h_out, w_out = y.shape[2:]
    flat = windows(x, kernel_size, stride).reshape(n, channels, h_out, w_out, -1)
    first = np.argmax(flat, axis=4)  # first maximum; NaN counts as the maximum, as in np.max
    p, q = np.divmod(first, kernel_size[1])
    rows = stride[0] * np.arange(h_out)[:, None] + p
    cols = stride[1] * np.arange(w_out)[None, :] + q
    argmax[...] = rows * width + cols
    y[...] = np.take_along_axis(x.reshape(n, channels, -1), argmax.reshape(n, channels, -1), axis=2).reshape(y.shape)


def maxpool2d_backward(dy, argmax, dx):
    """dx (N, C, H, W): every dy[n, c, i, j] added at flat position argmax[n, c, i, j] (windows may overlap)."""
    n, channels = dy.shape[:2]
    plane = dx.reshape(n, channels, -1)
    plane[...] = 0
    rows = np.arange(n)[:, None, None]
    cols = np.arange(channels)[None, :, None]
    np.add.at(plane, (rows, cols, argmax.reshape(n, channels, -1)), dy.reshape(n, channels, -1))


def leaky_relu_forward(X, negative_slope, Y):
    """Y = X where X > 0, else negative_slope * X (X, Y flat; the slope in X's dtype)."""
    Y[...] = np.where(X > 0, X, X * X.dtype.type(negative_slope))


def leaky_relu_backward(dY, X, negative_slope, dX):
    """dX = dY where X > 0, else negative_slope * dY (PyTorch's choice at X == 0: the slope)."""
    dX[...] = np.where(X > 0, dY, dY * dY.dtype.type(negative_slope))


def tanh_forward(X, Y):
    Y[...] = np.tanh(X)


def tanh_backward(dY, Y, dX):
    """dX = dY (1 - Y^2), Y the output of tanh_forward."""
    dX[...] = dY * (1 - Y * Y)
