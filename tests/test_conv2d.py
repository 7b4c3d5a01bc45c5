"""Conv-2D, 2-D max-pooling, leaky ReLU and tanh: the reference's gradients against finite differences, its
values against direct loops written from PyTorch's definitions, and bad or hostile input refused with a clear
error before compiled code runs. (Backend agreement is the conformance suite's job: tests/kernel_cases.py.)"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from child_process import NEUTRAL_CWD, child_env

import fastnn
from fastnn import _interrupt as interrupt

from test_gradients import assert_gradient, numerical_gradient

f32, f64 = np.float32, np.float64


def arr(*shape, dtype=f64):
    return np.ones(shape, dtype=dtype)


def direct_conv2d(x, w, b, stride, padding):
    """PyTorch's conv2d written as loops over output positions (float64)."""
    (sh, sw), (ph, pw) = stride, padding
    n, _, height, width = x.shape
    c_out, _, kh, kw = w.shape
    xpad = np.zeros((n, x.shape[1], height + 2 * ph, width + 2 * pw))
    xpad[:, :, ph:ph + height, pw:pw + width] = x
    h_out, w_out = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    y = np.empty((n, c_out, h_out, w_out))
    for i in range(h_out):
        for j in range(w_out):
            window = xpad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            y[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return y


# (x shape, w shape, stride, padding)
GEOMETRIES = [((2, 3, 7, 6), (4, 3, 3, 2), (2, 1), (1, 2)), ((1, 1, 5, 5), (2, 1, 5, 5), 1, 0),
              ((3, 2, 9, 11), (5, 2, 3, 1), (1, 3), (2, 0)), ((2, 2, 4, 4), (3, 2, 2, 2), 3, 1)]


def _pair(value):
    return value if isinstance(value, tuple) else (value, value)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", GEOMETRIES)
def test_conv2d_reference_is_pytorchs_cross_correlation(x_shape, w_shape, stride, padding):
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    y = fastnn.conv2d_forward(x, w, b, stride=stride, padding=padding, backend="numpy")
    np.testing.assert_allclose(y, direct_conv2d(x, w, b, _pair(stride), _pair(padding)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", GEOMETRIES)
def test_conv2d_gradients(x_shape, w_shape, stride, padding):
    """Objective sum(G * conv2d(x, w, b)): conv2d_backward gives dx, dw, db."""
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    G = rng.standard_normal(fastnn.conv2d_forward(x, w, b, stride=stride, padding=padding, backend="numpy").shape)

    def objective():
        return float(np.sum(G * fastnn.conv2d_forward(x, w, b, stride=stride, padding=padding, backend="numpy")))

    dx, dw, db = fastnn.conv2d_backward(x, w, G, stride=stride, padding=padding, backend="numpy")
    assert_gradient(dx, numerical_gradient(objective, x))
    assert_gradient(dw, numerical_gradient(objective, w))
    assert_gradient(db, numerical_gradient(objective, b))


@pytest.mark.parametrize("kernel_size, stride", [(2, None), ((3, 2), (2, 3)), (3, 1)])
def test_maxpool2d_gradient(kernel_size, stride):
    rng = np.random.default_rng(2)
    x = rng.permutation(2 * 3 * 7 * 8).reshape(2, 3, 7, 8) / 10.0  # distinct values: no ties to break
    y, argmax = fastnn.maxpool2d_forward(x, kernel_size=kernel_size, stride=stride, backend="numpy")
    G = rng.standard_normal(y.shape)

    def objective():
        return float(np.sum(G * fastnn.maxpool2d_forward(x, kernel_size=kernel_size, stride=stride,
                                                         backend="numpy")[0]))

    dx = fastnn.maxpool2d_backward(G, argmax, x.shape, backend="numpy")
    assert_gradient(dx, numerical_gradient(objective, x))


def test_maxpool2d_picks_the_first_maximum_in_row_major_order(backend, dtype):
    x = np.zeros((1, 1, 4, 4), dtype=dtype)
    x[0, 0, 1, 0] = x[0, 0, 0, 1] = 5  # window (0, 0): both (0, 1) and (1, 0) hold its maximum
    x[0, 0, 2:, 2:] = np.nan  # window (1, 1): NaN wins, the first one
    x[0, 0, 3, 0] = 1
    y, argmax = fastnn.maxpool2d_forward(x, kernel_size=2, backend=backend)
    np.testing.assert_array_equal(argmax[0, 0], [[1, 2], [12, 10]])  # (0, 1): all zeros, the first
    np.testing.assert_array_equal(y[0, 0], np.array([[5, 0], [1, np.nan]], dtype=dtype))
    dx = fastnn.maxpool2d_backward(np.ones_like(y), argmax, x.shape, backend=backend)
    assert dx.sum() == 4 and dx[0, 0, 0, 1] == 1 and dx[0, 0, 1, 0] == 0


def test_leaky_relu_and_tanh_gradients():
    rng = np.random.default_rng(3)
    X, G = 3 * rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    for slope in (0.01, 0.3):
        def leaky():
            return float(np.sum(G * fastnn.leaky_relu_forward(X, negative_slope=slope, backend="numpy")))

        assert_gradient(fastnn.leaky_relu_backward(G, X, negative_slope=slope, backend="numpy"),
                        numerical_gradient(leaky, X))

    def tanh():
        return float(np.sum(G * fastnn.tanh_forward(X, backend="numpy")))

    Y = fastnn.tanh_forward(X, backend="numpy")
    assert_gradient(fastnn.tanh_backward(G, Y, backend="numpy"), numerical_gradient(tanh, X))


def test_leaky_relu_values_and_pytorch_default_slope(backend, dtype):
    X = np.array([-2.0, -0.0, 0.0, 3.0], dtype=dtype)
    np.testing.assert_array_equal(fastnn.leaky_relu_forward(X, backend=backend), np.array([-0.02, 0, 0, 3], dtype=dtype))
    dX = fastnn.leaky_relu_backward(np.ones_like(X), X, negative_slope=0.5, backend=backend)
    np.testing.assert_array_equal(dX, np.array([0.5, 0.5, 0.5, 1], dtype=dtype))  # at 0: the slope, as PyTorch


def test_tanh_saturates_without_nan(backend, dtype):
    X = np.array([-1e30, -50.0, 0.0, 50.0, 1e30], dtype=dtype)
    np.testing.assert_array_equal(fastnn.tanh_forward(X, backend=backend), np.array([-1, -1, 0, 1, 1], dtype=dtype))


_, ARGMAX = fastnn.maxpool2d_forward(arr(2, 3, 4, 4), kernel_size=2, backend="numpy")

# (kernel, keyword arguments, expected exception, words the message must contain)
BAD_INPUTS = [
    ("conv2d_forward", dict(x=arr(2, 3, 6), w=arr(4, 3, 3, 3)), ValueError, ["x", "4-D", "(2, 3, 6)"]),
    ("conv2d_forward", dict(x=arr(2, 3, 6, 6), w=arr(4, 2, 3, 3)), ValueError, ["w", "(4, 2, 3, 3)", "C_in"]),
    ("conv2d_forward", dict(x=arr(2, 3, 6, 6), w=arr(4, 3, 7, 3)), ValueError, ["kernel height 7", "height 6",
                                                                                 "empty output"]),
    ("conv2d_forward", dict(x=arr(2, 3, 6, 4), w=arr(4, 3, 3, 5)), ValueError, ["kernel width 5", "width 4"]),
    ("conv2d_forward", dict(x=arr(2, 3, 6, 6), w=arr(4, 3, 3, 3), stride=0), ValueError, ["stride", "0"]),
    ("conv2d_forward", dict(x=arr(2, 3, 6, 6), w=arr(4, 3, 3, 3), stride=(1, 0)), ValueError, ["stride[1]", "0"]),
    ("conv2d_forward", dict(x=arr(2, 3, 6, 6), w=arr(4, 3, 3, 3), stride=(1, 1, 1)), ValueError, ["stride", "pair"]),
    ("conv2d_forward", dict(x=arr(2, 3, 6, 6), w=arr(4, 3, 3, 3), stride=1.0), ValueError, ["stride", "1.0"]),
    ("conv2d_forward", dict(x=arr(2, 3, 6, 6), w=arr(4, 3, 3, 3), stride=True), ValueError, ["stride", "True"]),
    ("conv2d_forward", dict(x=arr(2, 3, 6, 6), w=arr(4, 3, 3, 3), padding=(0, -1)), ValueError, ["padding[1]", "-1"]),
    ("conv2d_forward", dict(x=arr(2, 3, 6, 6), w=arr(4, 3, 3, 3), padding=(7, 0)), ValueError,
     ["padding = 7", "height", "at most", "6"]),
    ("conv2d_forward", dict(x=arr(2, 3, 6, 6), w=arr(4, 3, 3, 3), stride=2**40 + 1), ValueError,
     ["stride", "too large"]),
    ("conv2d_forward", dict(x=arr(2, 3, 6, 6), w=arr(4, 3, 3, 3), b=arr(3)), ValueError, ["b", "(3,)", "(4,)"]),
    ("conv2d_forward", dict(x=arr(2, 3, 6, 6), w=arr(4, 3, 3, 3, dtype=f32)), TypeError, ["w", "float32"]),
    ("conv2d_forward", dict(x=arr(0, 3, 6, 6), w=arr(4, 3, 3, 3)), ValueError, ["x", "empty"]),
    ("conv2d_forward", dict(x=np.ones((2, 3, 6, 6), dtype=int), w=arr(4, 3, 3, 3)), TypeError, ["x", "int64"]),
    ("conv2d_backward", dict(x=arr(2, 3, 6, 6), w=arr(4, 3, 3, 3), dy=arr(2, 4, 4, 3)), ValueError,
     ["dy", "(2, 4, 4, 3)", "(2, 4, 4, 4)"]),
    ("conv2d_backward", dict(x=arr(2, 3, 6, 6), w=arr(4, 3, 3, 3), dy=arr(2, 4, 4, 4), stride=(2, 1)), ValueError,
     ["dy", "(2, 4, 2, 4)"]),
    ("conv2d_backward", dict(x=arr(2, 3, 6, 6), w=arr(4, 3, 3, 3), dy=arr(2, 4, 4, 4, dtype=f32)), TypeError,
     ["dy", "float32"]),
    ("maxpool2d_forward", dict(x=arr(2, 3, 4, 4), kernel_size=5), ValueError, ["kernel height 5", "height 4"]),
    ("maxpool2d_forward", dict(x=arr(2, 3, 4, 4), kernel_size=(2, 0)), ValueError, ["kernel_size[1]", "0"]),
    ("maxpool2d_forward", dict(x=arr(2, 3, 4, 4), kernel_size=2, stride=(0, 1)), ValueError, ["stride[0]", "0"]),
    ("maxpool2d_forward", dict(x=arr(3, 4, 4), kernel_size=2), ValueError, ["x", "4-D"]),
    ("maxpool2d_backward", dict(dy=arr(2, 3, 2, 2), argmax=ARGMAX, input_shape=(2, 3, 3, 3)), ValueError,
     ["argmax", "position", "[0, 9)"]),
    ("maxpool2d_backward", dict(dy=arr(2, 3, 2, 2), argmax=-ARGMAX - 1, input_shape=(2, 3, 4, 4)), ValueError,
     ["argmax", "-"]),
    ("maxpool2d_backward", dict(dy=arr(2, 3, 2, 2), argmax=ARGMAX[:, :2], input_shape=(2, 3, 4, 4)), ValueError,
     ["argmax", "shape"]),
    ("maxpool2d_backward", dict(dy=arr(2, 3, 2, 2), argmax=ARGMAX.astype(f64), input_shape=(2, 3, 4, 4)), TypeError,
     ["argmax", "integer"]),
    ("maxpool2d_backward", dict(dy=arr(2, 3, 2, 2), argmax=ARGMAX, input_shape=(4, 4)), ValueError,
     ["input_shape", "(N, C, H, W)"]),
    ("maxpool2d_backward", dict(dy=arr(2, 3, 2, 2), argmax=ARGMAX, input_shape=(2, 4, 4, 4)), ValueError,
     ["input_shape", "N and C"]),
    ("maxpool2d_backward", dict(dy=arr(2, 3, 2, 2), argmax=ARGMAX, input_shape=(2, 3, 2**20, 2**20)), ValueError,
     ["dx", "limit"]),
    ("leaky_relu_forward", dict(X=arr(3), negative_slope=np.inf), ValueError, ["negative_slope", "finite"]),
    ("leaky_relu_forward", dict(X=arr(3), negative_slope="0.1"), ValueError, ["negative_slope"]),
    ("leaky_relu_forward", dict(X=np.ones(3, dtype=int)), TypeError, ["X", "int64"]),
    ("leaky_relu_backward", dict(dY=arr(3), X=arr(4)), ValueError, ["X", "(4,)", "(3,)"]),
    ("leaky_relu_backward", dict(dY=arr(3), X=arr(3, dtype=f32)), TypeError, ["X", "float32"]),
    ("tanh_forward", dict(X=arr(0)), ValueError, ["X", "empty"]),
    ("tanh_backward", dict(dY=arr(3), Y=arr(2)), ValueError, ["Y", "(2,)"]),
]


@pytest.mark.parametrize("kernel, kwargs, error, words", BAD_INPUTS,
                         ids=[f"{k}-{i}" for i, (k, *_rest) in enumerate(BAD_INPUTS)])
def test_bad_input_is_rejected_with_a_clear_message(kernel, kwargs, error, words, backend):
    with pytest.raises(error) as excinfo:
        getattr(fastnn, kernel)(**kwargs, backend=backend)
    message = str(excinfo.value)
    for word in words:
        assert word in message, f"{word!r} missing from {message!r}"


HOSTILE = textwrap.dedent("""
    import numpy as np
    import fastnn
    x, w = np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2))
    calls = [
        lambda b: fastnn.conv2d_forward(x, w, stride=2**63, backend=b),
        lambda b: fastnn.conv2d_forward(x, w, stride=np.uint64(2**64 - 1), backend=b),
        lambda b: fastnn.conv2d_forward(x, w, padding=(0, 2**62), backend=b),
        lambda b: fastnn.conv2d_backward(x, w, np.ones((1, 1, 2, 2)), padding=10**12, backend=b),
        lambda b: fastnn.maxpool2d_forward(x, kernel_size=(2**63, 1), backend=b),
        lambda b: fastnn.maxpool2d_forward(x, kernel_size=2, stride=(1, 2**41), backend=b),
        lambda b: fastnn.maxpool2d_backward(np.ones((1, 1, 1, 1)), np.zeros((1, 1, 1, 1), int),
                                            (1, 1, 2**40, 2**40), backend=b),
        lambda b: fastnn.maxpool2d_backward(np.ones((1, 1, 1, 1)), np.zeros((1, 1, 1, 1), int),
                                            (1, 1, 2**62, 4), backend=b),
    ]
    for backend in fastnn.available_backends():
        for i, call in enumerate(calls):
            try:
                call(backend)
            except ValueError:
                continue
            raise SystemExit(f"call {i} on {backend} was accepted")
    print("all refused")
""")


def test_hostile_geometry_is_refused_in_a_child_process():
    """Sizes near 2**63 (which would overflow size computations in compiled code) get a ValueError; the
    calls run in a child process so that a crash is a test failure, not a lost test run."""
    result = subprocess.run([sys.executable, "-c", HOSTILE], capture_output=True, text=True, timeout=300,
                            env=child_env(), cwd=NEUTRAL_CWD)
    assert result.returncode == 0, result.stderr[-2000:] + result.stdout[-2000:]
    assert "all refused" in result.stdout


def test_large_convolutions_chunked_over_the_batch_match_one_call(backend, dtype, monkeypatch):
    """Ctrl-C is seen between chunks of the batch (fastnn._interrupt); chunking changes no result."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((11, 3, 9, 8)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 2)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    dy = rng.standard_normal((11, 4, 5, 5)).astype(dtype)
    y = fastnn.conv2d_forward(x, w, b, stride=(2, 2), padding=1, backend=backend)
    grads = fastnn.conv2d_backward(x, w, dy, stride=(2, 2), padding=1, backend=backend)
    monkeypatch.setattr(interrupt, "CHUNK_SECONDS", 1e-12)  # one sample per call
    tol = 1e-5 if np.dtype(dtype) == np.float32 else 1e-12
    # per sample the compiled backends are exact; the reference's einsum picks its contraction order by
    # shape, so a batch of one may round differently
    same = np.testing.assert_array_equal if backend != "numpy" else (
        lambda got, want: np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max()))
    same(fastnn.conv2d_forward(x, w, b, stride=(2, 2), padding=1, backend=backend), y)
    dx, dw, db = fastnn.conv2d_backward(x, w, dy, stride=(2, 2), padding=1, backend=backend)
    same(dx, grads[0])
    # summed over the calls: rounding only
    np.testing.assert_allclose(dw, grads[1], rtol=tol, atol=tol * np.abs(grads[1]).max())
    np.testing.assert_allclose(db, grads[2], rtol=tol, atol=tol * np.abs(grads[2]).max())
