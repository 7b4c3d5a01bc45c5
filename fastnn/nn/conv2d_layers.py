"""Layers for image CNNs: Conv2D and MaxPool2D on (N, C, H, W) activations as in PyTorch, and
conv2d_net, which stacks them into an image classifier. The activations the seeds' experiments vary,
LeakyReLU and Tanh (any shape), live in layers beside ReLU and Sigmoid and are re-exported here.
Flatten (conv_layers) turns (N, C, H, W) into (N, C H W) in C order, as PyTorch's x.view(N, -1).

Geometry (kernel sizes, strides, paddings: an int or a pair (height, width)) is checked with the
public kernels' rules (fastnn.conv2d), so a layer that builds accepts every batch of its input shape.
"""
import math

import numpy as np

from ..conv2d import conv2d_geometry, pair
from .conv_layers import Flatten
from .layers import (ACTIVATION_LAYERS, LeakyReLU, Layer, Linear, Sequential, Tanh,  # noqa: F401 (LeakyReLU, Tanh)
                     check_init, init_weights, positive_int)


class Conv2D(Layer):
    """y = conv(x, w) + b with x (N, in_channels, H, W), w (out_channels, in_channels, KH, KW), b (out_channels,).

    Cross-correlation of the input zero-padded by `padding` on each side (PyTorch's torch.nn.Conv2d);
    H_out = (H + 2 ph - KH) // sh + 1 and W_out alike. kernel_size, stride, padding: an int or a pair
    (height, width). init: as for Linear, with fan-in in_channels KH KW and fan-out out_channels KH KW
    ('pytorch' is torch.nn.Conv2d's default). bias: False for no b parameter.
    """

    def __init__(self, in_channels, out_channels, kernel_size, *, stride=1, padding=0, init="pytorch", scale=0.1,
                 bias=True):
        self.in_channels = positive_int("in_channels", in_channels)
        self.out_channels = positive_int("out_channels", out_channels)
        self.kernel_size = pair("kernel_size", kernel_size, 1)
        self.stride = pair("stride", stride, 1)
        self.padding = pair("padding", padding, 0)
        self.init, self.scale, self.bias = check_init(init), scale, bool(bias)
        self.need_dX = True  # Sequential turns it off for the first layer

    def __repr__(self):
        extra = "" if self.bias else ", bias=False"
        return (f"Conv2D({self.in_channels}, {self.out_channels}, {self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}{extra})")

    def param_shapes(self):
        shapes = {"w": (self.out_channels, self.in_channels) + self.kernel_size}
        if self.bias:
            shapes["b"] = (self.out_channels,)
        return shapes

    def init_params(self, rng):
        area = self.kernel_size[0] * self.kernel_size[1]
        init_weights(rng, self.init, self.scale, self.params["w"], self.params.get("b"), self.in_channels * area,
                     self.out_channels * area)

    def output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            raise ValueError(f"{self!r} takes inputs of shape ({self.in_channels}, H, W), got {input_shape}")
        try:
            _, _, out = conv2d_geometry(tuple(input_shape[1:]), self.kernel_size, self.stride, self.padding)
        except ValueError as exc:
            raise ValueError(f"{self!r} does not fit an input of shape {tuple(input_shape)}: {exc}") from None
        return (self.out_channels,) + out

    def forward(self, X, kernels, training):
        out = self.output_shape(X.shape[1:])
        Y = self._empty("Y", (X.shape[0],) + out, X.dtype, reuse=training)
        kernels.conv2d_forward(X, self.params["w"], self.params.get("b"), self.stride, self.padding, Y)
        self.X = X if training else None
        return Y

    def backward(self, dY, kernels):
        dX = self._empty("dX", self.X.shape, self.X.dtype) if self.need_dX else None
        db = self.grads["b"] if self.bias else np.empty(self.out_channels, dtype=dY.dtype)  # discarded
        kernels.conv2d_backward(self.X, self.params["w"], np.ascontiguousarray(dY), self.stride, self.padding, dX,
                                self.grads["w"], db)
        return dX


