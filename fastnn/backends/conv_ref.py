"""Reference conv-1D and max-pooling kernels: plain NumPy, written to be read.

Layout as in PyTorch: x (N, C_in, L), w (C_out, C_in, K), y (N, C_out, L_out) with
L_out = (L + 2 padding - K) // stride + 1. The convolution is a cross-correlation over the input
zero-padded by `padding` on both sides:

    y[n, o, t] = b[o] + sum_{c, k} w[o, c, k] * xpad[n, c, t * stride + k]

It is lowered to one matrix product per batch through the "im2col" patches
patches[n, t, c, k] = xpad[n, c, t * stride + k] (a strided view here: nothing is copied).
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided


def output_length(length, kernel_size, stride, padding):
    """L_out of a convolution or pooling window sliding over `length` (+ padding on both sides)."""
    return (length + 2 * padding - kernel_size) // stride + 1


def _padded(x, padding):
    return np.pad(x, ((0, 0), (0, 0), (padding, padding))) if padding else x


def patches(x, kernel_size, stride, padding):
    """Read-only view (N, L_out, C, K) of the windows: patches[n, t, c, k] = xpad[n, c, t*stride + k]."""
    xpad = _padded(x, padding)
    n, channels, length = xpad.shape
    l_out = output_length(length, kernel_size, stride, 0)
    s_n, s_c, s_l = xpad.strides
    return as_strided(xpad, (n, l_out, channels, kernel_size), (s_n, stride * s_l, s_c, s_l), writeable=False)


def conv1d_forward(x, w, b, stride, padding, y):
    """y (N, C_out, L_out) = conv(x (N, C_in, L), w (C_out, C_in, K)) + b (C_out,) or no bias."""
    windows = patches(x, w.shape[2], stride, padding)
    y[...] = np.einsum("ntck,ock->not", windows, w, optimize=True)
    if b is not None:
        y += b[:, None]


def conv1d_backward(x, w, dy, stride, padding, dx, dw, db):
    """Gradients of conv1d_forward given dy (N, C_out, L_out): dw, db, and dx (None: not needed).

    dw[o, c, k] = sum_{n, t} dy[n, o, t] xpad[n, c, t stride + k];  db[o] = sum_{n, t} dy[n, o, t];
    dxpad[n, c, t stride + k] += sum_o dy[n, o, t] w[o, c, k]  (then the padding is cut off).
    """
    kernel_size = w.shape[2]
    windows = patches(x, kernel_size, stride, padding)
    dw[...] = np.einsum("not,ntck->ock", dy, windows, optimize=True)
    db[...] = dy.sum(axis=(0, 2))
    if dx is None:
        return
    dwindows = np.einsum("not,ock->nctk", dy, w, optimize=True)  # gradient of every patch entry
    n, channels, length = x.shape
    dxpad = np.zeros((n, channels, length + 2 * padding), dtype=x.dtype)
    l_out = dy.shape[2]
    for k in range(kernel_size):  # window offset k touches positions k, k + stride, ...
        dxpad[:, :, k:k + stride * (l_out - 1) + 1:stride] += dwindows[:, :, :, k]
    dx[...] = dxpad[:, :, padding:padding + length]


def maxpool1d_forward(x, kernel_size, stride, y, argmax):
    """y[n, c, t] = max over the window x[n, c, t stride : t stride + kernel_size] (no padding);
    argmax (int64) holds the position in [0, L) of that maximum, the first one on ties."""
    windows = patches(x, kernel_size, stride, 0)  # (N, L_out, C, K)
    first = np.argmax(windows, axis=3)  # first maximum; NaN counts as the maximum, as in np.max
    l_out = y.shape[2]
    argmax[...] = (first + stride * np.arange(l_out)[None, :, None]).transpose(0, 2, 1)
    y[...] = np.take_along_axis(x, argmax, axis=2)


def maxpool1d_backward(dy, argmax, dx):
    """dx (N, C, L): every dy[n, c, t] added at position argmax[n, c, t] (windows may overlap)."""
    dx[...] = 0
    n, channels, _ = dy.shape
    rows = np.arange(n)[:, None, None]
    cols = np.arange(channels)[None, :, None]
    np.add.at(dx, (rows, cols, argmax), dy)
