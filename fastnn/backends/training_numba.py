"""Numba training epoch of a dense network (mlp_train_epoch): the whole epoch in one nogil call.

The arithmetic is fastnn.backends.training_ref's, batch for batch, in the arrays' dtype (float32
stays float32: every scalar is first cast to that dtype, as NumPy does with Python floats; no
float64 literal may meet a float32 loop, so scalars are read out of a small array of the params'
dtype). Scratch is allocated once per call. Per batch of n rows (n small: the point of the kernel):

- forward: z_l = h_l W_l + b_l streams W_l once, eight rows at a time, each group adding its terms
  to every row of the small (n, d_out) output, which stays in L1; the inner loops run over
  contiguous columns so that LLVM vectorizes them.
- loss, argmax and d = (softmax - onehot) / n row by row (few classes: scalar math.exp).
- backward, for each layer from the last: the gradient flowing to the layer below, from the old
  W_l (for a narrow W_l through a transposed copy), then one pass over the rows of W_l fused with
  the optimizer: row k's gradient h_l[:, k]^T d is summed in registers over the batch's last five
  rows (the rows before, if any, are summed into a small buffer first; a batch of one row has
  loops of its own) and applied to W_l[k] and its state at once. No flat gradient vector is
  written and read back.
- plain SGD (momentum 0, no weight decay) does not write v = g every batch: each layer's gradient
  is h_l^T d_l, so the rows of the last applied batch are kept (two scratch sets, swapped every
  batch) and v is computed from them at the end by the same loops (the same numbers).

Numba cannot tell LLVM that two arrays do not overlap, so every vectorized loop is preceded by
run-time overlap checks; LLVM gives up beyond a few pointers, which shapes the loops below (Adam's
update is split in two passes). Arrays passed to a function inside a hot loop cost reference
counting there, even when the function is inlined, so the innermost loops are written out.
"""
import math

import numpy as np
from numba import njit

# Reassociation (vectorized sums) and FMA contraction only: NaN and inf keep their meaning, which the
# divergence check (a non-finite batch loss) depends on. error_model="numpy": a float division by
# zero gives inf or NaN as in NumPy instead of raising, and lets LLVM vectorize loops that divide.
SMALL_MATH = {"reassoc", "contract"}

RELU, SIGMOID = 0, 1
SGD, ADAM = 0, 1
LEARNING_RATE, MOMENTUM, BETA1, BETA2, EPSILON, WEIGHT_DECAY = range(6)
# Slots of the typed constants array (params' dtype).
C_ZERO, C_ONE, C_N, C_LR, C_MOMENTUM, C_BETA1, C_BETA2, C_1MB1, C_1MB2, C_EPS, C_TWO_WD, C_LRC, C_C2 = range(13)
N_CONSTANTS = 13
# Update modes of _backward_layer and _bias_update.
PLAIN_SGD, SGD_WRITING_V, MOMENTUM_SGD, ADAM_UPDATE, STORE_GRADIENT = range(5)
# Layers with fewer outputs than this pass the gradient down through a transposed copy of W.
NARROW = 48


@njit(cache=True, nogil=True, fastmath=SMALL_MATH, error_model="numpy")
def _forward_layer(h, W, b, n, z):
    """z[:n] = h[:n] @ W + b; h (R, d_in), W (d_in, d_out), b (d_out,), z (R, d_out).

    W is streamed once, eight rows at a time: each group of eight rows of W adds its terms to every
    row of z (n small: z stays in L1), so z is loaded and stored once per eight products.
    """
    d_in, d_out = W.shape
    for i in range(n):
        for j in range(d_out):
            z[i, j] = b[j]
    k8 = d_in - d_in % 8
    for k in range(0, k8, 8):
        for i in range(n):
            a0 = h[i, k]
            a1 = h[i, k + 1]
            a2 = h[i, k + 2]
            a3 = h[i, k + 3]
            a4 = h[i, k + 4]
            a5 = h[i, k + 5]
            a6 = h[i, k + 6]
            a7 = h[i, k + 7]
            for j in range(d_out):
                z[i, j] += ((a0 * W[k, j] + a1 * W[k + 1, j] + a2 * W[k + 2, j] + a3 * W[k + 3, j])
                            + (a4 * W[k + 4, j] + a5 * W[k + 5, j] + a6 * W[k + 6, j] + a7 * W[k + 7, j]))
    for k in range(k8, d_in):
        for i in range(n):
            a = h[i, k]
            for j in range(d_out):
                z[i, j] += a * W[k, j]


