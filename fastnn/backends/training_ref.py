"""Reference training epoch of a dense network (MLP) with softmax cross-entropy, and the optimizer updates.

Plain NumPy, one mini-batch at a time, written to be read: the oracle the compiled epochs must match.
The network is a stack of fully connected layers, sizes[0] -> sizes[1] -> ... -> sizes[-1], with the
same activation after every layer but the last, whose outputs are the logits of a softmax
cross-entropy. All parameters live in one flat vector, layer after layer: W_l (sizes[l], sizes[l+1])
row-major, then b_l (sizes[l+1],). The optimizer state lives in a (2, P) array: SGD keeps its
velocity in row 0; Adam its first and second moments in rows 0 and 1.

Per batch (rows order[s:s+batch_size], the last batch possibly shorter), with n rows:
    forward:  h_0 = x;  z_l = h_l W_l + b_l;  h_{l+1} = act(z_l) (the last z is the logits)
    loss:     mean over the batch of logsumexp(logits) - logits[y]
    backward: d = (softmax(logits) - onehot(y)) / n, then for each layer from the last:
              dW_l = h_l^T d;  db_l = 1^T d;  d = (d W_l^T) * act'(z_{l-1})
    L2:       dW_l += 2 weight_decay W_l (weights only, not biases: seed eq. 13)
    update:   SGD   v = momentum v + g;  p -= learning_rate v
              Adam  t += 1;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
                    p -= (learning_rate / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + epsilon)
                    (PyTorch's arrangement of the bias corrections)
Every gradient is computed from the weights before the update. The epoch stops early, before the
update, at the first batch whose loss is not finite (the caller reports the divergence).
"""
import math

import numpy as np

RELU, SIGMOID = 0, 1
SGD, ADAM = 0, 1
# hyper: the optimizer's numbers, one float64 array so every backend takes the same arguments.
LEARNING_RATE, MOMENTUM, BETA1, BETA2, EPSILON, WEIGHT_DECAY = range(6)
N_HYPER = 6


def layer_offsets(sizes):
    """[(w_start, b_start, b_stop), ...] per layer: where W_l and b_l lie in the flat parameter vector."""
    offsets, start = [], 0
    for d_in, d_out in zip(sizes[:-1], sizes[1:]):
        b_start = start + d_in * d_out
        offsets.append((start, b_start, b_start + d_out))
        start = b_start + d_out
    return offsets


def n_parameters(sizes):
    """P, the length of the flat parameter vector of a dense network with these layer sizes."""
    return layer_offsets(sizes)[-1][2]


def layer_views(params, sizes):
    """[(W_l, b_l), ...]: views into the flat vector params, W_l of shape (sizes[l], sizes[l+1])."""
    return [(params[w:b].reshape(sizes[l], sizes[l + 1]), params[b:stop])
            for l, (w, b, stop) in enumerate(layer_offsets(sizes))]


def add_weight_decay(grads, params, weight_slices, weight_decay):
    """grads += 2 weight_decay params on the weights (the slices), the gradient of weight_decay ||W||^2."""
    if weight_decay != 0.0:
        for start, stop in weight_slices:
            grads[start:stop] += (2.0 * weight_decay) * params[start:stop]


def sgd_update(params, grads, velocity, learning_rate, momentum):
    """v = momentum v + g; p -= learning_rate v (momentum 0: plain SGD). In place."""
    velocity *= momentum
    velocity += grads
    params -= learning_rate * velocity


def adam_corrections(step, beta1, beta2):
    """(1 - beta1^t, sqrt(1 - beta2^t)) for update number t = step (1-based), in float64."""
    return 1.0 - beta1 ** step, math.sqrt(1.0 - beta2 ** step)


def adam_update(params, grads, m, v, step, learning_rate, beta1, beta2, epsilon):
    """One Adam update (number `step`, 1-based) of params, m and v, in place."""
    correction1, correction2 = adam_corrections(step, beta1, beta2)
    m *= beta1
    m += (1.0 - beta1) * grads
    v *= beta2
    v += (1.0 - beta2) * (grads * grads)
    params -= (learning_rate / correction1) * m / (np.sqrt(v) / correction2 + epsilon)


def optimizer_update(params, grads, state, optimizer, step, hyper):
    """Apply update number `step` (1-based) of `optimizer` (SGD or ADAM) with gradient grads."""
    if optimizer == SGD:
        sgd_update(params, grads, state[0], hyper[LEARNING_RATE], hyper[MOMENTUM])
    else:
        adam_update(params, grads, state[0], state[1], step, hyper[LEARNING_RATE], hyper[BETA1],
                    hyper[BETA2], hyper[EPSILON])


