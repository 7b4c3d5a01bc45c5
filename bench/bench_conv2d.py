"""Conv-2D and 2-D max-pooling benchmarks at the seeds' image CNNs: every available backend beside the
NumPy reference and, optionally, PyTorch CPU.

Groups ("conv2d fwd+bwd": one forward, then the backward with dw, db and, unless the layer is a
network's first, dx), float32:
- "seed-first": N=100, 1->64 channels, 7x7 on 28x28 (the Fashion-MNIST CNN's first layer; no dx).
- "tutorial-1 N=4" / "tutorial-1 N=100": 3->6, 5x5 on 32x32 (the CIFAR tutorial CNN's first layer; no dx).
- "tutorial-2 N=4" / "tutorial-2 N=100": 6->16, 5x5 on 14x14 (its second layer, with dx).
Targets (issue 12): at least 2x faster than torch at batch 4, at least 1.2x at the larger batches.
- "maxpool2d fwd+bwd": N=100, C=64, 22x22, 2x2 windows (after the seed's first layer). No target.

The "torch" entries (role external, skipped when torch is not installed) run
torch.nn.functional.conv2d / max_pool2d on tensors sharing memory with the same inputs, on 2 threads,
with autograd: forward, then y.backward(dy). Plain `pytest` runs every entry once, untimed, and
checks its results against the 'numpy' backend's before anything is timed.
"""
import numpy as np
import pytest

import fastnn

from bench_kernels import assert_close, label, run

BACKENDS = fastnn.available_backends()
TORCH = "torch"
TARGET_SMALL = ">= 2x faster than torch"
TARGET_LARGE = ">= 1.2x faster than torch"
# name: (N, C_in, C_out, H, W, KH, KW, stride, padding, need_dx, target)
SHAPES = {
    "seed-first": (100, 1, 64, 28, 28, 7, 7, 1, 0, False, TARGET_LARGE),
    "tutorial-1 N=4": (4, 3, 6, 32, 32, 5, 5, 1, 0, False, TARGET_SMALL),
    "tutorial-1 N=100": (100, 3, 6, 32, 32, 5, 5, 1, 0, False, TARGET_LARGE),
    "tutorial-2 N=4": (4, 6, 16, 14, 14, 5, 5, 1, 0, True, TARGET_SMALL),
    "tutorial-2 N=100": (100, 6, 16, 14, 14, 5, 5, 1, 0, True, TARGET_LARGE),
}
POOL = (100, 64, 22, 22, 2, 2)  # N, C, H, W, kernel_size, stride


def shape_id(name):
    n, c_in, c_out, height, width, kh, kw, stride, padding, need_dx, _ = SHAPES[name]
    return (f"{name}: N={n} {c_in}->{c_out} {height}x{width} K={kh}x{kw} s={stride} p={padding}"
            f"{'' if need_dx else ' no dx'}")


_cache = {}


def conv_data(name, dtype):
    """x, w, b, dy (seeded by the shape) and the reference y, (dx, dw, db) from the 'numpy' backend."""
    key = (name, np.dtype(dtype).str)
    if key not in _cache:
        n, c_in, c_out, height, width, kh, kw, stride, padding, need_dx, _ = SHAPES[name]
        rng = np.random.default_rng([n, c_in, c_out, height, width, kh, kw])
        x = rng.standard_normal((n, c_in, height, width)).astype(dtype)
        w = (rng.standard_normal((c_out, c_in, kh, kw)) / np.sqrt(c_in * kh * kw)).astype(dtype)
        b = (0.1 * rng.standard_normal(c_out)).astype(dtype)
        y = fastnn.conv2d_forward(x, w, b, stride=stride, padding=padding, backend="numpy")
        dy = rng.standard_normal(y.shape).astype(dtype)
        grads = fastnn.conv2d_backward(x, w, dy, stride=stride, padding=padding, need_dx=need_dx, backend="numpy")
        _cache[key] = {"x": x, "w": w, "b": b, "dy": dy, "y": y, "grads": grads}
    return _cache[key]


