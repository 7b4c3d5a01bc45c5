# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Conv-2D and 2-D max-pooling kernels for the Cython backend (semantics: fastnn/backends/conv2d_ref.py).

The convolution passes live in conv2d.h (im2col chunks of the batch and conv1d.h's register-blocked
products, OpenMP threads over the batch); this module unpacks the arrays, picks the float or double
instantiation and runs it without the GIL. Max-pooling is memory-bound: one pass per (H, W) plane.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.string cimport memset

from _threads cimport fastnn_set_max_threads, fastnn_threads

cdef extern from "conv2d.h" nogil:
    ctypedef struct fastnn_conv2d_geometry:
        Py_ssize_t n, c_in, height, width, c_out, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, h_out, w_out
    int fastnn_conv2d_forward_f32(const fastnn_conv2d_geometry* g, const float* x, const float* w, const float* b,
                                  float* y)
    int fastnn_conv2d_forward_f64(const fastnn_conv2d_geometry* g, const double* x, const double* w,
                                  const double* b, double* y)
    int fastnn_conv2d_backward_f32(const fastnn_conv2d_geometry* g, const float* x, const float* w,
                                   const float* dy, float* dx, float* dw, float* db)
    int fastnn_conv2d_backward_f64(const fastnn_conv2d_geometry* g, const double* x, const double* w,
                                   const double* dy, double* dx, double* dw, double* db)
    void fastnn_maxpool2d_plane_f32(const float* x, float* y, int64_t* argmax, Py_ssize_t width, Py_ssize_t kernel_h,
                                    Py_ssize_t kernel_w, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t h_out,
                                    Py_ssize_t w_out)
    void fastnn_maxpool2d_plane_f64(const double* x, double* y, int64_t* argmax, Py_ssize_t width,
                                    Py_ssize_t kernel_h, Py_ssize_t kernel_w, Py_ssize_t sh, Py_ssize_t sw,
                                    Py_ssize_t h_out, Py_ssize_t w_out)

# A parallel region costs microseconds; below this many pooled outputs (or dx entries) one thread is faster.
cdef Py_ssize_t POOL_PARALLEL_MIN = 1 << 16


def set_max_threads(int n):
    """The most threads this module's parallel loops use (0: OpenMP's default); see fastnn._threads."""
    fastnn_set_max_threads(n)


cdef fastnn_conv2d_geometry _geometry(x_shape, w_shape, stride, padding, y_shape):
    cdef fastnn_conv2d_geometry g
    g.n, g.c_in, g.height, g.width = x_shape[0], x_shape[1], x_shape[2], x_shape[3]
    g.c_out, g.kernel_h, g.kernel_w = w_shape[0], w_shape[2], w_shape[3]
    g.stride_h, g.stride_w = stride
    g.pad_h, g.pad_w = padding
    g.h_out, g.w_out = y_shape[2], y_shape[3]
    return g


def conv2d_forward(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w, b, stride, padding,
                   floating[:, :, :, ::1] y):
    """y (N, C_out, H_out, W_out) = conv(x (N, C_in, H, W), w (C_out, C_in, KH, KW)) + b (C_out,) or None."""
    cdef fastnn_conv2d_geometry g = _geometry(x.shape, w.shape, stride, padding, y.shape)
    cdef const floating[::1] bias
    cdef const floating* b_data = NULL
    cdef int status
    if b is not None:
        bias = b
        b_data = &bias[0]
    with nogil:
        if floating is float:
            status = fastnn_conv2d_forward_f32(&g, &x[0, 0, 0, 0], &w[0, 0, 0, 0], b_data, &y[0, 0, 0, 0])
        else:
            status = fastnn_conv2d_forward_f64(&g, &x[0, 0, 0, 0], &w[0, 0, 0, 0], b_data, &y[0, 0, 0, 0])
    if status != 0:
        raise MemoryError()