@njit(cache=True, nogil=True)
def _gather_rows(X, order, start, n, x):
    """x[:n] = X[order[start:start + n]]."""
    for i in range(n):
        r = order[start + i]
        for k in range(X.shape[1]):
            x[i, k] = X[r, k]


@njit(cache=True, nogil=True, fastmath=SMALL_MATH, error_model="numpy")
def _activate(z, n, activation, one):
    """z[:n] = act(z[:n]) in place (np.maximum(z, 0) keeps NaN; sigmoid 1 / (1 + exp(-z)))."""
    d = z.shape[1]
    zero = one - one
    if activation == RELU:
        for i in range(n):
            for j in range(d):
                z[i, j] = zero if z[i, j] < zero else z[i, j]
    else:
        for i in range(n):
            for j in range(d):
                z[i, j] = one / (one + math.exp(-z[i, j]))


@njit(cache=True, nogil=True, error_model="numpy")
def _softmax_rows(z, y, order, start, n, d, c, row_loss):
    """Row losses into row_loss[:n] and d[:n] = (softmax(z) - onehot(y)) / n; returns the correct count."""
    n_classes = z.shape[1]
    n_correct = 0
    one = c[C_ONE]
    batch_n = c[C_N]
    for i in range(n):
        best = 0
        top = z[i, 0]
        for j in range(1, n_classes):
            if z[i, j] > top:
                top = z[i, j]
                best = j
        total = one - one
        for j in range(n_classes):
            e = math.exp(z[i, j] - top)
            d[i, j] = e
            total += e
        label = y[order[start + i]]
        row_loss[i] = math.log(total) - (z[i, label] - top)
        if best == label:
            n_correct += 1
        for j in range(n_classes):
            d[i, j] = d[i, j] / total
        d[i, label] -= one
        for j in range(n_classes):
            d[i, j] = d[i, j] / batch_n
    return n_correct


@njit(cache=True, nogil=True, fastmath=SMALL_MATH, error_model="numpy")
def _bias_update(b, s0, s1, d, n, mode, c, g):
    """db = 1^T d[:n] and the update of b (no weight decay on biases); modes as in _backward_layer."""
    d_out = b.shape[0]
    for j in range(d_out):
        g[j] = d[0, j]
    for i in range(1, n):
        for j in range(d_out):
            g[j] += d[i, j]
    lr = c[C_LR]
    if mode == PLAIN_SGD:
        for j in range(d_out):
            b[j] -= lr * g[j]
    elif mode == SGD_WRITING_V:
        for j in range(d_out):
            s0[j] = g[j]
            b[j] -= lr * g[j]
    elif mode == MOMENTUM_SGD:
        mom = c[C_MOMENTUM]
        for j in range(d_out):
            vj = mom * s0[j] + g[j]
            s0[j] = vj
            b[j] -= lr * vj
    elif mode == ADAM_UPDATE:
        b1 = c[C_BETA1]
        b2 = c[C_BETA2]
        a1 = c[C_1MB1]
        a2 = c[C_1MB2]
        lrc = c[C_LRC]
        c2 = c[C_C2]
        eps = c[C_EPS]
        for j in range(d_out):
            gj = g[j]
            mj = b1 * s0[j] + a1 * gj
            vj = b2 * s1[j] + a2 * (gj * gj)
            s0[j] = mj
            s1[j] = vj
            b[j] -= lrc * mj / (math.sqrt(vj) / c2 + eps)
    else:
        for j in range(d_out):
            s0[j] = g[j]


@njit(cache=True, nogil=True, fastmath=SMALL_MATH, error_model="numpy")
def _delta_through_narrow(W, WT, h, d, n, d_prev, activation, c):
    """d_prev[:n] = (d[:n] W^T) * act'(h[:n]) for a narrow W (few outputs), through WT = W^T.

    The dot products over W's short rows vectorize poorly; with W transposed (a cheap copy of a
    narrow matrix), each row of d_prev is a sum of d_out full-width rows of WT instead.
    """
    d_in, d_out = W.shape
    one = c[C_ONE]
    zero = c[C_ZERO]
    for k in range(d_in):
        for j in range(d_out):
            WT[j, k] = W[k, j]
    for i in range(n):
        a = d[i, 0]
        for k in range(d_in):
            d_prev[i, k] = a * WT[0, k]
        for j in range(1, d_out):
            a = d[i, j]
            for k in range(d_in):
                d_prev[i, k] += a * WT[j, k]
        if activation == RELU:
            for k in range(d_in):
                d_prev[i, k] = d_prev[i, k] * (one if h[i, k] > zero else zero)
        else:
            for k in range(d_in):
                hik = h[i, k]
                d_prev[i, k] = d_prev[i, k] * (hik * (one - hik))


