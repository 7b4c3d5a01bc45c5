/* Conv-2D forward and backward as GEMMs on im2col chunks (fastnn, src_ext/_conv2d.pyx).
 *
 * The conv-1D design of conv1d.h with the output plane flattened: x (N, C_in, H, W), w (C_out, C_in,
 * KH, KW) read as a (C_out, CK) matrix with CK = C_in KH KW, y and dy (N, C_out, H_out, W_out). With
 * P = H_out W_out and M = nb P for a chunk of nb samples, the columns j = (sample, i, j) get
 *
 *     cols    (CK, M)     cols[(c KH + p) KW + q, j] = xpad[n, c, i sh + p, j sw + q]   (im2col)
 *     Y       (C_out, M)  = W @ cols                  -> y (scattered, + bias)
 *     dY      (C_out, M)  <- dy (gathered)
 *     patches (M, ldk)    patches[j, (c KH + p) KW + q] = cols[(c KH + p) KW + q, j]  (row-major windows)
 *     dW      (C_out, ldk) += dY @ patches
 *     dcols   (CK, M)     = W.T @ dY                 -> dx (col2im: scatter-add)
 *
 * The products are small_gemm.h's register-blocked kernels (through conv1d.h's fastnn_conv_gemm for Y
 * and dcols); only the gathers and scatters know about two dimensions. Unlike conv1d.h, dW is not
 * computed transposed: the image CNNs' C_out is small (6, 16) and padding it to whole vectors wasted
 * most of the multiply-adds, while CK (75, 150) pads to ldk with little waste; the windows are gathered
 * row-major directly, with no transposed copy of dY. For very few output channels (see
 * FASTNN_CONV2D_DOTS_MAX_COUT) dW is instead dot products of dY's rows with the forward's cols rows.
 * Threads (OpenMP) take contiguous ranges of samples with private buffers and dW/db partials summed in
 * thread order, as in conv1d.h. Every function returns 0, or -1 when an allocation failed.
 */
#ifndef FASTNN_CONV2D_H
#define FASTNN_CONV2D_H

#include "conv1d.h"

typedef struct {
    ptrdiff_t n, c_in, height, width, c_out, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, h_out, w_out;
} fastnn_conv2d_geometry;

/* Along one axis: the outputs t whose tap k reads inside the input, t stride + k - padding in [0, length),
 * for t in [*lo, *hi) (empty when the tap only ever reads padding). */
static inline void fastnn_conv2d_axis_range(ptrdiff_t length, ptrdiff_t l_out, ptrdiff_t k, ptrdiff_t stride,
                                            ptrdiff_t padding, ptrdiff_t *lo, ptrdiff_t *hi) {
    const ptrdiff_t first = padding - k, last = length - 1 + padding - k;
    ptrdiff_t a = first > 0 ? (first + stride - 1) / stride : 0;
    ptrdiff_t b = last >= 0 ? last / stride + 1 : 0;
    if (b > l_out) b = l_out;
    if (a > b) a = b;
    *lo = a;
    *hi = b;
}

static inline ptrdiff_t fastnn_conv2d_ck(const fastnn_conv2d_geometry *g) {
    return g->c_in * g->kernel_h * g->kernel_w;
}

static inline ptrdiff_t fastnn_conv2d_plane(const fastnn_conv2d_geometry *g) { return g->h_out * g->w_out; }

static inline int fastnn_conv2d_threads(const fastnn_conv2d_geometry *g) {
    int threads = 1;
#ifdef _OPENMP
    /* in double: the product of four bounded sizes may pass 2**63 (a convolution that would never end) */
    if ((double)g->n * (double)g->c_out * (double)fastnn_conv2d_plane(g) * (double)fastnn_conv2d_ck(g)
            >= FASTNN_CONV_PARALLEL_MACS)
        threads = fastnn_threads();
#endif
    if (threads > g->n) threads = (int)g->n;
    return threads < 1 ? 1 : threads;
}

