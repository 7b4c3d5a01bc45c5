"""Numba conv-2D and 2-D max-pooling kernels (fastnn.backends.conv2d_ref's arithmetic).

The same lowering as conv-1D (conv_numba), with the output plane flattened: a chunk of nb samples
has M = nb * H_out * W_out columns j = (sample, i, j) and CK = C_in * KH * KW rows q = (c, p, q):

    cols (CK, M)     cols[(c KH + p) KW + q, (s, i, j)] = xpad[s, c, i sh + p, j sw + q]   (im2col_2d)
    Y    (C_out, M)  = W (C_out, CK) @ cols + b           (conv_numba.forward_product)
    dW  (C_out, CK) += dY @ cols.T,  db += dY 1           (conv_numba.weight_grads)
    dcols (CK, M)    = W.T @ dY,  dx += col2im_2d(dcols)

conv_numba's register-blocked products take the flattened plane as their "L_out". Very large shapes
(BLAS_MIN_MACS below) give the products to np.matmul on the same chunks, from plain Python.
"""
import numpy as np
from numba import njit

from .conv_numba import (BLAS_CHUNK_BYTES, CHUNK_BYTES, _chunk_samples, _chunk_to_ncl,
                         _maxpool_backward, _ncl_to_chunk, forward_product, tap_range, weight_grads)

# Multiply-adds (N C_out CK H_out W_out) from which the products go to BLAS: 32x conv-1D's threshold. At the
# seeds' image layers (the tutorial CNN's C_out of 6 and 16, 1 -> 64 at 7x7 with N=100: up to 1.5e8 MACs)
# the compiled loops measured 1.2-20x faster than np.matmul with OpenBLAS's 2 threads on the shared 2-core
# machine, and within noise of a single-threaded BLAS; BLAS only wins on much larger products.
BLAS_MIN_MACS = 1 << 28


@njit(cache=True, nogil=True)
def im2col_2d(x, i0, nb, kernel_h, kernel_w, sh, sw, ph, pw, h_out, w_out, cols):
    """cols[(c KH + p) KW + q, s HW + i W_out + j] = xpad[i0 + s, c, i sh + p, j sw + q] for s < nb
    (HW = H_out W_out); padding positions give 0."""
    channels, height, width = x.shape[1], x.shape[2], x.shape[3]
    plane = h_out * w_out
    for c in range(channels):
        for p in range(kernel_h):
            lo_h, hi_h = tap_range(height, h_out, p, sh, ph)
            for q in range(kernel_w):
                row = (c * kernel_h + p) * kernel_w + q
                lo_w, hi_w = tap_range(width, w_out, q, sw, pw)
                for s in range(nb):
                    for i in range(h_out):
                        start = s * plane + i * w_out
                        if i < lo_h or i >= hi_h:
                            for j in range(w_out):
                                cols[row, start + j] = 0
                            continue
                        h = i * sh + p - ph
                        for j in range(lo_w):
                            cols[row, start + j] = 0
                        for j in range(lo_w, hi_w):
                            cols[row, start + j] = x[i0 + s, c, h, j * sw + q - pw]
                        for j in range(hi_w, w_out):
                            cols[row, start + j] = 0


@njit(cache=True, nogil=True)
def col2im_2d(dcols, i0, nb, kernel_h, kernel_w, sh, sw, ph, pw, h_out, w_out, dx):
    """dx[i0 + s, c, i sh + p - ph, j sw + q - pw] += dcols[(c KH + p) KW + q, s HW + i W_out + j] inside x."""
    channels, height, width = dx.shape[1], dx.shape[2], dx.shape[3]
    plane = h_out * w_out
    for c in range(channels):
        for p in range(kernel_h):
            lo_h, hi_h = tap_range(height, h_out, p, sh, ph)
            for q in range(kernel_w):
                row = (c * kernel_h + p) * kernel_w + q
                lo_w, hi_w = tap_range(width, w_out, q, sw, pw)
                for s in range(nb):
                    for i in range(lo_h, hi_h):
                        start = s * plane + i * w_out
                        h = i * sh + p - ph
                        for j in range(lo_w, hi_w):
                            dx[i0 + s, c, h, j * sw + q - pw] += dcols[row, start + j]


