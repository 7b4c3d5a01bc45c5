# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Elementwise activations: ReLU with a bit-packed mask (bit j of byte k = activation 8k + j), sigmoid,
leaky ReLU and tanh.

Arrays arrive 2-D (rows, last axis) or flattened; rows are split across OpenMP threads, or, when
there are only a few long rows, each row is split into blocks of mask bytes.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport fabs, fabsf, tanh, tanhf
from libc.stdint cimport uint8_t

from _relu_bits cimport keep_or_zero, mask_row
from _threads cimport fastnn_set_max_threads, fastnn_threads
from _vector_exp cimport vector_exp

# A parallel region costs microseconds; below this many elements one thread is faster.
cdef Py_ssize_t PARALLEL_MIN_ELEMENTS = 1 << 17
cdef Py_ssize_t BYTES_PER_TASK = 4096


def set_max_threads(int n):
    """The most threads this module's parallel loops use (0: OpenMP's default); see fastnn._threads."""
    fastnn_set_max_threads(n)


cdef inline void cpu_relu_forward_row(const floating* x, floating* y, uint8_t* mask,
                                      Py_ssize_t first_byte, Py_ssize_t stop_byte, Py_ssize_t d) noexcept nogil:
    """ReLU of activations [8 * first_byte, min(8 * stop_byte, d)) of one row, writing their mask bytes."""
    cdef Py_ssize_t k, j, start
    cdef uint8_t bits
    cdef floating v
    cdef bint positive
    for k in range(first_byte, stop_byte):
        start = 8 * k
        bits = 0
        if start + 8 <= d:
            for j in range(8):  # fixed trip count: fully unrolled
                v = x[start + j]
                positive = v > 0
                y[start + j] = keep_or_zero(v, positive)
                bits |= (<uint8_t>positive) << j
        else:
            for j in range(d - start):
                v = x[start + j]
                positive = v > 0
                y[start + j] = keep_or_zero(v, positive)
                bits |= (<uint8_t>positive) << j
        mask[k] = bits


def relu_forward(const floating[:, ::1] X, floating[:, ::1] Y, uint8_t[:, ::1] mask):
    cdef Py_ssize_t n_rows = X.shape[0], d = X.shape[1], n_bytes = mask.shape[1]
    cdef Py_ssize_t row, task, n_tasks = (n_bytes + BYTES_PER_TASK - 1) // BYTES_PER_TASK
    cdef int threads = fastnn_threads()
    with nogil:
        if threads == 1 or n_rows * d < PARALLEL_MIN_ELEMENTS:
            for row in range(n_rows):
                cpu_relu_forward_row(&X[row, 0], &Y[row, 0], &mask[row, 0], 0, n_bytes, d)
        elif n_rows >= 4:
            for row in prange(n_rows, schedule="static", num_threads=threads):
                cpu_relu_forward_row(&X[row, 0], &Y[row, 0], &mask[row, 0], 0, n_bytes, d)
        else:
            for row in range(n_rows):
                for task in prange(n_tasks, schedule="static", num_threads=threads):
                    cpu_relu_forward_row(&X[row, 0], &Y[row, 0], &mask[row, 0], task * BYTES_PER_TASK,
                                         min(n_bytes, (task + 1) * BYTES_PER_TASK), d)


def relu_backward(const floating[:, ::1] dY, const uint8_t[:, ::1] mask, floating[:, ::1] dX):
    cdef Py_ssize_t n_rows = dY.shape[0], d = dY.shape[1], n_bytes = mask.shape[1]
    cdef Py_ssize_t row, task, n_tasks = (n_bytes + BYTES_PER_TASK - 1) // BYTES_PER_TASK
    cdef int threads = fastnn_threads()
    with nogil:
        if threads == 1 or n_rows * d < PARALLEL_MIN_ELEMENTS:
            for row in range(n_rows):
                mask_row(&dY[row, 0], &mask[row, 0], &dX[row, 0], 0, n_bytes, d)
        elif n_rows >= 4:
            for row in prange(n_rows, schedule="static", num_threads=threads):
                mask_row(&dY[row, 0], &mask[row, 0], &dX[row, 0], 0, n_bytes, d)
        else:
            for row in range(n_rows):
                for task in prange(n_tasks, schedule="static", num_threads=threads):
                    mask_row(&dY[row, 0], &mask[row, 0], &dX[row, 0], task * BYTES_PER_TASK,
                                          min(n_bytes, (task + 1) * BYTES_PER_TASK), d)


