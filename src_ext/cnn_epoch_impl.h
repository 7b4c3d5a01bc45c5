/* Body of cnn_epoch.h for one element type: included with T (float or double) and S (f32 or f64)
 * defined; every name gets the suffix _S. No include guard on purpose. */
#include "vector_exp.h"

#define FN(name) FASTNN_CNN_CAT(name, S)
#define V FASTNN_CNN_CAT(fastnn_cv, S)
#define LANES FASTNN_CNN_CAT(FASTNN_CNN_LANES, S)
#define COEF FASTNN_CNN_CAT(fastnn_coef, S)

static inline V FN(fastnn_cnn_load)(const T *p) { V v; memcpy(&v, p, sizeof v); return v; }
static inline void FN(fastnn_cnn_store)(T *p, V v) { memcpy(p, &v, sizeof v); }

/* p[:count] = v[:count] (all lanes when count >= L). Lanes are read by subscript: taking the address
 * of v would make GCC keep the caller's whole accumulator block in memory. */
static inline void FN(fastnn_cnn_store_part)(T *p, V v, ptrdiff_t count) {
    ptrdiff_t i;
    if (count >= LANES) { FN(fastnn_cnn_store)(p, v); return; }
#if FASTNN_CNN_VECTORS
    for (i = 0; i < count; ++i) p[i] = v[i];
#else
    (void)i;
    if (count > 0) p[0] = v;
#endif
}

/* p[:count] += v[:count]. */
static inline void FN(fastnn_cnn_add_part)(T *p, V v, ptrdiff_t count) {
    ptrdiff_t i;
    if (count >= LANES) { FN(fastnn_cnn_store)(p, FN(fastnn_cnn_load)(p) + v); return; }
#if FASTNN_CNN_VECTORS
    for (i = 0; i < count; ++i) p[i] += v[i];
#else
    (void)i;
    if (count > 0) p[0] += v;
#endif
}

/* max(z, 0) per lane (NaN gives 0: such a batch has a NaN loss and is never applied). */
static inline V FN(fastnn_cnn_relu)(V z) {
#if FASTNN_CNN_VECTORS
    typedef FASTNN_CNN_CAT(fastnn_cmask, S) M;
    const V zero = {0};
    return (V)((M)z & (M)(z > zero));
#else
    return z > 0 ? z : 0;
#endif
}

/* ---- forward: out[orow[m] + o] = act(patch(m) . W[:, o] + b[o]) for o < c_out ------------------ */

/* R rows from m0 times NV panels from v0: R x NV vectors in registers while the depth streams by. */
FASTNN_INLINE void FN(fastnn_cnn_fwd_block)(const int R, const int NV, const int RELU, const fastnn_cnn_layer *g,
        ptrdiff_t m0, ptrdiff_t v0, const T *in, const ptrdiff_t *arow, const T *Wp, const T *bias, T *out,
        const ptrdiff_t *orow) {
    enum { L = LANES };
    const ptrdiff_t depth = g->depth, pstride = depth * L;
    const T *wp = Wp + v0 * pstride;
    const T *a[6];
    V acc[6][6];
    ptrdiff_t p;
    int r, v;
    FASTNN_CNN_UNROLL for (r = 0; r < R; ++r) {
        a[r] = in + arow[m0 + r];
        FASTNN_CNN_UNROLL for (v = 0; v < NV; ++v) acc[r][v] = (V){0};
    }
    for (p = 0; p < depth; ++p) {
        FASTNN_CNN_UNROLL for (r = 0; r < R; ++r) {
            const T x = a[r][p];
            FASTNN_CNN_UNROLL for (v = 0; v < NV; ++v)
                acc[r][v] += x * FN(fastnn_cnn_load)(wp + v * pstride + p * L);
        }
    }
    FASTNN_CNN_UNROLL for (v = 0; v < NV; ++v) {
        const V b = FN(fastnn_cnn_load)(bias + (v0 + v) * L);
        const ptrdiff_t count = g->c_out - (v0 + v) * L;
        FASTNN_CNN_UNROLL for (r = 0; r < R; ++r) {
            V z = acc[r][v] + b;
            if (RELU) z = FN(fastnn_cnn_relu)(z);
            FN(fastnn_cnn_store_part)(out + orow[m0 + r] + (v0 + v) * L, z, count);
        }
    }
}

