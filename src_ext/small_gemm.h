/* Register-blocked GEMM micro-kernels for a handful of rows (fastnn, src_ext/_small_gemm.pxd).
 *
 * BLAS packs its operands and dispatches threads on every call, which costs more than the
 * arithmetic when a matrix has only a few rows. These kernels keep a block of C (up to MR rows by
 * two vectors) in registers while streaming the shared operand once. GCC/Clang vector extensions
 * make the code target-independent: the portable build gets SSE2, the AVX2 build 256-bit FMAs, the
 * AVX-512 build 512-bit ones.
 * Other compilers get the plain loops at the bottom.
 *
 * All matrices are row-major. A(i, p) = A[i * a_row + p * a_inner] lets one kernel serve both
 * C = A @ B (a_row = lda, a_inner = 1) and C = A.T @ B (a_row = 1, a_inner = lda).
 */
#ifndef FASTNN_SMALL_GEMM_H
#define FASTNN_SMALL_GEMM_H

#include <stddef.h>
#include <string.h>

#define FASTNN_MR 4
#define FASTNN_WIDE_MR 6  /* rows of fastnn_block_axpy_wide */

#if defined(__GNUC__) || defined(__clang__)

/* One vector register: 64 bytes where the target has AVX-512 (the fastnn._ext.avx512 build), 32 where
 * it has AVX, else 16 (SSE2, NEON). A wider vector than the hardware has would be split into scalar code. */
#if defined(__AVX512F__)
#define FASTNN_VECTOR_BYTES 64
#elif defined(__AVX__)
#define FASTNN_VECTOR_BYTES 32
#else
#define FASTNN_VECTOR_BYTES 16
#endif

/* Accumulators are named variables, never indexed with a runtime value, so they stay in registers.
 * ROW(i) is the i-th row's pair of vectors; rows >= mr are computed on zeros and never stored. */
#define FASTNN_DEFINE_KERNELS(T, SUFFIX)                                                              \
enum { FASTNN_LANES_##SUFFIX = FASTNN_VECTOR_BYTES / sizeof(T),                                       \
       FASTNN_NR_##SUFFIX = 2 * FASTNN_VECTOR_BYTES / sizeof(T) };                                    \
typedef T fastnn_vec_##SUFFIX __attribute__((vector_size(FASTNN_VECTOR_BYTES)));                     \
                                                                                                      \
static inline fastnn_vec_##SUFFIX fastnn_load_##SUFFIX(const T *p) {                                 \
    fastnn_vec_##SUFFIX v; memcpy(&v, p, sizeof v); return v;                                         \
}                                                                                                     \
static inline void fastnn_store_##SUFFIX(T *p, fastnn_vec_##SUFFIX v) { memcpy(p, &v, sizeof v); }   \
                                                                                                      \
