"""Reference training epoch of a small 1-D CNN (the MNIST-1D ConvBase family): plain NumPy, to be read.

The network: conv layers, each followed by a ReLU, then the last activation (C, L) flattened in
C order (index c * L + t, PyTorch's view(N, -1)) into a linear head whose outputs are the logits of
a softmax cross-entropy. The geometry is one int64 row per conv layer,

    conv[l] = (C_in, L_in, C_out, K, stride, padding),  L_out = (L_in + 2 padding - K) // stride + 1

with conv[0] matching X (N, C_in, L_in) and conv[l + 1][:2] = (C_out, L_out) of conv[l]. All
parameters live in one flat vector, layer after layer: w_l (C_out, C_in, K) then b_l (C_out,),
then the head's W (C_last * L_last, n_classes) then b (n_classes,); the optimizer state is (2, P)
as for fastnn.backends.training_ref, whose loss, L2 (on the w_l and W, not the biases) and
optimizer updates are used unchanged. Every gradient comes from the weights before the update;
the epoch stops, unapplied, at the first batch whose loss is not finite.
"""
import math

import numpy as np

from .conv_ref import conv1d_backward, conv1d_forward, output_length
from .training_ref import WEIGHT_DECAY, add_weight_decay, optimizer_update, softmax_cross_entropy_batch

C_IN, L_IN, C_OUT, KERNEL, STRIDE, PADDING = range(6)


def parameter_offsets(conv, n_classes):
    """[(weight_start, bias_start, bias_stop), ...] for every conv layer and then the head."""
    shapes = [(row[C_OUT] * row[C_IN] * row[KERNEL], row[C_OUT]) for row in conv]
    last = conv[-1]
    features = last[C_OUT] * output_length(last[L_IN], last[KERNEL], last[STRIDE], last[PADDING])
    shapes.append((features * n_classes, n_classes))
    offsets, start = [], 0
    for n_weights, n_biases in shapes:
        offsets.append((start, start + n_weights, start + n_weights + n_biases))
        start += n_weights + n_biases
    return offsets


def n_parameters(conv, n_classes):
    """P, the length of the flat parameter vector."""
    return parameter_offsets(conv, n_classes)[-1][2]


def parameter_views(params, conv, n_classes):
    """[(w_0, b_0), ..., (W_head, b_head)]: views into the flat vector with their natural shapes."""
    offsets = parameter_offsets(conv, n_classes)
    views = []
    for row, (w, b, stop) in zip(conv, offsets):
        views.append((params[w:b].reshape(row[C_OUT], row[C_IN], row[KERNEL]), params[b:stop]))
    w, b, stop = offsets[-1]
    views.append((params[w:b].reshape(-1, n_classes), params[b:stop]))
    return views


def forward_batch(x, conv, layers):
    """(activations, logits) for the examples x (n, C_in, L_in): activations = [x, relu(conv_0), ...]
    (the input of every conv layer, then the last ReLU output), logits (n, n_classes) from the head.

    conv: geometry rows as tuples of ints; layers: parameter_views. The forward pass of the epoch and
    of inference.
    """
    n = x.shape[0]
    activations = [x]
    for row, (w, b) in zip(conv, layers):
        h = activations[-1]
        z = np.empty((n, row[C_OUT], output_length(h.shape[2], row[KERNEL], row[STRIDE], row[PADDING])),
                     dtype=h.dtype)
        conv1d_forward(h, w, b, row[STRIDE], row[PADDING], z)
        activations.append(np.maximum(z, 0))
    W, b = layers[-1]
    return activations, activations[-1].reshape(n, -1) @ W + b


# Examples per chunk of the inference forward (bounds the activations' memory; results do not depend on it).
FORWARD_CHUNK = 1024


def cnn1d_forward(X, conv, n_classes, params, out):
    """out = the logits of the network for every example of X: forward_batch chunk by chunk.

    X (N, C_in, L_in) float32/float64; conv (n_conv, 6) int64 (module docstring); params (P,) of X's
    dtype; out (N, n_classes) of X's dtype, filled.
    """
    conv = [tuple(int(v) for v in row) for row in conv]
    layers = parameter_views(params, conv, n_classes)
    for start in range(0, X.shape[0], FORWARD_CHUNK):
        out[start:start + FORWARD_CHUNK] = forward_batch(X[start:start + FORWARD_CHUNK], conv, layers)[1]


def cnn1d_train_epoch(X, y, order, conv, n_classes, batch_size, params, optimizer, state, step, hyper):
    """One epoch over X[order] in mini-batches: forward, softmax cross-entropy, backward, L2, update.

    X (N, C_in, L_in) float32/float64; y (N,) int64 labels in [0, n_classes); order (M,) int64;
    conv (n_conv, 6) int64 (see the module docstring); params (P,) and state (2, P) of X's dtype,
    updated in place; optimizer SGD or ADAM; step: Adam updates before this epoch; hyper (6,) float64
    as in training_ref. Returns (loss_sum, n_correct, n_batches) as training_ref.mlp_train_epoch does.
    """
    conv = [tuple(int(v) for v in row) for row in conv]
    hyper = [float(value) for value in hyper]
    layers = parameter_views(params, conv, n_classes)
    grads = np.empty_like(params)
    grad_layers = parameter_views(grads, conv, n_classes)
    weight_slices = [(w, b) for w, b, _ in parameter_offsets(conv, n_classes)]
    loss_sum, n_correct, n_batches = 0.0, 0, 0
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        n = len(rows)
        labels = y[rows]
        activations, logits = forward_batch(X[rows], conv, layers)
        features = activations[-1].reshape(n, -1)
        W, b = layers[-1]
        batch_loss, batch_correct, d = softmax_cross_entropy_batch(logits, labels)
        loss_sum += batch_loss
        if not math.isfinite(batch_loss):
            break
        n_correct += batch_correct
        dW, db = grad_layers[-1]
        np.matmul(features.T, d, out=dW)
        np.sum(d, axis=0, out=db)
        d = (d @ W.T).reshape(activations[-1].shape)
        for l in range(len(conv) - 1, -1, -1):
            row = conv[l]
            d = d * (activations[l + 1] > 0)  # through the ReLU
            dw, db = grad_layers[l]
            dx = np.empty_like(activations[l]) if l > 0 else None
            conv1d_backward(activations[l], layers[l][0], d, row[STRIDE], row[PADDING], dx, dw, db)
            d = dx
        add_weight_decay(grads, params, weight_slices, hyper[WEIGHT_DECAY])
        n_batches += 1
        optimizer_update(params, grads, state, optimizer, step + n_batches, hyper)
    return loss_sum, n_correct, n_batches
