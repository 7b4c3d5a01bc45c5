# cython: language_level=3
"""Branch-free helpers for bit-packed ReLU masks (bit j of byte k = activation 8k + j).

`v if keep else 0` compiles to compare-and-jump, which mispredicts on about half of random
activations and costs more than the memory traffic. ANDing the value's bits with an all-ones or
all-zeros word keeps loops branch-free and vectorizable. NaN and -0.0 become +0.0 when not kept,
exactly like np.where(keep, v, 0).
"""
from cython cimport floating
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy


cdef inline floating keep_or_zero(floating value, bint keep) noexcept nogil:
    cdef uint32_t bits32
    cdef uint64_t bits64
    if floating is float:
        memcpy(&bits32, &value, 4)
        bits32 &= 0u - <uint32_t>keep
        memcpy(&value, &bits32, 4)
    else:
        memcpy(&bits64, &value, 8)
        bits64 &= 0u - <uint64_t>keep
        memcpy(&value, &bits64, 8)
    return value


cdef inline void mask_row(const floating* dy, const uint8_t* mask, floating* dx,
                          Py_ssize_t first_byte, Py_ssize_t stop_byte, Py_ssize_t d) noexcept nogil:
    """dx = dy where the mask bit is set else +0.0, for activations [8 * first_byte, min(8 * stop_byte, d))."""
    cdef Py_ssize_t k, j, start
    cdef uint8_t bits
    for k in range(first_byte, stop_byte):
        start = 8 * k
        bits = mask[k]
        if start + 8 <= d:
            for j in range(8):  # fixed trip count: unrolled, constant shifts
                dx[start + j] = keep_or_zero(dy[start + j], (bits >> j) & 1)
        else:
            for j in range(d - start):
                dx[start + j] = keep_or_zero(dy[start + j], (bits >> j) & 1)