/* Samples per chunk: cols, dY and dcols within FASTNN_CONV_CHUNK_BYTES (at least one sample), evened out
 * so that each thread's share of the batch splits into equal chunks. */
static inline ptrdiff_t fastnn_conv2d_chunk(const fastnn_conv2d_geometry *g, size_t itemsize, int threads) {
    const size_t per_sample = (size_t)(2 * fastnn_conv2d_ck(g) + g->c_out) * (size_t)fastnn_conv2d_plane(g) * itemsize;
    const ptrdiff_t share = (g->n + threads - 1) / threads;
    ptrdiff_t chunk = (ptrdiff_t)(FASTNN_CONV_CHUNK_BYTES / per_sample), pieces;
    if (chunk < 1) chunk = 1;
    if (share < 1) return 1;
    pieces = (share + chunk - 1) / chunk;
    return (share + pieces - 1) / pieces;
}

/* dW: up to this many output channels as dot products on the forward's cols (CK x M); more, as 6-row
 * blocks of dY times row-major windows (M x ldk). Single-threaded at N=4 and 100: with C_out = 6 (the
 * tutorial CNN's first layer) the dot products measured ~2x faster; with 16 and 64, 1.3-1.5x slower. */
#define FASTNN_CONV2D_DOTS_MAX_COUT 8

#define FASTNN_DEFINE_CONV2D(T, SUFFIX)                                                                       \
/* 0, or -1 when an allocation failed (ws then holds what was allocated, for fastnn_conv_work_free).         \
 * The backward keeps its row-major patches (m x ldk) in ws->cols; dYT is not used. */                        \
