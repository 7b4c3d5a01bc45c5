/* Conv-1D forward and backward as GEMMs on im2col chunks (fastnn, src_ext/_conv.pyx).
 *
 * Layout as in PyTorch: x (N, C_in, L), w (C_out, C_in, K) read as a (C_out, CK) matrix with
 * CK = C_in * K, y and dy (N, C_out, L_out). The batch is cut into chunks of nb samples; with
 * M = nb * L_out, a chunk's columns j = (sample, t) get
 *
 *     cols  (CK, M)     cols[c K + k, j] = xpad[n, c, t stride + k]          (im2col)
 *     Y     (C_out, M)  = W @ cols                  -> y (scattered, + bias)
 *     dY    (C_out, M)  <- dy (gathered), and dYT (M, C_out) its transpose
 *     dW.T  (CK, C_out) += cols @ dYT              (C_out padded to whole vectors)
 *     dcols (CK, M)     = W.T @ dY                 -> dx (col2im: scatter-add)
 *
 * Batching samples into the columns keeps the micro-kernels' vectors full when L_out is short
 * (10 in the small benchmark shape); the chunk is sized so cols, dY and dcols stay in L2. The
 * products are small_gemm.h's register-blocked kernels: BLAS's packing and dispatch would cost
 * more than the arithmetic at these sizes. Y and dcols use its 6-row blocks (12 accumulators: the
 * forward at the large benchmark shape went from ~14.5 to ~13 ms); dW keeps 4-row blocks, which
 * measured faster for its long reduction.
 *
 * dW is computed transposed so that its reduction over M runs down the kernel's depth (dot-product
 * kernels with the reduction along the vectors measured 13-24 GMAC/s here, L2-bound; this 36-48).
 * M is padded to a whole number of vectors (ldm) with zero columns.
 *
 * No BLAS path: at the large benchmark shape (N=512, 32->64, L=128, K=5) these loops measured
 * 33 ms forward+backward on 2 threads, against ~35 ms measured for the three np.matmul products alone
 * (before im2col/col2im), so there is no crossover to pick.
 *
 * Threads (OpenMP, when built with it): each takes a contiguous range of samples with private
 * buffers, dW and db partials; the partials are summed at the end in thread order, so results do
 * not depend on timing. Every function returns 0, or -1 when an allocation failed.
 */
#ifndef FASTNN_CONV1D_H
#define FASTNN_CONV1D_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "small_gemm.h"
#include "threads.h"

typedef struct {
    ptrdiff_t n, c_in, length, c_out, kernel_size, stride, padding, l_out;
} fastnn_conv_geometry;

/* Bytes of chunk buffers (cols, dY, dcols) aimed at: about half of a 512 KB L2. */
#define FASTNN_CONV_CHUNK_BYTES (192 * 1024)
/* Below this many multiply-adds per pass one thread is faster: a parallel region costs microseconds. */
#define FASTNN_CONV_PARALLEL_MACS 100000

/* The outputs t whose tap k reads inside x: t stride + k - padding in [0, L) for t in [*lo, *hi). */
static inline void fastnn_conv_valid_range(const fastnn_conv_geometry *g, ptrdiff_t k, ptrdiff_t *lo,
                                           ptrdiff_t *hi) {
    const ptrdiff_t first = g->padding - k, last = g->length - 1 + g->padding - k;
    ptrdiff_t a = first > 0 ? (first + g->stride - 1) / g->stride : 0;
    ptrdiff_t b = last >= 0 ? last / g->stride + 1 : 0;
    if (b > g->l_out) b = g->l_out;
    if (a > b) a = b;
    *lo = a;
    *hi = b;
}

static inline int fastnn_conv_threads(const fastnn_conv_geometry *g) {
    int threads = 1;
#ifdef _OPENMP
    if (g->n * g->c_out * g->l_out * g->c_in * g->kernel_size >= FASTNN_CONV_PARALLEL_MACS)
        threads = fastnn_threads();
#endif
    if (threads > g->n) threads = (int)g->n;
    return threads < 1 ? 1 : threads;
}

