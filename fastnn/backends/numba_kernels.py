"""Numba backend: @njit(cache=True, nogil=True) kernels; prange only where arrays are large.

Large matrix products go to BLAS through fastnn.backends._compiled; the work around them (ReLU mask,
bias reduction) is fused into single passes over memory here.
"""
import numba
import numpy as np
from numba import njit, prange

from .. import _threads
from ._compiled import (conv_multiply_adds, dense_forward, make_gram_kernel, make_gram_matvec, make_gram_rows,
                        make_linear_kernels, masked_gradient, rows_on_threads)
from .perceptron_numba import kernel_perceptron_epoch, perceptron_epoch  # noqa: F401  (Algorithms 1 and 2)
from .training_numba import mlp_forward as _mlp_forward, mlp_train_epoch  # noqa: F401
from .conv_numba import conv1d_backward, conv1d_forward, maxpool1d_backward, maxpool1d_forward  # noqa: F401
from .cnn_training_numba import cnn1d_forward as _cnn1d_forward, cnn1d_train_epoch  # noqa: F401
from .conv2d_numba import conv2d_backward, conv2d_forward, maxpool2d_backward, maxpool2d_forward  # noqa: F401

# Below this many elements a parallel region costs more than it saves (thread wake-up is ~10 us).
PARALLEL_MIN_ELEMENTS = 1 << 17
# Mask bytes (8 activations each) per parallel task when a single row is split across threads.
BYTES_PER_TASK = 4096


def _pick(parallel, serial, size):
    """The kernel to run on `size` elements: `serial` when small or when fastnn runs single-threaded
    (always in a child made by fork: Numba's OpenMP layer kills a child that launches a parallel
    kernel, whatever its thread count), else `parallel` on at most fastnn's thread limit."""
    limit = _threads.limit
    if limit == 1 or size < PARALLEL_MIN_ELEMENTS:
        return serial
    if limit:  # Numba's count is per calling thread, so set it at each launch (~5 us: only under a limit)
        numba.set_num_threads(min(limit, numba.config.NUMBA_NUM_THREADS))
    return parallel


def _keep_words(bits_dtype):
    """(256, 8) table: row b has all-ones words where bit j of b is set, zeros elsewhere."""
    ones = np.iinfo(bits_dtype).max
    return np.array([[ones if (b >> j) & 1 else 0 for j in range(8)] for b in range(256)], dtype=bits_dtype)


# itemsize of the float dtype -> (unsigned integer view dtype, keep table)
_KEEP_WORDS = {4: (np.uint32, _keep_words(np.uint32)), 8: (np.uint64, _keep_words(np.uint64))}


# ---------------------------------------------------------------------------- linear
# Reassociation (vectorized sums) and FMA contraction only: NaN and inf keep their meaning.
SMALL_MATH = {"reassoc", "contract"}
# These loops are not register-blocked like the Cython ones, so they beat BLAS only on the
# tiniest batches (measured crossover); beyond that, _compiled hands the products to np.matmul.
SMALL_BATCH = 2


@njit(cache=True, nogil=True, fastmath=SMALL_MATH)
def _small_linear_forward(X, W, b, Y, has_bias):
    """Y = X @ W (+ b) for small N: W is streamed once, row by row, and each row updates every Y[i]."""
    n, d_in = X.shape
    d_out = W.shape[1]
    for i in range(n):
        for j in range(d_out):
            Y[i, j] = b[j] if has_bias else 0.0
    for p in range(d_in):
        for i in range(n):
            x = X[i, p]
            for j in range(d_out):
                Y[i, j] += x * W[p, j]


@njit(cache=True, nogil=True, fastmath=SMALL_MATH)
def _small_weight_grads(X, W, dZ, dX, dW, need_dx):
    """dW = X.T @ dZ and dX = dZ @ W.T for small N, streaming W and dW once, row by row."""
    n, d_in = X.shape
    d_out = W.shape[1]
    for p in range(d_in):
        for j in range(d_out):
            dW[p, j] = 0.0
        for i in range(n):
            x = X[i, p]
            for j in range(d_out):
                dW[p, j] += x * dZ[i, j]
        if need_dx:
            for i in range(n):
                total = 0.0
                for j in range(d_out):
                    total += dZ[i, j] * W[p, j]
                dX[i, p] = total