def softmax_cross_entropy_batch(logits, labels):
    """(loss_sum, n_correct, d) for one batch of logits (n, C) and int labels (n,): the summed
    cross-entropy, how many rows have their largest logit at the label, and d = (softmax - onehot) / n,
    the gradient of the mean loss with respect to the logits."""
    n = len(labels)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    sum_exp = exp.sum(axis=1, keepdims=True)
    loss_sum = float(np.sum(np.log(sum_exp[:, 0]) - shifted[np.arange(n), labels]))
    n_correct = int(np.count_nonzero(np.argmax(logits, axis=1) == labels))
    d = exp / sum_exp
    d[np.arange(n), labels] -= 1
    d /= logits.dtype.type(n)
    return loss_sum, n_correct, d


def _activate(z, activation):
    if activation == RELU:
        return np.maximum(z, 0)
    e = np.exp(-np.abs(z))  # the sigmoid without overflow: exp of non-positive numbers only
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _activation_grad(d, h, activation):
    """d * act'(z), written with the activation's output h = act(z)."""
    if activation == RELU:
        return d * (h > 0)
    return d * (h * (1 - h))


def forward_batch(x, layers, activation):
    """[h_0 = x, h_1, ..., h_L]: every layer's output for the rows x (n, sizes[0]), h_L the logits.

    layers: [(W_l, b_l), ...] as layer_views gives them. The forward pass of the epoch and of inference.
    """
    outputs = [x]
    for l, (W, b) in enumerate(layers):
        z = outputs[-1] @ W + b
        outputs.append(z if l == len(layers) - 1 else _activate(z, activation))
    return outputs


# Rows per chunk of the inference forward: bounds the memory of the activations (the compiled backends
# choose their own chunks; the result does not depend on them).
FORWARD_CHUNK = 1024


def mlp_forward(X, sizes, activation, params, out):
    """out = the logits of the dense network for every row of X: forward_batch chunk by chunk.

    X (N, sizes[0]) float32/float64; sizes (L+1,) int64; activation RELU or SIGMOID; params (P,) of X's
    dtype (layout of layer_views); out (N, sizes[-1]) of X's dtype, filled.
    """
    layers = layer_views(params, [int(d) for d in sizes])
    for start in range(0, X.shape[0], FORWARD_CHUNK):
        out[start:start + FORWARD_CHUNK] = forward_batch(X[start:start + FORWARD_CHUNK], layers, activation)[-1]


def mlp_train_epoch(X, y, order, sizes, activation, batch_size, params, optimizer, state, step, hyper):
    """One epoch over X[order] in mini-batches of batch_size: forward, loss, backward, update.

    X (N, sizes[0]) float32/float64; y (N,) int64 labels in [0, sizes[-1]); order (M,) int64 indices
    into X; sizes (L+1,) int64; activation RELU or SIGMOID; params (P,) and state (2, P) of X's dtype,
    updated in place; step: Adam updates made before this epoch; hyper (6,) float64.
    Returns (loss_sum, n_correct, n_batches): the sum over visited examples of their loss and the
    number of them predicted correctly, both from the forward pass before each update, and the number
    of batches whose update was applied.
    """
    hyper = [float(value) for value in hyper]
    layers = layer_views(params, sizes)
    grads = np.empty_like(params)
    grad_layers = layer_views(grads, sizes)
    weight_slices = [(w, b) for w, b, _ in layer_offsets(sizes)]
    loss_sum, n_correct, n_batches = 0.0, 0, 0
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        labels = y[rows]
        outputs = forward_batch(X[rows], layers, activation)
        batch_loss, batch_correct, d = softmax_cross_entropy_batch(outputs[-1], labels)
        loss_sum += batch_loss
        if not math.isfinite(batch_loss):
            break
        n_correct += batch_correct
        for l in range(len(layers) - 1, -1, -1):
            W, _ = layers[l]
            dW, db = grad_layers[l]
            np.matmul(outputs[l].T, d, out=dW)
            np.sum(d, axis=0, out=db)
            if l > 0:
                d = _activation_grad(d @ W.T, outputs[l], activation)
        add_weight_decay(grads, params, weight_slices, hyper[WEIGHT_DECAY])
        n_batches += 1
        optimizer_update(params, grads, state, optimizer, step + n_batches, hyper)
    return loss_sum, n_correct, n_batches
