/* Mirror one tile of a symmetric matrix across its diagonal (fastnn, used by src_ext/_gram.pyx).
 *
 * fastnn_mirror_tile_{f,d}(K, ld, i0, i1, j0, j1) copies K[i, j] to K[j, i] for i in [i0, i1) and
 * j in [j0, j1) with i < j (row-major K, leading dimension ld elements).
 *
 * The lower triangle of a Gram matrix is written once and not read again while it is built, so
 * with AVX2 the float64 destination rows are written with non-temporal (streaming) stores: they go
 * to memory without first reading the lines into cache (a normal store to an uncached line reads it
 * first, doubling the traffic) and without evicting the band that is being transformed. The source
 * tile is read in 4x4 blocks and transposed in registers. Streaming stores need 32-byte aligned
 * destinations: the aligned columns are the same in every row when ld is a multiple of 4, otherwise
 * (or for a diagonal tile, or without AVX2) plain stores are used. Destination elements outside
 * the aligned blocks use plain stores too. Measured on the 5000 x 784 float64 RBF Gram (2 cores):
 * the mirror pass went from ~37 to ~27 ms.
 *
 * Streaming stores are weakly ordered: call fastnn_mirror_fence() before other threads read the
 * result (x86 locked operations, as in thread joins, also order them; the fence makes it explicit).
 */
#ifndef FASTNN_GRAM_MIRROR_H
#define FASTNN_GRAM_MIRROR_H

#include <stddef.h>
#include <stdint.h>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

static inline void fastnn_mirror_fence(void) {
#if defined(__AVX2__)
    _mm_sfence();
#endif
}

#define FASTNN_MIRROR_SCALAR(K, ld, i0, i1, j0, j1)                          \
    for (ptrdiff_t j_ = (j0); j_ < (j1); ++j_) {                                \
        ptrdiff_t stop_ = (i1) < j_ ? (i1) : j_;                                \
        for (ptrdiff_t i_ = (i0); i_ < stop_; ++i_)                             \
            (K)[j_ * (ld) + i_] = (K)[i_ * (ld) + j_];                          \
    }

/* Copy K[i, j] to K[j, i] for i in [i0, i1) and j in [j0, j1), plain stores. */
#define FASTNN_MIRROR_RECT(K, ld, i0, i1, j0, j1)                               \
    for (ptrdiff_t j_ = (j0); j_ < (j1); ++j_)                                  \
        for (ptrdiff_t i_ = (i0); i_ < (i1); ++i_)                              \
            (K)[j_ * (ld) + i_] = (K)[i_ * (ld) + j_];

static inline void fastnn_mirror_tile_d(double* K, ptrdiff_t ld, ptrdiff_t i0, ptrdiff_t i1, ptrdiff_t j0,
                                        ptrdiff_t j1) {
#if defined(__AVX2__)
    /* Off-diagonal tile (every j >= every i) with the same alignment in every destination row. */
    if (j0 >= i1 && ld % 4 == 0 && ((uintptr_t)K & 7) == 0) {
        /* first column a >= i0 whose address in row j0 is 32-byte aligned (same for all rows) */
        ptrdiff_t a = i0 + (ptrdiff_t)(((32 - ((uintptr_t)(K + j0 * ld + i0) & 31)) & 31) / 8);
        if (a > i1) a = i1;
        ptrdiff_t b = a + (i1 - a) / 4 * 4;
        ptrdiff_t j = j0;
        for (; j + 4 <= j1; j += 4) {
            for (ptrdiff_t i = a; i < b; i += 4) {
                __m256d r0 = _mm256_loadu_pd(K + (i + 0) * ld + j);
                __m256d r1 = _mm256_loadu_pd(K + (i + 1) * ld + j);
                __m256d r2 = _mm256_loadu_pd(K + (i + 2) * ld + j);
                __m256d r3 = _mm256_loadu_pd(K + (i + 3) * ld + j);
                __m256d t0 = _mm256_unpacklo_pd(r0, r1); /* r0[0] r1[0] r0[2] r1[2] */
                __m256d t1 = _mm256_unpackhi_pd(r0, r1); /* r0[1] r1[1] r0[3] r1[3] */
                __m256d t2 = _mm256_unpacklo_pd(r2, r3);
                __m256d t3 = _mm256_unpackhi_pd(r2, r3);
                _mm256_stream_pd(K + (j + 0) * ld + i, _mm256_permute2f128_pd(t0, t2, 0x20));
                _mm256_stream_pd(K + (j + 1) * ld + i, _mm256_permute2f128_pd(t1, t3, 0x20));
                _mm256_stream_pd(K + (j + 2) * ld + i, _mm256_permute2f128_pd(t0, t2, 0x31));
                _mm256_stream_pd(K + (j + 3) * ld + i, _mm256_permute2f128_pd(t1, t3, 0x31));
            }
        }
        FASTNN_MIRROR_RECT(K, ld, a, b, j, j1)   /* rows left over below a multiple of 4 */
        FASTNN_MIRROR_RECT(K, ld, i0, a, j0, j1) /* unaligned columns at either end */
        FASTNN_MIRROR_RECT(K, ld, b, i1, j0, j1)
        return;
    }
#endif
    FASTNN_MIRROR_SCALAR(K, ld, i0, i1, j0, j1)
}

/* float32: plain stores. Streaming stores (8x8 transposes) measured no faster here: the float32
 * mirror writes half the bytes and is not bound by memory traffic the way the float64 one is. */
static inline void fastnn_mirror_tile_f(float* K, ptrdiff_t ld, ptrdiff_t i0, ptrdiff_t i1, ptrdiff_t j0,
                                        ptrdiff_t j1) {
    FASTNN_MIRROR_SCALAR(K, ld, i0, i1, j0, j1)
}

#endif /* FASTNN_GRAM_MIRROR_H */
