"""Conv-1D and 1-D max-pooling kernels: validation, output allocation, dispatch to the backend.

Layout as in PyTorch: x (N, C_in, L), w (C_out, C_in, K); the convolution is a cross-correlation
of the input zero-padded by `padding` on both sides, with output length
L_out = (L + 2 padding - K) // stride + 1. fastnn.backends.conv_ref has the arithmetic.
"""

import numpy as np

from . import _validation as v
from ._config import get_backend, resolve
from ._interrupt import CONV_MACS_PER_SECOND, chunk_items
from .backends.conv_ref import output_length


def _integer(name, value, low, high=v.MAX_INT):
    return v.integer(name, value, low, high)


def max_padding(length, kernel_size):
    """The largest padding accepted for an input of `length` and a window of `kernel_size`.

    A 'full' convolution (padding kernel_size - 1) and any padding up to the input's length are
    allowed; a wider padding only adds outputs that see nothing but zeros, and would let a typo
    (padding=10**12) make every derived size explode.
    """
    return max(kernel_size - 1, length)


def conv_geometry(length, kernel_size, stride, padding, what="x", names=("stride", "padding")):
    """Check stride/padding and return (stride, padding, L_out) as Python ints.

    stride: integer in [1, 2**40]; padding: integer in [0, max(kernel_size - 1, length)].
    ValueError naming the argument (names: how the caller calls stride and padding) when one is out of
    range, and naming the shapes when no window fits.
    """
    stride = _integer(names[0], stride, 1)
    padding = _integer(names[1], padding, 0)
    limit = max_padding(length, kernel_size)
    if padding > limit:
        raise ValueError(f"{names[1]} = {padding} is too large for {what} of length {length} and kernel size "
                         f"{kernel_size}: at most max(kernel_size - 1, length) = {limit} (wider padding only "
                         f"adds outputs that see nothing but zeros)")
    l_out = output_length(length, kernel_size, stride, padding)
    if l_out < 1:
        raise ValueError(f"kernel size {kernel_size} does not fit {what} of length {length} with padding "
                         f"{padding}: L_out = ({length} + 2*{padding} - {kernel_size}) // {stride} + 1 = {l_out} < 1")
    return stride, padding, l_out


def conv_inputs(x, w, ndim=3, layouts=("(N, C_in, L)", "(C_out, C_in, K)")):
    """x and w checked as float arrays of `ndim` dimensions, same dtype, with the same input channels;
    layouts: how the error message describes x's and w's axes."""
    x = v.float_array("x", x, ndim=ndim)
    w = v.float_array("w", w, ndim=ndim, dtype=x.dtype)
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"w has shape {w.shape} {layouts[1]} but x has shape {x.shape} {layouts[0]}: "
                         f"w.shape[1] must equal x.shape[1]")
    return x, w


def checked_bias(b, w, dtype):
    """b as a (C_out,) float array of dtype, or None; ValueError naming b when it does not fit w."""
    if b is None:
        return None
    b = v.float_array("b", b, ndim=1, dtype=dtype)
    if b.shape[0] != w.shape[0]:
        raise ValueError(f"b has shape {b.shape} but w has shape {w.shape}: expected ({w.shape[0]},)")
    return b