def _fastnn_pass(data, name, impl):
    stride, padding, need_dx = SHAPES[name][7:10]
    x, w, b, dy = data["x"], data["w"], data["b"], data["dy"]

    def forward_backward():
        y = fastnn.conv2d_forward(x, w, b, stride=stride, padding=padding, backend=impl)
        return y, fastnn.conv2d_backward(x, w, dy, stride=stride, padding=padding, need_dx=need_dx, backend=impl)

    return forward_backward, forward_backward()


def _torch_pass(torch, data, name):
    stride, padding, need_dx = SHAPES[name][7:10]
    x = torch.from_numpy(data["x"]).requires_grad_(need_dx)
    w = torch.from_numpy(data["w"]).requires_grad_()
    b = torch.from_numpy(data["b"]).requires_grad_()
    dy = torch.from_numpy(data["dy"])

    def forward_backward():
        x.grad = w.grad = b.grad = None
        y = torch.nn.functional.conv2d(x, w, b, stride=stride, padding=padding)
        y.backward(dy)
        dx = x.grad.numpy() if need_dx else None
        return y.detach().numpy(), (dx, w.grad.numpy(), b.grad.numpy())

    return forward_backward, forward_backward()


def _check(result, data):
    y, grads = result
    assert_close(y, data["y"], "y")
    for got, want, what in zip(grads, data["grads"], ("dx", "dw", "db")):
        if want is None:
            assert got is None, f"{what} computed though not asked for"
        else:
            assert_close(got, want, what)


@pytest.mark.parametrize("impl", [*BACKENDS, TORCH])
@pytest.mark.parametrize("name", list(SHAPES))
def bench_conv2d_forward_backward(benchmark, request, name, impl):
    """One conv2d forward then its backward, float32. Targets: see the module docstring."""
    data = conv_data(name, "float32")
    target = SHAPES[name][-1]
    if impl == TORCH:
        function, result = _torch_pass(request.getfixturevalue("torch"), data, name)
        label(benchmark, "conv2d fwd+bwd", shape_id(name), "float32", impl, role="external", target=target)
    else:
        function, result = _fastnn_pass(data, name, impl)
        label(benchmark, "conv2d fwd+bwd", shape_id(name), "float32", impl, target=target)
    _check(result, data)
    run(benchmark, function)


@pytest.mark.parametrize("impl", [*BACKENDS, TORCH])
def bench_maxpool2d_forward_backward(benchmark, request, impl):
    """2-D max-pool forward (values and argmax) then backward, float32. No target."""
    n, channels, height, width, kernel_size, stride = POOL
    x = np.random.default_rng(list(POOL)).standard_normal((n, channels, height, width)).astype(np.float32)
    y_ref, argmax_ref = fastnn.maxpool2d_forward(x, kernel_size=kernel_size, stride=stride, backend="numpy")
    dy = np.random.default_rng(0).standard_normal(y_ref.shape).astype(np.float32)
    dx_ref = fastnn.maxpool2d_backward(dy, argmax_ref, x.shape, backend="numpy")
    shape = f"N={n} C={channels} {height}x{width} kernel={kernel_size} s={stride}"
    if impl == TORCH:
        torch = request.getfixturevalue("torch")
        tx, tdy = torch.from_numpy(x).requires_grad_(), torch.from_numpy(dy)

        def function():
            tx.grad = None
            y = torch.nn.functional.max_pool2d(tx, kernel_size, stride)
            y.backward(tdy)
            return y.detach().numpy(), tx.grad.numpy()

        label(benchmark, "maxpool2d fwd+bwd", shape, np.float32, impl, role="external")
    else:
        def function():
            y, argmax = fastnn.maxpool2d_forward(x, kernel_size=kernel_size, stride=stride, backend=impl)
            return y, fastnn.maxpool2d_backward(dy, argmax, x.shape, backend=impl)

        label(benchmark, "maxpool2d fwd+bwd", shape, np.float32, impl)
    y, dx = function()
    np.testing.assert_array_equal(y, y_ref)
    assert_close(dx, dx_ref, "dx")
    run(benchmark, function)
