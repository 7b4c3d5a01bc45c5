# cython: language_level=3
"""GEMM for a handful of rows, where BLAS packing and dispatch cost more than the arithmetic.

The register-blocked micro-kernels live in small_gemm.h (C with GCC/Clang vector extensions, since
Cython cannot make the compiler keep a block of accumulators in registers); the functions here tile
a product into blocks and pick the float or double kernel. All matrices are row-major.
"""
from cython cimport floating

cdef extern from "small_gemm.h" nogil:
    enum:
        FASTNN_MR
        FASTNN_NR_f32
        FASTNN_NR_f64
    void fastnn_block_axpy_f32(Py_ssize_t mr, Py_ssize_t nr, Py_ssize_t depth, const float* A, Py_ssize_t a_row,
                               Py_ssize_t a_inner, const float* B, Py_ssize_t ldb, float* C, Py_ssize_t ldc,
                               int accumulate)
    void fastnn_block_axpy_f64(Py_ssize_t mr, Py_ssize_t nr, Py_ssize_t depth, const double* A, Py_ssize_t a_row,
                               Py_ssize_t a_inner, const double* B, Py_ssize_t ldb, double* C, Py_ssize_t ldc,
                               int accumulate)
    void fastnn_block_dots_f32(Py_ssize_t mr, Py_ssize_t nb, Py_ssize_t depth, const float* A, Py_ssize_t lda,
                               const float* B, Py_ssize_t ldb, float* C, Py_ssize_t c_row, Py_ssize_t c_col)
    void fastnn_block_dots_f64(Py_ssize_t mr, Py_ssize_t nb, Py_ssize_t depth, const double* A, Py_ssize_t lda,
                               const double* B, Py_ssize_t ldb, double* C, Py_ssize_t c_row, Py_ssize_t c_col)


cdef inline void _block_axpy(Py_ssize_t mr, Py_ssize_t nr, Py_ssize_t depth, const floating* A, Py_ssize_t a_row,
                             Py_ssize_t a_inner, const floating* B, Py_ssize_t ldb, floating* C, Py_ssize_t ldc,
                             bint accumulate) noexcept nogil:
    if floating is float:
        fastnn_block_axpy_f32(mr, nr, depth, A, a_row, a_inner, B, ldb, C, ldc, accumulate)
    else:
        fastnn_block_axpy_f64(mr, nr, depth, A, a_row, a_inner, B, ldb, C, ldc, accumulate)


cdef inline void _tiled_axpy(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const floating* A, Py_ssize_t a_row,
                             Py_ssize_t a_inner, const floating* B, floating* C, bint accumulate) noexcept nogil:
    """C (m x n) (+)= sum_p A(i, p) B[p, :], tiled into MR x NR blocks."""
    cdef Py_ssize_t nr = FASTNN_NR_f32 if floating is float else FASTNN_NR_f64
    cdef Py_ssize_t bi, bj, i0, j0
    for bi in range((m + FASTNN_MR - 1) // FASTNN_MR):
        i0 = bi * FASTNN_MR
        for bj in range((n + nr - 1) // nr):
            j0 = bj * nr
            _block_axpy(min(<Py_ssize_t>FASTNN_MR, m - i0), min(nr, n - j0), k, &A[i0 * a_row], a_row, a_inner,
                        &B[j0], n, &C[i0 * n + j0], n, accumulate)


cdef inline void small_gemm_nn(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const floating* A, const floating* B,
                               floating* C, bint accumulate) noexcept nogil:
    """C (m x n) (+)= A (m x k) @ B (k x n)."""
    _tiled_axpy(m, n, k, A, k, 1, B, C, accumulate)


cdef inline void small_gemm_tn(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const floating* A, const floating* B,
                               floating* C) noexcept nogil:
    """C (m x n) = A.T @ B with A (k x m), B (k x n): e.g. dW = X.T @ dZ."""
    _tiled_axpy(m, n, k, A, 1, m, B, C, False)


cdef inline void small_gemm_nt(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const floating* A, const floating* B,
                               floating* C) noexcept nogil:
    """C (m x n) = A (m x k) @ B.T with B (n x k): e.g. dX = dZ @ W.T.

    Tiled as C.T = B @ A.T: the many rows of B (e.g. W's D_in rows) fill the kernel's MR-row side,
    the few rows of A (the batch) its 2-row side, so a batch of 5 wastes one slot of six, not three of eight.
    """
    cdef Py_ssize_t bq, bi, q0, i0
    for bq in range((n + FASTNN_MR - 1) // FASTNN_MR):
        q0 = bq * FASTNN_MR
        for bi in range((m + 1) // 2):
            i0 = bi * 2
            if floating is float:
                fastnn_block_dots_f32(min(<Py_ssize_t>FASTNN_MR, n - q0), min(2, m - i0), k, &B[q0 * k], k,
                                      &A[i0 * k], k, &C[i0 * n + q0], 1, n)
            else:
                fastnn_block_dots_f64(min(<Py_ssize_t>FASTNN_MR, n - q0), min(2, m - i0), k, &B[q0 * k], k,
                                      &A[i0 * k], k, &C[i0 * n + q0], 1, n)
