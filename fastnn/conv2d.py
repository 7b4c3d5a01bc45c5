"""Conv-2D and 2-D max-pooling kernels: validation, output allocation, dispatch to the backend.

Layout as in PyTorch: x (N, C_in, H, W), w (C_out, C_in, KH, KW); the convolution is a
cross-correlation of the input zero-padded by `padding` on each side, with output size
H_out = (H + 2 pad_h - KH) // stride_h + 1 and W_out alike. fastnn.backends.conv2d_ref has the arithmetic.

Every size-like integer (stride, padding, kernel size) is bounded here, before compiled code runs, so
that no size the backends derive from them can overflow: the same rules as conv-1D's (an integer in
[low, 2**40] through _validation.integer; a padding of at most max(K - 1, input length) per axis, as
conv.max_padding; the patch matrix a backend builds per example at most 2**40 elements).
"""
import numpy as np

from . import _validation as v
from ._config import resolve
from .backends.conv_ref import output_length
from .conv import backward_in_chunks, batch_chunks, checked_bias, conv_inputs, max_padding


def pair(name, value, low):
    """An int or a pair of ints (height, width) as a tuple of two Python ints >= low (and <= 2**40)."""
    if isinstance(value, (tuple, list, np.ndarray)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an integer or a pair (height, width), got {value!r}")
        return (v.integer(f"{name}[0]", value[0], low), v.integer(f"{name}[1]", value[1], low))
    number = v.integer(name, value, low)
    return number, number


def _axis_geometry(axis, length, kernel_size, stride, padding, what, names):
    """L_out along one axis ('height' or 'width'), after bounding padding; ValueError when no window fits."""
    limit = max_padding(length, kernel_size)
    if padding > limit:
        raise ValueError(f"{names[1]} = {padding} along the {axis} is too large for {what} of {axis} {length} and "
                         f"kernel {axis} {kernel_size}: at most max(kernel_size - 1, {axis}) = {limit} (wider "
                         f"padding only adds outputs that see nothing but zeros)")
    l_out = output_length(length, kernel_size, stride, padding)
    if l_out < 1:
        raise ValueError(f"kernel {axis} {kernel_size} does not fit {what} of {axis} {length} with padding "
                         f"{padding}: ({length} + 2*{padding} - {kernel_size}) // {stride} + 1 = {l_out} < 1 "
                         f"(an empty output)")
    return l_out


def conv2d_geometry(size, kernel_size, stride, padding, what="x", names=("stride", "padding")):
    """Check stride and padding (ints or pairs) for an input of `size` (H, W) and a window `kernel_size`
    (KH, KW); return (stride, padding, (H_out, W_out)) as pairs of Python ints."""
    stride = pair(names[0], stride, 1)
    padding = pair(names[1], padding, 0)
    out = tuple(_axis_geometry(axis, size[a], kernel_size[a], stride[a], padding[a], what, names)
                for a, axis in enumerate(("height", "width")))
    return stride, padding, out


def _conv_inputs(x, w):
    return conv_inputs(x, w, ndim=4, layouts=("(N, C_in, H, W)", "(C_out, C_in, KH, KW)"))


def _checked_geometry(x, w, stride, padding):
    """conv2d_geometry for arrays x, w, and a bound on the patch matrix (C_in KH KW, H_out W_out) the
    compiled backends build per example, so that no buffer size they compute can overflow."""
    stride, padding, out = conv2d_geometry(x.shape[2:], w.shape[2:], stride, padding)
    v.element_count("a patch matrix (C_in * KH * KW * H_out * W_out per example)",
                    x.shape[1] * w.shape[2] * w.shape[3] * out[0] * out[1],
                    f"x of shape {x.shape}, w of shape {w.shape} and padding={padding}", limit=v.MAX_INT)
    return stride, padding, out


def conv2d_forward(x, w, b=None, *, stride=1, padding=0, backend=None):
    """y[n, o, i, j] = b[o] + sum_{c, p, q} w[o, c, p, q] xpad[n, c, i sh + p, j sw + q]  (cross-correlation).

    Parameters
    ----------
    x : (N, C_in, H, W) float32 or float64
    w : (C_out, C_in, KH, KW), same dtype
    b : (C_out,), same dtype, or None for no bias
    stride : int or pair (sh, sw), each in [1, 2**40]
    padding : int or pair (ph, pw): zeros added on both sides of each axis; each at most
        max(K - 1, input size) along its axis (wider padding only adds all-zero windows)
    backend : 'numpy', 'numba', 'cython' or None for the current backend

    Returns
    -------
    y : (N, C_out, H_out, W_out), H_out = (H + 2 ph - KH) // sh + 1, W_out = (W + 2 pw - KW) // sw + 1, dtype of x
    """
    x, w = _conv_inputs(x, w)
    stride, padding, out = _checked_geometry(x, w, stride, padding)
    b = checked_bias(b, w, x.dtype)
    y = np.empty((x.shape[0], w.shape[0]) + out, dtype=x.dtype)
    kernel = resolve(backend).conv2d_forward
    for n in batch_chunks(x, w, out[0] * out[1], backend, passes=1):
        kernel(x[n], w, b, stride, padding, y[n])
    return y


def conv2d_backward(x, w, dy, *, stride=1, padding=0, need_dx=True, backend=None):
    """Gradients of conv2d_forward(x, w, b, stride=stride, padding=padding) given dy.

    Parameters
    ----------
    x : (N, C_in, H, W) float32 or float64, the layer's input
    w : (C_out, C_in, KH, KW), same dtype
    dy : (N, C_out, H_out, W_out), same dtype, gradient of the loss w.r.t. the output
    need_dx : bool; False skips dx (the first layer of a network)

    Returns
    -------
    (dx or None, dw, db) of shapes (N, C_in, H, W), (C_out, C_in, KH, KW), (C_out,), dtype of x
    """
    x, w = _conv_inputs(x, w)
    stride, padding, out = _checked_geometry(x, w, stride, padding)
    dy = v.float_array("dy", dy, ndim=4, dtype=x.dtype)
    v.same_shape("dy", dy, "conv2d_forward's output", (x.shape[0], w.shape[0]) + out)
    chunks = batch_chunks(x, w, out[0] * out[1], backend, passes=2 if need_dx else 1)
    return backward_in_chunks(resolve(backend).conv2d_backward, x, w, dy, stride, padding, need_dx, chunks)


def maxpool2d_forward(x, *, kernel_size, stride=None, backend=None):
    """Max over (KH, KW) windows every (sh, sw) positions (no padding).

    Parameters
    ----------
    x : (N, C, H, W) float32 or float64
    kernel_size : int or pair (KH, KW), each >= 1 and at most the input's size along its axis
    stride : int or pair, each in [1, 2**40], or None for kernel_size (non-overlapping windows)

    Returns
    -------
    y : (N, C, H_out, W_out) with H_out = (H - KH) // sh + 1, W_out = (W - KW) // sw + 1, dtype of x
    argmax : (N, C, H_out, W_out) int64, the flat position h W + w in [0, H W) of each window's first
        maximum in row-major order (PyTorch's return_indices convention; NaN counts as the maximum)
    """
    x = v.float_array("x", x, ndim=4)
    kernel_size = pair("kernel_size", kernel_size, 1)
    stride, _, out = conv2d_geometry(x.shape[2:], kernel_size, kernel_size if stride is None else stride, 0)
    y = np.empty(x.shape[:2] + out, dtype=x.dtype)
    argmax = np.empty(y.shape, dtype=np.int64)
    resolve(backend).maxpool2d_forward(x, kernel_size, stride, y, argmax)
    return y, argmax


def maxpool2d_backward(dy, argmax, input_shape, *, backend=None):
    """Gradient of maxpool2d_forward: dx of `input_shape` with each dy[n, c, i, j] added at argmax[n, c, i, j].

    Parameters
    ----------
    dy : (N, C, H_out, W_out) float32 or float64
    argmax : (N, C, H_out, W_out) integer flat positions in [0, H W), as maxpool2d_forward returned them
    input_shape : (N, C, H, W), the shape of the pooled input (N and C those of dy; H, W in [1, 2**40]);
        dx may have at most 2**31 - 1 elements or twice the elements argmax implies, whichever is more

    Returns
    -------
    dx : (N, C, H, W), dtype of dy
    """
    dy = v.float_array("dy", dy, ndim=4)
    shape = _input_shape(input_shape, dy.shape)
    argmax = np.asarray(argmax)
    if argmax.shape != dy.shape:
        raise ValueError(f"argmax has shape {argmax.shape} but dy has shape {dy.shape}; they must match")
    plane = shape[2] * shape[3]
    argmax = v.indices("argmax", argmax.reshape(-1), plane, f"an input plane of {shape[2]} x {shape[3]} positions",
                       noun="position").reshape(dy.shape)
    rows = dy.shape[0] * dy.shape[1]
    v.element_count("dx", rows * plane, f"input_shape={shape} for dy of shape {dy.shape}",
                    limit=max(v.MAX_ELEMENTS, 2 * rows * (int(argmax.max()) + 1)))
    dx = np.empty(shape, dtype=dy.dtype)
    resolve(backend).maxpool2d_backward(dy, argmax, dx)
    return dx


def _input_shape(input_shape, dy_shape):
    """input_shape as a tuple of 4 Python ints whose N, C are those of dy."""
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 4:
        raise ValueError(f"input_shape must be the pooled input's shape (N, C, H, W), got {input_shape!r}")
    shape = tuple(v.integer(f"input_shape[{i}]", value, 1) for i, value in enumerate(input_shape))
    if shape[:2] != tuple(dy_shape[:2]):
        raise ValueError(f"input_shape {shape} and dy of shape {tuple(dy_shape)} must agree on N and C")
    return shape
