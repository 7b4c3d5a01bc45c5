"""Numba training epoch of a small 1-D CNN (cnn1d_train_epoch): the whole epoch in one nogil call.

The arithmetic is fastnn.backends.cnn_training_ref's, batch for batch, in the arrays' dtype (the
scalars are cast to it first, as NumPy does with Python floats). Scratch is allocated once per call.
Per batch of n rows:

- the activations live in (C, n, L) layout, so that a conv layer's output (C_out, n L_out) from
  conv_numba.forward_product is the next layer's input as it is; each layer's im2col columns
  (conv_numba.im2col) are kept for its weight gradient;
- the flattened last activation (n, C L) feeds the linear head (training_numba._forward_layer),
  then training_numba._softmax_rows gives the loss, the correct count and d = (softmax - onehot) / n;
- backward: the head's gradients and the gradient of the last activation (ReLU-masked) from the
  old W, then for each conv layer from the last conv_numba.weight_grads and (except the first
  layer) conv_numba.input_grads, masked by the ReLU of the layer below;
- weight decay on the w_l and W, then one optimizer pass over the flat gradient
  (training_numba._bias_update on the whole vector: it holds the SGD / momentum / Adam updates
  without weight decay, which was added just before).
"""
import math

import numpy as np
from numba import njit

from .conv_numba import forward_product, im2col, input_grads, output_length, weight_grads
from .training_numba import (
    ADAM,
    ADAM_UPDATE,
    BETA1,
    BETA2,
    C_C2,
    C_LRC,
    C_N,
    C_ONE,
    C_TWO_WD,
    LEARNING_RATE,
    MOMENTUM,
    MOMENTUM_SGD,
    SGD_WRITING_V,
    SMALL_MATH,
    _bias_update,
    _forward_layer,
    _softmax_rows,
    optimizer_constants,
)

C_IN, L_IN, C_OUT, KERNEL, STRIDE, PADDING = range(6)


@njit(cache=True, nogil=True)
def _gather_input(X, order, start, n, h):
    """h[c, i, l] = X[order[start + i], c, l] for i < n; h (C, n, L)."""
    channels, _, length = h.shape
    for i in range(n):
        r = order[start + i]
        for c in range(channels):
            for l in range(length):
                h[c, i, l] = X[r, c, l]


@njit(cache=True, nogil=True, fastmath=SMALL_MATH, error_model="numpy")
def _relu(z, zero):
    """z = max(z, 0) in place (NaN stays NaN, as np.maximum)."""
    for j in range(z.shape[0]):
        z[j] = zero if z[j] < zero else z[j]


@njit(cache=True, nogil=True, fastmath=SMALL_MATH, error_model="numpy")
def _relu_mask(d, h, one, zero):
    """d *= (h > 0) in place, as a multiplication (NaN or inf times 0 stays NaN, as in the reference)."""
    for j in range(d.shape[0]):
        d[j] = d[j] * (one if h[j] > zero else zero)


@njit(cache=True, nogil=True)
def _flatten(h, feats):
    """feats[i, c L + t] = h[c, i, t] (PyTorch's view(N, -1) of the (N, C, L) activation)."""
    channels, n, length = h.shape
    for i in range(n):
        for c in range(channels):
            for t in range(length):
                feats[i, c * length + t] = h[c, i, t]


@njit(cache=True, nogil=True, fastmath=SMALL_MATH, error_model="numpy")
def _head_backward(feats, W, d, n, h, dW, db, dh, one, zero):
    """dW = feats[:n].T @ d[:n], db = d[:n].sum(0), and dh[c, i, t] = (d W.T)[i, c L + t] (h[c, i, t] > 0).

    W is the head's weight before the update; h (C, n, L) the last conv activation, dh its gradient.
    """
    features, n_classes = W.shape
    channels, _, length = h.shape
    for f in range(features):
        for j in range(n_classes):
            dW[f, j] = zero
    for j in range(n_classes):
        db[j] = zero
    for i in range(n):
        for j in range(n_classes):
            db[j] += d[i, j]
        for f in range(features):
            a = feats[i, f]
            for j in range(n_classes):
                dW[f, j] += a * d[i, j]
    for c in range(channels):
        for i in range(n):
            for t in range(length):
                f = c * length + t
                s = d[i, 0] * W[f, 0]
                for j in range(1, n_classes):
                    s += d[i, j] * W[f, j]
                dh[c, i, t] = s * (one if h[c, i, t] > zero else zero)


@njit(cache=True, nogil=True)
def _geometry(conv, n_classes):
    """(l_out, w_at, b_at): every conv layer's output length; where each layer's weights and biases
    start in the flat vector (index n_conv: the head's)."""
    n_conv = conv.shape[0]
    l_out = np.empty(n_conv, np.int64)
    w_at = np.empty(n_conv + 1, np.int64)
    b_at = np.empty(n_conv + 1, np.int64)
    start = 0
    for l in range(n_conv):
        l_out[l] = output_length(conv[l, L_IN], conv[l, KERNEL], conv[l, STRIDE], conv[l, PADDING])
        w_at[l] = start
        b_at[l] = start + conv[l, C_OUT] * conv[l, C_IN] * conv[l, KERNEL]
        start = b_at[l] + conv[l, C_OUT]
    w_at[n_conv] = start
    b_at[n_conv] = start + conv[n_conv - 1, C_OUT] * l_out[n_conv - 1] * n_classes
    return l_out, w_at, b_at


