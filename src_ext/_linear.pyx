# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Linear layer kernels: GEMM through scipy's BLAS with the bias and the ReLU mask fused around it.

Arrays are row-major (C order) while BLAS is column-major. A row-major matrix is the column-major
storage of its transpose, so C = op(A) @ op(B) is computed as C^T = op(B)^T @ op(A)^T.
"""
import numpy as np
from cython cimport floating
from libc.stdint cimport uint8_t
from libc.stdlib cimport calloc, free
from scipy.linalg.cython_blas cimport dgemm, sgemm

from _select cimport keep_or_zero


cdef void cpu_gemm_rowmajor(bint trans_a, bint trans_b, int m, int n, int k,
                            const floating* A, int lda, const floating* B, int ldb,
                            floating beta, floating* C, int ldc) noexcept nogil:
    """C (m x n, row-major) = op(A) @ op(B) + beta * C, where op(A) is m x k and op(B) is k x n."""
    cdef char ta = b'T' if trans_b else b'N'
    cdef char tb = b'T' if trans_a else b'N'
    cdef floating one = 1.0
    if floating is float:
        sgemm(&ta, &tb, &n, &m, &k, &one, <float*>B, &ldb, <float*>A, &lda, &beta, C, &ldc)
    else:
        dgemm(&ta, &tb, &n, &m, &k, &one, <double*>B, &ldb, <double*>A, &lda, &beta, C, &ldc)


cdef int cpu_relu_grad_and_bias__nd(const floating* dY, const uint8_t* mask, floating* dZ, floating* db,
                                    Py_ssize_t n, Py_ssize_t d) noexcept nogil:
    """dZ = dY where the mask bit is set else 0, db = dZ.sum(0); one pass, float64 sums. -1 on OOM."""
    cdef Py_ssize_t i, j, n_bytes = (d + 7) // 8
    cdef double* acc = <double*>calloc(d, sizeof(double))
    cdef floating g
    if acc == NULL:
        return -1
    for i in range(n):
        for j in range(d):
            g = keep_or_zero(dY[i * d + j], (mask[i * n_bytes + (j >> 3)] >> (j & 7)) & 1)
            dZ[i * d + j] = g
            acc[j] += g
    for j in range(d):
        db[j] = <floating>acc[j]
    free(acc)
    return 0


cdef int cpu_column_sums__nd(const floating* dY, floating* db, Py_ssize_t n, Py_ssize_t d) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef double* acc = <double*>calloc(d, sizeof(double))
    if acc == NULL:
        return -1
    for i in range(n):
        for j in range(d):
            acc[j] += dY[i * d + j]
    for j in range(d):
        db[j] = <floating>acc[j]
    free(acc)
    return 0


def linear_forward(const floating[:, ::1] X, const floating[:, ::1] W, b, floating[:, ::1] Y):
    """Y = X @ W (+ b): Y is filled with b (or zeros) and GEMM accumulates onto it."""
    cdef const floating[::1] bias
    cdef int n = X.shape[0], d_in = X.shape[1], d_out = W.shape[1]
    cdef Py_ssize_t i, j
    cdef floating beta = 0
    if b is not None:
        bias = b
        beta = 1
        with nogil:
            for i in range(n):
                for j in range(d_out):
                    Y[i, j] = bias[j]
    with nogil:
        cpu_gemm_rowmajor(False, False, n, d_out, d_in, &X[0, 0], d_in, &W[0, 0], d_out, beta, &Y[0, 0], d_out)


def linear_backward(const floating[:, ::1] X, const floating[:, ::1] W, const floating[:, ::1] dY,
                    mask, dX, floating[:, ::1] dW, floating[::1] db):
    """dZ = dY (masked by the ReLU bits when mask is given); dW = X.T @ dZ, db = sum(dZ), dX = dZ @ W.T."""
    cdef int n = X.shape[0], d_in = X.shape[1], d_out = W.shape[1]
    cdef const uint8_t[:, ::1] bits
    cdef floating[:, ::1] dZ_buffer
    cdef floating[:, ::1] dX_view
    cdef const floating* dZ = &dY[0, 0]
    cdef int status
    if mask is not None:
        bits = mask
        dZ_buffer = np.empty((n, d_out), dtype=np.float32 if floating is float else np.float64)
        with nogil:
            status = cpu_relu_grad_and_bias__nd(&dY[0, 0], &bits[0, 0], &dZ_buffer[0, 0], &db[0], n, d_out)
        dZ = &dZ_buffer[0, 0]
    else:
        with nogil:
            status = cpu_column_sums__nd(&dY[0, 0], &db[0], n, d_out)
    if status != 0:
        raise MemoryError()
    with nogil:
        cpu_gemm_rowmajor(True, False, d_in, d_out, n, &X[0, 0], d_in, dZ, d_out, 0, &dW[0, 0], d_out)
    if dX is not None:
        dX_view = dX
        with nogil:
            cpu_gemm_rowmajor(False, True, n, d_in, d_out, dZ, d_out, &W[0, 0], d_out, 0, &dX_view[0, 0], d_in)