@njit(cache=True, nogil=True)
def _relu_grad_and_bias(dY_bits, mask, dZ_bits, dZ, db, keep):
    """dZ = dY where the mask bit is set else 0, and db = dZ.sum(0), row by row (float64 sums).

    dZ_bits and dZ view the same memory: the mask is applied on the integer view (see
    _relu_backward_bytes), the row is summed from the float view while still in cache.
    """
    n, d = dZ.shape
    acc = np.zeros(d)
    for i in range(n):
        _relu_backward_bytes(dY_bits, mask, dZ_bits, i, 0, mask.shape[1], keep)
        for j in range(d):
            acc[j] += dZ[i, j]
    for j in range(d):
        db[j] = acc[j]


@njit(cache=True, nogil=True)
def _column_sums(dY, db):
    n, d = dY.shape
    acc = np.zeros(d)
    for i in range(n):
        for j in range(d):
            acc[j] += dY[i, j]
    for j in range(d):
        db[j] = acc[j]


def _small_forward(X, W, b, Y):
    # b=None would be a different Numba type: pass any row of the right type and a flag.
    _small_linear_forward(X, W, W[0] if b is None else b, Y, b is not None)


def _small_backward(X, W, dY, mask, dX, dW, db):
    dZ = masked_gradient(dY, mask, db, _masked_grad_and_bias, _column_sums)
    # dX=None would be a different Numba type: pass a writable dummy of the right type (never written;
    # X itself may be read-only, and Numba refuses to compile a write into a read-only array).
    _small_weight_grads(X, W, dZ, np.empty((1, 1), dtype=X.dtype) if dX is None else dX, dW, dX is not None)


def _masked_grad_and_bias(dY, mask, dZ, db):
    bits_dtype, keep = _KEEP_WORDS[dY.itemsize]
    _relu_grad_and_bias(dY.view(bits_dtype), mask, dZ.view(bits_dtype), dZ, db, keep)


linear_forward, linear_backward = make_linear_kernels(
    _small_forward, _small_backward, _masked_grad_and_bias, _column_sums, small_batch=SMALL_BATCH)


# ---------------------------------------------------------------------------- ReLU
@njit(cache=True, nogil=True, inline="always")
def _relu_forward_bytes(X, Y, mask, row, first_byte, stop_byte):
    d = X.shape[1]
    for k in range(first_byte, stop_byte):
        start = 8 * k
        stop = min(start + 8, d)
        bits = 0
        for j in range(start, stop):
            x = X[row, j]
            if x > 0:
                Y[row, j] = x
                bits |= 1 << (j - start)
            else:
                Y[row, j] = 0.0
        mask[row, k] = bits


@njit(cache=True, nogil=True, inline="always")
def _relu_backward_bytes(dY_bits, mask, dX_bits, row, first_byte, stop_byte, keep):
    """dX = dY where the mask bit is set else +0.0, on the integer views of the float arrays.

    keep[b] holds 8 all-ones/all-zeros words for mask byte b, so each byte costs one table-row
    load and eight ANDs, which LLVM vectorizes (a per-element branch mispredicts on half of them).
    """
    d = dY_bits.shape[1]
    for k in range(first_byte, stop_byte):
        words = keep[mask[row, k]]
        start = 8 * k
        for j in range(min(8, d - start)):
            dX_bits[row, start + j] = dY_bits[row, start + j] & words[j]


@njit(cache=True, nogil=True)
def _relu_forward_serial(X, Y, mask):
    for row in range(X.shape[0]):
        _relu_forward_bytes(X, Y, mask, row, 0, mask.shape[1])


@njit(cache=True, nogil=True, parallel=True)
def _relu_forward_parallel(X, Y, mask):
    n_rows, n_bytes = mask.shape
    if n_rows >= 4:
        for row in prange(n_rows):
            _relu_forward_bytes(X, Y, mask, row, 0, n_bytes)
    else:  # few long rows: split each row into blocks of bytes
        n_tasks = (n_bytes + BYTES_PER_TASK - 1) // BYTES_PER_TASK
        for row in range(n_rows):
            for t in prange(n_tasks):
                _relu_forward_bytes(X, Y, mask, row, t * BYTES_PER_TASK, min(n_bytes, (t + 1) * BYTES_PER_TASK))


@njit(cache=True, nogil=True)
def _relu_backward_serial(dY_bits, mask, dX_bits, keep):
    for row in range(dY_bits.shape[0]):
        _relu_backward_bytes(dY_bits, mask, dX_bits, row, 0, mask.shape[1], keep)


