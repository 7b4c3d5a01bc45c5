"""The reference backend: plain, readable NumPy. It defines what every other backend must compute.

Each function receives validated C-contiguous inputs and preallocated outputs (see
fastnn.backends) and fills the outputs in place.
"""
import numpy as np

from .rbf_numerics import centered_float64, expansion_error_per_norm, needs_direct_distance

from .perceptron_ref import kernel_perceptron_epoch, perceptron_epoch  # noqa: F401  (Algorithms 1 and 2)
from .training_ref import mlp_forward, mlp_train_epoch  # noqa: F401  (a dense network: inference, training epoch)
from .conv_ref import conv1d_backward, conv1d_forward, maxpool1d_backward, maxpool1d_forward  # noqa: F401
from .cnn_training_ref import cnn1d_forward, cnn1d_train_epoch  # noqa: F401  (a small 1-D CNN: inference, epoch)
from .conv2d_ref import (conv2d_backward, conv2d_forward, leaky_relu_backward, leaky_relu_forward,  # noqa: F401
                         maxpool2d_backward, maxpool2d_forward, tanh_backward, tanh_forward)


def unpack_mask(mask, width):
    """Bit-packed ReLU mask (R, ceil(width/8)) uint8 -> boolean (R, width)."""
    return np.unpackbits(mask, axis=-1, count=width, bitorder="little").view(bool)


def linear_forward(X, W, b, Y):
    np.matmul(X, W, out=Y)
    if b is not None:
        Y += b


def linear_backward(X, W, dY, mask, dX, dW, db):
    dZ = dY if mask is None else np.where(unpack_mask(mask, dY.shape[1]), dY, 0)
    np.matmul(X.T, dZ, out=dW)
    np.sum(dZ, axis=0, out=db)
    if dX is not None:
        np.matmul(dZ, W.T, out=dX)


def relu_forward(X, Y, mask):
    positive = X > 0
    Y[...] = np.where(positive, X, 0)
    mask[...] = np.packbits(positive, axis=-1, bitorder="little")


def relu_backward(dY, mask, dX):
    dX[...] = np.where(unpack_mask(mask, dY.shape[1]), dY, 0)


def _sigmoid(x):
    # exp only of non-positive numbers, so nothing overflows
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_forward(X, Y):
    Y[...] = _sigmoid(X)


def sigmoid_backward(dY, Y, dX):
    dX[...] = dY * Y * (1 - Y)


def softmax_cross_entropy(logits, y, dlogits):
    n = logits.shape[0]
    rows = np.arange(n)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    sum_exp = exp.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(sum_exp[:, 0]) - shifted[rows, y])
    dlogits[...] = exp / sum_exp
    dlogits[rows, y] -= 1
    dlogits /= n
    return loss


def logistic_loss(scores, y, dscores):
    n = scores.shape[0]
    z = -y * scores  # loss = softplus(z)
    loss = np.mean(np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z))))
    dscores[...] = -y * _sigmoid(z) / n
    return loss


def gram(X, Y, kernel, gamma, degree, coef0, K):
    symmetric = Y is None
    if kernel == "rbf":
        K[...] = _rbf(X, Y, gamma)
        return
    Y = X if symmetric else Y
    np.matmul(X, Y.T, out=K)
    if kernel == "poly":
        with np.errstate(over="ignore"):  # an infinite value is the defined result of an overflowing power
            K[...] = (gamma * K + coef0) ** degree
    if symmetric:
        lower = np.tril_indices(K.shape[0], -1)
        K[lower] = K.T[lower]  # exactly symmetric, whatever the BLAS did


def gram_matvec(X, Y, V, kernel, gamma, degree, coef0, out, band_rows, column_chunk, threads=1):
    """out (n_x, k) = gram(X, Y) @ V for V (n_y, k), one (band_rows x column_chunk) block of K at a time."""
    Y = X if Y is None else Y
    out[...] = 0
    for r0 in range(0, X.shape[0], band_rows):
        rows = slice(r0, r0 + band_rows)
        for c0 in range(0, Y.shape[0], column_chunk):
            cols = slice(c0, c0 + column_chunk)
            K = np.empty((X[rows].shape[0], Y[cols].shape[0]), dtype=X.dtype)
            gram(X[rows], Y[cols], kernel, gamma, degree, coef0, K)
            out[rows] += K @ V[cols]


def gram_rows(X, rows, Y, kernel, gamma, degree, coef0, K, column_chunk, prepared=None, columns=None):
    """K (len(rows), n_cols) = rows `rows` of gram(X, Y), or of gram(X) when Y is None (RBF diagonal exactly
    1), in the columns `columns` (sorted indices; None: all). (prepared: the compiled backends' reusable
    centered copy; the reference needs none.)"""
    target = X if Y is None else Y
    columns = np.arange(target.shape[0]) if columns is None else columns
    gram(X[rows], target[columns], kernel, gamma, degree, coef0, K)
    if Y is None and kernel == "rbf":
        same = rows[:, None] == columns[None, :]
        K[same] = 1


def _rbf(X, Y, gamma):
    """exp(-gamma ||x - y||^2) from float64 distances of centered rows; pairs that may have cancelled are
    recomputed from the original rows, whose differences are exact when close (see rbf_numerics)."""
    symmetric = Y is None
    Xc, Yc = centered_float64(X, Y)
    Y, Yc = (X, Xc) if symmetric else (Y, Yc)
    x_sq = np.einsum("ij,ij->i", Xc, Xc)
    y_sq = np.einsum("ij,ij->i", Yc, Yc)
    d = np.maximum(x_sq[:, None] + y_sq[None, :] - 2 * (Xc @ Yc.T), 0)
    rows, cols = np.nonzero(needs_direct_distance(d, x_sq, y_sq, gamma, expansion_error_per_norm(X.shape[1])))
    for start in range(0, rows.size, 4096):  # bounded memory for the (pairs, n_features) differences
        i, j = rows[start:start + 4096], cols[start:start + 4096]
        d[i, j] = np.square(X[i].astype(np.float64) - Y[j]).sum(axis=1)
    if symmetric:
        np.fill_diagonal(d, 0)
        d = np.triu(d) + np.triu(d, 1).T  # exactly symmetric
    return np.exp(-gamma * d)
