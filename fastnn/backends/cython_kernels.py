"""Cython backend: the kernels compiled from src_ext/*.pyx at install time (fastnn._ext).

The compiled functions already take (validated inputs, preallocated outputs), so this module only
gathers them; importing it fails with ImportError when the extensions were not built.
"""
from fastnn._ext._activations import relu_backward, relu_forward, sigmoid_backward, sigmoid_forward
from fastnn._ext._linear import linear_backward, linear_forward
from fastnn._ext._losses import logistic_loss, softmax_cross_entropy

__all__ = [
    "linear_forward", "linear_backward", "relu_forward", "relu_backward",
    "sigmoid_forward", "sigmoid_backward", "softmax_cross_entropy", "logistic_loss",
]
