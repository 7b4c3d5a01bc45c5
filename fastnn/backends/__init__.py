"""The backend table: which kernels exist and which module implements them for each backend.

A backend is a module exposing one function per name in `KERNELS`. Those functions receive
inputs that the public API has already validated and made C-contiguous, and outputs it has
already allocated; they fill the outputs and return only scalars (losses). Adding a kernel
means adding its name here and one function to each backend module.
"""
import importlib

KERNELS = (
    "linear_forward",
    "linear_backward",
    "relu_forward",
    "relu_backward",
    "sigmoid_forward",
    "sigmoid_backward",
    "softmax_cross_entropy",
    "logistic_loss",
    "gram",
    "gram_matvec",
    "gram_rows",
    "perceptron_epoch",
    "kernel_perceptron_epoch",
    "mlp_train_epoch",
    "conv1d_forward",
    "conv1d_backward",
    "maxpool1d_forward",
    "maxpool1d_backward",
    "cnn1d_train_epoch",
    "mlp_forward",
    "cnn1d_forward",
    "conv2d_forward",
    "conv2d_backward",
    "maxpool2d_forward",
    "maxpool2d_backward",
    "leaky_relu_forward",
    "leaky_relu_backward",
    "tanh_forward",
    "tanh_backward",
)

BACKEND_MODULES = {
    "numpy": "fastnn.backends.numpy_ref",
    "numba": "fastnn.backends.numba_kernels",
    "cython": "fastnn.backends.cython_kernels",
}

# Fastest first: the default backend is the first of these that loads.
PREFERENCE = ("cython", "numba", "numpy")


def import_backend(name):
    """Import backend `name` and check that it implements every kernel.

    Raises ImportError (with the underlying reason) when the backend cannot be used.
    """
    module = importlib.import_module(BACKEND_MODULES[name])
    missing = [kernel for kernel in KERNELS if not callable(getattr(module, kernel, None))]
    if missing:
        raise ImportError(f"backend {name!r} does not implement {', '.join(missing)}")
    return module
