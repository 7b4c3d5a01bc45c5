# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Gram-matrix epilogues for the Cython backend.

fastnn.backends._compiled has BLAS fill K with X @ Y.T (for Y = X only the upper part, in tiles
that its threads compute with single-threaded GEMMs, or bands when BLAS keeps its own threads), then
these functions turn the inner products into kernel values in place. The symmetric one transforms
the upper part of a tile or band and mirrors it 64 x 64 block by block, so each pair is computed once
and K is exactly symmetric. The float64 mirror writes use streaming stores
(gram_mirror.h).

The RBF kernel has its own epilogue, rbf_tile_epilogue: its squared distances come from float64
inner products of centered rows whatever K's dtype, and the pairs where the expansion
||x||^2 + ||y||^2 - 2 x.y may have cancelled are recomputed directly
(fastnn/backends/rbf_numerics.py). Its exp is vectorized, with a variant for x <= 0 with a short
dependency chain in float64 (vector_exp.h).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport log

from _threads cimport fastnn_set_max_threads, fastnn_threads

cdef extern from "vector_exp.h" nogil:
    float fastnn_expf(float x)
    double fastnn_exp_nonpositive(double x)

cdef extern from "gram_mirror.h" nogil:
    void fastnn_mirror_tile_f(float* K, Py_ssize_t ld, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t j0, Py_ssize_t j1)
    void fastnn_mirror_tile_d(double* K, Py_ssize_t ld, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t j0, Py_ssize_t j1)
    void fastnn_mirror_fence()


cdef inline floating exp_nonpositive(floating x) noexcept nogil:
    """exp(x) for x <= 0 or -inf, never NaN (see vector_exp.h)."""
    if floating is float:
        return fastnn_expf(x)
    else:
        return fastnn_exp_nonpositive(x)


cdef inline void mirror_tile(floating* K, Py_ssize_t ld, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t j0,
                             Py_ssize_t j1) noexcept nogil:
    """K[j, i] = K[i, j] for i in [i0, i1), j in [j0, j1), i < j (streaming stores where it can)."""
    if floating is float:
        fastnn_mirror_tile_f(K, ld, i0, i1, j0, j1)
    else:
        fastnn_mirror_tile_d(K, ld, i0, i1, j0, j1)

cdef enum:
    POLY = 1
    TILE = 64  # mirror tiles: a TILE x TILE block of either triangle stays in L1


cdef inline floating int_power(floating base, long degree) noexcept nogil:
    """base ** degree for a non-negative integer degree, by repeated squaring."""
    cdef floating result = 1
    while degree > 0:
        if degree & 1:
            result *= base
        base *= base
        degree >>= 1
    return result


cdef inline void transform_row(floating* row, Py_ssize_t start, Py_ssize_t stop, int code, floating gamma,
                               long degree, floating coef0) noexcept nogil:
    """row[start:stop] = kernel(inner product) in place, for the linear (nothing to do) and poly kernels."""
    cdef Py_ssize_t j
    if code == POLY:
        for j in range(start, stop):
            row[j] = int_power(gamma * row[j] + coef0, degree)


def gram_epilogue(floating[:, ::1] K, int code, floating gamma, long degree, floating coef0):
    """K = kernel(K) in place for K = X @ Y.T; rows in parallel."""
    cdef Py_ssize_t i, n_x = K.shape[0], n_y = K.shape[1]
    cdef int threads = fastnn_threads()
    with nogil:
        if threads == 1:
            for i in range(n_x):
                transform_row(&K[i, 0], 0, n_y, code, gamma, degree, coef0)
        else:
            for i in prange(n_x, schedule="static", num_threads=threads):
                transform_row(&K[i, 0], 0, n_y, code, gamma, degree, coef0)


def set_max_threads(int n):
    """The most threads this module's parallel loops use (0: OpenMP's default); see fastnn._threads."""
    fastnn_set_max_threads(n)