@njit(cache=True, nogil=True)
def _param_views(params, conv, n_classes, l_out, w_at, b_at):
    """(Ws, bs, W_head, b_head): views into the flat vector, w_l as (C_out, C_in K), W_head (features, classes)."""
    n_conv = conv.shape[0]
    Ws = [params[w_at[l]:b_at[l]].reshape((conv[l, C_OUT], conv[l, C_IN] * conv[l, KERNEL])) for l in range(n_conv)]
    bs = [params[b_at[l]:b_at[l] + conv[l, C_OUT]] for l in range(n_conv)]
    W_head = params[w_at[n_conv]:b_at[n_conv]].reshape((-1, n_classes))
    b_head = params[b_at[n_conv]:b_at[n_conv] + n_classes]
    return Ws, bs, W_head, b_head


@njit(cache=True, nogil=True)
def _forward_scratch(conv, n_classes, l_out, B, dtype):
    """(H, cols, feats, logits): the forward pass's buffers for up to B examples (see cnn1d_train_epoch)."""
    n_conv = conv.shape[0]
    features = conv[n_conv - 1, C_OUT] * l_out[n_conv - 1]
    H = [np.empty(conv[l, C_IN] * B * conv[l, L_IN], dtype) for l in range(n_conv)]
    H.append(np.empty(features * B, dtype))
    cols = [np.empty(conv[l, C_IN] * conv[l, KERNEL] * B * l_out[l], dtype) for l in range(n_conv)]
    return H, cols, np.empty((B, features), dtype), np.empty((B, n_classes), dtype)


@njit(cache=True, nogil=True, error_model="numpy")
def _forward_batch(X, order, s, n, conv, l_out, H, cols, feats, logits, Ws, bs, W_head, b_head, zero):
    """The forward pass of examples X[order[s:s + n]]: the activations into H (C, n, L) layout, the
    im2col columns into cols, the flattened last activation into feats[:n], the logits into logits[:n]."""
    n_conv = conv.shape[0]
    h = H[0][:conv[0, C_IN] * n * conv[0, L_IN]].reshape((conv[0, C_IN], n, conv[0, L_IN]))
    _gather_input(X, order, s, n, h)
    for l in range(n_conv):
        k = conv[l, KERNEL]
        m = n * l_out[l]
        h = H[l][:conv[l, C_IN] * n * conv[l, L_IN]].reshape((conv[l, C_IN], n, conv[l, L_IN]))
        cl = cols[l][:conv[l, C_IN] * k * m].reshape((conv[l, C_IN] * k, m))
        im2col(h, 0, n, k, conv[l, STRIDE], conv[l, PADDING], cl)
        z = H[l + 1][:conv[l, C_OUT] * m]
        forward_product(Ws[l], bs[l], cl, l_out[l], z.reshape((conv[l, C_OUT], m)))
        _relu(z, zero)
    last_c = conv[n_conv - 1, C_OUT]
    last_l = l_out[n_conv - 1]
    _flatten(H[n_conv][:last_c * last_l * n].reshape((last_c, n, last_l)), feats)
    _forward_layer(feats, W_head, b_head, n, logits)


# Inference: examples per chunk (their activations and im2col columns stay in L2).
FORWARD_CHUNK = 64


@njit(cache=True, nogil=True, error_model="numpy")
def _cnn_forward_rows(X, conv, n_classes, params, out, first, stop, chunk):
    """out[first:stop] = the logits of X[first:stop], chunk examples at a time (scratch of its own)."""
    order = np.arange(first, stop)
    l_out, w_at, b_at = _geometry(conv, n_classes)
    Ws, bs, W_head, b_head = _param_views(params, conv, n_classes, l_out, w_at, b_at)
    H, cols, feats, logits = _forward_scratch(conv, n_classes, l_out, chunk, params.dtype)
    zero = np.zeros(1, params.dtype)[0]
    for s in range(first, stop, chunk):
        n = min(chunk, stop - s)
        _forward_batch(X, order, s - first, n, conv, l_out, H, cols, feats, logits, Ws, bs, W_head, b_head, zero)
        for i in range(n):
            for j in range(n_classes):
                out[s + i, j] = logits[i, j]


def cnn1d_forward(X, conv, n_classes, params, out):
    """out (N, n_classes) = the logits for X (N, C_in, L_in) (cnn_training_ref.cnn1d_forward): the
    epoch's _forward_batch over chunks of FORWARD_CHUNK examples on this thread (GIL-free:
    fastnn.backends._compiled.rows_on_threads runs ranges of examples on several)."""
    _cnn_forward_rows(X, conv, n_classes, params, out, 0, X.shape[0], FORWARD_CHUNK)