static int fastnn_conv2d_work_alloc_##SUFFIX(fastnn_conv_work_##SUFFIX *ws, const fastnn_conv2d_geometry *g,  \
                                            ptrdiff_t chunk, int backward, int need_dx) {                     \
    const size_t ck = (size_t)fastnn_conv2d_ck(g), m = (size_t)(chunk * fastnn_conv2d_plane(g));              \
    const size_t ldm = (size_t)fastnn_conv_round_up((ptrdiff_t)m, FASTNN_NR_##SUFFIX);                        \
    const size_t ldk = (size_t)fastnn_conv_round_up((ptrdiff_t)ck, FASTNN_NR_##SUFFIX);                       \
    memset(ws, 0, sizeof *ws);                                                                                \
    const int dots = backward && g->c_out <= FASTNN_CONV2D_DOTS_MAX_COUT;                                     \
    ws->cols = (T *)malloc((backward && !dots ? m * ldk : ck * ldm) * sizeof(T));                             \
    ws->dY = (T *)malloc((size_t)g->c_out * ldm * sizeof(T));                                                 \
    if (dots) ws->dYT = (T *)malloc((size_t)g->c_out * ck * sizeof(T));  /* a chunk's dW */                   \
    if (need_dx) ws->dcols = (T *)malloc(ck * ldm * sizeof(T));                                               \
    if (!ws->cols || !ws->dY || (dots && !ws->dYT) || (need_dx && !ws->dcols))                                \
        return -1;                                                                                            \
    return 0;                                                                                                 \
}                                                                                                             \
                                                                                                              \
/* patches (m x ldk) of samples [n0, n0 + nb): row r = s P + i W_out + j holds the window of output (i, j)   \
 * of sample s, patches[r, (c KH + p) KW + q] = xpad[n0 + s, c, i sh + p, j sw + q]; zeros where the window   \
 * covers padding and in the pad columns [CK, ldk). */                                                        \
static void fastnn_im2row2d_##SUFFIX(const fastnn_conv2d_geometry *g, const T *x, ptrdiff_t n0, ptrdiff_t nb,  \
                                     ptrdiff_t ldk, T *patches) {                                             \
    const ptrdiff_t KH = g->kernel_h, KW = g->kernel_w, H = g->height, W = g->width, ck = fastnn_conv2d_ck(g); \
    ptrdiff_t s, i, j, c, p, q;                                                                               \
    T *dst = patches;                                                                                         \
    for (s = 0; s < nb; ++s) {                                                                                \
        const T *sample = x + (n0 + s) * g->c_in * H * W;                                                     \
        for (i = 0; i < g->h_out; ++i)                                                                        \
            for (j = 0; j < g->w_out; ++j, dst += ldk) {                                                      \
                const ptrdiff_t top = i * g->stride_h - g->pad_h, left = j * g->stride_w - g->pad_w;          \
                const int inside = left >= 0 && left + KW <= W;                                               \
                T *d = dst;                                                                                   \
                for (c = 0; c < g->c_in; ++c)                                                                 \
                    for (p = 0; p < KH; ++p, d += KW) {                                                       \
                        const ptrdiff_t h = top + p;                                                          \
                        const T *line;                                                                        \
                        if (h < 0 || h >= H) { memset(d, 0, (size_t)KW * sizeof(T)); continue; }              \
                        line = sample + (c * H + h) * W;  /* a row inside x */                                \
                        /* plain loops, not memcpy: runs of KW = 3..7 values cost more in calls than copies */ \
                        if (inside) for (q = 0; q < KW; ++q) d[q] = line[left + q];                           \
                        else for (q = 0; q < KW; ++q)                                                         \
                            d[q] = left + q >= 0 && left + q < W ? line[left + q] : 0;                        \
                    }                                                                                         \
                for (q = ck; q < ldk; ++q) dst[q] = 0;                                                        \
            }                                                                                                 \
    }                                                                                                         \
}                                                                                                             \
                                                                                                              \
/* dw (C_out x CK) = dY (C_out x ldm) @ cols.T (cols CK x ldm): dot products along the (zero-padded)   \
 * columns, 4 rows of cols by 2 rows of dY at a time. */                                                      \
static void fastnn_conv2d_dw_dots_##SUFFIX(ptrdiff_t c_out, ptrdiff_t ck, ptrdiff_t ldm, const T *dY,         \
                                           const T *cols, T *dw) {                                            \
    ptrdiff_t o0, k0;                                                                                         \
    for (o0 = 0; o0 < c_out; o0 += 2)                                                                         \
        for (k0 = 0; k0 < ck; k0 += FASTNN_MR)                                                                \
            fastnn_block_dots_##SUFFIX(ck - k0 < FASTNN_MR ? ck - k0 : FASTNN_MR, c_out - o0 < 2 ? c_out - o0 : 2, \
                                       ldm, cols + k0 * ldm, ldm, dY + o0 * ldm, ldm, dw + o0 * ck + k0, 1, ck); \
}                                                                                                             \
                                                                                                              \
/* acc (C_out x ldk) += dY (C_out x m, rows ldm apart) @ patches (m x ldk): 6-row blocks of dY (12            \
 * accumulators), vectors along CK, the reduction streaming down the patches. */                              \
static void fastnn_conv2d_dw_##SUFFIX(ptrdiff_t c_out, ptrdiff_t ldk, ptrdiff_t m, ptrdiff_t ldm,             \
                                      const T *dY, const T *patches, T *acc) {                                \
    const ptrdiff_t nr = FASTNN_NR_##SUFFIX;                                                                  \
    ptrdiff_t i0, j0;                                                                                         \
    for (j0 = 0; j0 < ldk; j0 += nr)                                                                          \
        for (i0 = 0; i0 < c_out; i0 += FASTNN_WIDE_MR)                                                        \
            fastnn_block_axpy_wide_##SUFFIX(c_out - i0 < FASTNN_WIDE_MR ? c_out - i0 : FASTNN_WIDE_MR, nr, m,  \
                                            dY + i0 * ldm, ldm, 1, patches + j0, ldk, acc + i0 * ldk + j0,    \
                                            ldk, 1);                                                          \
}                                                                                                             \
                                                                                                              \
