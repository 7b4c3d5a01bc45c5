"""A whole training epoch of a small 1-D CNN as one kernel: fastnn.cnn1d_train_epoch.

The network is the MNIST-1D ConvBase family: conv layers, each followed by a ReLU, then a linear
head on the flattened last activation. At batch 100 a training step of ConvBase is well under a
millisecond of arithmetic, less than the Python that would drive its layers one by one, so the
whole epoch runs in the backend. fastnn.backends.cnn_training_ref documents the arithmetic and the
parameter layout; the compiled backends do the same, batch for batch.
"""
import numpy as np

from . import _validation as v
from ._config import resolve
from .backends import cnn_training_ref as ref
from .backends.conv_ref import output_length
from .conv import conv_geometry
from .training import FusedEpochs, _positive_int, run_epoch_once


def _int_tuple(name, values, n=None):
    values = tuple(values) if isinstance(values, (tuple, list, np.ndarray)) else (values,)
    if len(values) > 10_000:
        raise ValueError(f"{name} lists {len(values)} conv layers; fastnn accepts at most 10000")
    if n is not None and len(values) != n:
        raise ValueError(f"{name} must have one entry per conv layer ({n}), got {len(values)}: {values!r}")
    return values


def conv_stack_geometry(input_shape, channels, kernel_sizes, strides, paddings):
    """The (n_conv, 6) int64 geometry rows (C_in, L_in, C_out, K, stride, padding) of a conv stack.

    input_shape : (C_in, L) of one example; channels, kernel_sizes, strides, paddings: one entry per
    conv layer: channels and kernel sizes in [1, 2**40], strides and paddings as fastnn.conv.conv_geometry
    checks them. ValueError naming the layer and shapes when a kernel does not fit its input, or when the
    network would have more than 2**31 - 1 parameters.
    """
    channels = _int_tuple("channels", channels)
    if not channels:
        raise ValueError("channels must list at least one conv layer")
    n = len(channels)
    kernel_sizes = _int_tuple("kernel_sizes", kernel_sizes, n)
    strides = _int_tuple("strides", strides, n)
    paddings = _int_tuple("paddings", paddings, n)
    c_in, length = (int(d) for d in input_shape)
    rows = []
    for l in range(n):
        c_out = _positive_int(f"channels[{l}]", channels[l])
        k = _positive_int(f"kernel_sizes[{l}]", kernel_sizes[l])
        stride, padding, l_out = conv_geometry(length, k, strides[l], paddings[l], what=f"conv layer {l}'s input",
                                               names=(f"strides[{l}]", f"paddings[{l}]"))
        rows.append((c_in, length, c_out, k, stride, padding))
        c_in, length = c_out, l_out
    return np.array(rows, dtype=np.int64)


def _macs_per_example(conv, n_classes):
    """Multiply-adds of one example's forward pass through the conv stack `conv` and its head."""
    macs, features = 0, 0
    for c_in, length, c_out, k, stride, padding in conv.tolist():
        l_out = output_length(length, k, stride, padding)
        macs += c_out * c_in * k * l_out
        features = c_out * l_out
    return macs + features * n_classes


def _checked_parameters(conv, n_classes, arguments):
    """n_parameters(conv, n_classes), refused above 2**31 - 1 before anything is allocated."""
    rows = conv.tolist()
    count = sum(c_out * c_in * k + c_out for c_in, _, c_out, k, _, _ in rows)
    c_last, l_in, _, k, stride, padding = rows[-1]
    l_last = (l_in + 2 * padding - k) // stride + 1
    count += rows[-1][2] * l_last * n_classes + n_classes
    return v.element_count("a network", count, arguments)


