"""Layers for image CNNs: Conv2D and MaxPool2D on (N, C, H, W) activations as in PyTorch, and the
activations the seeds' experiments vary: LeakyReLU and Tanh (any shape). Flatten (conv_layers) turns
(N, C, H, W) into (N, C H W) in C order, as PyTorch's x.view(N, -1).

Geometry (kernel sizes, strides, paddings: an int or a pair (height, width)) is checked with the
public kernels' rules (fastnn.conv2d), so a layer that builds accepts every batch of its input shape.
"""
import numpy as np

from ..activations import _slope
from ..conv2d import conv2d_geometry, pair
from .layers import Layer, check_init, init_weights, positive_int, run_in_row_blocks


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


class LeakyReLU(Layer):
    """X where X > 0, else negative_slope X, elementwise (PyTorch's default slope 0.01); remembers X."""

    def __init__(self, negative_slope=0.01):
        self.negative_slope = _slope(negative_slope)

    def __repr__(self):
        return f"LeakyReLU(negative_slope={self.negative_slope})"

    def forward(self, X, kernels, training):
        Y = self._empty("Y", X.shape, X.dtype, reuse=training)
        slope = self.negative_slope
        run_in_row_blocks(lambda x, y: kernels.leaky_relu_forward(x, slope, y), X.reshape(-1), Y.reshape(-1))
        self.X = X if training else None
        return Y

    def backward(self, dY, kernels):
        dX = self._empty("dX", dY.shape, dY.dtype)
        slope = self.negative_slope
        run_in_row_blocks(lambda dy, x, dx: kernels.leaky_relu_backward(dy, x, slope, dx),
                          np.ascontiguousarray(dY).reshape(-1), self.X.reshape(-1), dX.reshape(-1))
        return dX


class Tanh(Layer):
    """tanh(X) elementwise, remembering its output for the backward pass."""

    def __repr__(self):
        return "Tanh()"

    def forward(self, X, kernels, training):
        Y = self._empty("Y", X.shape, X.dtype, reuse=training)
        run_in_row_blocks(kernels.tanh_forward, X.reshape(-1), Y.reshape(-1))
        self.Y = Y if training else None
        return Y

    def backward(self, dY, kernels):
        dX = self._empty("dX", dY.shape, dY.dtype)
        run_in_row_blocks(kernels.tanh_backward, np.ascontiguousarray(dY).reshape(-1), self.Y.reshape(-1),
                          dX.reshape(-1))
        return dX