cdef inline floating cpu_sigmoid(floating x) noexcept nogil:
    """1 / (1 + exp(-x)) using exp of a non-positive number only, so it never overflows.

    Both candidates are computed and one is selected, so the compiler emits a blend rather than a
    branch on the sign of x (which mispredicts on half of random inputs).
    """
    cdef floating e, r
    if floating is float:
        e = vector_exp(-fabsf(x))
    else:
        e = vector_exp(-fabs(x))
    r = 1 / (1 + e)
    return r if x >= 0 else e * r


def sigmoid_forward(const floating[::1] X, floating[::1] Y):
    cdef Py_ssize_t i, n = X.shape[0]
    cdef int threads = fastnn_threads()
    with nogil:
        if threads == 1 or n < PARALLEL_MIN_ELEMENTS:
            for i in range(n):
                Y[i] = cpu_sigmoid(X[i])
        else:
            for i in prange(n, schedule="static", num_threads=threads):
                Y[i] = cpu_sigmoid(X[i])


def sigmoid_backward(const floating[::1] dY, const floating[::1] Y, floating[::1] dX):
    cdef Py_ssize_t i, n = dY.shape[0]
    cdef int threads = fastnn_threads()
    with nogil:
        if threads == 1 or n < PARALLEL_MIN_ELEMENTS:
            for i in range(n):
                dX[i] = dY[i] * Y[i] * (1 - Y[i])
        else:
            for i in prange(n, schedule="static", num_threads=threads):
                dX[i] = dY[i] * Y[i] * (1 - Y[i])


def leaky_relu_forward(const floating[::1] X, double negative_slope, floating[::1] Y):
    """Y = X where X > 0, else slope X, with the slope rounded to X's dtype (as the reference does)."""
    cdef Py_ssize_t i, n = X.shape[0]
    cdef floating slope = <floating>negative_slope
    cdef int threads = fastnn_threads()
    with nogil:
        if threads == 1 or n < PARALLEL_MIN_ELEMENTS:
            for i in range(n):
                Y[i] = X[i] if X[i] > 0 else X[i] * slope
        else:
            for i in prange(n, schedule="static", num_threads=threads):
                Y[i] = X[i] if X[i] > 0 else X[i] * slope


def leaky_relu_backward(const floating[::1] dY, const floating[::1] X, double negative_slope, floating[::1] dX):
    """dX = dY where X > 0, else slope dY."""
    cdef Py_ssize_t i, n = dY.shape[0]
    cdef floating slope = <floating>negative_slope
    cdef int threads = fastnn_threads()
    with nogil:
        if threads == 1 or n < PARALLEL_MIN_ELEMENTS:
            for i in range(n):
                dX[i] = dY[i] if X[i] > 0 else dY[i] * slope
        else:
            for i in prange(n, schedule="static", num_threads=threads):
                dX[i] = dY[i] if X[i] > 0 else dY[i] * slope


cdef inline floating cpu_tanh(floating x) noexcept nogil:
    if floating is float:
        return tanhf(x)
    else:
        return tanh(x)


def tanh_forward(const floating[::1] X, floating[::1] Y):
    cdef Py_ssize_t i, n = X.shape[0]
    cdef int threads = fastnn_threads()
    with nogil:
        if threads == 1 or n < PARALLEL_MIN_ELEMENTS:
            for i in range(n):
                Y[i] = cpu_tanh(X[i])
        else:
            for i in prange(n, schedule="static", num_threads=threads):
                Y[i] = cpu_tanh(X[i])


def tanh_backward(const floating[::1] dY, const floating[::1] Y, floating[::1] dX):
    """dX = dY (1 - Y^2), Y the output of tanh_forward."""
    cdef Py_ssize_t i, n = dY.shape[0]
    cdef int threads = fastnn_threads()
    with nogil:
        if threads == 1 or n < PARALLEL_MIN_ELEMENTS:
            for i in range(n):
                dX[i] = dY[i] * (1 - Y[i] * Y[i])
        else:
            for i in prange(n, schedule="static", num_threads=threads):
                dX[i] = dY[i] * (1 - Y[i] * Y[i])
