# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Conv-1D and max-pooling kernels for the Cython backend (semantics: fastnn/backends/conv_ref.py).

The convolution passes live in conv1d.h (im2col chunks of the batch and small_gemm.h's register-
blocked products, OpenMP threads over the batch); this module unpacks the arrays, picks the float
or double instantiation and runs it without the GIL. Max-pooling is memory-bound: one pass per row.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.string cimport memset

from _threads cimport fastnn_set_max_threads, fastnn_threads

cdef extern from "conv1d.h" nogil:
    ctypedef struct fastnn_conv_geometry:
        Py_ssize_t n, c_in, length, c_out, kernel_size, stride, padding, l_out
    int fastnn_conv1d_forward_f32(const fastnn_conv_geometry* g, const float* x, const float* w, const float* b,
                                  float* y)
    int fastnn_conv1d_forward_f64(const fastnn_conv_geometry* g, const double* x, const double* w, const double* b,
                                  double* y)
    int fastnn_conv1d_backward_f32(const fastnn_conv_geometry* g, const float* x, const float* w, const float* dy,
                                   float* dx, float* dw, float* db)
    void fastnn_maxpool_row_f32(const float* x, float* y, int64_t* argmax, Py_ssize_t kernel_size,
                                Py_ssize_t stride, Py_ssize_t l_out)
    void fastnn_maxpool_row_f64(const double* x, double* y, int64_t* argmax, Py_ssize_t kernel_size,
                                Py_ssize_t stride, Py_ssize_t l_out)
    int fastnn_conv1d_backward_f64(const fastnn_conv_geometry* g, const double* x, const double* w,
                                   const double* dy, double* dx, double* dw, double* db)

# A parallel region costs microseconds; below this many pooled outputs one thread is faster.
cdef Py_ssize_t POOL_PARALLEL_MIN = 1 << 16


def set_max_threads(int n):
    """The most threads this module's parallel loops use (0: OpenMP's default); see fastnn._threads."""
    fastnn_set_max_threads(n)


cdef fastnn_conv_geometry _geometry(x_shape, w_shape, Py_ssize_t stride, Py_ssize_t padding, Py_ssize_t l_out):
    cdef fastnn_conv_geometry g
    g.n, g.c_in, g.length = x_shape[0], x_shape[1], x_shape[2]
    g.c_out, g.kernel_size = w_shape[0], w_shape[2]
    g.stride, g.padding, g.l_out = stride, padding, l_out
    return g


def conv1d_forward(const floating[:, :, ::1] x, const floating[:, :, ::1] w, b, Py_ssize_t stride,
                   Py_ssize_t padding, floating[:, :, ::1] y):
    """y (N, C_out, L_out) = conv(x (N, C_in, L), w (C_out, C_in, K)) + b (C_out,) or None."""
    cdef fastnn_conv_geometry g = _geometry(x.shape, w.shape, stride, padding, y.shape[2])
    cdef const floating[::1] bias
    cdef const floating* b_data = NULL
    cdef int status
    if b is not None:
        bias = b
        b_data = &bias[0]
    with nogil:
        if floating is float:
            status = fastnn_conv1d_forward_f32(&g, &x[0, 0, 0], &w[0, 0, 0], b_data, &y[0, 0, 0])
        else:
            status = fastnn_conv1d_forward_f64(&g, &x[0, 0, 0], &w[0, 0, 0], b_data, &y[0, 0, 0])
    if status != 0:
        raise MemoryError()


def conv1d_backward(const floating[:, :, ::1] x, const floating[:, :, ::1] w, const floating[:, :, ::1] dy,
                    Py_ssize_t stride, Py_ssize_t padding, dx, floating[:, :, ::1] dw, floating[::1] db):
    """dw (C_out, C_in, K), db (C_out,) and, unless dx is None, dx (N, C_in, L): all overwritten."""
    cdef fastnn_conv_geometry g = _geometry(x.shape, w.shape, stride, padding, dy.shape[2])
    cdef floating[:, :, ::1] dx_view
    cdef floating* dx_data = NULL
    cdef int status
    if dx is not None:
        dx_view = dx
        dx_data = &dx_view[0, 0, 0]
    with nogil:
        if floating is float:
            status = fastnn_conv1d_backward_f32(&g, &x[0, 0, 0], &w[0, 0, 0], &dy[0, 0, 0], dx_data,
                                                &dw[0, 0, 0], &db[0])
        else:
            status = fastnn_conv1d_backward_f64(&g, &x[0, 0, 0], &w[0, 0, 0], &dy[0, 0, 0], dx_data,
                                                &dw[0, 0, 0], &db[0])
    if status != 0:
        raise MemoryError()


cdef inline void _pool_row(const floating* x, floating* y, int64_t* argmax, Py_ssize_t kernel_size,
                           Py_ssize_t stride, Py_ssize_t l_out) noexcept nogil:
    if floating is float:
        fastnn_maxpool_row_f32(x, y, argmax, kernel_size, stride, l_out)
    else:
        fastnn_maxpool_row_f64(x, y, argmax, kernel_size, stride, l_out)


def maxpool1d_forward(const floating[:, :, ::1] x, Py_ssize_t kernel_size, Py_ssize_t stride,
                      floating[:, :, ::1] y, int64_t[:, :, ::1] argmax):
    """y (N, C, L_out): max over windows x[..., t stride : t stride + kernel_size]; argmax: its position."""
    cdef Py_ssize_t rows = x.shape[0] * x.shape[1], length = x.shape[2], l_out = y.shape[2], r
    cdef int threads = fastnn_threads()
    if rows == 0:
        return
    with nogil:
        if threads == 1 or rows * l_out < POOL_PARALLEL_MIN:
            for r in range(rows):
                _pool_row(&x[0, 0, 0] + r * length, &y[0, 0, 0] + r * l_out, &argmax[0, 0, 0] + r * l_out,
                          kernel_size, stride, l_out)
        else:
            for r in prange(rows, schedule="static", num_threads=threads):
                _pool_row(&x[0, 0, 0] + r * length, &y[0, 0, 0] + r * l_out, &argmax[0, 0, 0] + r * l_out,
                          kernel_size, stride, l_out)


cdef inline void _unpool_row(const floating* dy, const int64_t* argmax, floating* dx, Py_ssize_t l_out) noexcept nogil:
    cdef Py_ssize_t t
    for t in range(l_out):
        dx[argmax[t]] += dy[t]


def maxpool1d_backward(const floating[:, :, ::1] dy, const int64_t[:, :, ::1] argmax, floating[:, :, ::1] dx):
    """dx (N, C, L) = 0, then dy[n, c, t] added at argmax[n, c, t] (overlapping windows accumulate)."""
    cdef Py_ssize_t rows = dx.shape[0] * dx.shape[1], length = dx.shape[2], l_out = dy.shape[2], r
    cdef int threads = fastnn_threads()
    if rows == 0:
        return
    with nogil:
        if threads == 1 or rows * length < POOL_PARALLEL_MIN:
            memset(&dx[0, 0, 0], 0, rows * length * sizeof(floating))
            for r in range(rows):
                _unpool_row(&dy[0, 0, 0] + r * l_out, &argmax[0, 0, 0] + r * l_out, &dx[0, 0, 0] + r * length, l_out)
        else:
            for r in prange(rows, schedule="static", num_threads=threads):  # each thread zeroes and fills its own rows
                memset(&dx[0, 0, 0] + r * length, 0, length * sizeof(floating))
                _unpool_row(&dy[0, 0, 0] + r * l_out, &argmax[0, 0, 0] + r * l_out, &dx[0, 0, 0] + r * length, l_out)
