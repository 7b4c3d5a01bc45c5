# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""One training epoch of a small 1-D CNN in a single GIL-free call (fastnn.cnn1d_train_epoch).

The arithmetic is fastnn.backends.cnn_training_ref's, batch for batch, in the arrays' dtype; the
kernels and the layouts are cnn_epoch.h's (channels-last activations with zero padding, so every
im2col patch is a contiguous run; the linear head run as one more conv layer spanning the whole
last activation). This module lays out the buffers, allocates everything once per call, packs
params and state into the working layout, runs the epoch and unpacks.
"""
from cython cimport floating
from libc.stdint cimport int64_t
from libc.stdlib cimport calloc, free, malloc

cdef extern from "cnn_epoch.h" nogil:
    enum:
        FASTNN_SGD_PLAIN
        FASTNN_SGD_MOMENTUM
        FASTNN_ADAM
        FASTNN_CNN_LANES_f32
        FASTNN_CNN_LANES_f64
    ctypedef struct fastnn_cnn_layer:
        Py_ssize_t c_in, c_out, kernel, stride, l_out, relu
        Py_ssize_t depth, depth_p, panels
        Py_ssize_t in_sample, out_sample
        Py_ssize_t w_off, b_off, wt_off
        Py_ssize_t h_off, d_off, out_off, dz_off
        Py_ssize_t arow_off, orow_off
        Py_ssize_t src_o, src_c, src_k
    ctypedef struct fastnn_cnn_net:
        Py_ssize_t n_layers, c_in, l_in, pad0
        Py_ssize_t n_classes
        const fastnn_cnn_layer* layers
        const Py_ssize_t* index
    void fastnn_cnn_pack_f32(const fastnn_cnn_layer* g, const float* src, const float* bsrc, float* Wp, float* bp)
    void fastnn_cnn_pack_f64(const fastnn_cnn_layer* g, const double* src, const double* bsrc, double* Wp,
                             double* bp)
    void fastnn_cnn_unpack_f32(const fastnn_cnn_layer* g, const float* Wp, const float* bp, float* dst, float* bdst)
    void fastnn_cnn_unpack_f64(const fastnn_cnn_layer* g, const double* Wp, const double* bp, double* dst,
                               double* bdst)
    void fastnn_cnn_infer_f32(const fastnn_cnn_net* net, const float* X, Py_ssize_t first, Py_ssize_t stop,
                              Py_ssize_t chunk, const float* P, float* scratch, float* out)
    void fastnn_cnn_infer_f64(const fastnn_cnn_net* net, const double* X, Py_ssize_t first, Py_ssize_t stop,
                              Py_ssize_t chunk, const double* P, double* scratch, double* out)
    double fastnn_cnn_epoch_f32(const fastnn_cnn_net* net, const float* X, const int64_t* y, const int64_t* order,
                                Py_ssize_t n_steps, Py_ssize_t batch_size, float* P, float* S0, float* S1, float* G,
                                float* WT, float* scratch, int kind, const double* hyper, Py_ssize_t step,
                                Py_ssize_t* n_correct, Py_ssize_t* n_batches)
    double fastnn_cnn_epoch_f64(const fastnn_cnn_net* net, const double* X, const int64_t* y, const int64_t* order,
                                Py_ssize_t n_steps, Py_ssize_t batch_size, double* P, double* S0, double* S1,
                                double* G, double* WT, double* scratch, int kind, const double* hyper,
                                Py_ssize_t step, Py_ssize_t* n_correct, Py_ssize_t* n_batches)

# training_ref's optimizer codes and hyper layout; cnn_training_ref's conv row layout.
cdef enum:
    SGD = 0
    ADAM = 1
    H_MOMENTUM = 1
    C_IN = 0
    L_IN = 1
    C_OUT = 2
    KERNEL = 3
    STRIDE = 4
    PADDING = 5


cdef inline Py_ssize_t lanes(floating dummy) noexcept nogil:
    if floating is float:
        return FASTNN_CNN_LANES_f32
    else:
        return FASTNN_CNN_LANES_f64


cdef inline Py_ssize_t round_up(Py_ssize_t value, Py_ssize_t multiple) noexcept nogil:
    return (value + multiple - 1) // multiple * multiple


cdef inline void* aligned(void* block) noexcept nogil:
    """The first 64-byte boundary in a block allocated with 64 spare bytes."""
    return <void*>((<size_t>block + 63) & ~(<size_t>63))


cdef inline void cpu_pack(const fastnn_cnn_layer* g, const floating* w, const floating* b, floating* work,
                          Py_ssize_t L) noexcept nogil:
    if floating is float:
        fastnn_cnn_pack_f32(g, w, b, &work[g.w_off], &work[g.b_off])
    else:
        fastnn_cnn_pack_f64(g, w, b, &work[g.w_off], &work[g.b_off])


cdef inline void cpu_unpack(const fastnn_cnn_layer* g, const floating* work, floating* w, floating* b) noexcept nogil:
    if floating is float:
        fastnn_cnn_unpack_f32(g, &work[g.w_off], &work[g.b_off], w, b)
    else:
        fastnn_cnn_unpack_f64(g, &work[g.w_off], &work[g.b_off], w, b)


cdef void plan(const int64_t[:, ::1] conv, Py_ssize_t n_classes, Py_ssize_t rows_max, Py_ssize_t L,
               Py_ssize_t align, fastnn_cnn_layer* layers, Py_ssize_t* totals) noexcept nogil:
    """Fill layers[0 .. n_conv] (the head last) and totals = (work, wt, scratch, index) element counts."""
    cdef Py_ssize_t n_conv = conv.shape[0], l, work = 0, wt = 0, scratch = 0, index = 0
    cdef Py_ssize_t lp, c_last, l_last
    cdef fastnn_cnn_layer* g
    for l in range(n_conv + 1):
        g = &layers[l]
        if l < n_conv:
            g.c_in = conv[l, C_IN]
            g.c_out = conv[l, C_OUT]
            g.kernel = conv[l, KERNEL]
            g.stride = conv[l, STRIDE]
            lp = conv[l, L_IN] + 2 * conv[l, PADDING]
            g.l_out = (lp - g.kernel) // g.stride + 1
            g.relu = 1
            g.in_sample = lp * g.c_in
            g.src_o, g.src_c, g.src_k = g.c_in * g.kernel, g.kernel, 1
        else:  # the head: one window over the whole last activation (t, c), W (c L_last + t, class)
            c_last, l_last = layers[l - 1].c_out, layers[l - 1].l_out
            g.c_in, g.c_out, g.kernel, g.stride, g.l_out, g.relu = c_last, n_classes, l_last, 1, 1, 0
            g.in_sample = l_last * c_last
            g.src_o, g.src_c, g.src_k = 1, l_last * n_classes, n_classes
        g.depth = g.kernel * g.c_in
        g.depth_p = round_up(g.depth, L)
        g.panels = (g.c_out + L - 1) // L
        g.w_off = work
        work += round_up(g.panels * g.depth * L, align)
        g.b_off = work
        work += round_up(g.panels * L, align)
        g.wt_off = wt
        wt += round_up(g.c_out * g.depth_p, align)
        g.h_off = scratch
        scratch += round_up(rows_max * g.in_sample, align)
        if l > 0:
            g.d_off = scratch
            scratch += round_up(rows_max * g.in_sample, align)
        else:
            g.d_off = -1
        g.dz_off = scratch
        scratch += round_up(rows_max * g.l_out * g.panels * L, align)
        g.arow_off = index
        g.orow_off = index + rows_max * g.l_out
        index += 2 * rows_max * g.l_out
    for l in range(n_conv + 1):  # every output goes to the next input buffer; the head's to the logits
        g = &layers[l]
        if l < n_conv:
            g.out_off = layers[l + 1].h_off
            g.out_sample = layers[l + 1].in_sample
        else:
            g.out_off = scratch
            g.out_sample = g.panels * L
            scratch += round_up(rows_max * g.out_sample, align)
    totals[0], totals[1], totals[2], totals[3] = work, wt, scratch, index


cdef void fill_index(const int64_t[:, ::1] conv, Py_ssize_t rows_max, const fastnn_cnn_layer* layers,
                     Py_ssize_t* index) noexcept nogil:
    """Per layer and row m = n L_out + t: arow (patch start in the input buffer), orow (output start)."""
    cdef Py_ssize_t n_conv = conv.shape[0], l, m, n, t, next_pad, next_cs
    cdef const fastnn_cnn_layer* g
    for l in range(n_conv + 1):
        g = &layers[l]
        if l + 1 < n_conv:
            next_pad, next_cs = conv[l + 1, PADDING], g.c_out
        elif l + 1 == n_conv:
            next_pad, next_cs = 0, g.c_out
        else:
            next_pad, next_cs = 0, g.out_sample
        for m in range(rows_max * g.l_out):
            n = m // g.l_out
            t = m % g.l_out
            index[g.arow_off + m] = n * g.in_sample + t * g.stride * g.c_in
            index[g.orow_off + m] = n * g.out_sample + (next_pad + t) * next_cs


def cnn1d_train_epoch(const floating[:, :, ::1] X, const int64_t[::1] y, const int64_t[::1] order,
                      const int64_t[:, ::1] conv, Py_ssize_t n_classes, Py_ssize_t batch_size, floating[::1] params,
                      int optimizer, floating[:, ::1] state, Py_ssize_t step, const double[::1] hyper):
    """One epoch over X[order] in batches of batch_size; params and state updated in place.

    X (N, C_in, L_in); conv (n_conv, 6) rows (C_in, L_in, C_out, K, stride, padding); params (P,),
    state (2, P) in cnn_training_ref's layout. Returns (loss_sum, n_correct, n_batches) as
    fastnn.backends.cnn_training_ref.cnn1d_train_epoch.
    """
    cdef Py_ssize_t n_conv = conv.shape[0], n_steps = order.shape[0], l, off = 0
    cdef Py_ssize_t rows_max = max(1, min(batch_size, n_steps)), L = lanes(<floating>0)
    cdef Py_ssize_t align = 64 // sizeof(floating)
    cdef Py_ssize_t totals[4]
    cdef Py_ssize_t n_correct = 0, n_batches = 0
    cdef double loss_sum = 0
    cdef bint adam = optimizer == ADAM
    cdef int kind = FASTNN_ADAM if adam else (FASTNN_SGD_PLAIN if hyper[H_MOMENTUM] == 0 else FASTNN_SGD_MOMENTUM)
    cdef fastnn_cnn_net net
    cdef fastnn_cnn_layer* layers = <fastnn_cnn_layer*>calloc(n_conv + 1, sizeof(fastnn_cnn_layer))
    cdef Py_ssize_t* index = NULL
    cdef Py_ssize_t* param_off = NULL
    cdef void* work_block = NULL
    cdef void* scratch_block = NULL
    cdef floating* P
    cdef floating* S0
    cdef floating* S1
    cdef floating* G
    cdef floating* WT
    cdef floating* scratch
    cdef const fastnn_cnn_layer* g
    try:
        param_off = <Py_ssize_t*>malloc((n_conv + 1) * sizeof(Py_ssize_t))
        if layers == NULL or param_off == NULL:
            raise MemoryError()
        plan(conv, n_classes, rows_max, L, align, layers, totals)
        index = <Py_ssize_t*>malloc(max(1, totals[3]) * sizeof(Py_ssize_t))
        # P, S0, S1, G (work layout each), WT; then the buffers. calloc: every padding starts (and stays) zero.
        work_block = calloc((4 * totals[0] + totals[1]) * sizeof(floating) + 64, 1)
        scratch_block = calloc(totals[2] * sizeof(floating) + 64, 1)
        if index == NULL or work_block == NULL or scratch_block == NULL:
            raise MemoryError()
        P = <floating*>aligned(work_block)
        S0 = P + totals[0]
        S1 = S0 + totals[0]
        G = S1 + totals[0]
        WT = G + totals[0]
        scratch = <floating*>aligned(scratch_block)
        net.n_layers = n_conv + 1
        net.c_in = conv[0, C_IN]
        net.l_in = conv[0, L_IN]
        net.pad0 = conv[0, PADDING]
        net.n_classes = n_classes
        net.layers = layers
        net.index = index

        with nogil:
            fill_index(conv, rows_max, layers, index)
            for l in range(n_conv + 1):  # offsets of w_l in the flat vector: b_l follows w_l
                g = &layers[l]
                param_off[l] = off
                off += g.c_out * g.depth + g.c_out
            for l in range(n_conv + 1):
                g = &layers[l]
                off = param_off[l]
                cpu_pack(g, &params[off], &params[off + g.c_out * g.depth], P, L)
                cpu_pack(g, &state[0, off], &state[0, off + g.c_out * g.depth], S0, L)
                if adam:
                    cpu_pack(g, &state[1, off], &state[1, off + g.c_out * g.depth], S1, L)
            if floating is float:
                loss_sum = fastnn_cnn_epoch_f32(&net, &X[0, 0, 0], &y[0], &order[0] if n_steps else NULL, n_steps,
                                                batch_size, P, S0, S1, G, WT, scratch, kind, &hyper[0], step,
                                                &n_correct, &n_batches)
            else:
                loss_sum = fastnn_cnn_epoch_f64(&net, &X[0, 0, 0], &y[0], &order[0] if n_steps else NULL, n_steps,
                                                batch_size, P, S0, S1, G, WT, scratch, kind, &hyper[0], step,
                                                &n_correct, &n_batches)
            for l in range(n_conv + 1):
                g = &layers[l]
                off = param_off[l]
                cpu_unpack(g, P, &params[off], &params[off + g.c_out * g.depth])
                cpu_unpack(g, S0, &state[0, off], &state[0, off + g.c_out * g.depth])
                if adam:
                    cpu_unpack(g, S1, &state[1, off], &state[1, off + g.c_out * g.depth])
    finally:
        free(layers)
        free(index)
        free(param_off)
        free(work_block)
        free(scratch_block)
    return loss_sum, n_correct, n_batches


# Inference: examples per chunk (a chunk's buffers stay in L2).
cdef Py_ssize_t FORWARD_CHUNK = 64


cdef inline void cpu_infer(const fastnn_cnn_net* net, const floating* X, Py_ssize_t first, Py_ssize_t stop,
                           const floating* P, floating* scratch, floating* out) noexcept nogil:
    if floating is float:
        fastnn_cnn_infer_f32(net, X, first, stop, FORWARD_CHUNK, P, scratch, out)
    else:
        fastnn_cnn_infer_f64(net, X, first, stop, FORWARD_CHUNK, P, scratch, out)


def cnn1d_forward(const floating[:, :, ::1] X, const int64_t[:, ::1] conv, Py_ssize_t n_classes,
                  const floating[::1] params, floating[:, ::1] out):
    """out (N, n_classes) = the logits for X (N, C_in, L_in) (fastnn.backends.cnn_training_ref.cnn1d_forward).

    The epoch's forward pass (fastnn_cnn_forward_batch) over chunks of FORWARD_CHUNK examples, the
    weights packed once. One thread, without the GIL (fastnn.backends._compiled.rows_on_threads runs
    ranges of examples on several).
    """
    cdef Py_ssize_t n_conv = conv.shape[0], N = X.shape[0], l, off = 0
    cdef Py_ssize_t L = lanes(<floating>0), align = 64 // sizeof(floating)
    cdef Py_ssize_t totals[4]
    cdef fastnn_cnn_net net
    cdef fastnn_cnn_layer* layers = <fastnn_cnn_layer*>calloc(n_conv + 1, sizeof(fastnn_cnn_layer))
    cdef Py_ssize_t* index = NULL
    cdef void* work_block = NULL
    cdef void* scratch_block = NULL
    cdef floating* P
    cdef floating* scratch
    cdef const fastnn_cnn_layer* g
    try:
        if layers == NULL:
            raise MemoryError()
        plan(conv, n_classes, FORWARD_CHUNK, L, align, layers, totals)
        index = <Py_ssize_t*>malloc(max(1, totals[3]) * sizeof(Py_ssize_t))
        work_block = calloc(totals[0] * sizeof(floating) + 64, 1)
        scratch_block = calloc(totals[2] * sizeof(floating) + 64, 1)  # padding zero, as the epoch's
        if index == NULL or work_block == NULL or scratch_block == NULL:
            raise MemoryError()
        P = <floating*>aligned(work_block)
        scratch = <floating*>aligned(scratch_block)
        net.n_layers = n_conv + 1
        net.c_in = conv[0, C_IN]
        net.l_in = conv[0, L_IN]
        net.pad0 = conv[0, PADDING]
        net.n_classes = n_classes
        net.layers = layers
        net.index = index
        with nogil:
            fill_index(conv, FORWARD_CHUNK, layers, index)
            for l in range(n_conv + 1):
                g = &layers[l]
                cpu_pack(g, &params[off], &params[off + g.c_out * g.depth], P, L)
                off += g.c_out * g.depth + g.c_out
            cpu_infer(&net, &X[0, 0, 0], 0, N, P, scratch, &out[0, 0])
    finally:
        free(layers)
        free(index)
        free(work_block)
        free(scratch_block)
