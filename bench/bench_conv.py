"""Conv-1D and max-pooling benchmarks: every available backend beside the NumPy reference and,
optionally, PyTorch CPU.

Groups (one per kernel, shape and dtype; float32 unless named):
- "conv1d fwd+bwd" at shape A, N=100, 25->25 channels, L=19, K=3, stride 2, padding 1 (the second
  layer of the MNIST-1D ConvBase net): one forward then the backward with dx, dw and db.
  Target: >= 3x faster than torch (conv1d forward + autograd backward).
- "conv1d fwd+bwd" at shape B, N=512, 32->64, L=128, K=5, stride 1, padding 0 (GEMM-bound,
  ~3.9 GFLOP). Target: no slower than torch. Also "conv1d_forward" alone at B.
- "maxpool1d fwd+bwd" N=100, C=25, L=20, kernel 2, stride 2. No target.

The "torch" entries (role external, skipped when torch is not installed) run
torch.nn.functional.conv1d / max_pool1d on tensors sharing memory with the same inputs, on 2
threads, with autograd: forward, then y.backward(dy). Plain `pytest` runs every entry once,
untimed, and checks its results against the 'numpy' backend's before anything is timed.
"""
import numpy as np
import pytest

import fastnn

from bench_kernels import assert_close, label, run

BACKENDS = fastnn.available_backends()
TORCH = "torch"
TARGET_SMALL = ">= 3x faster than torch"
TARGET_LARGE = "no slower than torch"
# name: (N, C_in, C_out, L, K, stride, padding, target)
SHAPES = {
    "A": (100, 25, 25, 19, 3, 2, 1, TARGET_SMALL),
    "B": (512, 32, 64, 128, 5, 1, 0, TARGET_LARGE),
}
POOL = (100, 25, 20, 2, 2)  # N, C, L, kernel_size, stride


def shape_id(name):
    n, c_in, c_out, length, k, stride, padding, _ = SHAPES[name]
    return f"{name}: N={n} {c_in}->{c_out} L={length} K={k} s={stride} p={padding}"


_cache = {}


def conv_data(name, dtype):
    """x, w, b, dy (seeded by the shape) and the reference y, (dx, dw, db) from the 'numpy' backend."""
    key = (name, np.dtype(dtype).str)
    if key not in _cache:
        n, c_in, c_out, length, k, stride, padding, _ = SHAPES[name]
        rng = np.random.default_rng([n, c_in, c_out, length, k, stride, padding])
        x = rng.standard_normal((n, c_in, length)).astype(dtype)
        w = (rng.standard_normal((c_out, c_in, k)) / np.sqrt(c_in * k)).astype(dtype)
        b = (0.1 * rng.standard_normal(c_out)).astype(dtype)
        y = fastnn.conv1d_forward(x, w, b, stride=stride, padding=padding, backend="numpy")
        dy = rng.standard_normal(y.shape).astype(dtype)
        grads = fastnn.conv1d_backward(x, w, dy, stride=stride, padding=padding, backend="numpy")
        _cache[key] = {"x": x, "w": w, "b": b, "dy": dy, "y": y, "grads": grads}
    return _cache[key]


def _fastnn_pass(data, name, impl, backward):
    _, _, _, _, _, stride, padding, _ = SHAPES[name]
    x, w, b, dy = data["x"], data["w"], data["b"], data["dy"]

    def forward():
        return fastnn.conv1d_forward(x, w, b, stride=stride, padding=padding, backend=impl)

    def forward_backward():
        return forward(), fastnn.conv1d_backward(x, w, dy, stride=stride, padding=padding, backend=impl)

    function = forward_backward if backward else forward
    try:
        result = function()  # checked before timing; a backend still being written may raise
    except NotImplementedError:
        pytest.skip(f"{impl} has no conv1d kernels yet")
    return function, result


