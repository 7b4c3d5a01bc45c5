# cython: language_level=3
"""What the running CPU supports, so the backend can pick the matching build of the kernels."""

cdef extern from *:
    """
    #if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    #define FASTNN_CPU_X86 1
    #include <cpuid.h>
    #else
    #define FASTNN_CPU_X86 0
    #endif

    static int fastnn_cpu_has_avx2_fma(void) {
    #if FASTNN_CPU_X86
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    #else
        return 0;
    #endif
    }

    /* The CPU has the instructions and the OS saves the registers: CPUID says so for the first, the
     * XCR0 register (read with xgetbv, which OSXSAVE allows) for the second. An OS that does not save
     * the opmask and ZMM state (bits 5-7) on a context switch would corrupt them: no AVX-512 then. */
    static int fastnn_cpu_has_avx512(void) {
    #if FASTNN_CPU_X86
        unsigned int eax, ebx, ecx, edx, xcr0_lo, xcr0_hi;
        const unsigned int needed_state = 0xE6; /* XMM, YMM, opmask, ZMM_Hi256, Hi16_ZMM */
        if (!fastnn_cpu_has_avx2_fma()) return 0;
        if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_OSXSAVE)) return 0;
        __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
        if ((xcr0_lo & needed_state) != needed_state) return 0;
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
               && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    #else
        return 0;
    #endif
    }
    """
    int fastnn_cpu_has_avx2_fma() nogil
    int fastnn_cpu_has_avx512() nogil


def has_avx2_fma():
    """True when this CPU executes AVX2 and FMA instructions."""
    return bool(fastnn_cpu_has_avx2_fma())


def has_avx512():
    """True when this CPU executes AVX-512 F, BW, DQ and VL (with AVX2 and FMA) and the OS saves the
    AVX-512 registers: what fastnn._ext.avx512 needs."""
    return bool(fastnn_cpu_has_avx512())