/* Load/store one row of a block: two vectors, through a zero-padded buffer when nr < NR. */          \
static inline void fastnn_load_row_##SUFFIX(const T *src, ptrdiff_t nr, fastnn_vec_##SUFFIX *lo,     \
                                            fastnn_vec_##SUFFIX *hi) {                                \
    enum { L = FASTNN_LANES_##SUFFIX };                                                               \
    T pad[2 * L];                                                                                     \
    if (nr == 2 * L) { *lo = fastnn_load_##SUFFIX(src); *hi = fastnn_load_##SUFFIX(src + L); return; }\
    memset(pad, 0, sizeof pad); memcpy(pad, src, (size_t)nr * sizeof(T));                             \
    *lo = fastnn_load_##SUFFIX(pad); *hi = fastnn_load_##SUFFIX(pad + L);                             \
}                                                                                                     \
static inline void fastnn_store_row_##SUFFIX(T *dst, ptrdiff_t nr, fastnn_vec_##SUFFIX lo,           \
                                             fastnn_vec_##SUFFIX hi) {                                \
    enum { L = FASTNN_LANES_##SUFFIX };                                                               \
    T pad[2 * L];                                                                                     \
    if (nr == 2 * L) { fastnn_store_##SUFFIX(dst, lo); fastnn_store_##SUFFIX(dst + L, hi); return; }  \
    fastnn_store_##SUFFIX(pad, lo); fastnn_store_##SUFFIX(pad + L, hi);                               \
    memcpy(dst, pad, (size_t)nr * sizeof(T));                                                         \
}                                                                                                     \
                                                                                                      \
/* C[:rows, :nr] (+)= sum_p A(i, p) B[p, :nr] for rows <= WIDE_MR, nr <= NR. Always inlined with a \
 * literal `rows`, so each row count gets its own loop with no work for absent rows. */              \
static inline __attribute__((always_inline)) void fastnn_axpy_rows_##SUFFIX(                         \
        const int rows, ptrdiff_t nr, ptrdiff_t depth, const T *A, ptrdiff_t a_row,                   \
        ptrdiff_t a_inner, const T *B, ptrdiff_t ldb, T *C, ptrdiff_t ldc, int accumulate) {          \
    enum { L = FASTNN_LANES_##SUFFIX };                                                               \
    const fastnn_vec_##SUFFIX zero = {0};                                                             \
    fastnn_vec_##SUFFIX c0l = zero, c0h = zero, c1l = zero, c1h = zero, c2l = zero, c2h = zero,       \
                        c3l = zero, c3h = zero, c4l = zero, c4h = zero, c5l = zero, c5h = zero, bl, bh;\
    T pad[2 * L];                                                                                     \
    ptrdiff_t p;                                                                                      \
    if (accumulate) {                                                                                 \
        fastnn_load_row_##SUFFIX(C, nr, &c0l, &c0h);                                                  \
        if (rows > 1) fastnn_load_row_##SUFFIX(C + ldc, nr, &c1l, &c1h);                             \
        if (rows > 2) fastnn_load_row_##SUFFIX(C + 2 * ldc, nr, &c2l, &c2h);                         \
        if (rows > 3) fastnn_load_row_##SUFFIX(C + 3 * ldc, nr, &c3l, &c3h);                         \
        if (rows > 4) fastnn_load_row_##SUFFIX(C + 4 * ldc, nr, &c4l, &c4h);                         \
        if (rows > 5) fastnn_load_row_##SUFFIX(C + 5 * ldc, nr, &c5l, &c5h);                         \
    }                                                                                                 \
    memset(pad, 0, sizeof pad);                                                                       \
    for (p = 0; p < depth; ++p) {                                                                     \
        const T *a = A + p * a_inner;                                                                 \
        if (nr == 2 * L) {                                                                            \
            bl = fastnn_load_##SUFFIX(B + p * ldb); bh = fastnn_load_##SUFFIX(B + p * ldb + L);       \
        } else {                                                                                      \
            memcpy(pad, B + p * ldb, (size_t)nr * sizeof(T));                                         \
            bl = fastnn_load_##SUFFIX(pad); bh = fastnn_load_##SUFFIX(pad + L);                       \
        }                                                                                             \
        c0l += a[0] * bl; c0h += a[0] * bh;                                                           \
        if (rows > 1) { c1l += a[a_row] * bl; c1h += a[a_row] * bh; }                                 \
        if (rows > 2) { c2l += a[2 * a_row] * bl; c2h += a[2 * a_row] * bh; }                         \
        if (rows > 3) { c3l += a[3 * a_row] * bl; c3h += a[3 * a_row] * bh; }                         \
        if (rows > 4) { c4l += a[4 * a_row] * bl; c4h += a[4 * a_row] * bh; }                         \
        if (rows > 5) { c5l += a[5 * a_row] * bl; c5h += a[5 * a_row] * bh; }                         \
    }                                                                                                 \
    fastnn_store_row_##SUFFIX(C, nr, c0l, c0h);                                                       \
    if (rows > 1) fastnn_store_row_##SUFFIX(C + ldc, nr, c1l, c1h);                                   \
    if (rows > 2) fastnn_store_row_##SUFFIX(C + 2 * ldc, nr, c2l, c2h);                               \
    if (rows > 3) fastnn_store_row_##SUFFIX(C + 3 * ldc, nr, c3l, c3h);                               \
    if (rows > 4) fastnn_store_row_##SUFFIX(C + 4 * ldc, nr, c4l, c4h);                               \
    if (rows > 5) fastnn_store_row_##SUFFIX(C + 5 * ldc, nr, c5l, c5h);                               \
}                                                                                                     \
                                                                                                      \
/* C[:mr, :nr] (+)= sum_p A(i, p) B[p, :nr] for mr <= WIDE_MR, nr <= NR. Blocks of 6 rows keep 12     \
 * accumulators, which hide the FMA latency that 8 leave exposed; the convolutions use them. */       \
static inline void fastnn_block_axpy_wide_##SUFFIX(                                                   \
        ptrdiff_t mr, ptrdiff_t nr, ptrdiff_t depth, const T *A, ptrdiff_t a_row, ptrdiff_t a_inner,  \
        const T *B, ptrdiff_t ldb, T *C, ptrdiff_t ldc, int accumulate) {                             \
    switch (mr) {                                                                                     \
    case 1: fastnn_axpy_rows_##SUFFIX(1, nr, depth, A, a_row, a_inner, B, ldb, C, ldc, accumulate); break; \
    case 2: fastnn_axpy_rows_##SUFFIX(2, nr, depth, A, a_row, a_inner, B, ldb, C, ldc, accumulate); break; \
    case 3: fastnn_axpy_rows_##SUFFIX(3, nr, depth, A, a_row, a_inner, B, ldb, C, ldc, accumulate); break; \
    case 4: fastnn_axpy_rows_##SUFFIX(4, nr, depth, A, a_row, a_inner, B, ldb, C, ldc, accumulate); break; \
    case 5: fastnn_axpy_rows_##SUFFIX(5, nr, depth, A, a_row, a_inner, B, ldb, C, ldc, accumulate); break; \
    default: fastnn_axpy_rows_##SUFFIX(6, nr, depth, A, a_row, a_inner, B, ldb, C, ldc, accumulate); break; \
    }                                                                                                 \
}                                                                                                     \
                                                                                                      \
/* The same for mr <= MR: at most 4 rows (8 accumulators), as the small-batch linear kernels use it. */ \
static inline void fastnn_block_axpy_##SUFFIX(                                                        \
        ptrdiff_t mr, ptrdiff_t nr, ptrdiff_t depth, const T *A, ptrdiff_t a_row, ptrdiff_t a_inner,  \
        const T *B, ptrdiff_t ldb, T *C, ptrdiff_t ldc, int accumulate) {                             \
    fastnn_block_axpy_wide_##SUFFIX(mr < FASTNN_MR ? mr : FASTNN_MR, nr, depth, A, a_row, a_inner, B, \
                                    ldb, C, ldc, accumulate);                                         \
}                                                                                                     \
                                                                                                      \