/* cols (CK, ldm) of samples [n0, n0 + nb): the windows of xpad, zeros where they cover padding and           \
 * in the pad columns [nb P, ldm). */                                                                         \
static void fastnn_im2col2d_##SUFFIX(const fastnn_conv2d_geometry *g, const T *x, ptrdiff_t n0, ptrdiff_t nb,  \
                                     ptrdiff_t ldm, T *cols) {                                                \
    const ptrdiff_t KH = g->kernel_h, KW = g->kernel_w, sw = g->stride_w, plane = fastnn_conv2d_plane(g);     \
    const ptrdiff_t hw = g->height * g->width, wo = g->w_out;                                                 \
    ptrdiff_t c, p, q, s, i, j, lo_h, hi_h, lo_w, hi_w;                                                       \
    for (c = 0; c < g->c_in; ++c)                                                                             \
        for (p = 0; p < KH; ++p) {                                                                            \
            fastnn_conv2d_axis_range(g->height, g->h_out, p, g->stride_h, g->pad_h, &lo_h, &hi_h);            \
            for (q = 0; q < KW; ++q) {                                                                        \
                T *row = cols + ((c * KH + p) * KW + q) * ldm;                                                \
                fastnn_conv2d_axis_range(g->width, wo, q, sw, g->pad_w, &lo_w, &hi_w);                        \
                for (s = 0; s < nb; ++s) {                                                                    \
                    const T *src = x + ((n0 + s) * g->c_in + c) * hw;                                         \
                    T *dst = row + s * plane;                                                                 \
                    for (i = 0; i < g->h_out; ++i, dst += wo) {                                               \
                        const T *line;                                                                        \
                        if (i < lo_h || i >= hi_h) { memset(dst, 0, (size_t)wo * sizeof(T)); continue; }      \
                        line = src + (i * g->stride_h + p - g->pad_h) * g->width;  /* a row inside x */      \
                        for (j = 0; j < lo_w; ++j) dst[j] = 0;                                                \
                        if (sw == 1) memcpy(dst + lo_w, line + (lo_w + q - g->pad_w),                         \
                                            (size_t)(hi_w - lo_w) * sizeof(T));                               \
                        else for (j = lo_w; j < hi_w; ++j) dst[j] = line[j * sw + q - g->pad_w];              \
                        for (j = hi_w; j < wo; ++j) dst[j] = 0;                                               \
                    }                                                                                         \
                }                                                                                             \
                for (j = nb * plane; j < ldm; ++j) row[j] = 0;                                                \
            }                                                                                                 \
        }                                                                                                     \
}                                                                                                             \
                                                                                                              \
/* dx[n0 : n0 + nb] = col2im(dcols): every window entry added back where it was read from. */                 \
static void fastnn_col2im2d_##SUFFIX(const fastnn_conv2d_geometry *g, const T *dcols, ptrdiff_t ldm,          \
                                     ptrdiff_t n0, ptrdiff_t nb, T *dx) {                                     \
    const ptrdiff_t KH = g->kernel_h, KW = g->kernel_w, sw = g->stride_w, plane = fastnn_conv2d_plane(g);     \
    const ptrdiff_t hw = g->height * g->width, wo = g->w_out;                                                 \
    ptrdiff_t c, p, q, s, i, j, lo_h, hi_h, lo_w, hi_w;                                                       \
    memset(dx + n0 * g->c_in * hw, 0, (size_t)(nb * g->c_in * hw) * sizeof(T));                               \
    for (c = 0; c < g->c_in; ++c)                                                                             \
        for (p = 0; p < KH; ++p) {                                                                            \
            fastnn_conv2d_axis_range(g->height, g->h_out, p, g->stride_h, g->pad_h, &lo_h, &hi_h);            \
            for (q = 0; q < KW; ++q) {                                                                        \
                const T *row = dcols + ((c * KH + p) * KW + q) * ldm;                                         \
                fastnn_conv2d_axis_range(g->width, wo, q, sw, g->pad_w, &lo_w, &hi_w);                        \
                for (s = 0; s < nb; ++s) {                                                                    \
                    T *dst = dx + ((n0 + s) * g->c_in + c) * hw;                                              \
                    for (i = lo_h; i < hi_h; ++i) {                                                           \
                        const T *src = row + s * plane + i * wo;                                              \
                        T *line = dst + (i * g->stride_h + p - g->pad_h) * g->width;  /* a row inside x */   \
                        for (j = lo_w; j < hi_w; ++j) line[j * sw + q - g->pad_w] += src[j];                  \
                    }                                                                                         \
                }                                                                                             \
            }                                                                                                 \
        }                                                                                                     \
}                                                                                                             \
                                                                                                              \