# ---------------------------------------------------------------------------- compiled loops
@njit(cache=True, nogil=True, error_model="numpy")
def _forward_loops(x, w2, b, kernel_h, kernel_w, sh, sw, ph, pw, y):
    n = x.shape[0]
    c_out, width = w2.shape
    h_out, w_out = y.shape[2], y.shape[3]
    plane = h_out * w_out
    y3 = y.reshape((n, c_out, plane))
    chunk = _chunk_samples(n, width * plane, x.itemsize, CHUNK_BYTES)
    cols_buf = np.empty(width * chunk * plane, x.dtype)
    y_buf = np.empty(c_out * chunk * plane, x.dtype)
    for i0 in range(0, n, chunk):
        nb = min(chunk, n - i0)
        m = nb * plane
        cols = cols_buf[:width * m].reshape((width, m))
        Y = y_buf[:c_out * m].reshape((c_out, m))
        im2col_2d(x, i0, nb, kernel_h, kernel_w, sh, sw, ph, pw, h_out, w_out, cols)
        forward_product(w2, b, cols, plane, Y)
        _chunk_to_ncl(Y, plane, i0, y3)


@njit(cache=True, nogil=True, error_model="numpy")
def _backward_loops(x, w2, dy, kernel_h, kernel_w, sh, sw, ph, pw, need_dx, dx, dw2, db):
    n = x.shape[0]
    c_out, width = w2.shape
    h_out, w_out = dy.shape[2], dy.shape[3]
    plane = h_out * w_out
    dy3 = dy.reshape((n, c_out, plane))
    w2t = np.ascontiguousarray(w2.T)
    no_bias = np.zeros(width, x.dtype)
    if need_dx:
        dx[...] = 0
    chunk = _chunk_samples(n, width * plane, x.itemsize, CHUNK_BYTES)
    cols_buf = np.empty(width * chunk * plane, x.dtype)
    dy_buf = np.empty(c_out * chunk * plane, x.dtype)
    for i0 in range(0, n, chunk):
        nb = min(chunk, n - i0)
        m = nb * plane
        cols = cols_buf[:width * m].reshape((width, m))
        dY = dy_buf[:c_out * m].reshape((c_out, m))
        im2col_2d(x, i0, nb, kernel_h, kernel_w, sh, sw, ph, pw, h_out, w_out, cols)
        _ncl_to_chunk(dy3, i0, dY)
        weight_grads(dY, cols, plane, dw2, db, i0 > 0)
        if need_dx:
            forward_product(w2t, no_bias, dY, plane, cols)  # cols is free again: it takes dcols = W.T @ dY
            col2im_2d(cols, i0, nb, kernel_h, kernel_w, sh, sw, ph, pw, h_out, w_out, dx)


