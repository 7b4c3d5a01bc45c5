"""fastnn: fast CPU building blocks for small neural networks and kernel methods.

Every kernel runs on one of three backends that compute the same thing: 'numpy' (the readable
reference), 'numba' (JIT-compiled) and 'cython' (compiled at install time). The default is
the fastest one that loads; choose with set_backend(), use_backend(), the FASTNN_BACKEND
environment variable, or the backend= keyword every kernel takes.
"""
# fastnn sets no OpenMP policy (OMP_WAIT_POLICY and the like): GNU OpenMP reads it once per process, and
# PyTorch, Numba and fastnn's Cython kernels share one libgomp.so.1, so a policy good for fastnn would be
# imposed on them. The layers keep OpenMP out of their passes between GEMMs instead (nn.layers.run_in_row_blocks).

from ._threads import get_num_threads, set_num_threads
from ._config import available_backends, get_backend, set_backend, unavailable_backends, use_backend
from ._config import warn_if_source_tree_without_extensions as _warn_if_source_tree_without_extensions
from .gram import gram, gram_matvec, gram_rows
from .perceptron import kernel_perceptron_epoch, perceptron_epoch
from .activations import (leaky_relu_backward, leaky_relu_forward, relu_backward, relu_forward, sigmoid_backward,
                          sigmoid_forward, tanh_backward, tanh_forward)
from .linear import linear_backward, linear_forward
from .losses import logistic_loss, softmax_cross_entropy
from .training import mlp_train_epoch
from .conv import conv1d_backward, conv1d_forward, maxpool1d_backward, maxpool1d_forward
from .cnn_training import cnn1d_train_epoch
from .inference import cnn1d_forward, mlp_forward
from .conv2d import conv2d_backward, conv2d_forward, maxpool2d_backward, maxpool2d_forward

__version__ = "0.1.0"

_warn_if_source_tree_without_extensions()

__all__ = [
    "available_backends", "unavailable_backends", "get_backend", "set_backend", "use_backend",
    "get_num_threads", "set_num_threads",
    "linear_forward", "linear_backward",
    "relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward",
    "softmax_cross_entropy", "logistic_loss",
    "gram", "gram_matvec", "gram_rows", "perceptron_epoch", "kernel_perceptron_epoch", "mlp_train_epoch",
    "conv1d_forward", "conv1d_backward", "maxpool1d_forward", "maxpool1d_backward", "cnn1d_train_epoch",
    "mlp_forward", "cnn1d_forward",
    "conv2d_forward", "conv2d_backward", "maxpool2d_forward", "maxpool2d_backward",
    "leaky_relu_forward", "leaky_relu_backward", "tanh_forward", "tanh_backward",
]
