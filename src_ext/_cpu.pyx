# cython: language_level=3
"""What the running CPU supports, so the backend can pick the matching build of the kernels."""

cdef extern from *:
    """
    static int fastnn_cpu_has_avx2_fma(void) {
    #if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    #else
        return 0;
    #endif
    }
    """
    int fastnn_cpu_has_avx2_fma() nogil


def has_avx2_fma():
    """True when this CPU executes AVX2 and FMA instructions."""
    return bool(fastnn_cpu_has_avx2_fma())
