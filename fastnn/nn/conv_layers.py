"""Layers for 1-D convolutional networks: Conv1D, MaxPool1D and Flatten, on the backend kernels.

Activations are (N, C, L) as in PyTorch. A conv stack of the form Conv1D, ReLU, ..., Conv1D, ReLU,
Flatten, Linear (the MNIST-1D ConvBase family) is also what fastnn.cnn1d_train_epoch trains in one
backend call; conv_stack_spec(model) recognises it and gives that kernel's arguments.
"""
import numpy as np

from .. import _validation as v
from ..backends.conv_ref import output_length
from ..conv import conv_geometry
from .layers import Layer, Linear, ReLU, check_init, init_weights, positive_int


def _non_negative_int(name, value):
    """value as a Python int in [0, 2**40]; ValueError naming `name` otherwise."""
    return v.integer(name, value, 0)


class Conv1D(Layer):
    """y = conv(x, w) + b with x (N, in_channels, L), w (out_channels, in_channels, kernel_size), b (out_channels,).

    Cross-correlation of the input zero-padded by `padding` at both ends; the output length is
    (L + 2 padding - kernel_size) // stride + 1. init: as for Linear, with fan-in
    in_channels * kernel_size and fan-out out_channels * kernel_size ('pytorch' is torch.nn.Conv1d's
    default). bias: False for no b parameter. Channels, kernel_size and stride are integers in [1, 2**40],
    padding in [0, 2**40] and, for the input length L the layer is built for, at most max(kernel_size - 1, L)
    (as fastnn.conv1d_forward).
    """

    def __init__(self, in_channels, out_channels, kernel_size, *, stride=1, padding=0, init="pytorch", scale=0.1,
                 bias=True):
        self.in_channels = positive_int("in_channels", in_channels)
        self.out_channels = positive_int("out_channels", out_channels)
        self.kernel_size = positive_int("kernel_size", kernel_size)
        self.stride = positive_int("stride", stride)
        self.padding = _non_negative_int("padding", padding)
        self.init, self.scale, self.bias = check_init(init), scale, bool(bias)
        self.need_dX = True  # Sequential turns it off for the first layer

    def __repr__(self):
        extra = "" if self.bias else ", bias=False"
        return (f"Conv1D({self.in_channels}, {self.out_channels}, {self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}{extra})")

    def param_shapes(self):
        shapes = {"w": (self.out_channels, self.in_channels, self.kernel_size)}
        if self.bias:
            shapes["b"] = (self.out_channels,)
        return shapes

    def init_params(self, rng):
        init_weights(rng, self.init, self.scale, self.params["w"], self.params.get("b"),
                     self.in_channels * self.kernel_size, self.out_channels * self.kernel_size)

    def output_shape(self, input_shape):
        if len(input_shape) != 2 or input_shape[0] != self.in_channels:
            raise ValueError(f"{self!r} takes inputs of shape ({self.in_channels}, L), got {input_shape}")
        try:
            _, _, l_out = conv_geometry(input_shape[1], self.kernel_size, self.stride, self.padding)
        except ValueError as exc:
            raise ValueError(f"{self!r} does not fit an input of length {input_shape[1]}: {exc}") from None
        return (self.out_channels, l_out)

    def forward(self, X, kernels, training):
        n, _, length = X.shape
        Y = np.empty((n, self.out_channels, output_length(length, self.kernel_size, self.stride, self.padding)),
                     dtype=X.dtype)
        kernels.conv1d_forward(X, self.params["w"], self.params.get("b"), self.stride, self.padding, Y)
        self.X = X if training else None
        return Y

    def backward(self, dY, kernels):
        dX = np.empty_like(self.X) if self.need_dX else None
        db = self.grads["b"] if self.bias else np.empty(self.out_channels, dtype=dY.dtype)  # discarded
        kernels.conv1d_backward(self.X, self.params["w"], np.ascontiguousarray(dY), self.stride, self.padding, dX,
                                self.grads["w"], db)
        return dX