static inline ptrdiff_t fastnn_conv_round_up(ptrdiff_t value, ptrdiff_t multiple) {
    return (value + multiple - 1) / multiple * multiple;
}

/* Samples per chunk: the three chunk buffers within FASTNN_CONV_CHUNK_BYTES (at least one sample),
 * then evened out so that each thread's share of the batch splits into equal chunks. */
static inline ptrdiff_t fastnn_conv_chunk(const fastnn_conv_geometry *g, size_t itemsize, int threads) {
    const size_t per_sample = (size_t)(2 * g->c_in * g->kernel_size + g->c_out) * (size_t)g->l_out * itemsize;
    const ptrdiff_t share = (g->n + threads - 1) / threads;
    ptrdiff_t chunk = (ptrdiff_t)(FASTNN_CONV_CHUNK_BYTES / per_sample), pieces;
    if (chunk < 1) chunk = 1;
    if (share < 1) return 1;
    pieces = (share + chunk - 1) / chunk;
    return (share + pieces - 1) / pieces;
}

#define FASTNN_DEFINE_CONV(T, SUFFIX)                                                                         \
/* Per-thread buffers for chunks of up to `chunk` samples (NULL where a pass needs none). */                  \
typedef struct {                                                                                              \
    T *cols, *dY, *dYT, *dcols;                                                                               \
} fastnn_conv_work_##SUFFIX;                                                                                  \
                                                                                                              \
static void fastnn_conv_work_free_##SUFFIX(fastnn_conv_work_##SUFFIX *ws) {                                   \
    free(ws->cols); free(ws->dY); free(ws->dYT); free(ws->dcols);                                             \
}                                                                                                             \
                                                                                                              \