def conv2d_backward(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                    const floating[:, :, :, ::1] dy, stride, padding, dx, floating[:, :, :, ::1] dw,
                    floating[::1] db):
    """dw (C_out, C_in, KH, KW), db (C_out,) and, unless dx is None, dx (N, C_in, H, W): all overwritten."""
    cdef fastnn_conv2d_geometry g = _geometry(x.shape, w.shape, stride, padding, dy.shape)
    cdef floating[:, :, :, ::1] dx_view
    cdef floating* dx_data = NULL
    cdef int status
    if dx is not None:
        dx_view = dx
        dx_data = &dx_view[0, 0, 0, 0]
    with nogil:
        if floating is float:
            status = fastnn_conv2d_backward_f32(&g, &x[0, 0, 0, 0], &w[0, 0, 0, 0], &dy[0, 0, 0, 0], dx_data,
                                                &dw[0, 0, 0, 0], &db[0])
        else:
            status = fastnn_conv2d_backward_f64(&g, &x[0, 0, 0, 0], &w[0, 0, 0, 0], &dy[0, 0, 0, 0], dx_data,
                                                &dw[0, 0, 0, 0], &db[0])
    if status != 0:
        raise MemoryError()


cdef inline void _pool_plane(const floating* x, floating* y, int64_t* argmax, Py_ssize_t width, Py_ssize_t kh,
                             Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t h_out,
                             Py_ssize_t w_out) noexcept nogil:
    if floating is float:
        fastnn_maxpool2d_plane_f32(x, y, argmax, width, kh, kw, sh, sw, h_out, w_out)
    else:
        fastnn_maxpool2d_plane_f64(x, y, argmax, width, kh, kw, sh, sw, h_out, w_out)


def maxpool2d_forward(const floating[:, :, :, ::1] x, kernel_size, stride, floating[:, :, :, ::1] y,
                      int64_t[:, :, :, ::1] argmax):
    """y (N, C, H_out, W_out): window maxima; argmax: the flat position h W + w of each window's first maximum."""
    cdef Py_ssize_t planes = x.shape[0] * x.shape[1], width = x.shape[3], area = x.shape[2] * x.shape[3]
    cdef Py_ssize_t h_out = y.shape[2], w_out = y.shape[3], out_area = h_out * w_out, r
    cdef Py_ssize_t kh = kernel_size[0], kw = kernel_size[1], sh = stride[0], sw = stride[1]
    cdef int threads = fastnn_threads()
    with nogil:
        if threads == 1 or planes * out_area < POOL_PARALLEL_MIN:
            for r in range(planes):
                _pool_plane(&x[0, 0, 0, 0] + r * area, &y[0, 0, 0, 0] + r * out_area,
                            &argmax[0, 0, 0, 0] + r * out_area, width, kh, kw, sh, sw, h_out, w_out)
        else:
            for r in prange(planes, schedule="static", num_threads=threads):
                _pool_plane(&x[0, 0, 0, 0] + r * area, &y[0, 0, 0, 0] + r * out_area,
                            &argmax[0, 0, 0, 0] + r * out_area, width, kh, kw, sh, sw, h_out, w_out)


cdef inline void _unpool_plane(const floating* dy, const int64_t* argmax, floating* dx, Py_ssize_t area,
                               Py_ssize_t out_area) noexcept nogil:
    cdef Py_ssize_t t
    memset(dx, 0, area * sizeof(floating))
    for t in range(out_area):
        dx[argmax[t]] += dy[t]


def maxpool2d_backward(const floating[:, :, :, ::1] dy, const int64_t[:, :, :, ::1] argmax,
                       floating[:, :, :, ::1] dx):
    """dx (N, C, H, W) = 0, then dy[n, c, i, j] added at flat position argmax[n, c, i, j] of its plane."""
    cdef Py_ssize_t planes = dx.shape[0] * dx.shape[1], area = dx.shape[2] * dx.shape[3]
    cdef Py_ssize_t out_area = dy.shape[2] * dy.shape[3], r
    cdef int threads = fastnn_threads()
    with nogil:
        if threads == 1 or planes * area < POOL_PARALLEL_MIN:
            for r in range(planes):
                _unpool_plane(&dy[0, 0, 0, 0] + r * out_area, &argmax[0, 0, 0, 0] + r * out_area,
                              &dx[0, 0, 0, 0] + r * area, area, out_area)
        else:
            for r in prange(planes, schedule="static", num_threads=threads):  # each thread zeroes and fills its own planes
                _unpool_plane(&dy[0, 0, 0, 0] + r * out_area, &argmax[0, 0, 0, 0] + r * out_area,
                              &dx[0, 0, 0, 0] + r * area, area, out_area)