FASTNN_INLINE void FN(fastnn_cnn_fwd_panels)(const int R, const int RELU, const fastnn_cnn_layer *g, ptrdiff_t m0,
        const T *in, const ptrdiff_t *arow, const T *Wp, const T *bias, T *out, const ptrdiff_t *orow) {
    enum { NV = FASTNN_CNN_FWD_PANELS };
    ptrdiff_t v0 = 0;
    for (; v0 + NV <= g->panels; v0 += NV) FN(fastnn_cnn_fwd_block)(R, NV, RELU, g, m0, v0, in, arow, Wp, bias, out, orow);
    switch (g->panels - v0) {
#define FASTNN_CNN_CASE(c) case c: if (NV > c) FN(fastnn_cnn_fwd_block)(R, c, RELU, g, m0, v0, in, arow, Wp, bias, out, orow); break;
    FASTNN_CNN_CASE(1) FASTNN_CNN_CASE(2) FASTNN_CNN_CASE(3) FASTNN_CNN_CASE(4) FASTNN_CNN_CASE(5)
#undef FASTNN_CNN_CASE
    default: break;
    }
}

FASTNN_INLINE void FN(fastnn_cnn_fwd_act)(const int RELU, const fastnn_cnn_layer *g, ptrdiff_t rows, const T *in,
        const ptrdiff_t *arow, const T *Wp, const T *bias, T *out, const ptrdiff_t *orow) {
    enum { R = FASTNN_CNN_FWD_ROWS };
    ptrdiff_t m0 = 0;
    for (; m0 + R <= rows; m0 += R) FN(fastnn_cnn_fwd_panels)(R, RELU, g, m0, in, arow, Wp, bias, out, orow);
    switch (rows - m0) {
#define FASTNN_CNN_CASE(c) case c: if (R > c) FN(fastnn_cnn_fwd_panels)(c, RELU, g, m0, in, arow, Wp, bias, out, orow); break;
    FASTNN_CNN_CASE(1) FASTNN_CNN_CASE(2) FASTNN_CNN_CASE(3) FASTNN_CNN_CASE(4) FASTNN_CNN_CASE(5)
#undef FASTNN_CNN_CASE
    default: break;
    }
}

/* The forward of `rows` rows (n samples x l_out positions) of layer g. */
static void FN(fastnn_cnn_forward)(const fastnn_cnn_layer *g, ptrdiff_t rows, const T *in, const ptrdiff_t *arow,
                                   const T *Wp, const T *bias, T *out, const ptrdiff_t *orow) {
    if (g->relu) FN(fastnn_cnn_fwd_act)(1, g, rows, in, arow, Wp, bias, out, orow);
    else FN(fastnn_cnn_fwd_act)(0, g, rows, in, arow, Wp, bias, out, orow);
}

/* ---- input gradient: dbuf[arow[m] + j] += sum_o dZ[m, o] W[j, o] (col2im by contiguous adds) ---- */

/* Rows ms[0 .. R) (distinct samples: their patches never overlap) times NV vectors of the patch
 * from vector j0v, summed over the output channels with WT's rows. */
FASTNN_INLINE void FN(fastnn_cnn_dx_block)(const int R, const int NV, const fastnn_cnn_layer *g, const ptrdiff_t *ms,
        ptrdiff_t j0v, const T *dz, ptrdiff_t ldz, const T *WT, T *dbuf, const ptrdiff_t *arow) {
    enum { L = LANES };
    const ptrdiff_t j0 = j0v * L, ldw = g->depth_p;
    const T *d[6];
    const T *w = WT + j0;
    V acc[6][6];
    ptrdiff_t o;
    int r, v;
    FASTNN_CNN_UNROLL for (r = 0; r < R; ++r) {
        d[r] = dz + ms[r] * ldz;
        FASTNN_CNN_UNROLL for (v = 0; v < NV; ++v) acc[r][v] = (V){0};
    }
    for (o = 0; o < g->c_out; ++o) {
        FASTNN_CNN_UNROLL for (r = 0; r < R; ++r) {
            const T x = d[r][o];
            FASTNN_CNN_UNROLL for (v = 0; v < NV; ++v) acc[r][v] += x * FN(fastnn_cnn_load)(w + o * ldw + v * L);
        }
    }
    FASTNN_CNN_UNROLL for (r = 0; r < R; ++r) {
        T *dst = dbuf + arow[ms[r]] + j0;
        FASTNN_CNN_UNROLL for (v = 0; v < NV; ++v)
            FN(fastnn_cnn_add_part)(dst + v * L, acc[r][v], g->depth - j0 - v * L);
    }
}

