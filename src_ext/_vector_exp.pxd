# cython: language_level=3
"""exp() the compiler can vectorize inside loops (see vector_exp.h for why and how accurate)."""
from cython cimport floating

cdef extern from "vector_exp.h" nogil:
    float fastnn_expf(float x)
    double fastnn_exp(double x)


cdef inline floating vector_exp(floating x) noexcept nogil:
    if floating is float:
        return fastnn_expf(x)
    else:
        return fastnn_exp(x)