@njit(cache=True, nogil=True, parallel=True)
def _relu_backward_parallel(dY_bits, mask, dX_bits, keep):
    n_rows, n_bytes = mask.shape
    if n_rows >= 4:
        for row in prange(n_rows):
            _relu_backward_bytes(dY_bits, mask, dX_bits, row, 0, n_bytes, keep)
    else:
        n_tasks = (n_bytes + BYTES_PER_TASK - 1) // BYTES_PER_TASK
        for row in range(n_rows):
            for t in prange(n_tasks):
                _relu_backward_bytes(dY_bits, mask, dX_bits, row, t * BYTES_PER_TASK,
                                     min(n_bytes, (t + 1) * BYTES_PER_TASK), keep)


def relu_forward(X, Y, mask):
    kernel = _pick(_relu_forward_parallel, _relu_forward_serial, X.size)
    kernel(X, Y, mask)


def relu_backward(dY, mask, dX):
    kernel = _pick(_relu_backward_parallel, _relu_backward_serial, dY.size)
    bits_dtype, keep = _KEEP_WORDS[dY.itemsize]
    kernel(dY.view(bits_dtype), mask, dX.view(bits_dtype), keep)


# ---------------------------------------------------------------------------- sigmoid
@njit(cache=True, nogil=True, inline="always")
def _sigmoid(x):
    e = np.exp(-abs(x))  # never overflows
    return 1 / (1 + e) if x >= 0 else e / (1 + e)


@njit(cache=True, nogil=True)
def _sigmoid_forward_serial(X, Y):
    for i in range(X.shape[0]):
        Y[i] = _sigmoid(X[i])


@njit(cache=True, nogil=True, parallel=True)
def _sigmoid_forward_parallel(X, Y):
    for i in prange(X.shape[0]):
        Y[i] = _sigmoid(X[i])


@njit(cache=True, nogil=True)
def _sigmoid_backward_serial(dY, Y, dX):
    for i in range(dY.shape[0]):
        dX[i] = dY[i] * Y[i] * (1 - Y[i])


@njit(cache=True, nogil=True, parallel=True)
def _sigmoid_backward_parallel(dY, Y, dX):
    for i in prange(dY.shape[0]):
        dX[i] = dY[i] * Y[i] * (1 - Y[i])


def sigmoid_forward(X, Y):
    _pick(_sigmoid_forward_parallel, _sigmoid_forward_serial, X.size)(X, Y)


def sigmoid_backward(dY, Y, dX):
    _pick(_sigmoid_backward_parallel, _sigmoid_backward_serial, dY.size)(dY, Y, dX)


# ---------------------------------------------------------------------------- leaky ReLU and tanh
@njit(cache=True, nogil=True)
def _leaky_relu_forward_serial(X, slope, Y):
    for i in range(X.shape[0]):
        Y[i] = X[i] if X[i] > 0 else X[i] * slope


@njit(cache=True, nogil=True, parallel=True)
def _leaky_relu_forward_parallel(X, slope, Y):
    for i in prange(X.shape[0]):
        Y[i] = X[i] if X[i] > 0 else X[i] * slope


@njit(cache=True, nogil=True)
def _leaky_relu_backward_serial(dY, X, slope, dX):
    for i in range(dY.shape[0]):
        dX[i] = dY[i] if X[i] > 0 else dY[i] * slope


@njit(cache=True, nogil=True, parallel=True)
def _leaky_relu_backward_parallel(dY, X, slope, dX):
    for i in prange(dY.shape[0]):
        dX[i] = dY[i] if X[i] > 0 else dY[i] * slope


@njit(cache=True, nogil=True)
def _tanh_forward_serial(X, Y):
    for i in range(X.shape[0]):
        Y[i] = np.tanh(X[i])


@njit(cache=True, nogil=True, parallel=True)
def _tanh_forward_parallel(X, Y):
    for i in prange(X.shape[0]):
        Y[i] = np.tanh(X[i])


@njit(cache=True, nogil=True)
def _tanh_backward_serial(dY, Y, dX):
    for i in range(dY.shape[0]):
        dX[i] = dY[i] * (1 - Y[i] * Y[i])


@njit(cache=True, nogil=True, parallel=True)
def _tanh_backward_parallel(dY, Y, dX):
    for i in prange(dY.shape[0]):
        dX[i] = dY[i] * (1 - Y[i] * Y[i])