def gram_epilogue_symmetric(floating[:, ::1] K, Py_ssize_t row_start, Py_ssize_t row_stop,
                            Py_ssize_t col_start, Py_ssize_t col_stop,
                            int code, floating gamma, long degree, floating coef0):
    """For the pairs i <= j of rows [row_start, row_stop) and columns [col_start, col_stop) of
    K = X @ X.T (row_start, col_start multiples of 64; only those pairs need hold inner products):
    transform each upper tile, then copy it to its mirror tile while still in cache, so K is exactly
    symmetric and each pair is computed once.

    Serial and GIL-free: the caller runs disjoint row ranges (or column ranges) on several threads.
    Tile row t reads only its own rows and writes the lower triangle in columns t*TILE..(t+1)*TILE-1
    of later rows, which no other tile row reads or writes. (No OpenMP here: this alternates with
    BLAS calls, and OpenMP workers spinning between regions took the cores BLAS needed.)
    """
    cdef Py_ssize_t n = K.shape[0]
    cdef Py_ssize_t first_tile = row_start // TILE, stop_tile = (row_stop + TILE - 1) // TILE
    cdef Py_ssize_t first_col_tile = col_start // TILE, stop_col_tile = (col_stop + TILE - 1) // TILE
    cdef Py_ssize_t t, u, i, j_start, j_stop, i_start, i_stop
    if row_start % TILE or col_start % TILE:
        raise ValueError(f"row_start and col_start must be multiples of {TILE}, got {row_start}, {col_start}")
    if not (0 <= row_start <= row_stop <= n and 0 <= col_start <= col_stop <= n):
        raise ValueError("gram_epilogue_symmetric: rows or columns outside K")
    with nogil:
        for t in range(first_tile, stop_tile):
            i_start = t * TILE
            i_stop = min(row_stop, i_start + TILE)
            for u in range(max(t, first_col_tile), stop_col_tile):
                j_start = u * TILE
                j_stop = min(col_stop, j_start + TILE)
                for i in range(i_start, i_stop):
                    transform_row(&K[i, 0], max(i, j_start), j_stop, code, gamma, degree, coef0)
                mirror_tile(&K[0, 0], n, i_start, i_stop, j_start, j_stop)
        fastnn_mirror_fence()


cdef inline double squared_distance(const floating* x, const floating* y, Py_ssize_t n) noexcept nogil:
    """sum((x - y) ** 2) in float64: every term is non-negative, and the differences of close values are
    exact (Sterbenz), so this is accurate to a few units in the last place."""
    cdef double total = 0, diff
    cdef Py_ssize_t k
    for k in range(n):
        diff = <double>x[k] - <double>y[k]
        total += diff * diff
    return total


cdef inline void rbf_row(floating* k_row, const double* g_row, double x_sq, const double* y_sq,
                         Py_ssize_t start, Py_ssize_t stop, double gamma) noexcept nogil:
    """k_row[j] = exp(-gamma max(x_sq + y_sq[j] - 2 g_row[j], 0)) for j in [start, stop); vectorizes."""
    cdef Py_ssize_t j
    cdef double d
    for j in range(start, stop):
        d = x_sq + y_sq[j] - 2 * g_row[j]
        d = d if d > 0 else 0
        if floating is float:
            k_row[j] = fastnn_expf(<float>(-gamma * d))
        else:
            k_row[j] = fastnn_exp_nonpositive(-gamma * d)


cdef inline void rbf_repair_row(floating* k_row, const double* g_row, double x_sq, const double* y_sq,
                                const floating* x, const floating* Y, Py_ssize_t ld_y, Py_ssize_t n_features,
                                Py_ssize_t start, Py_ssize_t stop, double gamma, double error_per_norm,
                                double tolerance) noexcept nogil:
    """Recompute k_row[j] from sum((x - y_j) ** 2) of the original rows where the expansion's error bound,
    error_per_norm * (x_sq + y_sq[j]), could move the kernel value by more than tolerance."""
    cdef Py_ssize_t j
    cdef double d, bound, slack
    for j in range(start, stop):
        bound = error_per_norm * (x_sq + y_sq[j])
        if gamma * bound <= tolerance:
            continue
        d = x_sq + y_sq[j] - 2 * g_row[j] - bound
        slack = log(gamma * bound / tolerance)  # the error is below tolerance once gamma * d exceeds it
        if gamma * d >= slack:
            continue
        d = squared_distance(x, &Y[j * ld_y], n_features)
        if floating is float:
            k_row[j] = fastnn_expf(<float>(-gamma * d))
        else:
            k_row[j] = fastnn_exp_nonpositive(-gamma * d)