static inline T fastnn_hsum_##SUFFIX(fastnn_vec_##SUFFIX v) {                                        \
    T lanes[FASTNN_LANES_##SUFFIX], total = 0;                                                        \
    ptrdiff_t l;                                                                                      \
    memcpy(lanes, &v, sizeof v);                                                                      \
    for (l = 0; l < FASTNN_LANES_##SUFFIX; ++l) total += lanes[l];                                    \
    return total;                                                                                     \
}                                                                                                     \
                                                                                                      \
/* C[i * c_row + q * c_col] = dot(A[i, :depth], B[q, :depth]) for i < mr <= MR, q < cols <= 2.     \
 * Always inlined with a literal `cols`; rows of A past mr re-read row 0 and are discarded. */      \
static inline __attribute__((always_inline)) void fastnn_dots_cols_##SUFFIX(                         \
        ptrdiff_t mr, const int cols, ptrdiff_t depth, const T *A, ptrdiff_t lda,                     \
        const T *B, ptrdiff_t ldb, T *C, ptrdiff_t c_row, ptrdiff_t c_col) {                          \
    enum { L = FASTNN_LANES_##SUFFIX };                                                               \
    const fastnn_vec_##SUFFIX zero = {0};                                                             \
    fastnn_vec_##SUFFIX s00 = zero, s01 = zero, s10 = zero, s11 = zero,                               \
                        s20 = zero, s21 = zero, s30 = zero, s31 = zero, a0, a1, a2, a3, b0, b1 = zero;\
    const T *A1 = A + (mr > 1 ? lda : 0), *A2 = A + (mr > 2 ? 2 * lda : 0);                           \
    const T *A3 = A + (mr > 3 ? 3 * lda : 0);                                                         \
    const ptrdiff_t full = depth - depth % L;                                                         \
    T sums[FASTNN_MR][2];                                                                             \
    ptrdiff_t i, q, p;                                                                                \
    for (p = 0; p < full; p += L) {                                                                   \
        b0 = fastnn_load_##SUFFIX(B + p);                                                             \
        a0 = fastnn_load_##SUFFIX(A + p);  a1 = fastnn_load_##SUFFIX(A1 + p);                         \
        a2 = fastnn_load_##SUFFIX(A2 + p); a3 = fastnn_load_##SUFFIX(A3 + p);                         \
        s00 += a0 * b0; s10 += a1 * b0; s20 += a2 * b0; s30 += a3 * b0;                               \
        if (cols > 1) {                                                                               \
            b1 = fastnn_load_##SUFFIX(B + ldb + p);                                                   \
            s01 += a0 * b1; s11 += a1 * b1; s21 += a2 * b1; s31 += a3 * b1;                           \
        }                                                                                             \
    }                                                                                                 \
    sums[0][0] = fastnn_hsum_##SUFFIX(s00); sums[0][1] = fastnn_hsum_##SUFFIX(s01);                   \
    sums[1][0] = fastnn_hsum_##SUFFIX(s10); sums[1][1] = fastnn_hsum_##SUFFIX(s11);                   \
    sums[2][0] = fastnn_hsum_##SUFFIX(s20); sums[2][1] = fastnn_hsum_##SUFFIX(s21);                   \
    sums[3][0] = fastnn_hsum_##SUFFIX(s30); sums[3][1] = fastnn_hsum_##SUFFIX(s31);                   \
    for (i = 0; i < mr; ++i) {                                                                        \
        for (q = 0; q < cols; ++q) {                                                                  \
            T total = sums[i][q];                                                                     \
            for (p = full; p < depth; ++p) total += A[i * lda + p] * B[q * ldb + p];                  \
            C[i * c_row + q * c_col] = total;                                                         \
        }                                                                                             \
    }                                                                                                 \
}                                                                                                     \
                                                                                                      \
/* C[i * c_row + q * c_col] = dot(A[i, :depth], B[q, :depth]) for i < mr <= MR, q < nb <= 2. */      \
static inline void fastnn_block_dots_##SUFFIX(                                                        \
        ptrdiff_t mr, ptrdiff_t nb, ptrdiff_t depth, const T *A, ptrdiff_t lda,                       \
        const T *B, ptrdiff_t ldb, T *C, ptrdiff_t c_row, ptrdiff_t c_col) {                          \
    if (nb == 1) fastnn_dots_cols_##SUFFIX(mr, 1, depth, A, lda, B, ldb, C, c_row, c_col);            \
    else fastnn_dots_cols_##SUFFIX(mr, 2, depth, A, lda, B, ldb, C, c_row, c_col);                    \
}