/* 0, or -1 when an allocation failed (ws then holds what was allocated, for _free). */                       \
static int fastnn_conv_work_alloc_##SUFFIX(fastnn_conv_work_##SUFFIX *ws, const fastnn_conv_geometry *g,      \
                                          ptrdiff_t chunk, int backward, int need_dx) {                       \
    const size_t ck = (size_t)(g->c_in * g->kernel_size), m = (size_t)(chunk * g->l_out);                     \
    const size_t ldm = (size_t)fastnn_conv_round_up((ptrdiff_t)m, FASTNN_NR_##SUFFIX);                        \
    const size_t ldo = (size_t)fastnn_conv_round_up(g->c_out, FASTNN_NR_##SUFFIX);                            \
    memset(ws, 0, sizeof *ws);                                                                                \
    ws->cols = (T *)malloc(ck * ldm * sizeof(T));                                                             \
    ws->dY = (T *)malloc((size_t)g->c_out * ldm * sizeof(T));                                                 \
    if (backward) ws->dYT = (T *)calloc(ldm * ldo, sizeof(T));  /* columns [C_out, ldo) stay zero */          \
    if (need_dx) ws->dcols = (T *)malloc(ck * ldm * sizeof(T));                                               \
    if (!ws->cols || !ws->dY || (backward && !ws->dYT) || (need_dx && !ws->dcols))                            \
        return -1;                                                                                            \
    return 0;                                                                                                 \
}                                                                                                             \
                                                                                                              \
/* cols (CK, ldm) of samples [n0, n0 + nb): the windows of xpad, zeros where they cover padding and           \
 * in the pad columns [nb L_out, ldm). */                                                                     \
static void fastnn_im2col_##SUFFIX(const fastnn_conv_geometry *g, const T *x, ptrdiff_t n0, ptrdiff_t nb,     \
                                   ptrdiff_t ldm, T *cols) {                                                  \
    const ptrdiff_t K = g->kernel_size, s = g->stride, lo_ = g->l_out, shift = g->padding;                    \
    ptrdiff_t c, k, i, t, lo, hi;                                                                             \
    for (k = 0; k < K; ++k) {                                                                                 \
        fastnn_conv_valid_range(g, k, &lo, &hi);                                                              \
        for (c = 0; c < g->c_in; ++c) {                                                                       \
            T *row = cols + (c * K + k) * ldm;                                                                \
            for (i = 0; i < nb; ++i) {                                                                        \
                const T *src = x + ((n0 + i) * g->c_in + c) * g->length;  /* xpad[j] = src[j - shift] */      \
                T *dst = row + i * lo_;                                                                       \
                for (t = 0; t < lo; ++t) dst[t] = 0;                                                          \
                if (s == 1) memcpy(dst + lo, src + (lo + k - shift), (size_t)(hi - lo) * sizeof(T));          \
                else for (t = lo; t < hi; ++t) dst[t] = src[t * s + k - shift];                               \
                for (t = hi; t < lo_; ++t) dst[t] = 0;                                                        \
            }                                                                                                 \
            for (t = nb * lo_; t < ldm; ++t) row[t] = 0;                                                      \
        }                                                                                                     \
    }                                                                                                         \
}                                                                                                             \
                                                                                                              \
/* dx[n0 : n0 + nb] = col2im(dcols): every window entry added back where it was read from. */                 \
static void fastnn_col2im_##SUFFIX(const fastnn_conv_geometry *g, const T *dcols, ptrdiff_t ldm,              \
                                   ptrdiff_t n0, ptrdiff_t nb, T *dx) {                                       \
    const ptrdiff_t K = g->kernel_size, s = g->stride, lo_ = g->l_out, shift = g->padding;                    \
    ptrdiff_t c, k, i, t, lo, hi;                                                                             \
    memset(dx + n0 * g->c_in * g->length, 0, (size_t)(nb * g->c_in * g->length) * sizeof(T));                 \
    for (k = 0; k < K; ++k) {                                                                                 \
        fastnn_conv_valid_range(g, k, &lo, &hi);                                                              \
        for (c = 0; c < g->c_in; ++c) {                                                                       \
            const T *row = dcols + (c * K + k) * ldm;                                                         \
            for (i = 0; i < nb; ++i) {                                                                        \
                T *dst = dx + ((n0 + i) * g->c_in + c) * g->length;  /* dxpad[j] = dst[j - shift] */          \
                const T *src = row + i * lo_;                                                                 \
                for (t = lo; t < hi; ++t) dst[t * s + k - shift] += src[t];                                   \
            }                                                                                                 \
        }                                                                                                     \
    }                                                                                                         \
}                                                                                                             \
                                                                                                              \
/* C (m x n) = sum_p A(i, p) B[p, :] with A(i, p) = A[i a_row + p a_inner], B (depth x n), C (m x n),         \
 * n a multiple of NR. Column blocks outer: a (depth x NR) panel of B stays in L1 while A streams. */         \
static void fastnn_conv_gemm_##SUFFIX(ptrdiff_t m, ptrdiff_t n, ptrdiff_t depth, const T *A,                  \
                                      ptrdiff_t a_row, ptrdiff_t a_inner, const T *B, T *C) {                 \
    const ptrdiff_t nr = FASTNN_NR_##SUFFIX;                                                                  \
    ptrdiff_t i0, j0;                                                                                         \
    for (j0 = 0; j0 < n; j0 += nr)                                                                            \
        for (i0 = 0; i0 < m; i0 += FASTNN_WIDE_MR)                                                            \
            fastnn_block_axpy_wide_##SUFFIX(m - i0 < FASTNN_WIDE_MR ? m - i0 : FASTNN_WIDE_MR, nr, depth,     \
                                            A + i0 * a_row, a_row, a_inner, B + j0, n, C + i0 * n + j0, n, 0);\
}                                                                                                             \
                                                                                                              \
/* acc (CK x ldo) += cols (CK x m) @ dYT (m x ldo): dW transposed, C_out padded to ldo (a multiple of         \
 * NR) so the kernel's vectors run full along C_out while the reduction streams along the columns. */         \