FASTNN_INLINE void FN(fastnn_cnn_dx_rows)(const int R, const fastnn_cnn_layer *g, const ptrdiff_t *ms, const T *dz,
        ptrdiff_t ldz, const T *WT, T *dbuf, const ptrdiff_t *arow) {
    enum { NV = FASTNN_CNN_DX_VECTORS };
    const ptrdiff_t n_vec = g->depth_p / LANES;
    ptrdiff_t j0v = 0;
    for (; j0v + NV <= n_vec; j0v += NV) FN(fastnn_cnn_dx_block)(R, NV, g, ms, j0v, dz, ldz, WT, dbuf, arow);
    switch (n_vec - j0v) {
#define FASTNN_CNN_CASE(c) case c: if (NV > c) FN(fastnn_cnn_dx_block)(R, c, g, ms, j0v, dz, ldz, WT, dbuf, arow); break;
    FASTNN_CNN_CASE(1) FASTNN_CNN_CASE(2) FASTNN_CNN_CASE(3) FASTNN_CNN_CASE(4) FASTNN_CNN_CASE(5)
#undef FASTNN_CNN_CASE
    default: break;
    }
}

/* dbuf (n samples of the layer's input layout, zeroed by the caller) += the gradient of every patch. */
static void FN(fastnn_cnn_backprop)(const fastnn_cnn_layer *g, ptrdiff_t n, const T *dz, ptrdiff_t ldz, const T *WT,
                                    T *dbuf, const ptrdiff_t *arow) {
    enum { R = FASTNN_CNN_DX_ROWS };
    ptrdiff_t t, n0, ms[R];
    int r;
    /* samples outer: the buffer rows of a block's samples stay in L1 while their positions go by */
    for (n0 = 0; n0 + R <= n; n0 += R)
        for (t = 0; t < g->l_out; ++t) {
            for (r = 0; r < R; ++r) ms[r] = (n0 + r) * g->l_out + t;
            FN(fastnn_cnn_dx_rows)(R, g, ms, dz, ldz, WT, dbuf, arow);
        }
    for (t = 0; t < g->l_out && n0 < n; ++t) {
        for (r = 0; r < n - n0; ++r) ms[r] = (n0 + r) * g->l_out + t;
        switch (n - n0) {
#define FASTNN_CNN_CASE(c) case c: if (R > c) FN(fastnn_cnn_dx_rows)(c, g, ms, dz, ldz, WT, dbuf, arow); break;
        FASTNN_CNN_CASE(1) FASTNN_CNN_CASE(2) FASTNN_CNN_CASE(3) FASTNN_CNN_CASE(4) FASTNN_CNN_CASE(5)
#undef FASTNN_CNN_CASE
        default: break;
        }
    }
}

/* ---- weight gradient: G[v][j][lane] (+)= sum_m patch(m)[j] dZ[m, v L + lane] ------------------------- */

FASTNN_INLINE void FN(fastnn_cnn_dw_block)(const int QR, const int NV, const fastnn_cnn_layer *g, ptrdiff_t j0,
        ptrdiff_t v0, ptrdiff_t m_lo, ptrdiff_t m_hi, int first, const T *in, const ptrdiff_t *arow, const T *dz,
        ptrdiff_t ldz, T *G) {
    enum { L = LANES };
    const ptrdiff_t pstride = g->depth * L;
    T *gp = G + v0 * pstride + j0 * L;
    V acc[6][6];
    ptrdiff_t m;
    int q, v;
    FASTNN_CNN_UNROLL for (q = 0; q < QR; ++q)
        FASTNN_CNN_UNROLL for (v = 0; v < NV; ++v)
            acc[q][v] = first ? (V){0} : FN(fastnn_cnn_load)(gp + v * pstride + q * L);
    for (m = m_lo; m < m_hi; ++m) {
        const T *a = in + arow[m] + j0;
        const T *d = dz + m * ldz + v0 * L;
        FASTNN_CNN_UNROLL for (q = 0; q < QR; ++q) {
            const T x = a[q];
            FASTNN_CNN_UNROLL for (v = 0; v < NV; ++v) acc[q][v] += x * FN(fastnn_cnn_load)(d + v * L);
        }
    }
    FASTNN_CNN_UNROLL for (q = 0; q < QR; ++q)
        FASTNN_CNN_UNROLL for (v = 0; v < NV; ++v) FN(fastnn_cnn_store)(gp + v * pstride + q * L, acc[q][v]);
}