def rbf_tile_epilogue(const double[:, ::1] G, floating[:, ::1] K, Py_ssize_t row0, Py_ssize_t col0,
                      Py_ssize_t row_start, Py_ssize_t row_stop, const double[::1] x_sq, const double[::1] y_sq,
                      const floating[:, ::1] X, const floating[:, ::1] Y, double gamma, double error_per_norm,
                      double tolerance, bint symmetric):
    """Write the RBF values of one tile of K from float64 inner products of centered rows.

    G : (rows, cols) float64, G[i, j] = Xc[row0 + i] . Yc[col0 + j] for the centered float64 rows Xc, Yc
    K : (n_x, n_y) float32 or float64; K[row0 + i, col0 + j] is written for i in [row_start, row_stop)
    x_sq, y_sq : (n_x,), (n_y,) float64 squared norms of the rows of Xc, Yc
    X, Y : (n_x, n_features), (n_y, n_features) the original rows, in K's dtype

    Pairs whose expansion may have cancelled (bound error_per_norm * (x_sq + y_sq) on the error of
    the squared distance, which moves the kernel value by up to gamma * bound) are recomputed
    directly from X and Y. symmetric: Y is X and K is the whole Gram matrix; only pairs with column >= row are
    computed, each 64 x 64 tile then mirrored, and the diagonal is exactly 1. row0, col0 and
    row_start are multiples of 64 when symmetric. Serial and GIL-free: callers run disjoint row
    ranges on threads (as gram_epilogue_symmetric).
    """
    cdef Py_ssize_t n_cols = G.shape[1], n_y = K.shape[1], n_features = X.shape[1]
    cdef Py_ssize_t t, u, t_index, u_index, i, gi, j_start, j_stop, i_stop, first
    cdef double y_sq_max = 0, x_row_sq
    if row_start < 0 or row_stop > G.shape[0] or row0 + G.shape[0] > K.shape[0] or col0 + n_cols > n_y \
            or X.shape[0] != K.shape[0] or Y.shape[0] != n_y or Y.shape[1] != n_features:
        raise ValueError("rbf_tile_epilogue: inconsistent tile geometry")
    if symmetric and (row0 % TILE or col0 % TILE or row_start % TILE):
        raise ValueError(f"rbf_tile_epilogue: symmetric tiles must start at multiples of {TILE}")
    if n_cols == 0 or row_stop <= row_start:
        return
    with nogil:
        for j_start in range(col0, col0 + n_cols):
            y_sq_max = max(y_sq_max, y_sq[j_start])
        for t_index in range((row_stop - row_start + TILE - 1) // TILE):
            t = row_start + t_index * TILE
            i_stop = min(row_stop, t + TILE)
            for u_index in range((n_cols + TILE - 1) // TILE):
                u = u_index * TILE
                j_stop = min(n_cols, u + TILE)
                if symmetric and col0 + j_stop <= row0 + t:
                    continue  # below the diagonal: written by the mirror of an earlier tile
                for i in range(t, i_stop):
                    gi = row0 + i
                    first = max(u, gi - col0 + 1) if symmetric else u  # symmetric: strictly above the diagonal
                    if first >= j_stop:
                        first = j_stop
                    x_row_sq = x_sq[gi]
                    rbf_row(&K[gi, col0], &G[i, 0], x_row_sq, &y_sq[col0], first, j_stop, gamma)
                    if gamma * error_per_norm * (x_row_sq + y_sq_max) > tolerance:
                        rbf_repair_row(&K[gi, col0], &G[i, 0], x_row_sq, &y_sq[col0], &X[gi, 0],
                                       &Y[col0, 0], n_features, n_features, first, j_stop, gamma,
                                       error_per_norm, tolerance)
                    if symmetric and u <= gi - col0 < j_stop:
                        K[gi, gi] = 1  # ||x - x|| is exactly 0
                if symmetric:
                    mirror_tile(&K[0, 0], n_y, row0 + t, row0 + i_stop, col0 + u, col0 + j_stop)
        fastnn_mirror_fence()
