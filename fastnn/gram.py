"""Kernel Gram matrices for kernel methods: linear, polynomial and RBF."""
import math
import numbers

import numpy as np

from . import _dask
from . import _validation as v
from ._config import get_backend, resolve
from ._threads import get_num_threads

KERNEL_FUNCTIONS = ("linear", "poly", "rbf")


def _check_magnitude(name, array):
    """ValueError for NaN, infinity, or values whose inner products could overflow the dtype."""
    v.finite(name, array)
    if array.size == 0:
        return
    largest = float(np.abs(array).max())
    # Centered rows (RBF) are within 2 * largest per coordinate; a product of two rows sums n_features terms.
    limit = math.sqrt(np.finfo(array.dtype).max / (16 * array.shape[1]))
    if largest > limit:
        raise ValueError(f"{name} has values up to {largest:.3g}: inner products of rows of {array.shape[1]} "
                         f"features could overflow {array.dtype} (largest allowed magnitude {limit:.3g}); "
                         f"scale the data")


def _check_kernel_inputs(X, Y, kernel, gamma, degree, coef0):
    """Validated (X, Y, gamma, degree, coef0) as gram's docstring requires them; Y may be None."""
    X = v.float_array("X", X, ndim=2)
    if Y is not None:
        Y = v.float_array("Y", Y, ndim=2, dtype=X.dtype)
        if Y.shape[1] != X.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features (shape {X.shape}) but Y has {Y.shape[1]} "
                             f"(shape {Y.shape}); they must have the same number of features")
    if kernel not in KERNEL_FUNCTIONS:
        raise ValueError(f"kernel must be one of {KERNEL_FUNCTIONS}, got {kernel!r}")
    gamma = 1.0 / X.shape[1] if gamma is None else gamma
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not (math.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be a positive finite number, got {gamma!r}")
    degree = v.integer("degree", degree, 0)
    if isinstance(coef0, bool) or not isinstance(coef0, numbers.Real) or not math.isfinite(coef0):
        raise ValueError(f"coef0 must be a finite number, got {coef0!r}")
    for name, array in (("X", X), ("Y", Y)):
        if array is not None:
            _check_magnitude(name, array)
    return X, Y, float(gamma), int(degree), float(coef0)


def gram(X, Y=None, *, kernel="rbf", gamma=None, degree=3, coef0=1.0, backend=None):
    """The Gram matrix K[i, j] = k(X[i], Y[j]) (Y defaults to X), equal to scikit-learn's pairwise kernels.

    kernel:
        'linear'  k(x, y) = x . y
        'poly'    k(x, y) = (gamma x . y + coef0) ** degree
        'rbf'     k(x, y) = exp(-gamma ||x - y||^2)

    Parameters
    ----------
    X : (n_x, n_features) float32 or float64, finite, with values small enough that inner products of
        rows cannot overflow the dtype (|x| * |y| * n_features below a quarter of its largest value)
    Y : (n_y, n_features) of the same dtype, or None for Y = X. With Y None the result is exactly
        symmetric (each pair is computed once) and the RBF diagonal is exactly 1.
    gamma : positive float, default 1 / n_features (ignored by 'linear')
    degree : integer in [0, 2**40], for 'poly'
    coef0 : finite float, for 'poly'

    Returns
    -------
    K : (n_x, n_y), dtype of X.

    Accuracy: RBF values in either dtype are within 1e-12 of exp(-gamma ||x - y||^2) computed exactly
    from the given inputs, plus the rounding of K's dtype (float32: ~6e-8), on any CPU and BLAS: the
    squared distances come from float64 inner products of centered rows, and the pairs where
    ||x||^2 + ||y||^2 - 2 x.y could cancel (near-duplicates far from the origin) are recomputed as
    sum((x - y)^2) (fastnn.backends.rbf_numerics). The linear and poly kernels are one GEMM in the
    input dtype, as in scikit-learn.

    Work memory beyond K: for 'rbf', float64 copies of X and Y and a 2 MiB tile per thread (16 MiB in
    all when BLAS threads cannot be controlled); otherwise none.

    Threads: the compiled backends compute an RBF Gram, and any Gram with Y None, in tiles on
    fastnn.get_num_threads() threads (at most as many as BLAS may use), each tile a single-threaded
    GEMM followed by its kernel values; during the call, BLAS is held to one thread for the whole
    process (threadpoolctl, as scikit-learn's KMeans does) and restored afterwards.

    Dask arrays (X or Y) give a Dask array: one task per tile of X's and Y's row chunks, each computed
    by this function on a worker (fastnn._dask); with Y None each off-diagonal pair of tiles once.
    """
    if _dask.is_dask_array(X) or _dask.is_dask_array(Y):
        return _dask.dask_gram(X, Y, kernel, gamma, degree, coef0, backend)
    X, Y, gamma, degree, coef0 = _check_kernel_inputs(X, Y, kernel, gamma, degree, coef0)
    K = np.empty((X.shape[0], X.shape[0] if Y is None else Y.shape[0]), dtype=X.dtype)
    resolve(backend).gram(X, Y, kernel, gamma, degree, coef0, K)
    return K


# Memory-bounded kernel products ---------------------------------------------------------------------
DEFAULT_WORKING_MEMORY = 1024  # MiB, scikit-learn's default working_memory
MIB = 1 << 20
# Tile caps: the compiled backends' measured best RBF tile (fastnn.backends._compiled); larger tiles
# gain nothing, smaller ones are used only when working_memory asks for them.
MAX_BAND_ROWS = 512
MAX_COLUMN_CHUNK = 4096
MIN_TILE = 64
# Tiles computed on fastnn's threads (one single-threaded GEMM each) stay small enough for their float64
# products to be in L2 when the epilogue reads them: the full Gram's tile (GRAM_TILE_ROWS x _COLUMNS).
THREADED_TILE = (256, 1024)


def _tile_bytes(rows, cols, n_features, k, itemsize):
    """Work memory of one (rows x cols) tile of gram_matvec: float64 products, kernel values in the
    input dtype, the centered float64 rows of the band and of the chunk, and the two (., k) products."""
    return rows * cols * (8 + itemsize) + (rows + cols) * (n_features * 8 + k * itemsize)


def _working_memory_bytes(working_memory):
    if working_memory is None:
        return DEFAULT_WORKING_MEMORY * MIB
    if (isinstance(working_memory, bool) or not isinstance(working_memory, numbers.Real)
            or not math.isfinite(working_memory) or working_memory <= 0):
        raise ValueError(f"working_memory must be a positive number of MiB (or None for "
                         f"{DEFAULT_WORKING_MEMORY}), got {working_memory!r}")
    return float(working_memory) * MIB


def tile_shape(n_x, n_y, n_features, k, itemsize, working_memory, tiles_at_once=1, largest=None):
    """(band_rows, column_chunk): the largest tile up to 512 x 4096 such that `tiles_at_once` of them
    fit working_memory (MiB; None: 1024), each with room for a thread's own (n_x, k) sum of at most
    rows x cols float64 when tiles_at_once > 1 (fastnn.backends._compiled.rbf_matvec_tiles).
    largest: (rows, cols) caps instead of (MAX_BAND_ROWS, MAX_COLUMN_CHUNK).
    ValueError when not even a 64 x 64 tile fits."""
    max_rows, max_cols = (MAX_BAND_ROWS, MAX_COLUMN_CHUNK) if largest is None else largest
    budget = _working_memory_bytes(working_memory) / tiles_at_once
    if tiles_at_once > 1:
        itemsize += 8  # the per-thread sum, counted as 8 more bytes per tile element
    smallest = (min(n_x, MIN_TILE), min(n_y, MIN_TILE))
    if _tile_bytes(*smallest, n_features, k, itemsize) > budget:
        need = _tile_bytes(*smallest, n_features, k, itemsize) / MIB
        raise ValueError(f"working_memory={working_memory!r} MiB is too small: one {smallest[0]} x {smallest[1]} "
                         f"tile of {n_features} features needs {need:.3g} MiB")
    for rows in (min(n_x, max_rows), smallest[0]):
        fixed = rows * (n_features * 8 + k * itemsize)
        per_column = rows * (8 + itemsize) + n_features * 8 + k * itemsize
        cols = min(n_y, max_cols, int((budget - fixed) // per_column))
        if cols >= smallest[1]:
            return rows, cols
    return smallest


def _matvec_tiles(n_x, n_y, n_features, k, itemsize, working_memory, backend):
    """(band_rows, column_chunk, threads) for gram_matvec: the compiled backends compute one tile per
    thread at once (fastnn.backends._compiled.rbf_matvec_tiles) when that many tiles, and a sum of the
    output per thread, fit working_memory; otherwise one tile at a time (threads 1)."""
    threads = 1 if (backend or get_backend()) == "numpy" else get_num_threads()
    if threads > 1:
        try:
            rows, cols = tile_shape(n_x, n_y, n_features, k, itemsize, working_memory, threads, THREADED_TILE)
            if n_x * k * itemsize <= rows * cols * 8:  # the per-thread sum fits the room tile_shape left
                return rows, cols, threads
        except ValueError:
            pass
    return (*tile_shape(n_x, n_y, n_features, k, itemsize, working_memory), 1)


def _check_matvec_operand(V, n_y, dtype):
    V = v.float_array("V", V, dtype=dtype)
    if V.ndim not in (1, 2):
        raise ValueError(f"V must be 1-D (n_Y,) or 2-D (n_Y, k), got shape {V.shape}")
    if V.shape[0] != n_y:
        raise ValueError(f"V has {V.shape[0]} rows (shape {V.shape}) but the Gram matrix has {n_y} columns "
                         f"(rows of Y, or of X when Y is None); they must match")
    v.finite("V", V)
    return V


def gram_matvec(X, Y, V, *, kernel="rbf", gamma=None, degree=3, coef0=1.0, working_memory=None, backend=None):
    """gram(X, Y, ...) @ V without forming the Gram matrix: kernel tiles computed, multiplied and dropped.

    Parameters
    ----------
    X, Y, kernel, gamma, degree, coef0 : as in fastnn.gram (Y None: Y = X; then each RBF pair is
        computed once and used for both rows it contributes to)
    V : (n_Y,) or (n_Y, k) of X's dtype, finite (n_Y = rows of Y, or of X when Y is None)
    working_memory : positive number of MiB (default None: 1024, scikit-learn's default) bounding the
        work memory beyond the inputs and the output: the tiles are sized from it (up to 512 x 4096
        pairs); ValueError when not even a 64 x 64 tile fits.

    Returns
    -------
    (n_X,) or (n_X, k), X's dtype: equal to gram(X, Y, ...) @ V up to rounding, with the same per-value
    accuracy of the kernel (see fastnn.gram). The linear kernel is computed as X @ (Y.T @ V).

    Dask arrays (any of X, Y, V) give a Dask array chunked as X's rows: one task per kernel tile of the
    row chunks (with Y None, one per pair of chunks, serving both), computed by fastnn on the workers;
    working_memory does not apply there (the chunks set the tiles).
    """
    if any(_dask.is_dask_array(value) for value in (X, Y, V)):
        return _dask.dask_gram_matvec(X, Y, V, kernel, gamma, degree, coef0, backend)
    X, Y, gamma, degree, coef0 = _check_kernel_inputs(X, Y, kernel, gamma, degree, coef0)
    n_y = (X if Y is None else Y).shape[0]
    V = _check_matvec_operand(V, n_y, X.dtype)
    V2 = V.reshape(n_y, -1)
    rows, cols, threads = _matvec_tiles(X.shape[0], n_y, X.shape[1], V2.shape[1], X.dtype.itemsize, working_memory,
                                        backend)
    out = np.empty((X.shape[0], V2.shape[1]), dtype=X.dtype)
    resolve(backend).gram_matvec(X, Y, V2, kernel, gamma, degree, coef0, out, rows, cols, threads)
    return out.reshape(-1) if V.ndim == 1 else out


def gram_rows(X, rows, *, Y=None, kernel="rbf", gamma=None, degree=3, coef0=1.0, working_memory=None,
              backend=None):
    """Rows `rows` of gram(X, Y): K (len(rows), n_Y), K[r, j] = k(X[rows[r]], Y[j]) (Y None: Y = X, and
    the RBF value of an example with itself is exactly 1, as on gram(X)'s diagonal).

    The kernel rows of selected examples, for methods that need only some rows of the Gram matrix
    (a kernel perceptron's mistakes, an SVM solver's working set). rows: 1-D integers in [0, n_X),
    repeats allowed. The work memory beyond K (for 'rbf': float64 products of the rows with a chunk
    of Y, and that chunk centered) is bounded by working_memory (MiB, default 1024). gamma's default
    1 / n_features does not depend on which rows are asked for. Returns X's dtype.
    """
    rows_of = kernel_rows(X, Y=Y, kernel=kernel, gamma=gamma, degree=degree, coef0=coef0,
                          working_memory=working_memory, backend=backend)
    return rows_of(v.indices("rows", rows, rows_of.n_rows, "rows of X"))


def kernel_rows(X, *, Y=None, kernel="rbf", gamma=None, degree=3, coef0=1.0, working_memory=None, backend=None,
                keep_centered=False):
    """Validate X, Y and the parameters once; return rows_of(rows) -> gram_rows(X, rows, ...).

    For callers that ask for rows many times (a streaming kernel perceptron): rows_of takes a 1-D int64
    array of indices already known to be in [0, rows_of.n_rows) and checks nothing but working_memory
    against its length. X and Y must not change while rows_of is in use. keep_centered=True lets the
    compiled backends keep a float64 centered copy of Y (X) between calls (n_Y x n_features x 8 bytes
    beyond working_memory), instead of centering all of it again on every call.
    """
    X, Y, gamma, degree, coef0 = _check_kernel_inputs(X, Y, kernel, gamma, degree, coef0)
    n_y = (X if Y is None else Y).shape[0]
    budget = _working_memory_bytes(working_memory)
    kernel_function = resolve(backend).gram_rows
    prepared = {} if keep_centered else None

    def rows_of(rows, columns=None):
        """K (len(rows), n_Y), or only the given columns (sorted int64 indices into Y's rows)."""
        per_column = (max(1, rows.shape[0]) + X.shape[1]) * 8  # a column of products and one centered row
        column_chunk = min(n_y, MAX_COLUMN_CHUNK, int(budget // per_column))
        if column_chunk < min(n_y, MIN_TILE):
            raise ValueError(f"working_memory={working_memory!r} MiB is too small for {rows.shape[0]} rows of "
                             f"{X.shape[1]} features: it needs at least "
                             f"{min(n_y, MIN_TILE) * per_column / MIB:.3g} MiB")
        K = np.empty((rows.shape[0], n_y if columns is None else columns.shape[0]), dtype=X.dtype)
        if K.size:
            kernel_function(X, rows, Y, kernel, gamma, degree, coef0, K, column_chunk, prepared, columns)
        return K

    rows_of.n_rows = X.shape[0]
    return rows_of