FASTNN_INLINE void FN(fastnn_cnn_dw_panels)(const int QR, const fastnn_cnn_layer *g, ptrdiff_t j0, ptrdiff_t m_lo,
        ptrdiff_t m_hi, int first, const T *in, const ptrdiff_t *arow, const T *dz, ptrdiff_t ldz, T *G) {
    enum { NV = FASTNN_CNN_DW_PANELS };
    ptrdiff_t v0 = 0;
    for (; v0 + NV <= g->panels; v0 += NV) FN(fastnn_cnn_dw_block)(QR, NV, g, j0, v0, m_lo, m_hi, first, in, arow, dz, ldz, G);
    switch (g->panels - v0) {
#define FASTNN_CNN_CASE(c) case c: if (NV > c) FN(fastnn_cnn_dw_block)(QR, c, g, j0, v0, m_lo, m_hi, first, in, arow, dz, ldz, G); break;
    FASTNN_CNN_CASE(1) FASTNN_CNN_CASE(2) FASTNN_CNN_CASE(3) FASTNN_CNN_CASE(4) FASTNN_CNN_CASE(5)
#undef FASTNN_CNN_CASE
    default: break;
    }
}

/* G (the layer's weights in the panel layout) = patches^T dZ over `rows` rows, in chunks of rows
 * that stay in L1; gb (panels L) = the column sums of dZ. rows >= 1. */
static void FN(fastnn_cnn_weight_grad)(const fastnn_cnn_layer *g, ptrdiff_t rows, const T *in, const ptrdiff_t *arow,
                                       const T *dz, ptrdiff_t ldz, T *G, T *gb) {
    enum { Q = FASTNN_CNN_DW_ROWS };
    ptrdiff_t m_lo, m_hi, j0, m, j;
    for (m_lo = 0; m_lo < rows; m_lo = m_hi) {
        const int first = m_lo == 0;
        m_hi = m_lo + FASTNN_CNN_DW_CHUNK < rows ? m_lo + FASTNN_CNN_DW_CHUNK : rows;
        for (j0 = 0; j0 + Q <= g->depth; j0 += Q) FN(fastnn_cnn_dw_panels)(Q, g, j0, m_lo, m_hi, first, in, arow, dz, ldz, G);
        switch (g->depth - j0) {
#define FASTNN_CNN_CASE(c) case c: if (Q > c) FN(fastnn_cnn_dw_panels)(c, g, j0, m_lo, m_hi, first, in, arow, dz, ldz, G); break;
        FASTNN_CNN_CASE(1) FASTNN_CNN_CASE(2) FASTNN_CNN_CASE(3) FASTNN_CNN_CASE(4) FASTNN_CNN_CASE(5)
#undef FASTNN_CNN_CASE
        default: break;
        }
    }
    for (j = 0; j < ldz; ++j) gb[j] = dz[j];
    for (m = 1; m < rows; ++m)
        for (j = 0; j < ldz; ++j) gb[j] += dz[m * ldz + j];
}

/* ---- the pieces between the products ------------------------------------------------------------- */

/* dz[m, :c] = D[orow[m] + :c] * (H[orow[m] + :c] > 0): the gradient through the ReLU (a product, as
 * the reference: inf * 0 is NaN). Padded lanes of dz are never written (zero). */
static void FN(fastnn_cnn_relu_grad)(ptrdiff_t rows, ptrdiff_t c, const T *D, const T *H, const ptrdiff_t *orow,
                                     T *dz, ptrdiff_t ldz) {
    ptrdiff_t m, j;
    for (m = 0; m < rows; ++m) {
        const T *d = D + orow[m], *h = H + orow[m];
        T *out = dz + m * ldz;
        for (j = 0; j < c; ++j) out[j] = d[j] * (T)(h[j] > 0);
    }
}