def leaky_relu_forward(X, negative_slope, Y):
    slope = X.dtype.type(negative_slope)  # in X's dtype: float32 products stay float32, as in the reference
    _pick(_leaky_relu_forward_parallel, _leaky_relu_forward_serial, X.size)(X, slope, Y)


def leaky_relu_backward(dY, X, negative_slope, dX):
    slope = dY.dtype.type(negative_slope)
    _pick(_leaky_relu_backward_parallel, _leaky_relu_backward_serial, dY.size)(dY, X, slope, dX)


def tanh_forward(X, Y):
    _pick(_tanh_forward_parallel, _tanh_forward_serial, X.size)(X, Y)


def tanh_backward(dY, Y, dX):
    _pick(_tanh_backward_parallel, _tanh_backward_serial, dY.size)(dY, Y, dX)


# ---------------------------------------------------------------------------- losses
@njit(cache=True, nogil=True)
def _softmax_cross_entropy(logits, y, dlogits):
    n, n_classes = logits.shape
    total = 0.0
    for i in range(n):
        row_max = logits[i, 0]
        for c in range(1, n_classes):
            row_max = max(row_max, logits[i, c])
        sum_exp = 0.0
        for c in range(n_classes):
            e = np.exp(logits[i, c] - row_max)
            dlogits[i, c] = e
            sum_exp += e
        total += np.log(sum_exp) - (logits[i, y[i]] - row_max)
        scale = 1.0 / (sum_exp * n)
        for c in range(n_classes):
            dlogits[i, c] *= scale
        dlogits[i, y[i]] -= 1.0 / n
    return total / n


@njit(cache=True, nogil=True)
def _logistic_loss(scores, y, dscores):
    n = scores.shape[0]
    total = 0.0
    for i in range(n):
        z = -y[i] * scores[i]
        total += max(z, 0.0) + np.log1p(np.exp(-abs(z)))
        dscores[i] = -y[i] * _sigmoid(z) / n
    return total / n


def softmax_cross_entropy(logits, y, dlogits):
    return _softmax_cross_entropy(logits, y, dlogits)


def logistic_loss(scores, y, dscores):
    return _logistic_loss(scores, y, dscores)


# ---------------------------------------------------------------------------- Gram matrices
@njit(cache=True, nogil=True, inline="always")
def _int_power(base, degree, one):
    """base ** degree by repeated squaring; one is 1 in base's type (base - base + 1 is NaN at inf)."""
    result = one
    while degree > 0:
        if degree & 1:
            result *= base
        base *= base
        degree >>= 1
    return result


@njit(cache=True, nogil=True, inline="always")
def _transform_row(K, i, start, stop, code, gamma, degree, coef0, one):
    """K[i, start:stop] = kernel(inner product) in place, for the linear (nothing to do) and poly kernels."""
    if code == 1:
        for j in range(start, stop):
            K[i, j] = _int_power(gamma * K[i, j] + coef0, degree, one)


@njit(cache=True, nogil=True, parallel=True)
def _gram_epilogue_kernel(K, code, gamma, degree, coef0, one):
    for i in prange(K.shape[0]):
        _transform_row(K, i, 0, K.shape[1], code, gamma, degree, coef0, one)


# (Not njit of the same Python function twice: Numba's cache would give both the same file.)
@njit(cache=True, nogil=True)
def _gram_epilogue_kernel_serial(K, code, gamma, degree, coef0, one):
    for i in range(K.shape[0]):
        _transform_row(K, i, 0, K.shape[1], code, gamma, degree, coef0, one)


MIRROR_TILE = 64


