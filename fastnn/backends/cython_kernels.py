"""Cython backend: the kernels compiled from src_ext/*.pyx at install time.

The compiled functions already take (validated inputs, preallocated outputs), so this module only
picks a build and gathers its functions: the best build that was built and that the CPU runs, of
the AVX-512 build (fastnn._ext.avx512), the AVX2+FMA build (fastnn._ext.avx2) and the portable build
(fastnn._ext). The AVX-512 build holds only the modules that gain from it; the others come from the
next build down. FASTNN_CYTHON_BUILD=avx2 or =portable caps the choice at that build. Importing this
module fails with ImportError when the extensions were not built.
"""
import importlib
import math
import os
from types import SimpleNamespace

from fastnn import _threads
from fastnn._ext._cpu import has_avx2_fma, has_avx512

from . import KERNELS
from ._compiled import (BLAS_FORWARD_MIN_WORK_PER_ROW, conv_multiply_adds, dense_forward, make_gram_kernel,
                        make_gram_matvec, make_gram_rows, make_linear_kernels, rows_on_threads)

PACKAGES = {"avx512": "fastnn._ext.avx512", "avx2": "fastnn._ext.avx2", "portable": "fastnn._ext"}
PREFERENCE = ("avx512", "avx2", "portable")  # best first
CPU_RUNS = {"avx512": has_avx512, "avx2": has_avx2_fma, "portable": lambda: True}
MODULES = ("_linear", "_activations", "_losses", "_gram", "_perceptron", "_training", "_conv", "_cnn_training",
           "_conv2d")


def _import_modules(name):
    """{module stem: module} for build `name`: its own modules, the rest from the next builds down that
    the CPU runs. ImportError when the CPU cannot run `name` or none of the modules is its own."""
    if not CPU_RUNS[name]():
        raise ImportError(f"this CPU cannot run the {name} build")
    fallbacks = [build for build in PREFERENCE[PREFERENCE.index(name):] if CPU_RUNS[build]()]
    modules = {}
    for stem in MODULES:
        for build in fallbacks:
            try:
                modules[stem] = importlib.import_module(f"{PACKAGES[build]}.{stem}")
                break
            except ModuleNotFoundError as error:  # this build lacks the module (or was not built at all)
                if build == "portable" or error.name not in (PACKAGES[build], f"{PACKAGES[build]}.{stem}"):
                    raise
    if not any(module.__name__.startswith(PACKAGES[name] + ".") for module in modules.values()):
        raise ImportError(f"the {name} build was not built")
    return modules


def load_build(name):
    """The kernels of build `name` (a key of PACKAGES) as a namespace; ImportError if unusable.

    `modules` maps each module stem to the full name of the module that supplies it."""
    modules = _import_modules(name)
    linear, activations, losses, gram_module, perceptron, training, conv, cnn_training, conv2d = (
        modules[stem] for stem in MODULES)
    for module in (activations, gram_module, conv, conv2d):  # the ones with OpenMP regions
        _threads.register_module(module)
    linear_forward, linear_backward = make_linear_kernels(
        linear.small_linear_forward, linear.small_linear_backward, linear.relu_grad_and_bias, linear.column_sums)
    return SimpleNamespace(
        name=name,
        modules={stem: module.__name__ for stem, module in modules.items()},
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
        mlp_forward=dense_forward(training.mlp_forward, blas_from=_dense_blas_from(training)),
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


def _dense_blas_from(training):
    """Multiply-adds per row from which mlp_forward runs on BLAS for this build's training module.

    The AVX-512 forward beats OpenBLAS at every width measured (784-32-10 to 784-300-10, 10,000 rows,
    two threads: 1.3-1.5x; one thread: within 0.8-1.05x), so it never hands over; the AVX2 and
    portable ones lose to BLAS on wide networks (BLAS_FORWARD_MIN_WORK_PER_ROW).
    """
    return math.inf if training.__name__.startswith(PACKAGES["avx512"] + ".") else BLAS_FORWARD_MIN_WORK_PER_ROW


def _choose_build():
    """The best build in PREFERENCE, starting at FASTNN_CYTHON_BUILD when it names one."""
    requested = os.environ.get("FASTNN_CYTHON_BUILD", "").strip().lower()
    for name in PREFERENCE[PREFERENCE.index(requested) if requested in PREFERENCE else 0:-1]:
        try:
            return load_build(name)
        except ImportError:
            pass
    return load_build("portable")


def describe_build(build=None):
    """Where the modules of `build` (default: the one in use) come from, e.g. 'fastnn._ext.avx512:
    _activations, _training; fastnn._ext.avx2: _linear, ...'."""
    by_package = {}
    for stem, module in (build or _build).modules.items():
        by_package.setdefault(module.rpartition(".")[0], []).append(stem)
    return "; ".join(f"{package}: {', '.join(stems)}" for package, stems in by_package.items())


_build = _choose_build()
BUILD = _build.name
globals().update({kernel: getattr(_build, kernel) for kernel in KERNELS})