class MaxPool2D(Layer):
    """Max over (KH, KW) windows every (sh, sw) positions (default: the kernel size), per channel, no padding."""

    def __init__(self, kernel_size, stride=None):
        self.kernel_size = pair("kernel_size", kernel_size, 1)
        self.stride = self.kernel_size if stride is None else pair("stride", stride, 1)

    def __repr__(self):
        return f"MaxPool2D({self.kernel_size}, stride={self.stride})"

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self!r} takes inputs of shape (C, H, W), got {input_shape}")
        try:
            _, _, out = conv2d_geometry(tuple(input_shape[1:]), self.kernel_size, self.stride, 0)
        except ValueError as exc:
            raise ValueError(f"{self!r} does not fit an input of shape {tuple(input_shape)}: {exc}") from None
        return (input_shape[0],) + out

    def forward(self, X, kernels, training):
        Y = self._empty("Y", (X.shape[0],) + self.output_shape(X.shape[1:]), X.dtype, reuse=training)
        argmax = self._empty("argmax", Y.shape, np.int64, reuse=training)
        kernels.maxpool2d_forward(X, self.kernel_size, self.stride, Y, argmax)
        self.argmax, self.input_shape = (argmax, X.shape) if training else (None, None)
        return Y

    def backward(self, dY, kernels):
        dX = self._empty("dX", self.input_shape, dY.dtype)
        kernels.maxpool2d_backward(np.ascontiguousarray(dY), self.argmax, dX)
        return dX


def conv2d_net(input_shape, n_classes, *, channels=(64,), kernel_sizes=(7,), strides=(1,), paddings=(0,), pool=2,
               hidden_layer_sizes=(), activation="relu", init="pytorch", dtype=np.float32, random_state=None,
               backend=None):
    """Sequential Conv2D, act[, MaxPool2D(pool)], ..., Flatten, [Linear, act]*, Linear: a small image CNN.

    input_shape: (C_in, H, W) of one example. channels: the output channels of each conv layer;
    kernel_sizes, strides, paddings: one entry per conv layer, each an int or a pair (height, width).
    pool: None (no pooling) or an int or pair: a max-pooling window (and stride) after every conv
    layer's activation. hidden_layer_sizes: the widths of the linear layers between the flattened conv
    output and the n_classes logits. activation: a name in fastnn.nn.layers.ACTIVATION_LAYERS ('relu',
    'leaky_relu' (slope 0.01), 'tanh', 'sigmoid'), after every conv and hidden linear layer.
    init: as for Linear; 'pytorch' (default) is torch.nn.Conv2d's and Linear's U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    The defaults on (1, 28, 28) are the seed's 2-layer CNN (64 kernels 7x7, 2x2 max-pooling, a linear
    head: 80,650 parameters for 10 classes). ValueError when a layer does not fit its input.
    """
    if activation not in ACTIVATION_LAYERS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATION_LAYERS)}, got {activation!r}")
    n_layers = len(channels)
    if n_layers < 1:
        raise ValueError("channels must name at least one conv layer")
    for name, values in (("kernel_sizes", kernel_sizes), ("strides", strides), ("paddings", paddings)):
        if len(values) != n_layers:
            raise ValueError(f"{name} must have one entry per conv layer ({n_layers}), got {tuple(values)!r}")
    act = ACTIVATION_LAYERS[activation]
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {input_shape!r}")
    layers = []
    for c_out, k, stride, padding in zip(channels, kernel_sizes, strides, paddings):
        conv = Conv2D(shape[0], c_out, k, stride=stride, padding=padding, init=init)
        shape = conv.output_shape(shape)
        layers += [conv, act()]
        if pool is not None:
            pooling = MaxPool2D(pool)
            shape = pooling.output_shape(shape)
            layers.append(pooling)
    layers.append(Flatten())
    width = math.prod(shape)
    for size in hidden_layer_sizes:
        layers += [Linear(width, size, init=init), act()]
        width = size
    layers.append(Linear(width, n_classes, init=init))
    return Sequential(layers, input_shape=input_shape, dtype=dtype, random_state=random_state, backend=backend)