@njit(cache=True, nogil=True)
def _gram_epilogue_symmetric_kernel(K, row_start, row_stop, col_start, col_stop, code, gamma, degree, coef0, one):
    """Pairs i <= j of rows [row_start, row_stop) x columns [col_start, col_stop) (both starts multiples
    of MIRROR_TILE): transform each upper tile and copy it to its mirror tile while in cache; serial,
    the caller threads it (see gram_epilogue_symmetric in _gram.pyx)."""
    first_tile = row_start // MIRROR_TILE
    for t in range(first_tile, (row_stop + MIRROR_TILE - 1) // MIRROR_TILE):
        i_start = t * MIRROR_TILE
        i_stop = min(row_stop, i_start + MIRROR_TILE)
        for u in range(max(t, col_start // MIRROR_TILE), (col_stop + MIRROR_TILE - 1) // MIRROR_TILE):
            j_start = u * MIRROR_TILE
            j_stop = min(col_stop, j_start + MIRROR_TILE)
            for i in range(i_start, i_stop):
                _transform_row(K, i, max(i, j_start), j_stop, code, gamma, degree, coef0, one)
            _mirror_tile(K, i_start, i_stop, j_start, j_stop)


@njit(cache=True, nogil=True, inline="always")
def _mirror_tile(K, i_start, i_stop, j_start, j_stop):
    """K[j, i] = K[i, j] for i in [i_start, i_stop), j in [j_start, j_stop), i < j."""
    for j in range(j_start, j_stop):
        for i in range(i_start, min(i_stop, j)):
            K[j, i] = K[i, j]


def _gram_epilogue(K, code, gamma, degree, coef0):
    kernel = _pick(_gram_epilogue_kernel, _gram_epilogue_kernel_serial, K.size)
    kernel(K, code, gamma, degree, coef0, K.dtype.type(1))


def _gram_epilogue_symmetric(K, row_start, row_stop, col_start, col_stop, code, gamma, degree, coef0):
    _gram_epilogue_symmetric_kernel(K, row_start, row_stop, col_start, col_stop, code, gamma, degree, coef0,
                                    K.dtype.type(1))


@njit(cache=True, nogil=True, inline="always")
def _squared_distance(X, i, Y, j):
    """sum((X[i] - Y[j])^2) in float64 (differences of close values are exact)."""
    total = 0.0
    for k in range(X.shape[1]):
        diff = np.float64(X[i, k]) - np.float64(Y[j, k])
        total += diff * diff
    return total


@njit(cache=True, nogil=True)
def _rbf_tile_epilogue(G, K, row0, col0, row_start, row_stop, x_sq, y_sq, X, Y, gamma, error_per_norm,
                       tolerance, symmetric):
    """The RBF values of one tile of K from float64 inner products of centered rows, recomputing from the
    original rows X, Y the pairs whose expansion may have cancelled; serial (see rbf_tile_epilogue in _gram.pyx for the contract)."""
    n_cols = G.shape[1]
    if n_cols == 0:
        return
    y_sq_max = y_sq[col0:col0 + n_cols].max()
    for t in range(row_start, row_stop, MIRROR_TILE):
        i_stop = min(row_stop, t + MIRROR_TILE)
        for u in range(0, n_cols, MIRROR_TILE):
            j_stop = min(n_cols, u + MIRROR_TILE)
            if symmetric and col0 + j_stop <= row0 + t:
                continue  # below the diagonal: written by the mirror of an earlier tile
            for i in range(t, i_stop):
                gi = row0 + i
                first = min(max(u, gi - col0 + 1), j_stop) if symmetric else u
                x_row_sq = x_sq[gi]
                for j in range(first, j_stop):
                    d = max(x_row_sq + y_sq[col0 + j] - 2 * G[i, j], 0.0)
                    K[gi, col0 + j] = np.exp(-gamma * d)
                if gamma * error_per_norm * (x_row_sq + y_sq_max) > tolerance:
                    for j in range(first, j_stop):
                        bound = error_per_norm * (x_row_sq + y_sq[col0 + j])
                        if gamma * bound <= tolerance:
                            continue
                        d = x_row_sq + y_sq[col0 + j] - 2 * G[i, j] - bound
                        if gamma * d >= np.log(gamma * bound / tolerance):
                            continue
                        K[gi, col0 + j] = np.exp(-gamma * _squared_distance(X, gi, Y, col0 + j))
                if symmetric and u <= gi - col0 < j_stop:
                    K[gi, gi] = 1.0  # ||x - x|| is exactly 0
            if symmetric:
                _mirror_tile(K, row0 + t, row0 + i_stop, col0 + u, col0 + j_stop)


gram = make_gram_kernel(_gram_epilogue, _gram_epilogue_symmetric, _rbf_tile_epilogue)
gram_matvec = make_gram_matvec(_gram_epilogue, _rbf_tile_epilogue)
gram_rows = make_gram_rows(_gram_epilogue, _rbf_tile_epilogue)


# ---------------------------------------------------------------------------- inference
# Numba's compiled forward is built for a few rows (the fused epoch's batches): on whole data sets it
# measured 2.5-4x slower than BLAS at every width (5k to 240k multiply-adds per row), so inference
# always takes BLAS; the compiled one remains the fused epoch's.
mlp_forward = dense_forward(_mlp_forward, blas_from=0)
cnn1d_forward = rows_on_threads(_cnn1d_forward, conv_multiply_adds)