# ---------------------------------------------------------------------------- BLAS products
def _blas_chunk(n, width, plane, itemsize):
    return max(1, min(n, BLAS_CHUNK_BYTES // (width * plane * itemsize)))


def _forward_blas(x, w2, b, kernel_h, kernel_w, sh, sw, ph, pw, y):
    n = x.shape[0]
    c_out, width = w2.shape
    h_out, w_out = y.shape[2:]
    plane = h_out * w_out
    y3 = y.reshape(n, c_out, plane)
    chunk = _blas_chunk(n, width, plane, x.itemsize)
    cols_buf = np.empty(width * chunk * plane, x.dtype)
    y_buf = np.empty(c_out * chunk * plane, x.dtype)
    for i0 in range(0, n, chunk):
        nb = min(chunk, n - i0)
        m = nb * plane
        cols = cols_buf[:width * m].reshape(width, m)
        Y = y_buf[:c_out * m].reshape(c_out, m)
        im2col_2d(x, i0, nb, kernel_h, kernel_w, sh, sw, ph, pw, h_out, w_out, cols)
        np.matmul(w2, cols, out=Y)
        Y += b[:, None]
        _chunk_to_ncl(Y, plane, i0, y3)


def _backward_blas(x, w2, dy, kernel_h, kernel_w, sh, sw, ph, pw, dx, dw2, db):
    n = x.shape[0]
    c_out, width = w2.shape
    h_out, w_out = dy.shape[2:]
    plane = h_out * w_out
    dy3 = dy.reshape(n, c_out, plane)
    chunk = _blas_chunk(n, width, plane, x.itemsize)
    cols_buf = np.empty(width * chunk * plane, x.dtype)
    dy_buf = np.empty(c_out * chunk * plane, x.dtype)
    partial = np.empty_like(dw2)
    if dx is not None:
        dx[...] = 0
    for i0 in range(0, n, chunk):
        nb = min(chunk, n - i0)
        m = nb * plane
        cols = cols_buf[:width * m].reshape(width, m)
        dY = dy_buf[:c_out * m].reshape(c_out, m)
        im2col_2d(x, i0, nb, kernel_h, kernel_w, sh, sw, ph, pw, h_out, w_out, cols)
        _ncl_to_chunk(dy3, i0, dY)
        if i0 == 0:
            np.matmul(dY, cols.T, out=dw2)
            np.sum(dY, axis=1, out=db)
        else:
            np.matmul(dY, cols.T, out=partial)
            dw2 += partial
            db += dY.sum(axis=1)
        if dx is not None:
            np.matmul(w2.T, dY, out=cols)  # cols is free again: it takes dcols = W.T @ dY
            col2im_2d(cols, i0, nb, kernel_h, kernel_w, sh, sw, ph, pw, h_out, w_out, dx)


def _uses_blas(x, w, plane):
    return x.shape[0] * w.size * plane >= BLAS_MIN_MACS


def conv2d_forward(x, w, b, stride, padding, y):
    """y (N, C_out, H_out, W_out) = conv(x (N, C_in, H, W), w (C_out, C_in, KH, KW)) + b (C_out,) or None."""
    w2 = w.reshape(w.shape[0], -1)
    if b is None:
        b = np.zeros(w.shape[0], dtype=w.dtype)
    kernel = _forward_blas if _uses_blas(x, w, y.shape[2] * y.shape[3]) else _forward_loops
    kernel(x, w2, b, w.shape[2], w.shape[3], stride[0], stride[1], padding[0], padding[1], y)


def conv2d_backward(x, w, dy, stride, padding, dx, dw, db):
    """dw (C_out, C_in, KH, KW), db (C_out,) and dx (N, C_in, H, W) (None: skipped) given dy."""
    w2 = w.reshape(w.shape[0], -1)
    dw2 = dw.reshape(w2.shape)
    geometry = (w.shape[2], w.shape[3], stride[0], stride[1], padding[0], padding[1])
    if _uses_blas(x, w, dy.shape[2] * dy.shape[3]):
        _backward_blas(x, w2, dy, *geometry, dx, dw2, db)
    else:
        # dx=None would be another Numba type: a writable dummy of the right type, never written
        dummy = np.empty((1, 1, 1, 1), dtype=x.dtype) if dx is None else dx
        _backward_loops(x, w2, dy, *geometry, dx is not None, dummy, dw2, db)


# ---------------------------------------------------------------------------- max pooling
@njit(cache=True, nogil=True)
def _maxpool_forward(x, kernel_h, kernel_w, sh, sw, y, argmax):
    n, channels, _, width = x.shape
    h_out, w_out = y.shape[2], y.shape[3]
    for s in range(n):
        for c in range(channels):
            for i in range(h_out):
                for j in range(w_out):
                    top, left = i * sh, j * sw
                    best = x[s, c, top, left]
                    at_h, at_w = top, left
                    found_nan = best != best  # a NaN wins at once, as in np.argmax
                    for p in range(kernel_h):
                        if found_nan:
                            break
                        for q in range(kernel_w):
                            value = x[s, c, top + p, left + q]
                            if value != value:
                                at_h, at_w = top + p, left + q
                                found_nan = True
                                break
                            if value > best:
                                best = value
                                at_h, at_w = top + p, left + q
                    argmax[s, c, i, j] = at_h * width + at_w
                    y[s, c, i, j] = x[s, c, at_h, at_w]


def maxpool2d_forward(x, kernel_size, stride, y, argmax):
    """y (N, C, H_out, W_out): window maxima of x; argmax (int64): flat position h W + w of the first maximum."""
    _maxpool_forward(x, kernel_size[0], kernel_size[1], stride[0], stride[1], y, argmax)


def maxpool2d_backward(dy, argmax, dx):
    """dx (N, C, H, W) = 0, then dy[n, c, i, j] added at flat position argmax[n, c, i, j] of the plane."""
    n, channels = dy.shape[:2]
    _maxpool_backward(dy.reshape(n, channels, -1), argmax.reshape(n, channels, -1), dx.reshape(n, channels, -1))