@njit(cache=True, nogil=True, fastmath=SMALL_MATH, error_model="numpy")
def _delta_through_wide(W, h, d, n, d_prev, activation, c):
    """d_prev[:n] = (d[:n] W^T) * act'(h[:n]): dot products of the rows of d and W (W streamed once)."""
    d_in, d_out = W.shape
    one = c[C_ONE]
    zero = c[C_ZERO]
    for k in range(d_in):
        for i in range(n):
            t = d[i, 0] * W[k, 0]
            for j in range(1, d_out):
                t += d[i, j] * W[k, j]
            hik = h[i, k]
            if activation == RELU:
                d_prev[i, k] = t * (one if hik > zero else zero)
            else:
                d_prev[i, k] = t * (hik * (one - hik))


@njit(cache=True, nogil=True, fastmath=SMALL_MATH, error_model="numpy")
def _backward_layer(W, S0, S1, h, d, n, mode, c, g):
    """The weights' gradient h[:n]^T d[:n] fused with their update, one pass over the rows of W.

    h (R, d_in) is the layer's input and d (R, d_out) the gradient of its output z, R >= 5, rows
    n..4 zero when n < 5. Row k's gradient: the batch's rows before the last five, if any, are
    summed into the buffer g (five rows per pass, then one by one); then one pass over W[k] adds
    the last five rows (in registers), 2 weight_decay W[k] (except in plain SGD) and applies the
    update. A batch of one row has loops of its own. The modes: PLAIN_SGD (no momentum, no weight
    decay; v is not written, see the module docstring), SGD_WRITING_V (v = g), MOMENTUM_SGD
    (velocity S0), ADAM_UPDATE (moments S0, S1; c[C_LRC] and c[C_C2] hold this update's
    learning_rate / (1 - beta1^t) and sqrt(1 - beta2^t)), STORE_GRADIENT (S0 = the gradient, W
    untouched).
    Weight decay 0 adds 0 * W[k, j] = 0 exactly: W is finite whenever an update runs (otherwise the
    logits, hence the loss, were not).
    """
    d_in, d_out = W.shape
    zero = c[C_ZERO]
    lr = c[C_LR]
    twd = c[C_TWO_WD]
    mom = c[C_MOMENTUM]
    b1 = c[C_BETA1]
    b2 = c[C_BETA2]
    a1b = c[C_1MB1]
    a2b = c[C_1MB2]
    lrc = c[C_LRC]
    c2 = c[C_C2]
    eps = c[C_EPS]
    if n == 1:  # a single row: its gradient h[0, k] d[0] needs no buffer, nor the four zero rows
        for k in range(d_in):
            a0 = h[0, k]
            if mode == PLAIN_SGD:
                for j in range(d_out):
                    W[k, j] -= lr * (a0 * d[0, j])
            elif mode == SGD_WRITING_V:
                for j in range(d_out):
                    gj = a0 * d[0, j] + twd * W[k, j]
                    S0[k, j] = gj
                    W[k, j] -= lr * gj
            elif mode == MOMENTUM_SGD:
                for j in range(d_out):
                    vj = mom * S0[k, j] + (a0 * d[0, j] + twd * W[k, j])
                    S0[k, j] = vj
                    W[k, j] -= lr * vj
            elif mode == ADAM_UPDATE:
                for j in range(d_out):
                    gj = a0 * d[0, j] + twd * W[k, j]
                    mj = b1 * S0[k, j] + a1b * gj
                    vj = b2 * S1[k, j] + a2b * (gj * gj)
                    S0[k, j] = mj
                    S1[k, j] = vj
                    W[k, j] -= lrc * mj / (math.sqrt(vj) / c2 + eps)
            else:
                for j in range(d_out):
                    S0[k, j] = a0 * d[0, j]
        return
    r = max(n - 5, 0)  # rows r..r+4 (zero rows past n when n < 5) go with the update
    r5 = r - r % 5
    if r == 0:
        for j in range(d_out):
            g[j] = zero
    for k in range(d_in):
        for i0 in range(0, r5, 5):
            a0 = h[i0, k]
            a1 = h[i0 + 1, k]
            a2 = h[i0 + 2, k]
            a3 = h[i0 + 3, k]
            a4 = h[i0 + 4, k]
            if i0 == 0:
                for j in range(d_out):
                    g[j] = ((a0 * d[i0, j] + a1 * d[i0 + 1, j]) + (a2 * d[i0 + 2, j] + a3 * d[i0 + 3, j])
                            + a4 * d[i0 + 4, j])
            else:
                for j in range(d_out):
                    g[j] += ((a0 * d[i0, j] + a1 * d[i0 + 1, j]) + (a2 * d[i0 + 2, j] + a3 * d[i0 + 3, j])
                             + a4 * d[i0 + 4, j])
        for i in range(r5, r):
            a0 = h[i, k]
            if i == 0:
                for j in range(d_out):
                    g[j] = a0 * d[i, j]
            else:
                for j in range(d_out):
                    g[j] += a0 * d[i, j]
        a0 = h[r, k]
        a1 = h[r + 1, k]
        a2 = h[r + 2, k]
        a3 = h[r + 3, k]
        a4 = h[r + 4, k]
        if mode == PLAIN_SGD:
            for j in range(d_out):
                gj = g[j] + ((a0 * d[r, j] + a1 * d[r + 1, j]) + (a2 * d[r + 2, j] + a3 * d[r + 3, j])
                             + a4 * d[r + 4, j])
                W[k, j] -= lr * gj
        elif mode == SGD_WRITING_V:
            for j in range(d_out):
                gj = g[j] + ((a0 * d[r, j] + a1 * d[r + 1, j]) + (a2 * d[r + 2, j] + a3 * d[r + 3, j])
                             + a4 * d[r + 4, j])
                gj += twd * W[k, j]
                S0[k, j] = gj
                W[k, j] -= lr * gj
        elif mode == MOMENTUM_SGD:
            for j in range(d_out):
                gj = g[j] + ((a0 * d[r, j] + a1 * d[r + 1, j]) + (a2 * d[r + 2, j] + a3 * d[r + 3, j])
                             + a4 * d[r + 4, j])
                gj += twd * W[k, j]
                vj = mom * S0[k, j] + gj
                S0[k, j] = vj
                W[k, j] -= lr * vj
        elif mode == ADAM_UPDATE:  # two passes: W, S0, S1, g and d in one loop are too many for LLVM
            for j in range(d_out):
                g[j] = (g[j] if r > 0 else zero) + ((a0 * d[r, j] + a1 * d[r + 1, j])
                                                    + (a2 * d[r + 2, j] + a3 * d[r + 3, j]) + a4 * d[r + 4, j])
            for j in range(d_out):
                gj = g[j] + twd * W[k, j]
                mj = b1 * S0[k, j] + a1b * gj
                vj = b2 * S1[k, j] + a2b * (gj * gj)
                S0[k, j] = mj
                S1[k, j] = vj
                W[k, j] -= lrc * mj / (math.sqrt(vj) / c2 + eps)
        else:
            for j in range(d_out):
                S0[k, j] = g[j] + ((a0 * d[r, j] + a1 * d[r + 1, j]) + (a2 * d[r + 2, j] + a3 * d[r + 3, j])
                                   + a4 * d[r + 4, j])