/* Softmax cross-entropy of n rows of logits Z (first c columns, row stride ld): returns the summed
 * loss (in T, as the reference's np.sum), adds the correct argmaxes (first maximum) to *n_correct and
 * writes D = (softmax(Z) - onehot(y)) / n, as the reference: e / sum(e), minus 1, divided by n. */
static T FN(fastnn_cnn_softmax_ce)(const T *Z, ptrdiff_t ld, const int64_t *y, const int64_t *rows, ptrdiff_t n,
                                   ptrdiff_t c, T *D, ptrdiff_t *n_correct) {
    const T nn = (T)n;
    T total = 0;
    ptrdiff_t i, j, best;
    for (i = 0; i < n; ++i) {
        const T *z = Z + i * ld;
        T *d = D + i * ld;
        const int64_t label = y[rows[i]];
        T top = z[0], s = 0;
        best = 0;
        for (j = 1; j < c; ++j)
            if (z[j] > top) { top = z[j]; best = j; }
        for (j = 0; j < c; ++j) {
            const T e = sizeof(T) == 4 ? (T)fastnn_expf((float)(z[j] - top)) : (T)fastnn_exp((double)(z[j] - top));
            d[j] = e;
            s = s + e;
        }
        total = total + ((sizeof(T) == 4 ? (T)logf((float)s) : (T)log((double)s)) - (z[label] - top));
        *n_correct += best == label;
        for (j = 0; j < c; ++j) d[j] = d[j] / s;
        d[label] = d[label] - 1;
        for (j = 0; j < c; ++j) d[j] = d[j] / nn;
    }
    return total;
}

/* Update `count` (a multiple of L) elements of P and their state with gradient G. */
FASTNN_INLINE void FN(fastnn_cnn_update_span)(const int KIND, const int DECAY, ptrdiff_t count, const T *G, T *P,
                                              T *S0, T *S1, const COEF *k) {
    ptrdiff_t i;
#if FASTNN_CNN_VECTORS
    for (i = 0; i < count; i += LANES)
        FASTNN_CNN_CAT(fastnn_vupdate, S)(KIND, DECAY, FN(fastnn_cnn_load)(G + i), P + i, S0 + i, S1 + i, k);
#else
    for (i = 0; i < count; ++i) FASTNN_CNN_CAT(fastnn_update_one, S)(KIND, DECAY, G[i], P + i, S0 + i, S1 + i, k);
#endif
}

static void FN(fastnn_cnn_update)(int kind, int decay, ptrdiff_t count, const T *G, T *P, T *S0, T *S1, const COEF *k) {
    switch (kind * 2 + (decay != 0)) {
    case 0: FN(fastnn_cnn_update_span)(0, 0, count, G, P, S0, S1, k); break;
    case 1: FN(fastnn_cnn_update_span)(0, 1, count, G, P, S0, S1, k); break;
    case 4: FN(fastnn_cnn_update_span)(2, 0, count, G, P, S0, S1, k); break;
    case 5: FN(fastnn_cnn_update_span)(2, 1, count, G, P, S0, S1, k); break;
    case 6: FN(fastnn_cnn_update_span)(3, 0, count, G, P, S0, S1, k); break;
    case 7: FN(fastnn_cnn_update_span)(3, 1, count, G, P, S0, S1, k); break;
    default: break;  /* kinds the epoch never uses */
    }
}

/* ---- layouts ------------------------------------------------------------------------------------- */

/* Wp / bp (working layout) from the layer's weights W[o, c, k] = src[o src_o + c src_c + k src_k] and
 * biases bsrc (c_out); padded lanes zero. */
static void FN(fastnn_cnn_pack)(const fastnn_cnn_layer *g, const T *src, const T *bsrc, T *Wp, T *bp) {
    enum { L = LANES };
    ptrdiff_t v, j, lane;
    for (v = 0; v < g->panels; ++v)
        for (j = 0; j < g->depth; ++j) {
            const ptrdiff_t k = j / g->c_in, c = j % g->c_in;
            for (lane = 0; lane < L; ++lane) {
                const ptrdiff_t o = v * L + lane;
                Wp[(v * g->depth + j) * L + lane] = o < g->c_out ? src[o * g->src_o + c * g->src_c + k * g->src_k] : (T)0;
            }
        }
    for (j = 0; j < g->panels * L; ++j) bp[j] = j < g->c_out ? bsrc[j] : (T)0;
}