static void fastnn_conv2d_forward_range_##SUFFIX(const fastnn_conv2d_geometry *g, const T *x, const T *w,     \
                                                 const T *b, T *y, ptrdiff_t begin, ptrdiff_t end,            \
                                                 ptrdiff_t chunk, fastnn_conv_work_##SUFFIX *ws) {            \
    const ptrdiff_t ck = fastnn_conv2d_ck(g), plane = fastnn_conv2d_plane(g);                                 \
    ptrdiff_t n0, nb, i, o, t;                                                                                \
    for (n0 = begin; n0 < end; n0 += nb) {                                                                    \
        const ptrdiff_t m = (nb = end - n0 < chunk ? end - n0 : chunk) * plane;                               \
        const ptrdiff_t ldm = fastnn_conv_round_up(m, FASTNN_NR_##SUFFIX);                                    \
        fastnn_im2col2d_##SUFFIX(g, x, n0, nb, ldm, ws->cols);                                                \
        fastnn_conv_gemm_##SUFFIX(g->c_out, ldm, ck, w, ck, 1, ws->cols, ws->dY);                             \
        for (i = 0; i < nb; ++i)                                                                              \
            for (o = 0; o < g->c_out; ++o) {                                                                  \
                const T bias = b ? b[o] : 0, *src = ws->dY + o * ldm + i * plane;                             \
                T *dst = y + ((n0 + i) * g->c_out + o) * plane;                                               \
                for (t = 0; t < plane; ++t) dst[t] = src[t] + bias;                                           \
            }                                                                                                 \
    }                                                                                                         \
}                                                                                                             \
                                                                                                              \