@njit(cache=True, nogil=True, fastmath=SMALL_MATH, error_model="numpy")
def _forward_layers(x, Hs, base, Ws, bs, n, activation, one):
    """The forward pass of n rows: Hs[base + l + 1][:n] = act(h_l[:n] @ Ws[l] + bs[l]) with h_0 = x and
    h_l = Hs[base + l] (activated in place when layer l reads it), the last (no activation) the logits."""
    _forward_layer(x, Ws[0], bs[0], n, Hs[base + 1])
    for l in range(1, len(Ws)):
        _activate(Hs[base + l], n, activation, one)
        _forward_layer(Hs[base + l], Ws[l], bs[l], n, Hs[base + l + 1])


@njit(cache=True, nogil=True)
def layer_views(params, sizes):
    """([W_0, ...], [b_0, ...]): views into the flat params, W_l (sizes[l], sizes[l+1])."""
    n_layers = sizes.shape[0] - 1
    Ws = []
    bs = []
    start = 0
    for l in range(n_layers):
        d_in, d_out = sizes[l], sizes[l + 1]
        Ws.append(params[start:start + d_in * d_out].reshape((d_in, d_out)))
        bs.append(params[start + d_in * d_out:start + (d_in + 1) * d_out])
        start += (d_in + 1) * d_out
    return Ws, bs


# Inference: rows per chunk such that a chunk's widest activation stays within this many bytes (in L1).
FORWARD_CHUNK_BYTES = 16384