@njit(cache=True, nogil=True, error_model="numpy")
def cnn1d_train_epoch(X, y, order, conv, n_classes, batch_size, params, optimizer, state, step, hyper):
    """One epoch (see fastnn.backends.cnn_training_ref.cnn1d_train_epoch); params and state updated in place.

    X (N, C_in, L_in) float32/64; y (N,) int64; order (M,) int64; conv (n_conv, 6) int64 rows
    (C_in, L_in, C_out, K, stride, padding); params (P,), state (2, P) of X's dtype; hyper (6,) float64.
    Returns (loss_sum, n_correct, n_batches).
    """
    n_conv = conv.shape[0]
    n_order = order.shape[0]
    B = min(batch_size, n_order)
    dtype = params.dtype
    l_out, w_at, b_at = _geometry(conv, n_classes)
    n_params = b_at[n_conv] + n_classes
    last_c = conv[n_conv - 1, C_OUT]
    last_l = l_out[n_conv - 1]
    features = last_c * last_l

    grads = np.empty(n_params, dtype)
    Ws, bs, W_head, b_head = _param_views(params, conv, n_classes, l_out, w_at, b_at)
    dWs, dbs, dW_head, db_head = _param_views(grads, conv, n_classes, l_out, w_at, b_at)

    # scratch, flat, viewed per batch: activations H[l] (C, n, L) (H[0] the input, H[l + 1] layer l's
    # ReLU output), im2col columns, gradients dZ[l] of layer l's output (C_out, n L_out)
    H, cols, feats, logits = _forward_scratch(conv, n_classes, l_out, B, dtype)
    dZ = [np.empty(conv[l, C_OUT] * B * l_out[l], dtype) for l in range(n_conv)]
    longest = 1
    for l in range(n_conv):
        longest = max(longest, B * l_out[l])
    rows = np.empty((2, longest), dtype)
    dlogits = np.empty((B, n_classes), dtype)
    row_loss = np.empty(B, dtype)
    g = np.empty(n_params, dtype)
    grads2 = grads.reshape((1, n_params))

    c = optimizer_constants(hyper, params)
    one = c[C_ONE]
    zero = c[0]
    two_wd = c[C_TWO_WD]
    if optimizer == ADAM:
        mode = ADAM_UPDATE
    elif hyper[MOMENTUM] != 0.0:
        mode = MOMENTUM_SGD
    else:
        mode = SGD_WRITING_V  # v = 0 v + g = g

    loss_sum = 0.0
    n_correct = 0
    n_batches = 0
    s = 0
    while s < n_order:
        n = min(B, n_order - s)
        _forward_batch(X, order, s, n, conv, l_out, H, cols, feats, logits, Ws, bs, W_head, b_head, zero)
        h_last = H[n_conv][:features * n].reshape((last_c, n, last_l))
        c[C_N] = n
        batch_correct = _softmax_rows(logits, y, order, s, n, dlogits, c, row_loss)
        batch_loss = row_loss[0]
        for i in range(1, n):
            batch_loss += row_loss[i]
        loss_sum += float(batch_loss)
        if not math.isfinite(batch_loss):
            break
        n_correct += batch_correct

        d = dZ[n_conv - 1][:features * n].reshape((last_c, n, last_l))
        _head_backward(feats, W_head, dlogits, n, h_last, dW_head, db_head, d, one, zero)
        for l in range(n_conv - 1, -1, -1):
            k = conv[l, KERNEL]
            m = n * l_out[l]
            cl = cols[l][:conv[l, C_IN] * k * m].reshape((conv[l, C_IN] * k, m))
            dz = dZ[l][:conv[l, C_OUT] * m].reshape((conv[l, C_OUT], m))
            weight_grads(dz, cl, l_out[l], dWs[l], dbs[l], False)
            if l > 0:
                size = conv[l, C_IN] * n * conv[l, L_IN]
                dh = dZ[l - 1][:size]
                dh[:] = zero
                input_grads(Ws[l], dz, l_out[l], k, conv[l, STRIDE], conv[l, PADDING], 0,
                            dh.reshape((conv[l, C_IN], n, conv[l, L_IN])), rows)
                _relu_mask(dh, H[l][:size], one, zero)
        if two_wd != zero:
            for l in range(n_conv + 1):
                for j in range(w_at[l], b_at[l]):
                    grads[j] += two_wd * params[j]
        if mode == ADAM_UPDATE:
            t = float(step + n_batches + 1)
            c[C_LRC] = hyper[LEARNING_RATE] / (1.0 - hyper[BETA1] ** t)
            c[C_C2] = math.sqrt(1.0 - hyper[BETA2] ** t)
        _bias_update(params, state[0], state[1], grads2, 1, mode, c, g)
        n_batches += 1
        s += n
    return loss_sum, n_correct, n_batches
