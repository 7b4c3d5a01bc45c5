# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""One training epoch of a dense network in a single GIL-free call (fastnn.mlp_train_epoch).

The arithmetic is fastnn.backends.training_ref's, batch for batch, in the arrays' dtype. Per batch:
the forward products read the batch's rows of X in place (row pointers, no gather) and run in the
register-blocked kernels of mlp_epoch.h; bias and activation follow row by row; softmax
cross-entropy, the loss and the argmax come from one pass over each row of logits. The backward
visits each layer from the last: first the gradient for the layer below, d W_l.T (with the W_l the
forward used) times the activation's derivative, then one pass over W_l that computes dW_l block
by block and applies the optimizer to each block while it is in registers, so no gradient array is
ever written. All scratch is allocated once per call.
"""
from cython cimport floating
from libc.math cimport isfinite, log, logf, pow, sqrt
from libc.stdint cimport int64_t
from libc.stdlib cimport calloc, free, malloc

from _vector_exp cimport vector_exp

cdef extern from "mlp_epoch.h" nogil:
    enum:
        FASTNN_SGD_PLAIN
        FASTNN_SGD_PLAIN_NO_VELOCITY
        FASTNN_SGD_MOMENTUM
        FASTNN_ADAM
        FASTNN_GRADIENT_ONLY
        FASTNN_C_LR
        FASTNN_C_MOMENTUM
        FASTNN_C_WD2
        FASTNN_C_BETA1
        FASTNN_C_BETA2
        FASTNN_C_STEP_SIZE
        FASTNN_C_C2
        FASTNN_C_EPS
        FASTNN_N_COEF
        FASTNN_TR_LANES_f32
        FASTNN_TR_LANES_f64
    void fastnn_mlp_pack_f32(const float* W, Py_ssize_t n_in, Py_ssize_t n_out, float* Wp)
    void fastnn_mlp_pack_f64(const double* W, Py_ssize_t n_in, Py_ssize_t n_out, double* Wp)
    void fastnn_mlp_unpack_f32(const float* Wp, Py_ssize_t n_in, Py_ssize_t n_out, float* W)
    void fastnn_mlp_unpack_f64(const double* Wp, Py_ssize_t n_in, Py_ssize_t n_out, double* W)
    void fastnn_mlp_forward_f32(Py_ssize_t rows, const float** A, Py_ssize_t depth, const float* Wp,
                                Py_ssize_t n_panels, float* C)
    void fastnn_mlp_forward_f64(Py_ssize_t rows, const double** A, Py_ssize_t depth, const double* Wp,
                                Py_ssize_t n_panels, double* C)
    void fastnn_mlp_backprop_f32(Py_ssize_t rows, const float* D, Py_ssize_t n_panels, const float* Wp,
                                 Py_ssize_t n_in, float* dX, Py_ssize_t ldx)
    void fastnn_mlp_backprop_f64(Py_ssize_t rows, const double* D, Py_ssize_t n_panels, const double* Wp,
                                 Py_ssize_t n_in, double* dX, Py_ssize_t ldx)
    void fastnn_mlp_update_f32(Py_ssize_t rows, const float** A, const float* D, Py_ssize_t n_in,
                               Py_ssize_t n_panels, float* Wp, float* S0, float* S1, int kind, int decay,
                               const double* coef)
    void fastnn_mlp_update_f64(Py_ssize_t rows, const double** A, const double* D, Py_ssize_t n_in,
                               Py_ssize_t n_panels, double* Wp, double* S0, double* S1, int kind, int decay,
                               const double* coef)
    void fastnn_mlp_update_bias_f32(Py_ssize_t rows, const float* D, Py_ssize_t n, float* b, float* S0, float* S1,
                                    float* g, int kind, const double* coef)
    void fastnn_mlp_update_bias_f64(Py_ssize_t rows, const double* D, Py_ssize_t n, double* b, double* S0,
                                    double* S1, double* g, int kind, const double* coef)

# Codes of training_ref (RELU, SIGMOID; SGD, ADAM) and the layout of its hyper array.
cdef enum:
    RELU = 0
    SIGMOID = 1
    SGD = 0
    ADAM = 1
    H_LEARNING_RATE = 0
    H_MOMENTUM = 1
    H_BETA1 = 2
    H_BETA2 = 3
    H_EPSILON = 4
    H_WEIGHT_DECAY = 5


cdef inline Py_ssize_t lanes(floating dummy) noexcept nogil:
    """Columns per panel of the working layout (one vector of the build's target)."""
    if floating is float:
        return FASTNN_TR_LANES_f32
    else:
        return FASTNN_TR_LANES_f64


cdef inline void cpu_pack(const floating* W, Py_ssize_t n_in, Py_ssize_t n_out, floating* Wp) noexcept nogil:
    if floating is float:
        fastnn_mlp_pack_f32(W, n_in, n_out, Wp)
    else:
        fastnn_mlp_pack_f64(W, n_in, n_out, Wp)


cdef inline void cpu_unpack(const floating* Wp, Py_ssize_t n_in, Py_ssize_t n_out, floating* W) noexcept nogil:
    if floating is float:
        fastnn_mlp_unpack_f32(Wp, n_in, n_out, W)
    else:
        fastnn_mlp_unpack_f64(Wp, n_in, n_out, W)


cdef inline void cpu_forward(Py_ssize_t rows, const floating** A, Py_ssize_t depth, const floating* Wp,
                             Py_ssize_t n_panels, floating* C) noexcept nogil:
    if floating is float:
        fastnn_mlp_forward_f32(rows, A, depth, Wp, n_panels, C)
    else:
        fastnn_mlp_forward_f64(rows, A, depth, Wp, n_panels, C)


cdef inline void cpu_backprop(Py_ssize_t rows, const floating* D, Py_ssize_t n_panels, const floating* Wp,
                              Py_ssize_t n_in, floating* dX, Py_ssize_t ldx) noexcept nogil:
    if floating is float:
        fastnn_mlp_backprop_f32(rows, D, n_panels, Wp, n_in, dX, ldx)
    else:
        fastnn_mlp_backprop_f64(rows, D, n_panels, Wp, n_in, dX, ldx)


cdef inline void cpu_update(Py_ssize_t rows, const floating** A, const floating* D, Py_ssize_t n_in,
                            Py_ssize_t n_panels, floating* Wp, floating* S0, floating* S1, int kind, int decay,
                            const double* coef) noexcept nogil:
    if floating is float:
        fastnn_mlp_update_f32(rows, A, D, n_in, n_panels, Wp, S0, S1, kind, decay, coef)
    else:
        fastnn_mlp_update_f64(rows, A, D, n_in, n_panels, Wp, S0, S1, kind, decay, coef)


cdef inline void cpu_update_bias(Py_ssize_t rows, const floating* D, Py_ssize_t n, floating* b, floating* S0,
                                 floating* S1, floating* g, int kind, const double* coef) noexcept nogil:
    if floating is float:
        fastnn_mlp_update_bias_f32(rows, D, n, b, S0, S1, g, kind, coef)
    else:
        fastnn_mlp_update_bias_f64(rows, D, n, b, S0, S1, g, kind, coef)


cdef inline void cpu_bias_activation__nd(floating* Z, Py_ssize_t ldz, const floating* b, Py_ssize_t n,
                                         Py_ssize_t d, int activation, bint hidden) noexcept nogil:
    """Z = act(Z + b) on the first d columns of n rows (act only for a hidden layer): np.maximum(z, 0)
    or 1 / (1 + exp(-z))."""
    cdef Py_ssize_t i, j
    cdef floating z
    cdef floating* row
    for i in range(n):
        row = &Z[i * ldz]
        if not hidden:
            for j in range(d):
                row[j] = row[j] + b[j]
        elif activation == RELU:
            for j in range(d):
                z = row[j] + b[j]
                row[j] = 0 if z < 0 else z
        else:
            for j in range(d):
                z = row[j] + b[j]
                row[j] = 1 / (1 + vector_exp(-z))


cdef inline void cpu_activation_grad__nd(floating* D, const floating* H, Py_ssize_t ld, Py_ssize_t n,
                                         Py_ssize_t d, int activation) noexcept nogil:
    """D *= act'(z) on the first d columns, written with h = act(z): (h > 0) for ReLU, h (1 - h) for
    the sigmoid. D and H share the row stride ld."""
    cdef Py_ssize_t i, j
    cdef floating* drow
    cdef const floating* hrow
    for i in range(n):
        drow = &D[i * ld]
        hrow = &H[i * ld]
        if activation == RELU:
            for j in range(d):
                drow[j] = drow[j] * <floating>(hrow[j] > 0)  # a product, as the reference: inf * 0 is NaN
        else:
            for j in range(d):
                drow[j] = drow[j] * (hrow[j] * (1 - hrow[j]))


cdef inline floating cpu_softmax_ce__nc(const floating* Z, Py_ssize_t ld, const int64_t* y, const int64_t* rows,
                                      Py_ssize_t n, Py_ssize_t c, floating* D, Py_ssize_t* n_correct) noexcept nogil:
    """Softmax cross-entropy of n rows of logits Z (first c columns, row stride ld).

    Returns the summed loss, summed in the arrays' type like the reference's np.sum (so it overflows
    where that does); adds the correct argmaxes (first maximum) to n_correct; writes
    D = (softmax(Z) - onehot(y)) / n (same stride) as the reference: e / sum(e), minus 1, divided by n.
    """
    cdef Py_ssize_t i, j, best
    cdef int64_t label
    cdef floating top, s, e, nn = <floating>n
    cdef const floating* z
    cdef floating* d
    cdef floating total = 0
    for i in range(n):
        z = &Z[i * ld]
        d = &D[i * ld]
        label = y[rows[i]]
        top = z[0]
        best = 0
        for j in range(1, c):
            if z[j] > top:
                top = z[j]
                best = j
        s = 0
        for j in range(c):
            e = vector_exp(<floating>(z[j] - top))
            d[j] = e
            s = s + e
        if floating is float:
            total = total + (logf(s) - (z[label] - top))
        else:
            total = total + (log(s) - (z[label] - top))
        n_correct[0] += best == label
        for j in range(c):
            d[j] = d[j] / s
        d[label] = d[label] - 1
        for j in range(c):
            d[j] = d[j] / nn
    return total


cdef inline void* aligned(void* block) noexcept nogil:
    """The first 64-byte boundary in a block allocated with 64 spare bytes."""
    return <void*>((<size_t>block + 63) & ~(<size_t>63))


cdef void plan(const int64_t* sizes, Py_ssize_t n_layers, Py_ssize_t rows_max, Py_ssize_t L, Py_ssize_t align,
               Py_ssize_t* panels, Py_ssize_t* work_total, Py_ssize_t* level_total, Py_ssize_t* pad_max) noexcept nogil:
    """The working layout of a dense network: per layer l, panels[l] (panels), padded = panels[1 + n + l]
    (padded width), w_off = panels[2 (n + 1) + l] (W_l in the flat params), wp_off, bp_off (W_l, b_l in the
    working copy) and out_off (the layer's output, rows_max x padded, in the levels buffer) likewise;
    adds the working copy's and the levels' element counts and the widest padded width to the totals."""
    cdef Py_ssize_t l, n_in, n_out, stride = n_layers + 1
    cdef Py_ssize_t* padded = panels + stride
    cdef Py_ssize_t* w_off = panels + 2 * stride
    cdef Py_ssize_t* wp_off = panels + 3 * stride
    cdef Py_ssize_t* bp_off = panels + 4 * stride
    cdef Py_ssize_t* out_off = panels + 5 * stride
    w_off[0] = 0
    for l in range(n_layers):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        panels[l] = (n_out + L - 1) // L
        padded[l] = panels[l] * L
        w_off[l + 1] = w_off[l] + n_in * n_out + n_out
        wp_off[l] = work_total[0]
        work_total[0] += (n_in * padded[l] + align - 1) // align * align
        bp_off[l] = work_total[0]
        work_total[0] += (padded[l] + align - 1) // align * align
        out_off[l] = level_total[0]
        level_total[0] += (rows_max * padded[l] + align - 1) // align * align
        pad_max[0] = max(pad_max[0], padded[l])


cdef void forward_layers(Py_ssize_t n, const floating** rows, Py_ssize_t rows_max, const int64_t* sizes,
                         Py_ssize_t n_layers, const floating* wp, const Py_ssize_t* panels, floating* lev,
                         int activation) noexcept nogil:
    """The forward pass of n rows: level l + 1 = act(level l @ W_l + b_l), the last level the logits.

    rows: the row pointers of every layer's input, rows_max per layer (the first layer's set by the
    caller, the others pointing into lev); wp: the working copy; panels: the layout from plan().
    """
    cdef Py_ssize_t l, stride = n_layers + 1
    cdef const Py_ssize_t* padded = panels + stride
    cdef const Py_ssize_t* wp_off = panels + 3 * stride
    cdef const Py_ssize_t* bp_off = panels + 4 * stride
    cdef const Py_ssize_t* out_off = panels + 5 * stride
    for l in range(n_layers):
        cpu_forward(n, &rows[l * rows_max], sizes[l], &wp[wp_off[l]], panels[l], &lev[out_off[l]])
        cpu_bias_activation__nd(&lev[out_off[l]], padded[l], &wp[bp_off[l]], n, sizes[l + 1], activation,
                                l < n_layers - 1)


# Inference: rows per chunk (the forward kernels take blocks of 6 rows; a chunk's levels stay in L1/L2).
cdef Py_ssize_t FORWARD_CHUNK = 48


cdef void forward_range(const floating* X, Py_ssize_t d_in, Py_ssize_t first, Py_ssize_t stop, const int64_t* sizes,
                        Py_ssize_t n_layers, const floating* wp, const Py_ssize_t* panels, floating* lev,
                        const floating** rows, int activation, floating* out) noexcept nogil:
    """out[first:stop] = the logits of X[first:stop] (rows of d_in), FORWARD_CHUNK rows at a time, with
    this worker's levels (lev) and row pointers (rows, FORWARD_CHUNK per layer, those of layers >= 1 set)."""
    cdef Py_ssize_t start, n, i, j, n_classes = sizes[n_layers], stride = n_layers + 1
    cdef Py_ssize_t ld = panels[stride + n_layers - 1]
    cdef const floating* logits = &lev[panels[5 * stride + n_layers - 1]]
    start = first
    while start < stop:
        n = min(FORWARD_CHUNK, stop - start)
        for i in range(n):
            rows[i] = &X[(start + i) * d_in]
        forward_layers(n, rows, FORWARD_CHUNK, sizes, n_layers, wp, panels, lev, activation)
        for i in range(n):
            for j in range(n_classes):
                out[(start + i) * n_classes + j] = logits[i * ld + j]
        start += n


def mlp_forward(const floating[:, ::1] X, const int64_t[::1] sizes, int activation, const floating[::1] params,
                floating[:, ::1] out):
    """out (N, sizes[-1]) = the logits of the dense network for X (fastnn.backends.training_ref.mlp_forward).

    The epoch's forward pass (forward_layers) over chunks of FORWARD_CHUNK rows, read in place through
    row pointers; the weights packed once into the working layout. One thread, without the GIL
    (fastnn.backends._compiled.rows_on_threads runs ranges of rows on several).
    """
    cdef Py_ssize_t n_layers = sizes.shape[0] - 1, N = X.shape[0], L = lanes(<floating>0)
    cdef Py_ssize_t ALIGN = 64 // sizeof(floating)
    cdef Py_ssize_t l, i, n_in, n_out, work_total = 0, level_total = 0, pad_max = 1
    cdef Py_ssize_t* panels = <Py_ssize_t*>malloc(6 * (n_layers + 1) * sizeof(Py_ssize_t))
    cdef Py_ssize_t* w_off
    cdef Py_ssize_t* wp_off
    cdef Py_ssize_t* bp_off
    cdef Py_ssize_t* out_off
    cdef const floating** row_ptr = NULL
    cdef void* work_block = NULL
    cdef void* level_block = NULL
    cdef floating* wp
    cdef floating* levels
    try:
        if panels == NULL:
            raise MemoryError()
        plan(&sizes[0], n_layers, FORWARD_CHUNK, L, ALIGN, panels, &work_total, &level_total, &pad_max)
        w_off = panels + 2 * (n_layers + 1)
        wp_off = panels + 3 * (n_layers + 1)
        bp_off = panels + 4 * (n_layers + 1)
        out_off = panels + 5 * (n_layers + 1)
        row_ptr = <const floating**>malloc(n_layers * FORWARD_CHUNK * sizeof(floating*))
        work_block = calloc(work_total * sizeof(floating) + 64, 1)
        level_block = calloc(level_total * sizeof(floating) + 64, 1)
        if row_ptr == NULL or work_block == NULL or level_block == NULL:
            raise MemoryError()
        wp = <floating*>aligned(work_block)
        levels = <floating*>aligned(level_block)
        with nogil:
            for l in range(n_layers):
                n_in = sizes[l]
                n_out = sizes[l + 1]
                cpu_pack(&params[w_off[l]], n_in, n_out, &wp[wp_off[l]])
                for i in range(n_out):
                    wp[bp_off[l] + i] = params[w_off[l] + n_in * n_out + i]
            for l in range(1, n_layers):
                for i in range(FORWARD_CHUNK):
                    row_ptr[l * FORWARD_CHUNK + i] = &levels[out_off[l - 1] + i * panels[n_layers + 1 + l - 1]]
            forward_range(&X[0, 0], X.shape[1], 0, N, &sizes[0], n_layers, wp, panels, levels, row_ptr, activation,
                          &out[0, 0])
    finally:
        free(panels)
        free(row_ptr)
        free(work_block)
        free(level_block)


def mlp_train_epoch(const floating[:, ::1] X, const int64_t[::1] y, const int64_t[::1] order,
                    const int64_t[::1] sizes, int activation, Py_ssize_t batch_size, floating[::1] params,
                    int optimizer, floating[:, ::1] state, Py_ssize_t step, const double[::1] hyper):
    """One epoch over X[order] in batches of batch_size; params and state updated in place.

    Returns (loss_sum, n_correct, n_batches) as fastnn.backends.training_ref.mlp_train_epoch.

    The epoch runs on a private copy of params and state in the panel layout of mlp_epoch.h, packed
    here and unpacked at the end (a few passes over P numbers, once per call). Plain SGD without
    weight decay does not write its velocity (= the last gradient) every batch: the last batch
    writes it, and when the epoch stops early the velocity is rebuilt from the previous batch's
    activations and deltas, which are kept (two sets of buffers, used in turn).
    """
    cdef Py_ssize_t n_layers = sizes.shape[0] - 1, n_steps = order.shape[0]
    cdef Py_ssize_t rows_max = min(batch_size, n_steps), L = lanes(<floating>0)
    cdef Py_ssize_t ALIGN = 64 // sizeof(floating)  # elements per 64 bytes
    cdef Py_ssize_t l, i, start, n, n_prev = 0, n_in, n_out, n_correct = 0, n_batches = 0, correct_here
    cdef Py_ssize_t work_total = 0, level_total = 0, pad_max = 1, cur = 0
    cdef double loss_sum = 0, batch_loss, beta1 = hyper[H_BETA1], beta2 = hyper[H_BETA2], t
    cdef double coef[FASTNN_N_COEF]
    cdef int kind, kind_last, decay = hyper[H_WEIGHT_DECAY] != 0
    cdef bint adam = optimizer == ADAM, defer_velocity
    cdef floating* wp
    cdef floating* ws0
    cdef floating* ws1

    # Per layer: panels, padded width, offsets of W_l in params, of W_l and b_l in the working copy, and
    # of the layer's output (rows_max x padded, row-major) in `levels` (its activations; the last layer's
    # logits) and in `deltas` (the gradient of the loss w.r.t. its pre-activation output).
    cdef Py_ssize_t* panels = <Py_ssize_t*>malloc(6 * (n_layers + 1) * sizeof(Py_ssize_t))
    cdef Py_ssize_t* padded = panels + (n_layers + 1)
    cdef Py_ssize_t* w_off = panels + 2 * (n_layers + 1)
    cdef Py_ssize_t* wp_off = panels + 3 * (n_layers + 1)
    cdef Py_ssize_t* bp_off = panels + 4 * (n_layers + 1)
    cdef Py_ssize_t* out_off = panels + 5 * (n_layers + 1)
    # Two sets (used in turn) of row pointers per level, levels and deltas.
    cdef const floating** row_ptr = <const floating**>malloc(2 * n_layers * rows_max * sizeof(floating*))
    cdef void* work_block = NULL
    cdef void* scratch_block = NULL
    cdef floating* levels[2]
    cdef floating* deltas[2]
    cdef floating* bias_grad
    cdef const floating** rows_cur
    cdef floating* lev
    cdef floating* dlt
    try:
        if panels == NULL or row_ptr == NULL:
            raise MemoryError()
        plan(&sizes[0], n_layers, rows_max, L, ALIGN, panels, &work_total, &level_total, &pad_max)
        # Working copy: params, state row 0, state row 1 (Adam only).
        work_block = calloc((3 if adam else 2) * work_total * sizeof(floating) + 64, 1)
        # Scratch, zeroed once (padded columns of the deltas stay zero): 2 x levels, 2 x deltas, bias grad.
        scratch_block = calloc((4 * level_total + pad_max) * sizeof(floating) + 64, 1)
        if work_block == NULL or scratch_block == NULL:
            raise MemoryError()
        wp = <floating*>aligned(work_block)
        ws0 = wp + work_total
        ws1 = ws0 + work_total if adam else ws0
        levels[0] = <floating*>aligned(scratch_block)
        levels[1] = levels[0] + level_total
        deltas[0] = levels[1] + level_total
        deltas[1] = deltas[0] + level_total
        bias_grad = deltas[1] + level_total
        for cur in range(2):
            for l in range(1, n_layers):
                for i in range(rows_max):
                    row_ptr[(cur * n_layers + l) * rows_max + i] = &levels[cur][out_off[l - 1] + i * padded[l - 1]]

        if adam:
            kind = FASTNN_ADAM
        elif hyper[H_MOMENTUM] == 0:
            kind = FASTNN_SGD_PLAIN
        else:
            kind = FASTNN_SGD_MOMENTUM
        defer_velocity = kind == FASTNN_SGD_PLAIN and not decay
        kind_last = kind
        if defer_velocity:
            kind = FASTNN_SGD_PLAIN_NO_VELOCITY
        coef[FASTNN_C_LR] = hyper[H_LEARNING_RATE]
        coef[FASTNN_C_MOMENTUM] = hyper[H_MOMENTUM]
        coef[FASTNN_C_WD2] = 2.0 * hyper[H_WEIGHT_DECAY]
        coef[FASTNN_C_BETA1] = beta1
        coef[FASTNN_C_BETA2] = beta2
        coef[FASTNN_C_EPS] = hyper[H_EPSILON]
        coef[FASTNN_C_STEP_SIZE] = 0
        coef[FASTNN_C_C2] = 1

        with nogil:
            for l in range(n_layers):
                n_in = sizes[l]
                n_out = sizes[l + 1]
                cpu_pack(&params[w_off[l]], n_in, n_out, &wp[wp_off[l]])
                cpu_pack(&state[0, w_off[l]], n_in, n_out, &ws0[wp_off[l]])
                for i in range(n_out):
                    wp[bp_off[l] + i] = params[w_off[l] + n_in * n_out + i]
                    ws0[bp_off[l] + i] = state[0, w_off[l] + n_in * n_out + i]
                if adam:
                    cpu_pack(&state[1, w_off[l]], n_in, n_out, &ws1[wp_off[l]])
                    for i in range(n_out):
                        ws1[bp_off[l] + i] = state[1, w_off[l] + n_in * n_out + i]

            start = 0
            cur = 0
            while start < n_steps:
                n = min(batch_size, n_steps - start)
                rows_cur = &row_ptr[cur * n_layers * rows_max]
                lev = levels[cur]
                dlt = deltas[cur]
                for i in range(n):
                    rows_cur[i] = &X[order[start + i], 0]
                forward_layers(n, rows_cur, rows_max, &sizes[0], n_layers, wp, panels, lev, activation)
                correct_here = 0
                batch_loss = cpu_softmax_ce__nc(&lev[out_off[n_layers - 1]], padded[n_layers - 1], &y[0],
                                                &order[start], n, sizes[n_layers], &dlt[out_off[n_layers - 1]],
                                                &correct_here)
                loss_sum += batch_loss
                if not isfinite(batch_loss):
                    break
                n_correct += correct_here
                if adam:
                    t = <double>(step + n_batches + 1)
                    coef[FASTNN_C_STEP_SIZE] = hyper[H_LEARNING_RATE] / (1.0 - pow(beta1, t))
                    coef[FASTNN_C_C2] = sqrt(1.0 - pow(beta2, t))
                if start + n >= n_steps:
                    kind = kind_last
                # Backward and update, from the last layer; the gradient for the layer below first,
                # with W_l before its update.
                for l in range(n_layers - 1, -1, -1):
                    if l > 0:
                        cpu_backprop(n, &dlt[out_off[l]], panels[l], &wp[wp_off[l]], sizes[l],
                                     &dlt[out_off[l - 1]], padded[l - 1])
                        cpu_activation_grad__nd(&dlt[out_off[l - 1]], &lev[out_off[l - 1]], padded[l - 1],
                                                n, sizes[l], activation)
                    cpu_update(n, &rows_cur[l * rows_max], &dlt[out_off[l]], sizes[l], panels[l],
                               &wp[wp_off[l]], &ws0[wp_off[l]], &ws1[wp_off[l]], kind, decay, coef)
                    cpu_update_bias(n, &dlt[out_off[l]], padded[l], &wp[bp_off[l]], &ws0[bp_off[l]],
                                    &ws1[bp_off[l]], bias_grad, kind, coef)
                n_batches += 1
                n_prev = n
                start += n
                cur = 1 - cur

            if defer_velocity and start < n_steps and n_batches > 0:
                # Stopped early: the velocity is the gradient of the last applied batch (the other set).
                rows_cur = &row_ptr[(1 - cur) * n_layers * rows_max]
                dlt = deltas[1 - cur]
                for l in range(n_layers):
                    cpu_update(n_prev, &rows_cur[l * rows_max], &dlt[out_off[l]], sizes[l], panels[l],
                               &wp[wp_off[l]], &ws0[wp_off[l]], &ws1[wp_off[l]], FASTNN_GRADIENT_ONLY, 0, coef)
                    cpu_update_bias(n_prev, &dlt[out_off[l]], padded[l], &wp[bp_off[l]], &ws0[bp_off[l]],
                                    &ws1[bp_off[l]], bias_grad, FASTNN_GRADIENT_ONLY, coef)

            for l in range(n_layers):
                n_in = sizes[l]
                n_out = sizes[l + 1]
                cpu_unpack(&wp[wp_off[l]], n_in, n_out, &params[w_off[l]])
                cpu_unpack(&ws0[wp_off[l]], n_in, n_out, &state[0, w_off[l]])
                for i in range(n_out):
                    params[w_off[l] + n_in * n_out + i] = wp[bp_off[l] + i]
                    state[0, w_off[l] + n_in * n_out + i] = ws0[bp_off[l] + i]
                if adam:
                    cpu_unpack(&ws1[wp_off[l]], n_in, n_out, &state[1, w_off[l]])
                    for i in range(n_out):
                        state[1, w_off[l] + n_in * n_out + i] = ws1[bp_off[l] + i]
    finally:
        free(panels)
        free(row_ptr)
        free(work_block)
        free(scratch_block)
    return loss_sum, n_correct, n_batches