FASTNN_DEFINE_KERNELS(float, f32)
FASTNN_DEFINE_KERNELS(double, f64)

#else  /* plain C fallback: same contracts, no vector extensions */

enum { FASTNN_NR_f32 = 16, FASTNN_NR_f64 = 8 };

#define FASTNN_DEFINE_PLAIN(T, SUFFIX)                                                                \
static inline void fastnn_block_axpy_##SUFFIX(                                                        \
        ptrdiff_t mr, ptrdiff_t nr, ptrdiff_t depth, const T *A, ptrdiff_t a_row, ptrdiff_t a_inner,  \
        const T *B, ptrdiff_t ldb, T *C, ptrdiff_t ldc, int accumulate) {                             \
    ptrdiff_t i, j, p;                                                                                \
    for (i = 0; i < mr; ++i)                                                                          \
        for (j = 0; j < nr; ++j) {                                                                    \
            T total = accumulate ? C[i * ldc + j] : 0;                                                \
            for (p = 0; p < depth; ++p) total += A[i * a_row + p * a_inner] * B[p * ldb + j];         \
            C[i * ldc + j] = total;                                                                   \
        }                                                                                             \
}                                                                                                     \
static inline void fastnn_block_axpy_wide_##SUFFIX(                                                   \
        ptrdiff_t mr, ptrdiff_t nr, ptrdiff_t depth, const T *A, ptrdiff_t a_row, ptrdiff_t a_inner,  \
        const T *B, ptrdiff_t ldb, T *C, ptrdiff_t ldc, int accumulate) {                             \
    fastnn_block_axpy_##SUFFIX(mr, nr, depth, A, a_row, a_inner, B, ldb, C, ldc, accumulate);         \
}                                                                                                     \
static inline void fastnn_block_dots_##SUFFIX(                                                        \
        ptrdiff_t mr, ptrdiff_t nb, ptrdiff_t depth, const T *A, ptrdiff_t lda,                       \
        const T *B, ptrdiff_t ldb, T *C, ptrdiff_t c_row, ptrdiff_t c_col) {                          \
    ptrdiff_t i, q, p;                                                                                \
    for (i = 0; i < mr; ++i)                                                                          \
        for (q = 0; q < nb; ++q) {                                                                    \
            T total = 0;                                                                              \
            for (p = 0; p < depth; ++p) total += A[i * lda + p] * B[q * ldb + p];                     \
            C[i * c_row + q * c_col] = total;                                                         \
        }                                                                                             \
}

FASTNN_DEFINE_PLAIN(float, f32)
FASTNN_DEFINE_PLAIN(double, f64)

#endif
#endif  /* FASTNN_SMALL_GEMM_H */