@njit(cache=True, nogil=True)
def forward_chunk_rows(sizes, itemsize):
    """Rows per inference chunk: the widest layer output of a chunk in FORWARD_CHUNK_BYTES, 4 to 256 rows."""
    widest = 1
    for l in range(1, sizes.shape[0]):
        widest = max(widest, sizes[l])
    return max(4, min(256, FORWARD_CHUNK_BYTES // (widest * itemsize)))


@njit(cache=True, nogil=True, fastmath=SMALL_MATH, error_model="numpy")
def _mlp_forward_rows(X, sizes, activation, params, out, first, stop, chunk):
    """out[first:stop] = the logits of X[first:stop], chunk rows at a time (scratch of its own)."""
    n_layers = sizes.shape[0] - 1
    Ws, bs = layer_views(params, sizes)
    one = np.ones(1, params.dtype)[0]
    Hs = [np.empty((chunk, sizes[l]), params.dtype) for l in range(n_layers + 1)]
    n_classes = sizes[n_layers]
    logits = Hs[n_layers]
    for s in range(first, stop, chunk):
        n = min(chunk, stop - s)
        _forward_layers(X[s:s + n], Hs, 0, Ws, bs, n, activation, one)
        for i in range(n):
            for j in range(n_classes):
                out[s + i, j] = logits[i, j]


def mlp_forward(X, sizes, activation, params, out):
    """out (N, sizes[-1]) = the logits of the dense network for X (N, sizes[0]) (training_ref.mlp_forward).

    Chunks of forward_chunk_rows rows run _forward_layers, the epoch's forward pass, on this thread
    (GIL-free: fastnn.backends._compiled.rows_on_threads runs ranges of rows on several).
    """
    _mlp_forward_rows(X, sizes, activation, params, out, 0, X.shape[0], int(forward_chunk_rows(sizes, X.itemsize)))


@njit(cache=True, nogil=True)
def optimizer_constants(hyper, params):
    """The (N_CONSTANTS,) array of hyper (float64) numbers the update loops use, in the dtype of params."""
    c = np.zeros(N_CONSTANTS, params.dtype)
    c[C_ONE] = 1.0
    c[C_LR] = hyper[LEARNING_RATE]
    c[C_MOMENTUM] = hyper[MOMENTUM]
    c[C_BETA1] = hyper[BETA1]
    c[C_BETA2] = hyper[BETA2]
    c[C_1MB1] = 1.0 - hyper[BETA1]
    c[C_1MB2] = 1.0 - hyper[BETA2]
    c[C_EPS] = hyper[EPSILON]
    c[C_TWO_WD] = 2.0 * hyper[WEIGHT_DECAY]
    return c


@njit(cache=True, nogil=True, error_model="numpy")
def mlp_train_epoch(X, y, order, sizes, activation, batch_size, params, optimizer, state, step, hyper):
    """One epoch (see fastnn.backends.training_ref.mlp_train_epoch); params and state updated in place.

    Returns (loss_sum, n_correct, n_batches).
    """
    n_layers = sizes.shape[0] - 1
    n_order = order.shape[0]
    B = min(batch_size, n_order)
    w_start = np.empty(n_layers, np.int64)
    start = 0
    for l in range(n_layers):
        w_start[l] = start
        start += sizes[l] * sizes[l + 1] + sizes[l + 1]
    # views into the flat params and state rows: W_l (d_in, d_out) and b_l (d_out,) of each layer
    Ws = [params[w_start[l]:w_start[l] + sizes[l] * sizes[l + 1]].reshape((sizes[l], sizes[l + 1]))
          for l in range(n_layers)]
    bs = [params[w_start[l] + sizes[l] * sizes[l + 1]:w_start[l] + (sizes[l] + 1) * sizes[l + 1]]
          for l in range(n_layers)]
    s0, s1 = state[0], state[1]
    s0Ws = [s0[w_start[l]:w_start[l] + sizes[l] * sizes[l + 1]].reshape((sizes[l], sizes[l + 1]))
            for l in range(n_layers)]
    s0bs = [s0[w_start[l] + sizes[l] * sizes[l + 1]:w_start[l] + (sizes[l] + 1) * sizes[l + 1]]
            for l in range(n_layers)]
    s1Ws = [s1[w_start[l]:w_start[l] + sizes[l] * sizes[l + 1]].reshape((sizes[l], sizes[l + 1]))
            for l in range(n_layers)]
    s1bs = [s1[w_start[l] + sizes[l] * sizes[l + 1]:w_start[l] + (sizes[l] + 1) * sizes[l + 1]]
            for l in range(n_layers)]

    dtype = params.dtype
    c = optimizer_constants(hyper, params)
    if optimizer == ADAM:
        mode = ADAM_UPDATE
    elif hyper[MOMENTUM] != 0.0:
        mode = MOMENTUM_SGD
    elif hyper[WEIGHT_DECAY] != 0.0:
        mode = SGD_WRITING_V
    else:
        mode = PLAIN_SGD  # v = g of the last applied batch, stored at the end
    n_sets = 2 if mode == PLAIN_SGD else 1  # plain SGD keeps the last applied batch while trying the next
    # activations h_0 .. h_L (h_L: the logits) and deltas d_0 .. d_{L-1} (gradients of z_l), per set;
    # at least 5 rows, rows n..4 zero: the backward pass takes the batch's last rows five at a time
    R = max(B, 5)
    Hs = [np.zeros((R, sizes[t % (n_layers + 1)]), dtype) for t in range(n_sets * (n_layers + 1))]
    Ds = [np.zeros((R, sizes[t % n_layers + 1]), dtype) for t in range(n_sets * n_layers)]
    # W_l^T for the narrow layers above the first (empty for the others)
    WTs = [np.empty((sizes[l + 1], sizes[l]) if l > 0 and sizes[l + 1] < NARROW else (0, 0), dtype)
           for l in range(n_layers)]
    widest_out = 1
    for l in range(n_layers):
        widest_out = max(widest_out, sizes[l + 1])
    g = np.empty(widest_out, dtype)
    row_loss = np.empty(B, dtype)

    loss_sum = 0.0
    n_correct = 0
    n_batches = 0
    last_set = -1  # the scratch set holding the last applied batch (plain SGD)
    last_n = 0
    cur = 0
    s = 0
    while s < n_order:
        n = min(B, n_order - s)
        h_base = cur * (n_layers + 1)
        d_base = cur * n_layers
        if n < B:  # the last, shorter batch: clear the rows the previous batch of this set left
            for t in range(n_layers + 1):
                Hs[h_base + t][n:B] = 0.0
            for t in range(n_layers):
                Ds[d_base + t][n:B] = 0.0
        _gather_rows(X, order, s, n, Hs[h_base])
        _forward_layers(Hs[h_base], Hs, h_base, Ws, bs, n, activation, c[C_ONE])
        c[C_N] = n
        batch_correct = _softmax_rows(Hs[h_base + n_layers], y, order, s, n, Ds[d_base + n_layers - 1], c,
                                      row_loss)
        batch_loss = row_loss[0]
        for i in range(1, n):
            batch_loss += row_loss[i]
        loss_sum += float(batch_loss)
        if not math.isfinite(batch_loss):
            break
        n_correct += batch_correct
        if mode == ADAM_UPDATE:
            t = float(step + n_batches + 1)
            c[C_LRC] = hyper[LEARNING_RATE] / (1.0 - hyper[BETA1] ** t)
            c[C_C2] = math.sqrt(1.0 - hyper[BETA2] ** t)
        for l in range(n_layers - 1, -1, -1):
            h = Hs[h_base + l]
            d = Ds[d_base + l]
            if l > 0:  # the gradient flowing down, from the old W_l
                if sizes[l + 1] < NARROW:
                    _delta_through_narrow(Ws[l], WTs[l], h, d, n, Ds[d_base + l - 1], activation, c)
                else:
                    _delta_through_wide(Ws[l], h, d, n, Ds[d_base + l - 1], activation, c)
            _backward_layer(Ws[l], s0Ws[l], s1Ws[l], h, d, n, mode, c, g)
            _bias_update(bs[l], s0bs[l], s1bs[l], d, n, mode, c, g)
        n_batches += 1
        last_set = cur
        last_n = n
        cur = (cur + 1) % n_sets
        s += n
    if mode == PLAIN_SGD and last_set >= 0:
        mode = STORE_GRADIENT  # (a variable, not the constant: the same compiled functions as above)
        for l in range(n_layers):
            h = Hs[last_set * (n_layers + 1) + l]
            d = Ds[last_set * n_layers + l]
            _backward_layer(Ws[l], s0Ws[l], s1Ws[l], h, d, last_n, mode, c, g)
            _bias_update(bs[l], s0bs[l], s1bs[l], d, last_n, mode, c, g)
    return loss_sum, n_correct, n_batches