static void fastnn_conv_dw_##SUFFIX(ptrdiff_t ck, ptrdiff_t ldo, ptrdiff_t m, ptrdiff_t ldm,                  \
                                    const T *cols, const T *dYT, T *acc) {                                    \
    const ptrdiff_t nr = FASTNN_NR_##SUFFIX;                                                                  \
    ptrdiff_t i0, j0;                                                                                         \
    for (j0 = 0; j0 < ldo; j0 += nr)                                                                          \
        for (i0 = 0; i0 < ck; i0 += FASTNN_MR)                                                                \
            fastnn_block_axpy_##SUFFIX(ck - i0 < FASTNN_MR ? ck - i0 : FASTNN_MR, nr, m, cols + i0 * ldm,     \
                                       ldm, 1, dYT + j0, ldo, acc + i0 * ldo + j0, ldo, 1);                   \
}                                                                                                             \
                                                                                                              \
static void fastnn_conv_forward_range_##SUFFIX(const fastnn_conv_geometry *g, const T *x, const T *w,         \
                                               const T *b, T *y, ptrdiff_t begin, ptrdiff_t end,              \
                                               ptrdiff_t chunk, fastnn_conv_work_##SUFFIX *ws) {              \
    const ptrdiff_t ck = g->c_in * g->kernel_size, lo_ = g->l_out;                                            \
    ptrdiff_t n0, nb, i, o, t;                                                                                \
    for (n0 = begin; n0 < end; n0 += nb) {                                                                    \
        const ptrdiff_t m = (nb = end - n0 < chunk ? end - n0 : chunk) * lo_;                                 \
        const ptrdiff_t ldm = fastnn_conv_round_up(m, FASTNN_NR_##SUFFIX);                                    \
        fastnn_im2col_##SUFFIX(g, x, n0, nb, ldm, ws->cols);                                                  \
        fastnn_conv_gemm_##SUFFIX(g->c_out, ldm, ck, w, ck, 1, ws->cols, ws->dY);                             \
        for (i = 0; i < nb; ++i)                                                                              \
            for (o = 0; o < g->c_out; ++o) {                                                                  \
                const T bias = b ? b[o] : 0, *src = ws->dY + o * ldm + i * lo_;                               \
                T *dst = y + ((n0 + i) * g->c_out + o) * lo_;                                                 \
                for (t = 0; t < lo_; ++t) dst[t] = src[t] + bias;                                             \
            }                                                                                                 \
    }                                                                                                         \
}                                                                                                             \
                                                                                                              \
