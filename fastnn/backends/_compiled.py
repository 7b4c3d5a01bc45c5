"""Kernels the compiled backends share, written once around their compiled pieces: the linear layer
(around the fused mask pass and the small-batch products) and the Gram matrix (around its epilogues).

Up to SMALL_BATCH rows the products run in the backend's own small-matrix kernels: BLAS packing
and thread dispatch cost more than the arithmetic there. Beyond it the work is two GEMMs, given to
np.matmul: NumPy's bundled OpenBLAS is the fastest BLAS reachable here (measured faster than the
one scipy.linalg.cython_blas exposes, at every size we benchmark), so compiled code only does what
BLAS cannot: the single fused pass that applies the ReLU mask and reduces the bias gradient.
"""
import threading

import numpy as np

from .._threads import get_num_threads
from .rbf_numerics import RBF_TOLERANCE, centered_float64, expansion_error_per_norm

# Largest batch the small-matrix kernels take: measured crossover with BLAS at 784 -> 128 (N=6 to 7).
SMALL_BATCH = 6


def masked_gradient(dY, mask, db, relu_grad_and_bias, column_sums):
    """dZ (dY masked by the ReLU bits, or dY itself without a mask), filling db = dZ.sum(0) on the way."""
    if mask is None:
        column_sums(dY, db)
        return dY
    dZ = np.empty_like(dY)
    relu_grad_and_bias(dY, mask, dZ, db)
    return dZ


def make_linear_kernels(small_forward, small_backward, relu_grad_and_bias, column_sums, small_batch=SMALL_BATCH):
    """Build (linear_forward, linear_backward) for a backend from its compiled pieces.

    small_forward(X, W, b, Y)                  Y = X @ W (+ b), for n <= small_batch
    small_backward(X, W, dY, mask, dX, dW, db) the whole backward (as linear_backward), n <= small_batch
    relu_grad_and_bias(dY, mask, dZ, db)       dZ = dY masked by the ReLU bits, db = dZ.sum(0)
    column_sums(dY, db)                        db = dY.sum(0)
    """

    def linear_forward(X, W, b, Y):
        if X.shape[0] <= small_batch:
            small_forward(X, W, b, Y)
            return
        np.matmul(X, W, out=Y)
        if b is not None:
            Y += b

    def linear_backward(X, W, dY, mask, dX, dW, db):
        if X.shape[0] <= small_batch:
            small_backward(X, W, dY, mask, dX, dW, db)
            return
        dZ = masked_gradient(dY, mask, db, relu_grad_and_bias, column_sums)
        np.matmul(X.T, dZ, out=dW)
        if dX is not None:
            np.matmul(dZ, W.T, out=dX)

    return linear_forward, linear_backward


# Gram matrices ------------------------------------------------------------------------------------
KERNEL_CODES = {"linear": 0, "poly": 1}
# Rows per band of a symmetric K (a multiple of the epilogues' 64-row tiles): large enough that the
# band's GEMM runs at full speed, small enough that the band is still in cache for its epilogue.
SYMMETRIC_BAND_ROWS = 512
EPILOGUE_TILE = 64


