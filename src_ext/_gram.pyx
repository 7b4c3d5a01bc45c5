# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Gram-matrix epilogues for the Cython backend: fastnn.backends._blas tiles K into row blocks, BLAS
fills each block with X @ Y.T, and these functions turn a block into kernel values in place while
it is still in cache, then mirror the upper triangle of a symmetric K."""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, expf

cdef enum:
    POLY = 1
    RBF = 2
    MIRROR_BLOCK = 64


cdef inline floating int_power(floating base, long degree) noexcept nogil:
    """base ** degree for a non-negative integer degree, by repeated squaring."""
    cdef floating result = 1
    while degree > 0:
        if degree & 1:
            result *= base
        base *= base
        degree >>= 1
    return result


cdef inline floating cpu_exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


def gram_epilogue(floating[:, ::1] K, const floating[::1] x_sq, const floating[::1] y_sq,
                  Py_ssize_t row_start, Py_ssize_t row_stop, Py_ssize_t col_start, int code,
                  floating gamma, long degree, floating coef0, bint symmetric):
    cdef Py_ssize_t i, j, n_y = K.shape[1]
    cdef floating d
    with nogil:
        for i in prange(row_start, row_stop, schedule="static"):
            if code == POLY:
                for j in range(col_start, n_y):
                    K[i, j] = int_power(gamma * K[i, j] + coef0, degree)
            elif code == RBF:
                for j in range(col_start, n_y):
                    d = x_sq[i] + y_sq[j] - K[i, j] - K[i, j]
                    K[i, j] = cpu_exp(-gamma * (d if d > 0 else 0))
                if symmetric:
                    K[i, i] = 1  # ||x - x|| is exactly 0 whatever the rounding of the norms


def mirror_upper(floating[:, ::1] K):
    """K[j, i] = K[i, j] for j > i, copied in square tiles so reads and writes both stay in cache."""
    cdef Py_ssize_t n = K.shape[0], n_tiles = (n + MIRROR_BLOCK - 1) // MIRROR_BLOCK
    cdef Py_ssize_t ti, tj, i, j, i_stop, j_stop
    with nogil:
        for ti in prange(n_tiles, schedule="dynamic"):
            i_stop = min(n, (ti + 1) * MIRROR_BLOCK)
            for tj in range(ti + 1):
                j_stop = min(n, (tj + 1) * MIRROR_BLOCK)
                for i in range(ti * MIRROR_BLOCK, i_stop):
                    for j in range(tj * MIRROR_BLOCK, min(j_stop, i)):
                        K[i, j] = K[j, i]