/* dw_acc (CK x ldo) += this range's dW transposed, db_acc += its db (float64); dx rows written if dx. */     \
static void fastnn_conv_backward_range_##SUFFIX(const fastnn_conv_geometry *g, const T *x, const T *w,        \
                                                const T *dy, T *dx, ptrdiff_t begin, ptrdiff_t end,           \
                                                ptrdiff_t chunk, fastnn_conv_work_##SUFFIX *ws,               \
                                                T *dw_acc, double *db_acc) {                                  \
    const ptrdiff_t ck = g->c_in * g->kernel_size, lo_ = g->l_out;                                            \
    const ptrdiff_t ldo = fastnn_conv_round_up(g->c_out, FASTNN_NR_##SUFFIX);                                 \
    ptrdiff_t n0, nb, i, o, t;                                                                                \
    for (n0 = begin; n0 < end; n0 += nb) {                                                                    \
        const ptrdiff_t m = (nb = end - n0 < chunk ? end - n0 : chunk) * lo_;                                 \
        const ptrdiff_t ldm = fastnn_conv_round_up(m, FASTNN_NR_##SUFFIX);                                    \
        for (o = 0; o < g->c_out; ++o) {  /* dY (C_out x ldm) and dYT (m x ldo), db on the way */             \
            T *dst = ws->dY + o * ldm, *dstT = ws->dYT + o;                                                   \
            double sum = 0;                                                                                   \
            for (i = 0; i < nb; ++i) {                                                                        \
                const T *src = dy + ((n0 + i) * g->c_out + o) * lo_;                                          \
                T part = 0;                                                                                   \
                for (t = 0; t < lo_; ++t) {                                                                   \
                    dst[i * lo_ + t] = dstT[(i * lo_ + t) * ldo] = src[t];                                    \
                    part += src[t];                                                                           \
                }                                                                                             \
                sum += part;                                                                                  \
            }                                                                                                 \
            for (t = m; t < ldm; ++t) dst[t] = 0;                                                             \
            db_acc[o] += sum;                                                                                 \
        }                                                                                                     \
        fastnn_im2col_##SUFFIX(g, x, n0, nb, ldm, ws->cols);                                                  \
        fastnn_conv_dw_##SUFFIX(ck, ldo, m, ldm, ws->cols, ws->dYT, dw_acc);                                  \
        if (dx) {                                                                                             \
            fastnn_conv_gemm_##SUFFIX(ck, ldm, g->c_out, w, 1, ck, ws->dY, ws->dcols);                        \
            fastnn_col2im_##SUFFIX(g, ws->dcols, ldm, n0, nb, dx);                                            \
        }                                                                                                     \
    }                                                                                                         \
}                                                                                                             \
                                                                                                              \
/* y (N, C_out, L_out) = conv(x, w) + b (b may be NULL). */                                                   \
static int fastnn_conv1d_forward_##SUFFIX(const fastnn_conv_geometry *g, const T *x, const T *w,              \
                                          const T *b, T *y) {                                                 \
    const int threads = fastnn_conv_threads(g);                                                               \
    const ptrdiff_t chunk = fastnn_conv_chunk(g, sizeof(T), threads);                                         \
    int failed = 0;                                                                                           \
    _Pragma("omp parallel num_threads(threads) if (threads > 1) reduction(|:failed)")                         \
    {                                                                                                         \
        int id = 0, count = 1;                                                                                \
        fastnn_conv_work_##SUFFIX ws;                                                                         \
        FASTNN_CONV_THREAD_ID(id, count);                                                                     \
        if (fastnn_conv_work_alloc_##SUFFIX(&ws, g, chunk, 0, 0) == 0)                                        \
            fastnn_conv_forward_range_##SUFFIX(g, x, w, b, y, g->n * id / count, g->n * (id + 1) / count,     \
                                               chunk, &ws);                                                   \
        else failed = 1;                                                                                      \
        fastnn_conv_work_free_##SUFFIX(&ws);                                                                  \
    }                                                                                                         \
    return failed ? -1 : 0;                                                                                   \
}                                                                                                             \
                                                                                                              \
/* dw, db (and dx unless NULL) of conv1d_forward given dy; all fully overwritten. */                          \
static int fastnn_conv1d_backward_##SUFFIX(const fastnn_conv_geometry *g, const T *x, const T *w,             \
                                           const T *dy, T *dx, T *dw, T *db) {                                \
    const int threads = fastnn_conv_threads(g);                                                               \
    const ptrdiff_t ck = g->c_in * g->kernel_size, ldo = fastnn_conv_round_up(g->c_out, FASTNN_NR_##SUFFIX);  \
    const ptrdiff_t wsize = ck * ldo, chunk = fastnn_conv_chunk(g, sizeof(T), threads);                       \
    ptrdiff_t o, c;                                                                                           \
    int failed = 0, part;                                                                                     \
    /* per thread: a dW.T partial (CK x ldo) and a float64 db partial, summed in thread order at the end */   \
    T *dw_parts = (T *)calloc((size_t)(threads * wsize), sizeof(T));                                          \
    double *db_parts = (double *)calloc((size_t)(threads * g->c_out), sizeof(double));                        \
    if (!dw_parts || !db_parts) { free(dw_parts); free(db_parts); return -1; }                                \
    _Pragma("omp parallel num_threads(threads) if (threads > 1) reduction(|:failed)")                         \
    {                                                                                                         \
        int id = 0, count = 1;                                                                                \
        fastnn_conv_work_##SUFFIX ws;                                                                         \
        FASTNN_CONV_THREAD_ID(id, count);                                                                     \
        if (fastnn_conv_work_alloc_##SUFFIX(&ws, g, chunk, 1, dx != NULL) == 0)                               \
            fastnn_conv_backward_range_##SUFFIX(g, x, w, dy, dx, g->n * id / count, g->n * (id + 1) / count,  \
                                                chunk, &ws, dw_parts + id * wsize, db_parts + id * g->c_out); \
        else failed = 1;                                                                                      \
        fastnn_conv_work_free_##SUFFIX(&ws);                                                                  \
    }                                                                                                         \
    for (o = 0; o < g->c_out; ++o) {                                                                          \
        double total = 0;                                                                                     \
        for (c = 0; c < ck; ++c) {                                                                            \
            T sum = dw_parts[c * ldo + o];                                                                    \
            for (part = 1; part < threads; ++part) sum += dw_parts[part * wsize + c * ldo + o];               \
            dw[o * ck + c] = sum;                                                                             \
        }                                                                                                     \
        for (part = 0; part < threads; ++part) total += db_parts[part * g->c_out + o];                        \
        db[o] = (T)total;                                                                                     \
    }                                                                                                         \
    free(dw_parts); free(db_parts);                                                                           \
    return failed ? -1 : 0;                                                                                   \
}

#ifdef _OPENMP
#define FASTNN_CONV_THREAD_ID(id, count) do { id = omp_get_thread_num(); count = omp_get_num_threads(); } while (0)
#else
#define FASTNN_CONV_THREAD_ID(id, count) do { } while (0)
#endif

FASTNN_DEFINE_CONV(float, f32)
FASTNN_DEFINE_CONV(double, f64)

/* One row of max-pooling: y[t], argmax[t] = the first maximum of x[t stride : t stride + kernel_size],
 * the first NaN winning (as np.argmax); once best is NaN every comparison fails and it stays.
 * The select is done on the bits: with random data `v > best` is a coin flip, and GCC turned a
 * ternary back into a branch whose mispredictions tripled the time of the pass. Results go through a
 * stack block: large x and argmax are both page-aligned, and with stride 2 float32 the load x[2t]
 * and the store argmax[t] share their page offset (4K aliasing). */
#define FASTNN_DEFINE_POOL(T, U, SUFFIX)                                                              \
static void fastnn_maxpool_row_##SUFFIX(const T *x, T *y, int64_t *argmax, ptrdiff_t kernel_size,     \
                                        ptrdiff_t stride, ptrdiff_t l_out) {                          \
    enum { BLOCK = 64 };                                                                              \
    T y_block[BLOCK];                                                                                 \
    int64_t at_block[BLOCK];                                                                          \
    ptrdiff_t t0, t, j, count;                                                                        \
    for (t0 = 0; t0 < l_out; t0 += BLOCK) {                                                           \
        count = l_out - t0 < BLOCK ? l_out - t0 : BLOCK;                                              \
        for (t = 0; t < count; ++t) {                                                                 \
            const ptrdiff_t start = (t0 + t) * stride;                                                \
            T best = x[start];                                                                        \
            int64_t best_at = start;                                                                  \
            for (j = start + 1; j < start + kernel_size; ++j) {                                       \
                const T v = x[j];                                                                     \
                const U take = (U)((v > best) | ((v != v) & (best == best)));                         \
                const U mask = (U)0 - take;                                                           \
                U vb, bb;                                                                             \
                memcpy(&vb, &v, sizeof vb); memcpy(&bb, &best, sizeof bb);                            \
                bb = (vb & mask) | (bb & ~mask);                                                      \
                memcpy(&best, &bb, sizeof bb);                                                        \
                best_at += (j - best_at) & (int64_t)(0 - (int64_t)take);                              \
            }                                                                                         \
            y_block[t] = best;                                                                        \
            at_block[t] = best_at;                                                                    \
        }                                                                                             \
        memcpy(y + t0, y_block, (size_t)count * sizeof(T));                                           \
        memcpy(argmax + t0, at_block, (size_t)count * sizeof(int64_t));                               \
    }                                                                                                 \
}

FASTNN_DEFINE_POOL(float, uint32_t, f32)
FASTNN_DEFINE_POOL(double, uint64_t, f64)

#endif  /* FASTNN_CONV1D_H */