def run_on_threads(function, chunks):
    """Call function(*chunk) for every chunk, on one thread per chunk (the first on this one); callers
    make at most fastnn.get_num_threads() chunks.

    For GIL-free compiled functions that alternate with BLAS calls: idle Python threads block
    instead of spinning, so they leave BLAS the cores. Exceptions propagate.
    """
    errors = []

    def call(chunk):
        try:
            function(*chunk)
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(chunk,)) for chunk in chunks[1:]]
    for thread in threads:
        thread.start()
    call(chunks[0])
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _split_rows(start, stop, parts, multiple):
    """Split [start, stop) into at most `parts` ranges whose inner bounds are multiples of `multiple`."""
    tiles = -(-(stop - start) // multiple)
    bounds = sorted({start + min(stop - start, multiple * (tiles * k // parts)) for k in range(parts + 1)})
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


# RBF tiles: a band of rows times a chunk of columns of float64 inner products (16 MiB). Each tile
# alternates a BLAS call with threaded epilogues, and that switch costs (OpenBLAS workers spin after
# a call): 256 x 1024 tiles measured ~2x slower at 5000 x 784 than these.
RBF_BAND_ROWS = 512
RBF_COLUMN_CHUNK = 4096

def rbf_tiles(X, Y, gamma, K, tile_epilogue):
    """Fill K with exp(-gamma ||x - y||^2), accurate to RBF_TOLERANCE plus K's own rounding.

    Whatever K's dtype, the squared distances come from float64 inner products of centered rows
    (scikit-learn also upcasts float32 here), one (band x chunk) tile at a time into a reused
    buffer; tile_epilogue(G, K, row0, col0, row_start, row_stop, x_sq, y_sq, X, Y, gamma,
    error_per_norm, tolerance, symmetric) writes the tile's kernel values, recomputing as
    sum((x - y)^2) of the original rows (whose differences are exact when the rows are close) the
    pairs whose expansion may have cancelled (near-duplicates far from the origin). With Y None only tiles on or above the diagonal are computed, then mirrored.
    Memory beyond K: the float64 copies of X and Y and one 16 MiB tile.
    """
    symmetric = Y is None
    Xc, Yc = centered_float64(X, Y)
    x_sq = np.einsum("ij,ij->i", Xc, Xc)
    if symmetric:
        Y, Yc, y_sq = X, Xc, x_sq
    else:
        y_sq = np.einsum("ij,ij->i", Yc, Yc)
    n_x, n_y = K.shape
    constants = (gamma, expansion_error_per_norm(X.shape[1]), RBF_TOLERANCE, symmetric)
    buffer = np.empty(RBF_BAND_ROWS * RBF_COLUMN_CHUNK)
    workers = get_num_threads()
    for row0 in range(0, n_x, RBF_BAND_ROWS):
        rows = min(n_x, row0 + RBF_BAND_ROWS) - row0
        for col0 in range(row0 if symmetric else 0, n_y, RBF_COLUMN_CHUNK):
            cols = min(n_y, col0 + RBF_COLUMN_CHUNK) - col0
            G = buffer[:rows * cols].reshape(rows, cols)
            np.matmul(Xc[row0:row0 + rows], Yc[col0:col0 + cols].T, out=G)
            ranges = _split_rows(0, rows, workers, EPILOGUE_TILE)
            run_on_threads(tile_epilogue, [(G, K, row0, col0, a, b, x_sq, y_sq, X, Y, *constants)
                                           for a, b in ranges])


def make_gram_kernel(epilogue, symmetric_epilogue, rbf_tile_epilogue):
    """Build a backend's gram(X, Y, kernel, gamma, degree, coef0, K) from its compiled epilogues.

    RBF: rbf_tiles, around rbf_tile_epilogue. Linear and polynomial: with Y given, one BLAS call
    fills K with X @ Y.T and epilogue(K, code, gamma, degree, coef0) turns it into kernel values
    in place. With Y None, K is filled in bands of rows: one GEMM computes a band's
    upper part only (each pair once, like syrk; measured faster than NumPy's syrk path, which also
    copies the triangle), then symmetric_epilogue(K, row_start, row_stop, code, gamma, degree, coef0)
    transforms the band and mirrors it while it is in cache, so K is exactly symmetric. code comes
    from KERNEL_CODES and the scalars are in K's dtype. No memory beyond K.
    """

    def gram(X, Y, kernel, gamma, degree, coef0, K):
        if kernel == "rbf":
            rbf_tiles(X, Y, gamma, K, rbf_tile_epilogue)
            return
        code = KERNEL_CODES[kernel]
        scalars = (code, K.dtype.type(gamma), degree, K.dtype.type(coef0))
        if Y is None:
            n = X.shape[0]
            workers = get_num_threads()
            for start in range(0, n, SYMMETRIC_BAND_ROWS):
                stop = min(n, start + SYMMETRIC_BAND_ROWS)
                np.matmul(X[start:stop], X[start:].T, out=K[start:stop, start:])
                ranges = _split_rows(start, stop, workers, EPILOGUE_TILE)
                run_on_threads(symmetric_epilogue, [(K, a, b, *scalars) for a, b in ranges])
        else:
            np.matmul(X, Y.T, out=K)
            if code:
                epilogue(K, *scalars)

    return gram


# Inference -----------------------------------------------------------------------------------------
# The fewest multiply-adds that make a second thread worth starting (a thread costs ~50 us).
INFERENCE_PARALLEL_MIN_WORK = 1 << 21


def rows_on_threads(kernel, multiply_adds_per_row):
    """Run an inference kernel(X, *settings, out) on ranges of rows, one per thread, for large inputs.

    kernel: a serial, GIL-free kernel filling out[i] from X[i] alone (mlp_forward, cnn1d_forward);
    multiply_adds_per_row(*settings): its work per row. The ranges run on blocking Python threads
    (run_on_threads), not OpenMP: no OpenMP worker is left spinning against the GEMMs of the layers
    that may run next, and fastnn's thread limit (one thread in a child made by fork) applies.
    """

    def call(X, *arguments):
        *settings, out = arguments
        n = X.shape[0]
        workers = get_num_threads() if n * multiply_adds_per_row(*settings) >= INFERENCE_PARALLEL_MIN_WORK else 1
        workers = max(1, min(workers, n))
        if workers == 1:
            kernel(X, *settings, out)
            return
        bounds = [n * k // workers for k in range(workers + 1)]
        run_on_threads(lambda start, stop: kernel(X[start:stop], *settings, out[start:stop]),
                       [(start, stop) for start, stop in zip(bounds, bounds[1:])])

    return call


def dense_multiply_adds(sizes, activation, params):
    """Multiply-adds per row of a dense network (mlp_forward's settings)."""
    return int(np.dot(sizes[:-1], sizes[1:]))


def conv_multiply_adds(conv, n_classes, params):
    """Multiply-adds per example of a conv stack (cnn1d_forward's settings): about one per parameter use."""
    work, length = 0, 0
    for c_in, l_in, c_out, k, stride, padding in conv.tolist():
        length = (l_in + 2 * padding - k) // stride + 1
        work += c_out * c_in * k * length
    return work + int(conv[-1][2]) * length * n_classes