def conv_work_elements(conv, n_classes, rows):
    """An upper bound on the elements a fused CNN epoch allocates for batches of `rows` examples (both
    compiled backends' layouts: padded activations, im2col patches, gradients, parameter-sized buffers)."""
    total, lanes = 0, 16
    for c_in, l_in, c_out, k, stride, padding in conv.tolist():
        padded = l_in + 2 * padding
        l_out = (padded - k) // stride + 1
        total += 5 * (c_out + lanes) * (c_in * k + lanes)
        total += rows * (2 * c_in * padded + l_out * (c_out + lanes + 2) + c_in * k * l_out)
    features = conv[-1, 2] * ((conv[-1, 1] + 2 * conv[-1, 5] - conv[-1, 3]) // conv[-1, 4] + 1)
    total += 5 * (int(features) + lanes) * (n_classes + lanes) + rows * (3 * int(features) + 4 * (n_classes + lanes))
    return total


def n_parameters(conv, n_classes):
    """P for a conv stack of geometry `conv` (from conv_stack_geometry) and a head of n_classes."""
    return ref.n_parameters(conv.tolist(), n_classes)


def cnn1d_train_epoch(X, y, order, params, state, *, channels, kernel_sizes, strides, paddings, n_classes,
                      batch_size, optimizer="sgd", step=0, learning_rate=0.01, momentum=0.0, betas=(0.9, 0.999),
                      epsilon=1e-8, weight_decay=0.0, backend=None):
    """Train a conv-ReLU stack with a linear head for one epoch over X[order] in mini-batches.

    Batches are consecutive slices of `order` (the last one possibly shorter); softmax
    cross-entropy, L2 on the weights and the optimizers are those of fastnn.mlp_train_epoch.

    Parameters
    ----------
    X : (N, C_in, L) float32 or float64, finite
    y : (N,) integer labels in [0, n_classes)
    order : (M,) integer indices into X: the examples in the order they are visited
    params : (P,) dtype of X, not modified: w_0 (channels[0], C_in, kernel_sizes[0]), b_0, w_1, b_1, ...,
        then the head's W (channels[-1] * L_last, n_classes) and b (n_classes,), all flattened;
        P = fastnn.cnn_training.n_parameters(conv_stack_geometry(...), n_classes)
    state : (2, P) dtype of X, the optimizer state before the epoch (zeros to start), not modified
    channels, kernel_sizes, strides, paddings : one int per conv layer: channels, kernel sizes and strides in
        [1, 2**40], paddings in [0, max(K - 1, L_in)] (see fastnn.conv1d_forward); the network may have at
        most 2**31 - 1 parameters and an epoch's work buffers at most 2**31 - 1 elements
    n_classes : int in [1, 2**40]
    batch_size, optimizer, step, learning_rate, momentum, betas, epsilon, weight_decay :
        as in fastnn.mlp_train_epoch

    Returns
    -------
    params_new, state_new, loss, accuracy, n_updates : as fastnn.mlp_train_epoch returns them
    """
    epochs = ConvEpochs(X, y, channels=channels, kernel_sizes=kernel_sizes, strides=strides, paddings=paddings,
                        n_classes=n_classes, batch_size=batch_size, optimizer=optimizer,
                        learning_rate=learning_rate, momentum=momentum, betas=betas, epsilon=epsilon,
                        weight_decay=weight_decay, backend=backend)
    return run_epoch_once(epochs, order, params, state, step)


class ConvEpochs(FusedEpochs):
    """FusedEpochs of a conv-ReLU stack with a linear head (fastnn.cnn1d_train_epoch)."""

    def __init__(self, X, y, *, channels, kernel_sizes, strides, paddings, n_classes, batch_size, optimizer="sgd",
                 learning_rate=0.01, momentum=0.0, betas=(0.9, 0.999), epsilon=1e-8, weight_decay=0.0,
                 backend=None):
        X = v.float_array("X", X, ndim=3)
        self.conv = conv_stack_geometry(X.shape[1:], channels, kernel_sizes, strides, paddings)
        self.n_classes = _positive_int("n_classes", n_classes)
        n_params = _checked_parameters(self.conv, self.n_classes, f"channels={channels!r}, kernel_sizes="
                                       f"{kernel_sizes!r}, paddings={paddings!r} and n_classes={n_classes!r}")
        self._setup(X, y, self.n_classes, n_params, batch_size, optimizer,
                    dict(learning_rate=learning_rate, momentum=momentum, betas=betas, epsilon=epsilon,
                         weight_decay=weight_decay))
        self.kernel = resolve(backend).cnn1d_train_epoch
        self._set_chunks(backend, 3 * _macs_per_example(self.conv, self.n_classes))

    def _work_elements(self, rows):
        return conv_work_elements(self.conv, self.n_classes, rows)

    def _kernel(self, order, params, state, step):
        return self.kernel(self.X, self.y, order, self.conv, self.n_classes, self.batch_size, params,
                           self.optimizer, state, step, self.hyper)