def _torch_pass(torch, data, name, backward):
    _, _, _, _, _, stride, padding, _ = SHAPES[name]
    x = torch.from_numpy(data["x"]).requires_grad_(backward)
    w = torch.from_numpy(data["w"]).requires_grad_(backward)
    b = torch.from_numpy(data["b"]).requires_grad_(backward)
    dy = torch.from_numpy(data["dy"])

    def forward():
        with torch.set_grad_enabled(backward):
            return torch.nn.functional.conv1d(x, w, b, stride=stride, padding=padding)

    def forward_backward():
        x.grad = w.grad = b.grad = None
        y = forward()
        y.backward(dy)
        return y.detach().numpy(), (x.grad.numpy(), w.grad.numpy(), b.grad.numpy())

    if backward:
        return forward_backward, forward_backward()
    return forward, forward().numpy()


def _check(result, data, backward):
    if backward:
        y, (dx, dw, db) = result
        assert_close(y, data["y"], "y")
        for got, want, what in zip((dx, dw, db), data["grads"], ("dx", "dw", "db")):
            assert_close(got, want, what)
    else:
        assert_close(result, data["y"], "y")


@pytest.mark.parametrize("impl", [*BACKENDS, TORCH])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(SHAPES))
def bench_conv1d_forward_backward(benchmark, request, name, dtype, impl):
    """One conv1d forward then its backward (dx, dw, db). Targets: see the module docstring."""
    data = conv_data(name, dtype)
    target = SHAPES[name][-1] if dtype == "float32" else None
    if impl == TORCH:
        function, result = _torch_pass(request.getfixturevalue("torch"), data, name, backward=True)
        label(benchmark, "conv1d fwd+bwd", shape_id(name), dtype, impl, role="external", target=target)
    else:
        function, result = _fastnn_pass(data, name, impl, backward=True)
        label(benchmark, "conv1d fwd+bwd", shape_id(name), dtype, impl, target=target)
    _check(result, data, backward=True)
    run(benchmark, function)


@pytest.mark.parametrize("impl", [*BACKENDS, TORCH])
def bench_conv1d_forward(benchmark, request, impl):
    """conv1d forward alone at shape B, float32 (torch without autograd). No target."""
    data = conv_data("B", "float32")
    if impl == TORCH:
        function, result = _torch_pass(request.getfixturevalue("torch"), data, "B", backward=False)
        label(benchmark, "conv1d_forward", shape_id("B"), "float32", impl, role="external")
    else:
        function, result = _fastnn_pass(data, "B", impl, backward=False)
        label(benchmark, "conv1d_forward", shape_id("B"), "float32", impl)
    _check(result, data, backward=False)
    run(benchmark, function)


@pytest.mark.parametrize("impl", [*BACKENDS, TORCH])
def bench_maxpool1d_forward_backward(benchmark, request, impl):
    """max-pool forward (values and argmax) then backward, float32. No target."""
    n, channels, length, kernel_size, stride = POOL
    x = np.random.default_rng(list(POOL)).standard_normal((n, channels, length)).astype(np.float32)
    y_ref, argmax_ref = fastnn.maxpool1d_forward(x, kernel_size=kernel_size, stride=stride, backend="numpy")
    dy = np.random.default_rng(0).standard_normal(y_ref.shape).astype(np.float32)
    dx_ref = fastnn.maxpool1d_backward(dy, argmax_ref, length, backend="numpy")
    shape = f"N={n} C={channels} L={length} kernel={kernel_size} s={stride}"
    if impl == TORCH:
        torch = request.getfixturevalue("torch")
        tx, tdy = torch.from_numpy(x).requires_grad_(), torch.from_numpy(dy)

        def function():
            tx.grad = None
            y = torch.nn.functional.max_pool1d(tx, kernel_size, stride)
            y.backward(tdy)
            return y.detach().numpy(), tx.grad.numpy()

        label(benchmark, "maxpool1d fwd+bwd", shape, np.float32, impl, role="external")
    else:
        def function():
            y, argmax = fastnn.maxpool1d_forward(x, kernel_size=kernel_size, stride=stride, backend=impl)
            return y, fastnn.maxpool1d_backward(dy, argmax, length, backend=impl)

        label(benchmark, "maxpool1d fwd+bwd", shape, np.float32, impl)
    try:
        y, dx = function()
    except NotImplementedError:
        pytest.skip(f"{impl} has no max-pooling kernels yet")
    np.testing.assert_array_equal(y, y_ref)
    assert_close(dx, dx_ref, "dx")
    run(benchmark, function)
