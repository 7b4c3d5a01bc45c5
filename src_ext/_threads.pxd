# cython: language_level=3
"""The module's thread limit for its prange/OpenMP regions (see threads.h)."""

cdef extern from "threads.h" nogil:
    void fastnn_set_max_threads(int n)
    int fastnn_threads()