/* dw_acc (C_out x ldk) += this range's dW, db_acc += its db (float64); dx rows written if dx. */             \
static void fastnn_conv2d_backward_range_##SUFFIX(const fastnn_conv2d_geometry *g, const T *x, const T *w,    \
                                                  const T *dy, T *dx, ptrdiff_t begin, ptrdiff_t end,         \
                                                  ptrdiff_t chunk, fastnn_conv_work_##SUFFIX *ws,             \
                                                  T *dw_acc, double *db_acc) {                                \
    const ptrdiff_t ck = fastnn_conv2d_ck(g), plane = fastnn_conv2d_plane(g);                                 \
    const ptrdiff_t ldk = fastnn_conv_round_up(ck, FASTNN_NR_##SUFFIX);                                       \
    ptrdiff_t n0, nb, i, o, t;                                                                                \
    for (n0 = begin; n0 < end; n0 += nb) {                                                                    \
        const ptrdiff_t m = (nb = end - n0 < chunk ? end - n0 : chunk) * plane;                               \
        const ptrdiff_t ldm = fastnn_conv_round_up(m, FASTNN_NR_##SUFFIX);                                    \
        for (o = 0; o < g->c_out; ++o) {  /* dY (C_out x ldm), db on the way */                               \
            T *dst = ws->dY + o * ldm;                                                                        \
            double sum = 0;                                                                                   \
            for (i = 0; i < nb; ++i) {                                                                        \
                const T *src = dy + ((n0 + i) * g->c_out + o) * plane;                                        \
                T part = 0;                                                                                   \
                for (t = 0; t < plane; ++t) {                                                                 \
                    dst[i * plane + t] = src[t];                                                              \
                    part += src[t];                                                                           \
                }                                                                                             \
                sum += part;                                                                                  \
            }                                                                                                 \
            for (t = m; t < ldm; ++t) dst[t] = 0;                                                             \
            db_acc[o] += sum;                                                                                 \
        }                                                                                                     \
        if (g->c_out <= FASTNN_CONV2D_DOTS_MAX_COUT) {                                                        \
            fastnn_im2col2d_##SUFFIX(g, x, n0, nb, ldm, ws->cols);                                            \
            fastnn_conv2d_dw_dots_##SUFFIX(g->c_out, ck, ldm, ws->dY, ws->cols, ws->dYT);                     \
            for (o = 0; o < g->c_out; ++o)                                                                    \
                for (t = 0; t < ck; ++t) dw_acc[o * ldk + t] += ws->dYT[o * ck + t];                          \
        } else {                                                                                              \
            fastnn_im2row2d_##SUFFIX(g, x, n0, nb, ldk, ws->cols);                                            \
            fastnn_conv2d_dw_##SUFFIX(g->c_out, ldk, m, ldm, ws->dY, ws->cols, dw_acc);                       \
        }                                                                                                     \
        if (dx) {                                                                                             \
            fastnn_conv_gemm_##SUFFIX(ck, ldm, g->c_out, w, 1, ck, ws->dY, ws->dcols);                        \
            fastnn_col2im2d_##SUFFIX(g, ws->dcols, ldm, n0, nb, dx);                                          \
        }                                                                                                     \
    }                                                                                                         \
}                                                                                                             \
                                                                                                              \
/* y (N, C_out, H_out, W_out) = conv(x, w) + b (b may be NULL). */                                            \
static int fastnn_conv2d_forward_##SUFFIX(const fastnn_conv2d_geometry *g, const T *x, const T *w,            \
                                          const T *b, T *y) {                                                 \
    const int threads = fastnn_conv2d_threads(g);                                                             \
    const ptrdiff_t chunk = fastnn_conv2d_chunk(g, sizeof(T), threads);                                       \
    int failed = 0;                                                                                           \
    _Pragma("omp parallel num_threads(threads) if (threads > 1) reduction(|:failed)")                         \
    {                                                                                                         \
        int id = 0, count = 1;                                                                                \
        fastnn_conv_work_##SUFFIX ws;                                                                         \
        FASTNN_CONV_THREAD_ID(id, count);                                                                     \
        if (fastnn_conv2d_work_alloc_##SUFFIX(&ws, g, chunk, 0, 0) == 0)                                      \
            fastnn_conv2d_forward_range_##SUFFIX(g, x, w, b, y, g->n * id / count, g->n * (id + 1) / count,   \
                                                 chunk, &ws);                                                 \
        else failed = 1;                                                                                      \
        fastnn_conv_work_free_##SUFFIX(&ws);                                                                  \
    }                                                                                                         \
    return failed ? -1 : 0;                                                                                   \
}                                                                                                             \
                                                                                                              \
/* dw, db (and dx unless NULL) of conv2d_forward given dy; all fully overwritten. */                          \
static int fastnn_conv2d_backward_##SUFFIX(const fastnn_conv2d_geometry *g, const T *x, const T *w,           \
                                           const T *dy, T *dx, T *dw, T *db) {                                \
    const int threads = fastnn_conv2d_threads(g);                                                             \
    const ptrdiff_t ck = fastnn_conv2d_ck(g), ldk = fastnn_conv_round_up(ck, FASTNN_NR_##SUFFIX);             \
    const ptrdiff_t wsize = g->c_out * ldk, chunk = fastnn_conv2d_chunk(g, sizeof(T), threads);               \
    ptrdiff_t o, c;                                                                                           \
    int failed = 0, part;                                                                                     \
    /* per thread: a dW partial (C_out x ldk) and a float64 db partial, summed in thread order at the end */  \
    T *dw_parts = (T *)calloc((size_t)(threads * wsize), sizeof(T));                                          \
    double *db_parts = (double *)calloc((size_t)(threads * g->c_out), sizeof(double));                        \
    if (!dw_parts || !db_parts) { free(dw_parts); free(db_parts); return -1; }                                \
    _Pragma("omp parallel num_threads(threads) if (threads > 1) reduction(|:failed)")                         \
    {                                                                                                         \
        int id = 0, count = 1;                                                                                \
        fastnn_conv_work_##SUFFIX ws;                                                                         \
        FASTNN_CONV_THREAD_ID(id, count);                                                                     \
        if (fastnn_conv2d_work_alloc_##SUFFIX(&ws, g, chunk, 1, dx != NULL) == 0)                             \
            fastnn_conv2d_backward_range_##SUFFIX(g, x, w, dy, dx, g->n * id / count,                         \
                                                  g->n * (id + 1) / count, chunk, &ws, dw_parts + id * wsize, \
                                                  db_parts + id * g->c_out);                                  \
        else failed = 1;                                                                                      \
        fastnn_conv_work_free_##SUFFIX(&ws);                                                                  \
    }                                                                                                         \
    for (o = 0; o < g->c_out; ++o) {                                                                          \
        double total = 0;                                                                                     \
        for (c = 0; c < ck; ++c) {                                                                            \
            T sum = dw_parts[o * ldk + c];                                                                    \
            for (part = 1; part < threads; ++part) sum += dw_parts[part * wsize + o * ldk + c];               \
            dw[o * ck + c] = sum;                                                                             \
        }                                                                                                     \
        for (part = 0; part < threads; ++part) total += db_parts[part * g->c_out + o];                        \
        db[o] = (T)total;                                                                                     \
    }                                                                                                         \
    free(dw_parts); free(db_parts);                                                                           \
    return failed ? -1 : 0;                                                                                   \
}

FASTNN_DEFINE_CONV2D(float, f32)
FASTNN_DEFINE_CONV2D(double, f64)

/* One (H, W) plane of max-pooling: y[i, j], argmax[i, j] = the first maximum (row-major) of the window at
 * (i sh, j sw) and its flat position h W + w; the first NaN wins (as np.argmax) and then stays. Plain
 * compares: for 2x2 windows they measured no slower than conv1d.h's select on the bits (17 vs 22 ms
 * single-threaded for N=100, C=64, 22x22, on the shared machine); still ~2x Numba's time, not understood. */
#define FASTNN_DEFINE_POOL2D(T, SUFFIX)                                                                    \
static void fastnn_maxpool2d_plane_##SUFFIX(const T *x, T *y, int64_t *argmax, ptrdiff_t width,               \
                                            ptrdiff_t kernel_h, ptrdiff_t kernel_w, ptrdiff_t sh,             \
                                            ptrdiff_t sw, ptrdiff_t h_out, ptrdiff_t w_out) {                 \
    ptrdiff_t i, j, p, q;                                                                                     \
    for (i = 0; i < h_out; ++i)                                                                               \
        for (j = 0; j < w_out; ++j) {                                                                         \
            const ptrdiff_t corner = i * sh * width + j * sw;                                                 \
            T best = x[corner];                                                                               \
            int64_t best_at = corner;                                                                         \
            for (p = 0; p < kernel_h; ++p) {                                                                  \
                const ptrdiff_t row = corner + p * width;                                                     \
                for (q = 0; q < kernel_w; ++q) {                                                              \
                    const T v = x[row + q];                                                                   \
                    if (v > best || (v != v && best == best)) { best = v; best_at = row + q; }                \
                }                                                                                             \
            }                                                                                                 \
            y[i * w_out + j] = best;                                                                          \
            argmax[i * w_out + j] = best_at;                                                                  \
        }                                                                                                     \
}

FASTNN_DEFINE_POOL2D(float, f32)
FASTNN_DEFINE_POOL2D(double, f64)

#endif  /* FASTNN_CONV2D_H */