static void FN(fastnn_cnn_unpack)(const fastnn_cnn_layer *g, const T *Wp, const T *bp, T *dst, T *bdst) {
    enum { L = LANES };
    ptrdiff_t o, j;
    for (o = 0; o < g->c_out; ++o)
        for (j = 0; j < g->depth; ++j)
            dst[o * g->src_o + (j % g->c_in) * g->src_c + (j / g->c_in) * g->src_k] = Wp[((o / L) * g->depth + j) * L + o % L];
    for (o = 0; o < g->c_out; ++o) bdst[o] = bp[o];
}

/* WT[o, j] = W[j, o] for o < c_out, j < depth (the rest of each row stays zero). */
static void FN(fastnn_cnn_transpose)(const fastnn_cnn_layer *g, const T *Wp, T *WT) {
    enum { L = LANES };
    ptrdiff_t o, j;
    for (o = 0; o < g->c_out; ++o) {
        const T *src = Wp + (o / L) * g->depth * L + o % L;
        T *dst = WT + o * g->depth_p;
        for (j = 0; j < g->depth; ++j) dst[j] = src[j * L];
    }
}

/* ---- the forward pass of a batch (the epoch's and inference's) ---------------------------------- */

/* Examples rows[0 .. n) of X (rows NULL: first .. first + n) channels-last into the first buffer
 * (inside its padding), then every layer's forward: the logits end in the head's output buffer. */
static void FN(fastnn_cnn_forward_batch)(const fastnn_cnn_net *net, const T *X, const int64_t *rows, ptrdiff_t first,
        ptrdiff_t n, const T *P, T *scratch) {
    const fastnn_cnn_layer *layers = net->layers;
    const ptrdiff_t ci = net->c_in, li = net->l_in;
    T *h0 = scratch + layers[0].h_off + net->pad0 * ci;
    ptrdiff_t i, t, c, l;
    for (i = 0; i < n; ++i) {
        const T *src = X + (rows ? rows[i] : first + i) * ci * li;
        T *dst = h0 + i * layers[0].in_sample;
        for (t = 0; t < li; ++t)
            for (c = 0; c < ci; ++c) dst[t * ci + c] = src[c * li + t];
    }
    for (l = 0; l < net->n_layers; ++l) {
        const fastnn_cnn_layer *g = &layers[l];
        FN(fastnn_cnn_forward)(g, n * g->l_out, scratch + g->h_off, net->index + g->arow_off, P + g->w_off,
                               P + g->b_off, scratch + g->out_off, net->index + g->orow_off);
    }
}

/* Inference: out[first:stop] (row stride n_classes) = the logits of X[first:stop], chunk examples
 * at a time (chunk: the rows_max the net was planned for), with this worker's scratch. */
static void FN(fastnn_cnn_infer)(const fastnn_cnn_net *net, const T *X, ptrdiff_t first, ptrdiff_t stop,
        ptrdiff_t chunk, const T *P, T *scratch, T *out) {
    enum { L = LANES };
    const fastnn_cnn_layer *head = &net->layers[net->n_layers - 1];
    const T *logits = scratch + head->out_off;
    const ptrdiff_t ld = head->panels * L, c = net->n_classes;
    ptrdiff_t start, n, i, j;
    for (start = first; start < stop; start += n) {
        n = chunk < stop - start ? chunk : stop - start;
        FN(fastnn_cnn_forward_batch)(net, X, NULL, start, n, P, scratch);
        for (i = 0; i < n; ++i)
            for (j = 0; j < c; ++j) out[(start + i) * c + j] = logits[i * ld + j];
    }
}

/* ---- the epoch --------------------------------------------------------------------------------- */

/* One epoch over X[order] (X (N, c_in, l_in) C order) in batches; P, S0, S1 in the working layout
 * (S1 = S0 unless Adam), G and WT scratch of their layouts (WT's padding zero), `scratch` the
 * buffers (padding zero). kind: FASTNN_SGD_PLAIN, FASTNN_SGD_MOMENTUM or FASTNN_ADAM; hyper the
 * training_ref array. Returns the loss sum; *n_correct and *n_batches as the reference. */