def batch_chunks(x, w, positions, backend, passes):
    """Slices of the batch for one kernel call each: about CHUNK_SECONDS of work (fastnn._interrupt), so
    that Ctrl-C stops a large convolution between them (samples are independent: same results).
    positions: output positions per channel (L_out, or H_out W_out)."""
    n = x.shape[0]
    macs = passes * w.size * positions
    parts = -(-n // chunk_items(get_backend() if backend is None else backend, macs, rates=CONV_MACS_PER_SECOND))
    # equal parts: no small last chunk, which a backend might compute another way (e.g. without BLAS)
    return [slice(n * i // parts, n * (i + 1) // parts) for i in range(parts)] if parts > 1 else [slice(0, n)]


def backward_in_chunks(kernel, x, w, dy, stride, padding, need_dx, chunks):
    """(dx or None, dw, db) from kernel(x, w, dy, stride, padding, dx, dw, db) called on each chunk of the
    batch; later chunks' weight gradients are summed in (a large batch only: rounding may differ from
    one call)."""
    dx = np.empty_like(x) if need_dx else None
    dw = np.empty_like(w)
    db = np.empty(w.shape[0], dtype=x.dtype)
    for i, n in enumerate(chunks):
        dw_part, db_part = (dw, db) if i == 0 else (np.empty_like(dw), np.empty_like(db))
        kernel(x[n], w, dy[n], stride, padding, None if dx is None else dx[n], dw_part, db_part)
        if i:
            dw += dw_part
            db += db_part
    return dx, dw, db


def _checked_geometry(x, w, stride, padding):
    """conv_geometry for arrays x, w, and a bound on the patch matrix (C_in K, L_out) the compiled
    backends build per example, so that no buffer size they compute can overflow."""
    stride, padding, l_out = conv_geometry(x.shape[2], w.shape[2], stride, padding)
    v.element_count("a patch matrix (C_in * K * L_out per example)", x.shape[1] * w.shape[2] * l_out,
                    f"x of shape {x.shape}, w of shape {w.shape} and padding={padding}", limit=v.MAX_INT)
    return stride, padding, l_out


def conv1d_forward(x, w, b=None, *, stride=1, padding=0, backend=None):
    """y[n, o, t] = b[o] + sum_{c, k} w[o, c, k] xpad[n, c, t stride + k]  (cross-correlation).

    Parameters
    ----------
    x : (N, C_in, L) float32 or float64
    w : (C_out, C_in, K), same dtype
    b : (C_out,), same dtype, or None for no bias
    stride : int in [1, 2**40]
    padding : int in [0, max(K - 1, L)], zeros added at both ends of every input row (PyTorch accepts any
        padding; fastnn refuses one so wide that whole windows see nothing but zeros beyond a 'full'
        convolution's K - 1 or the input's length)
    backend : 'numpy', 'numba', 'cython' or None for the current backend

    Returns
    -------
    y : (N, C_out, L_out) with L_out = (L + 2 padding - K) // stride + 1, dtype of x
    """
    x, w = conv_inputs(x, w)
    stride, padding, l_out = _checked_geometry(x, w, stride, padding)
    b = checked_bias(b, w, x.dtype)
    y = np.empty((x.shape[0], w.shape[0], l_out), dtype=x.dtype)
    kernel = resolve(backend).conv1d_forward
    for n in batch_chunks(x, w, l_out, backend, passes=1):
        kernel(x[n], w, b, stride, padding, y[n])
    return y


def conv1d_backward(x, w, dy, *, stride=1, padding=0, need_dx=True, backend=None):
    """Gradients of conv1d_forward(x, w, b, stride=stride, padding=padding) given dy.

    Parameters
    ----------
    x : (N, C_in, L) float32 or float64, the layer's input
    w : (C_out, C_in, K), same dtype
    dy : (N, C_out, L_out), same dtype, gradient of the loss w.r.t. the output
    need_dx : bool; False skips dx (the first layer of a network)

    Returns
    -------
    (dx or None, dw, db) of shapes (N, C_in, L), (C_out, C_in, K), (C_out,), dtype of x
    """
    x, w = conv_inputs(x, w)
    stride, padding, l_out = _checked_geometry(x, w, stride, padding)
    dy = v.float_array("dy", dy, ndim=3, dtype=x.dtype)
    v.same_shape("dy", dy, "conv1d_forward's output", (x.shape[0], w.shape[0], l_out))
    chunks = batch_chunks(x, w, l_out, backend, passes=2 if need_dx else 1)
    return backward_in_chunks(resolve(backend).conv1d_backward, x, w, dy, stride, padding, need_dx, chunks)


def maxpool1d_forward(x, *, kernel_size, stride=None, backend=None):
    """Max over windows of `kernel_size` positions every `stride` (default kernel_size) positions.

    Parameters
    ----------
    x : (N, C, L) float32 or float64
    kernel_size : int >= 1, at most L
    stride : int in [1, 2**40] or None for kernel_size (non-overlapping windows)

    Returns
    -------
    y : (N, C, L_out) with L_out = (L - kernel_size) // stride + 1, dtype of x
    argmax : (N, C, L_out) int64, the position in [0, L) of each window's first maximum (what
        maxpool1d_backward needs)
    """
    x = v.float_array("x", x, ndim=3)
    kernel_size = _integer("kernel_size", kernel_size, 1)
    stride, _, l_out = conv_geometry(x.shape[2], kernel_size, kernel_size if stride is None else stride, 0)
    y = np.empty(x.shape[:2] + (l_out,), dtype=x.dtype)
    argmax = np.empty(y.shape, dtype=np.int64)
    resolve(backend).maxpool1d_forward(x, kernel_size, stride, y, argmax)
    return y, argmax


def maxpool1d_backward(dy, argmax, length, *, backend=None):
    """Gradient of maxpool1d_forward: dx (N, C, length) with each dy[n, c, t] added at argmax[n, c, t].

    Parameters
    ----------
    dy : (N, C, L_out) float32 or float64
    argmax : (N, C, L_out) integer positions in [0, length), as maxpool1d_forward returned them
    length : int, L of the pooled input, in [1, 2**40]; dx may have at most 2**31 - 1 elements or
        twice the elements argmax implies (N C (max(argmax) + 1)), whichever is more
    """
    dy = v.float_array("dy", dy, ndim=3)
    length = _integer("length", length, 1)
    argmax = np.asarray(argmax)
    if argmax.shape != dy.shape:
        raise ValueError(f"argmax has shape {argmax.shape} but dy has shape {dy.shape}; they must match")
    argmax = v.indices("argmax", argmax.reshape(-1), length, f"an input of length {length}",
                       noun="position").reshape(dy.shape)
    rows = dy.shape[0] * dy.shape[1]
    v.element_count("dx", rows * length, f"length={length} for dy of shape {dy.shape}",
                    limit=max(v.MAX_ELEMENTS, 2 * rows * (int(argmax.max()) + 1)))
    dx = np.empty(dy.shape[:2] + (length,), dtype=dy.dtype)
    resolve(backend).maxpool1d_backward(dy, argmax, dx)
    return dx
