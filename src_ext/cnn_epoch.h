/* The fused training epoch of a small 1-D CNN (fastnn, src_ext/_cnn_training.pyx).
 *
 * The network: conv layers, each followed by a ReLU, then a linear head. The head is run as one
 * more "conv" layer whose kernel spans the whole last activation (K = L_last, stride 1, no padding,
 * L_out = 1, no ReLU), so every layer goes through the same three products.
 *
 * Activations are kept channels-last, one buffer per layer input, (rows, lp, C) with lp = L + 2 pad
 * and the padding positions zero (written once, never touched again). Then the im2col patch of
 * output position t of sample n is the CONTIGUOUS run buf[n, t stride : t stride + K, :] of
 * depth = K C_in values, and with the weights reordered as (depth, C_out), j = k C_in + c:
 *
 *     forward  Z[m, :]   = patch(m) . W + b, ReLU          (rows m = n L_out + t; no im2col copy)
 *     dW[j, o]           = sum_m patch(m)[j] dZ[m, o]       (db: column sums of dZ)
 *     dX       dbuf[patch(m)] += dZ[m, :] . W^T             (col2im: contiguous adds; rows of one
 *                                                            block are distinct samples, never overlap)
 *
 * The working copy of the weights is in panels of L output channels (L = lanes of one vector):
 * Wp[v][j][lane] = W[j, v L + lane], padded lanes zero, which the forward and dW kernels stream;
 * the dX kernel reads a transposed copy WT (C_out, depth_p), rebuilt after every update. Gradients
 * are computed for all layers into a flat vector G of the working layout (no weight is updated
 * before every gradient of the batch exists), then one pass applies L2 and the optimizer.
 * dZ of a layer is (rows, panels L) row-major with zero padded lanes, so its padded lanes give
 * zero gradients and the padded lanes of the weights and of the optimizer state stay zero.
 *
 * Register blocks are fixed-size arrays indexed by loop counters that are compile-time constants
 * after inlining (mlp_epoch.h's style); other compilers get L = 1 and plain loops (same code).
 */
#ifndef FASTNN_CNN_EPOCH_H
#define FASTNN_CNN_EPOCH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mlp_epoch.h"

#if FASTNN_TR_VECTORS && !defined(FASTNN_CNN_SCALAR)
#define FASTNN_CNN_VECTORS 1
enum { FASTNN_CNN_LANES_f32 = FASTNN_TR_LANES_f32, FASTNN_CNN_LANES_f64 = FASTNN_TR_LANES_f64 };
typedef fastnn_tv_f32 fastnn_cv_f32;
typedef fastnn_tv_f64 fastnn_cv_f64;
typedef int32_t fastnn_cmask_f32 __attribute__((vector_size(FASTNN_TR_VECTOR_BYTES)));
typedef int64_t fastnn_cmask_f64 __attribute__((vector_size(FASTNN_TR_VECTOR_BYTES)));
#define FASTNN_CNN_UNROLL FASTNN_UNROLL
#else
#define FASTNN_CNN_VECTORS 0
enum { FASTNN_CNN_LANES_f32 = 1, FASTNN_CNN_LANES_f64 = 1 };
typedef float fastnn_cv_f32;
typedef double fastnn_cv_f64;
#define FASTNN_CNN_UNROLL
#endif

/* Rows of the patch/dZ matrices per cache chunk of the dW pass: dZ and the patches of a chunk stay in L1. */
#define FASTNN_CNN_DW_CHUNK 64
/* Register blocks (accumulators rows x vectors, at most 6 x 6): the accumulators, the vectors of one
 * step and a broadcast must fit in the 16 vector registers, or GCC spills the accumulators (3 x 4
 * did: 30% slower). Chosen by measurement on ConvBase at batch 100 (AVX2, Zen 3): forward 6 rows x
 * 2 panels, dX 3 samples x 3 vectors, dW 5 patch columns x 2 panels (75 = 15 x 5); 0.38 -> 0.36 ms
 * per float32 step against 6x2 / 2x5 / 6x2. -D them all to experiment. */
#ifndef FASTNN_CNN_FWD_ROWS
#define FASTNN_CNN_FWD_ROWS 6
#define FASTNN_CNN_FWD_PANELS 2
#define FASTNN_CNN_DX_ROWS 3
#define FASTNN_CNN_DX_VECTORS 3
#define FASTNN_CNN_DW_ROWS 5
#define FASTNN_CNN_DW_PANELS 2
#endif

/* One layer (the head included) of the epoch: geometry, where its pieces live. Offsets count
 * elements: w_off, b_off into the working parameters (and G, S0, S1, same layout), wt_off into
 * the transposed weights, the *_off of buffers into the scratch block, arow_off / orow_off into the
 * index block (per row m: offset of its patch in the input buffer, of its output in the output one). */
typedef struct {
    ptrdiff_t c_in, c_out, kernel, stride, l_out, relu;
    ptrdiff_t depth, depth_p, panels;   /* K c_in; depth rounded up to L; ceil(c_out / L) */
    ptrdiff_t in_sample;                /* elements per sample of the input buffer (lp c_in) */
    ptrdiff_t out_sample;               /* elements per sample of the output buffer */
    ptrdiff_t w_off, b_off, wt_off;
    ptrdiff_t h_off, d_off, out_off, dz_off;   /* input, its gradient (-1: none), output, dZ */
    ptrdiff_t arow_off, orow_off;
    /* Source strides of W[o, c, k] in the flat parameter vector (conv: C_in K, K, 1; head: 1, K n, n). */
    ptrdiff_t src_o, src_c, src_k;
} fastnn_cnn_layer;

/* The whole epoch: layers[0 .. n_layers) (the last is the head), the input geometry and scratch. */
typedef struct {
    ptrdiff_t n_layers, c_in, l_in, pad0;   /* X (N, c_in, l_in); padding of the first layer */
    ptrdiff_t n_classes;
    const fastnn_cnn_layer *layers;
    const ptrdiff_t *index;                 /* arow / orow arrays */
} fastnn_cnn_net;

#define FASTNN_CNN_CAT2(a, b) a##_##b
#define FASTNN_CNN_CAT(a, b) FASTNN_CNN_CAT2(a, b)

#define T float
#define S f32
#include "cnn_epoch_impl.h"
#undef T
#undef S

#define T double
#define S f64
#include "cnn_epoch_impl.h"
#undef T
#undef S

#endif  /* FASTNN_CNN_EPOCH_H */