static double FN(fastnn_cnn_epoch)(const fastnn_cnn_net *net, const T *X, const int64_t *y, const int64_t *order,
        ptrdiff_t n_steps, ptrdiff_t batch_size, T *P, T *S0, T *S1, T *G, T *WT, T *scratch, int kind,
        const double *hyper, ptrdiff_t step, ptrdiff_t *n_correct, ptrdiff_t *n_batches) {
    enum { L = LANES };
    const fastnn_cnn_layer *layers = net->layers, *head = &net->layers[net->n_layers - 1];
    const ptrdiff_t *index = net->index;
    const int decay = hyper[5] != 0;
    double coef[FASTNN_N_COEF], loss_sum = 0;
    ptrdiff_t start = 0, n, l;
    T batch_loss;
    COEF k;
    coef[FASTNN_C_LR] = hyper[0];
    coef[FASTNN_C_MOMENTUM] = hyper[1];
    coef[FASTNN_C_BETA1] = hyper[2];
    coef[FASTNN_C_BETA2] = hyper[3];
    coef[FASTNN_C_EPS] = hyper[4];
    coef[FASTNN_C_WD2] = 2.0 * hyper[5];
    coef[FASTNN_C_STEP_SIZE] = 0;
    coef[FASTNN_C_C2] = 1;
    *n_correct = 0;
    *n_batches = 0;
    for (l = 0; l < net->n_layers; ++l)
        if (layers[l].d_off >= 0) FN(fastnn_cnn_transpose)(&layers[l], P + layers[l].w_off, WT + layers[l].wt_off);
    while (start < n_steps) {
        const int64_t *rows = order + start;
        ptrdiff_t correct_here = 0;
        n = batch_size < n_steps - start ? batch_size : n_steps - start;
        FN(fastnn_cnn_forward_batch)(net, X, rows, 0, n, P, scratch);
        batch_loss = FN(fastnn_cnn_softmax_ce)(scratch + head->out_off, head->panels * L, y, rows, n, net->n_classes,
                                               scratch + head->dz_off, &correct_here);
        loss_sum += (double)batch_loss;
        if (!isfinite(batch_loss)) break;
        *n_correct += correct_here;

        for (l = net->n_layers - 1; l >= 0; --l) {
            const fastnn_cnn_layer *g = &layers[l];
            const ptrdiff_t rows_l = n * g->l_out, ldz = g->panels * L;
            T *dz = scratch + g->dz_off;
            if (l < net->n_layers - 1)
                FN(fastnn_cnn_relu_grad)(rows_l, g->c_out, scratch + layers[l + 1].d_off, scratch + g->out_off,
                                         index + g->orow_off, dz, ldz);
            if (g->d_off >= 0) {
                memset(scratch + g->d_off, 0, (size_t)(n * g->in_sample) * sizeof(T));
                FN(fastnn_cnn_backprop)(g, n, dz, ldz, WT + g->wt_off, scratch + g->d_off, index + g->arow_off);
            }
            FN(fastnn_cnn_weight_grad)(g, rows_l, scratch + g->h_off, index + g->arow_off, dz, ldz, G + g->w_off,
                                       G + g->b_off);
        }

        *n_batches += 1;
        if (kind == FASTNN_ADAM) {
            const double tt = (double)(step + *n_batches);
            coef[FASTNN_C_STEP_SIZE] = hyper[0] / (1.0 - pow(hyper[2], tt));
            coef[FASTNN_C_C2] = sqrt(1.0 - pow(hyper[3], tt));
        }
        k = FASTNN_CNN_CAT(fastnn_coef_load, S)(coef);
        for (l = 0; l < net->n_layers; ++l) {
            const fastnn_cnn_layer *g = &layers[l];
            const ptrdiff_t nw = g->panels * g->depth * L, nb = g->panels * L;
            FN(fastnn_cnn_update)(kind, decay, nw, G + g->w_off, P + g->w_off, S0 + g->w_off, S1 + g->w_off, &k);
            FN(fastnn_cnn_update)(kind, 0, nb, G + g->b_off, P + g->b_off, S0 + g->b_off, S1 + g->b_off, &k);
            if (g->d_off >= 0) FN(fastnn_cnn_transpose)(g, P + g->w_off, WT + g->wt_off);
        }
        start += n;
    }
    return loss_sum;
}

#undef FN
#undef V
#undef LANES
#undef COEF
