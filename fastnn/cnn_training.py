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
    if n is not None and len(values) != n:
        raise ValueError(f"{name} must have one entry per conv layer ({n}), got {len(values)}: {values!r}")
    return values


def conv_stack_geometry(input_shape, channels, kernel_sizes, strides, paddings):
    """The (n_conv, 6) int64 geometry rows (C_in, L_in, C_out, K, stride, padding) of a conv stack.

    input_shape : (C_in, L) of one example; channels, kernel_sizes, strides, paddings: one entry per
    conv layer. ValueError naming the layer and shapes when a kernel does not fit its input.
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
        stride, padding, l_out = conv_geometry(length, k, strides[l], paddings[l], what=f"conv layer {l}'s input")
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
    channels, kernel_sizes, strides, paddings : one int per conv layer
    n_classes : int >= 1
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
        self._setup(X, y, self.n_classes, n_parameters(self.conv, self.n_classes), batch_size, optimizer,
                    dict(learning_rate=learning_rate, momentum=momentum, betas=betas, epsilon=epsilon,
                         weight_decay=weight_decay))
        self.kernel = resolve(backend).cnn1d_train_epoch
        self._set_chunks(backend, 3 * _macs_per_example(self.conv, self.n_classes))

    def _kernel(self, order, params, state, step):
        return self.kernel(self.X, self.y, order, self.conv, self.n_classes, self.batch_size, params,
                           self.optimizer, state, step, self.hyper)
