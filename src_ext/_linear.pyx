# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Linear layer kernels for the Cython backend.

Small batches (up to fastnn.backends._compiled.SMALL_BATCH rows) run entirely here: the register-blocked
products of _small_gemm.pxd with the bias and the ReLU mask fused in. Larger batches are
BLAS-bound; for them this module provides only the fused single pass over dY (mask + bias
reduction) and fastnn.backends._compiled has np.matmul do the two products.
"""
from cython cimport floating
from libc.stdint cimport uint8_t
from libc.stdlib cimport calloc, free, malloc

from _relu_bits cimport mask_row
from _small_gemm cimport small_gemm_nn, small_gemm_nt, small_gemm_tn


cdef int cpu_relu_grad_and_bias(const floating* dY, const uint8_t* mask, floating* dZ, floating* db,
                                Py_ssize_t n, Py_ssize_t d) noexcept nogil:
    """dZ = dY where the mask bit is set else 0, db = dZ.sum(0); one pass, float64 sums. -1 on OOM."""
    cdef Py_ssize_t i, j, n_bytes = (d + 7) // 8
    cdef double* acc = <double*>calloc(d, sizeof(double))
    if acc == NULL:
        return -1
    for i in range(n):
        mask_row(&dY[i * d], &mask[i * n_bytes], &dZ[i * d], 0, n_bytes, d)
        for j in range(d):  # the row is still in L1
            acc[j] += dZ[i * d + j]
    for j in range(d):
        db[j] = <floating>acc[j]
    free(acc)
    return 0


cdef int cpu_column_sums(const floating* dY, floating* db, Py_ssize_t n, Py_ssize_t d) noexcept nogil:
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


def relu_grad_and_bias(const floating[:, ::1] dY, const uint8_t[:, ::1] mask, floating[:, ::1] dZ,
                       floating[::1] db):
    """dZ = dY masked by the ReLU bits and db = dZ.sum(axis=0), in one pass over dY."""
    cdef int status
    with nogil:
        status = cpu_relu_grad_and_bias(&dY[0, 0], &mask[0, 0], &dZ[0, 0], &db[0], dY.shape[0], dY.shape[1])
    if status != 0:
        raise MemoryError()


def column_sums(const floating[:, ::1] dY, floating[::1] db):
    """db = dY.sum(axis=0), accumulated in float64."""
    cdef int status
    with nogil:
        status = cpu_column_sums(&dY[0, 0], &db[0], dY.shape[0], dY.shape[1])
    if status != 0:
        raise MemoryError()


def small_linear_forward(const floating[:, ::1] X, const floating[:, ::1] W, b, floating[:, ::1] Y):
    """Y = X @ W (+ b) for a small batch: Y starts as b (or zeros) and the product accumulates onto it."""
    cdef const floating[::1] bias
    cdef Py_ssize_t n = X.shape[0], d_in = X.shape[1], d_out = W.shape[1], i, j
    cdef bint has_bias = b is not None
    if has_bias:
        bias = b
        for i in range(n):
            for j in range(d_out):
                Y[i, j] = bias[j]
    with nogil:
        small_gemm_nn(n, d_out, d_in, &X[0, 0], &W[0, 0], &Y[0, 0], has_bias)


def small_linear_backward(const floating[:, ::1] X, const floating[:, ::1] W, const floating[:, ::1] dY,
                          mask, dX, floating[:, ::1] dW, floating[::1] db):
    """The whole backward of a small batch in one call: the fused mask/bias pass, dW and dX."""
    cdef Py_ssize_t n = X.shape[0], d_in = X.shape[1], d_out = W.shape[1]
    cdef const uint8_t[:, ::1] bits
    cdef floating[:, ::1] dX_view
    cdef floating* dX_data = NULL
    cdef floating* dZ
    cdef bint masked = mask is not None
    cdef int status = 0
    if masked:
        bits = mask
    if dX is not None:
        dX_view = dX
        dX_data = &dX_view[0, 0]
    with nogil:
        if masked:
            dZ = <floating*>malloc(n * d_out * sizeof(floating))
            if dZ == NULL:
                status = -1
            else:
                status = cpu_relu_grad_and_bias(&dY[0, 0], &bits[0, 0], dZ, &db[0], n, d_out)
        else:
            dZ = <floating*>&dY[0, 0]
            status = cpu_column_sums(&dY[0, 0], &db[0], n, d_out)
        if status == 0:
            small_gemm_tn(d_in, d_out, n, &X[0, 0], dZ, &dW[0, 0])
            if dX_data != NULL:
                small_gemm_nt(n, d_in, d_out, dZ, &W[0, 0], dX_data)
        if masked and dZ != NULL:
            free(dZ)
    if status != 0:
        raise MemoryError()