class MaxPool1D(Layer):
    """Max over windows of kernel_size positions every stride (default kernel_size) positions, per channel."""

    def __init__(self, kernel_size, stride=None):
        self.kernel_size = positive_int("kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else positive_int("stride", stride)

    def __repr__(self):
        return f"MaxPool1D({self.kernel_size}, stride={self.stride})"

    def output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"{self!r} takes inputs of shape (C, L), got {input_shape}")
        l_out = output_length(input_shape[1], self.kernel_size, self.stride, 0)
        if l_out < 1:
            raise ValueError(f"{self!r} does not fit an input of length {input_shape[1]}")
        return (input_shape[0], l_out)

    def forward(self, X, kernels, training):
        n, channels, length = X.shape
        Y = np.empty((n, channels, output_length(length, self.kernel_size, self.stride, 0)), dtype=X.dtype)
        argmax = np.empty(Y.shape, dtype=np.int64)
        kernels.maxpool1d_forward(X, self.kernel_size, self.stride, Y, argmax)
        self.argmax, self.length = (argmax, length) if training else (None, None)
        return Y

    def backward(self, dY, kernels):
        dX = np.empty(dY.shape[:2] + (self.length,), dtype=dY.dtype)
        kernels.maxpool1d_backward(np.ascontiguousarray(dY), self.argmax, dX)
        return dX


class Flatten(Layer):
    """(N, C, L) -> (N, C * L) in C order (index c * L + t), as PyTorch's x.view(N, -1)."""

    def __repr__(self):
        return "Flatten()"

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, X, kernels, training):
        self.shape = X.shape
        return X.reshape(X.shape[0], -1)

    def backward(self, dY, kernels):
        return dY.reshape(self.shape)


def conv_stack_spec(model):
    """cnn1d_train_epoch's geometry keywords when model is Conv1D, ReLU, ..., Conv1D, ReLU, Flatten, Linear
    (every layer with a bias, no pooling), else None."""
    layers = model.layers
    if len(layers) < 4 or len(layers) % 2:
        return None
    convs, activations = layers[:-2:2], layers[1:-2:2]
    if not (all(type(layer) is Conv1D and layer.bias for layer in convs)
            and all(type(layer) is ReLU for layer in activations)
            and type(layers[-2]) is Flatten and type(layers[-1]) is Linear and layers[-1].bias):
        return None
    return dict(channels=tuple(c.out_channels for c in convs), kernel_sizes=tuple(c.kernel_size for c in convs),
                strides=tuple(c.stride for c in convs), paddings=tuple(c.padding for c in convs),
                n_classes=layers[-1].out_features)


def conv1d_net(input_shape, n_classes, *, channels=(25, 25, 25), kernel_sizes=(5, 3, 3), strides=(2, 2, 2),
               paddings=(1, 1, 1), pool=None, init="pytorch", dtype=np.float32, random_state=None, backend=None):
    """Sequential Conv1D, ReLU[, MaxPool1D(pool)], ..., Flatten, Linear: a small 1-D CNN.

    input_shape: (C_in, L) of one example. The defaults are MNIST-1D's ConvBase (for inputs (1, 40)).
    """
    from .layers import Sequential

    n_layers = len(channels)
    for name, values in (("kernel_sizes", kernel_sizes), ("strides", strides), ("paddings", paddings)):
        if len(values) != n_layers:
            raise ValueError(f"{name} must have one entry per conv layer ({n_layers}), got {tuple(values)!r}")
    c_in, length = (int(d) for d in input_shape)
    layers = []
    for c_out, k, stride, padding in zip(channels, kernel_sizes, strides, paddings):
        conv = Conv1D(c_in, c_out, k, stride=stride, padding=padding, init=init)
        (c_in, length) = conv.output_shape((c_in, length))
        layers += [conv, ReLU()]
        if pool is not None:
            pooling = MaxPool1D(pool)
            (c_in, length) = pooling.output_shape((c_in, length))
            layers.append(pooling)
    layers += [Flatten(), Linear(c_in * length, n_classes, init=init)]
    return Sequential(layers, input_shape=input_shape, dtype=dtype, random_state=random_state, backend=backend)
