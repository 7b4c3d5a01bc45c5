"""Cython backend: the kernels compiled from src_ext/*.pyx at install time.

The compiled functions already take (validated inputs, preallocated outputs), so this module only
picks a build and gathers its functions: the AVX2+FMA build (fastnn._ext.avx2) when it was built
and the CPU runs it, else the portable build (fastnn._ext). FASTNN_CYTHON_BUILD=portable forces the
portable one. Importing this module fails with ImportError when the extensions were not built.
"""
import importlib
import os
from types import SimpleNamespace

from fastnn import _threads
from fastnn._ext._cpu import has_avx2_fma

from . import KERNELS
from ._compiled import (conv_multiply_adds, dense_forward, make_gram_kernel, make_gram_matvec, make_gram_rows,
                        make_linear_kernels, rows_on_threads)

PACKAGES = {"avx2": "fastnn._ext.avx2", "portable": "fastnn._ext"}


def load_build(name):
    """The kernels of build `name` ('avx2' or 'portable') as a namespace; ImportError if unusable."""
    if name == "avx2" and not has_avx2_fma():
        raise ImportError("this CPU lacks AVX2/FMA")
    package = PACKAGES[name]
    linear = importlib.import_module(f"{package}._linear")
    activations = importlib.import_module(f"{package}._activations")
    losses = importlib.import_module(f"{package}._losses")
    gram_module = importlib.import_module(f"{package}._gram")
    perceptron = importlib.import_module(f"{package}._perceptron")
    training = importlib.import_module(f"{package}._training")
    conv = importlib.import_module(f"{package}._conv")
    cnn_training = importlib.import_module(f"{package}._cnn_training")
    conv2d = importlib.import_module(f"{package}._conv2d")
    for module in (activations, gram_module, conv, conv2d):  # the ones with OpenMP regions
        _threads.register_module(module)
    linear_forward, linear_backward = make_linear_kernels(
        linear.small_linear_forward, linear.small_linear_backward, linear.relu_grad_and_bias, linear.column_sums)
    return SimpleNamespace(
        name=name,
        linear_forward=linear_forward,
        linear_backward=linear_backward,
        relu_forward=activations.relu_forward,
        relu_backward=activations.relu_backward,
        sigmoid_forward=activations.sigmoid_forward,
        sigmoid_backward=activations.sigmoid_backward,
        softmax_cross_entropy=losses.softmax_cross_entropy,
        logistic_loss=losses.logistic_loss,
        gram=make_gram_kernel(gram_module.gram_epilogue, gram_module.gram_epilogue_symmetric,
                              gram_module.rbf_tile_epilogue),
        gram_matvec=make_gram_matvec(gram_module.gram_epilogue, gram_module.rbf_tile_epilogue),
        gram_rows=make_gram_rows(gram_module.gram_epilogue, gram_module.rbf_tile_epilogue),
        perceptron_epoch=perceptron.perceptron_epoch,
        kernel_perceptron_epoch=perceptron.kernel_perceptron_epoch,
        mlp_train_epoch=training.mlp_train_epoch,
        conv1d_forward=conv.conv1d_forward,
        conv1d_backward=conv.conv1d_backward,
        maxpool1d_forward=conv.maxpool1d_forward,
        maxpool1d_backward=conv.maxpool1d_backward,
        cnn1d_train_epoch=cnn_training.cnn1d_train_epoch,
        mlp_forward=dense_forward(training.mlp_forward),
        cnn1d_forward=rows_on_threads(cnn_training.cnn1d_forward, conv_multiply_adds),
        conv2d_forward=conv2d.conv2d_forward,
        conv2d_backward=conv2d.conv2d_backward,
        maxpool2d_forward=conv2d.maxpool2d_forward,
        maxpool2d_backward=conv2d.maxpool2d_backward,
        leaky_relu_forward=activations.leaky_relu_forward,
        leaky_relu_backward=activations.leaky_relu_backward,
        tanh_forward=activations.tanh_forward,
        tanh_backward=activations.tanh_backward,
    )


def _choose_build():
    if os.environ.get("FASTNN_CYTHON_BUILD", "").strip().lower() != "portable":
        try:
            return load_build("avx2")
        except ImportError:
            pass
    return load_build("portable")


_build = _choose_build()
BUILD = _build.name
globals().update({kernel: getattr(_build, kernel) for kernel in KERNELS})
