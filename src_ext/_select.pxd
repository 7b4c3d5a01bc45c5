# cython: language_level=3
"""Branch-free select for the ReLU kernels.

`v if keep else 0` compiles to a compare-and-jump, which mispredicts on about half of random
activations and costs more than the memory traffic. ANDing the value's bits with an all-ones or
all-zeros word keeps the loop branch-free (and vectorizable). NaN and -0.0 become +0.0 when not
kept, exactly like np.where(keep, v, 0).
"""
from cython cimport floating
from libc.stdint cimport uint32_t, uint64_t
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
