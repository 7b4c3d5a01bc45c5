"""Kernel benchmarks: every available backend side by side with the NumPy reference.

`pytest --benchmark-only` times them (one pytest-benchmark group per kernel, shape and dtype);
plain `pytest` runs each once, untimed, and checks its result against the 'numpy' reference, so
the smoke run catches wrong results. `python -m fastnn bench` runs them and writes a report.

Every entry records `benchmark.extra_info`: kernel, shape, dtype, impl (backend or baseline
name), role ('backend', 'baseline' = a bound on what the kernel could do, or 'external' =
another library as a yardstick) and, for the groups that have one, the target.

Targets (never asserted: a test never checks a wall-clock time):
- relu_forward / relu_backward on 16M float32: within 1.2x the time of the plain copy of the
  same array (the memory-bandwidth limit) and >= 1.2x faster than the numpy reference.
- linear_backward with fused mask, 784->128, N=5000: within 1.08x the time of the two bare
  GEMMs it needs, and never slower than the numpy reference.
- linear_backward with fused mask, 784->128, N=5: >= 1.3x faster than the numpy reference.

The optional "torch" entries (skipped when torch is not installed) time, on 2 threads, on
tensors sharing memory with the same NumPy inputs:
- linear_forward: torch.addmm(b, X, W).
- linear_backward+mask: what autograd runs for Linear followed by ReLU: threshold_backward(dY, A, 0)
  with A the saved ReLU output (torch keeps a full tensor instead of a bit mask), then
  dW = X.T @ dZ, db = dZ.sum(0), dX = dZ @ W.T. linear_backward (no mask): the same without the
  threshold.
- relu_forward: torch.relu(X) (no mask is produced); relu_backward: threshold_backward(dY, Y, 0).
"""
import numpy as np
import pytest

import fastnn

BACKENDS = fastnn.available_backends()
TORCH = "torch"
DTYPES = {"float32": np.float32, "float64": np.float64}
# Relative tolerance per dtype; the absolute one is the same fraction of the largest reference value.
RTOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}

TARGET_RELU = "<= 1.2x the time of copy and >= 1.2x faster than numpy"
TARGET_BACKWARD_BIG = "<= 1.08x the time of two-gemms and never slower than numpy"
TARGET_BACKWARD_SMALL = ">= 1.3x faster than numpy"


# ---------------------------------------------------------------------------- helpers
def label(benchmark, kernel, shape, dtype, impl, role="backend", target=None):
    """Put the entry in the group "<kernel> <shape> <dtype>" and record the same in extra_info."""
    dtype = np.dtype(dtype).name
    benchmark.group = f"{kernel} {shape} {dtype}"
    benchmark.extra_info.update(kernel=kernel, shape=shape, dtype=dtype, impl=impl, role=role)
    if target:
        benchmark.extra_info["target"] = target


def run(benchmark, function):
    """Time function() (call it once untimed first when timing: JIT compilation, first touch)."""
    if benchmark.enabled:
        function()
    return benchmark(function)


def assert_close(actual, expected, name=""):
    """actual == expected up to rounding: rtol by dtype, atol = rtol * max|expected|; same dtype."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.dtype == expected.dtype, f"{name} has dtype {actual.dtype}, expected {expected.dtype}"
    rtol = RTOL[expected.dtype]
    atol = rtol * float(np.max(np.abs(expected)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=name)


def assert_loss_close(actual, expected, dtype):
    loss, grad = actual
    ref_loss, ref_grad = expected
    assert_close(np.asarray(loss, dtype=dtype), np.asarray(ref_loss, dtype=dtype), "loss")
    assert_close(grad, ref_grad, "gradient")


def impls(*extra):
    return [*BACKENDS, *extra]


# ---------------------------------------------------------------------------- linear
# The seed MLP is 784 -> 128 -> ReLU -> 10. Layer 1 (784 -> 128) is followed by a ReLU, so its
# backward gets the fused mask; layer 2 (128 -> 10) feeds the loss and has no mask.
LAYER1_CASES = [(784, 128, n, dtype) for dtype in DTYPES for n in (1, 5, 50, 500, 5000)]
LAYER2_CASES = [(128, 10, n, "float32") for n in (5, 5000)]


def case_id(case):
    d_in, d_out, n, dtype = case
    return f"{d_in}x{d_out}-n{n}-{dtype}"


def linear_shape(d_in, d_out, n):
    return f"{d_in}->{d_out} N={n}"


def backward_target(masked, n):
    if masked and n == 5000:
        return TARGET_BACKWARD_BIG
    if masked and n == 5:
        return TARGET_BACKWARD_SMALL
    return None


def torch_tensors(torch, data, *names):
    return [torch.from_numpy(data[name]) for name in names]


@pytest.mark.parametrize("impl", impls(TORCH))
@pytest.mark.parametrize("case", LAYER1_CASES + LAYER2_CASES, ids=case_id)
def bench_linear_forward(benchmark, inputs, request, case, impl):
    """Y = X @ W + b. No target: this is the GEMM plus a bias."""
    d_in, d_out, n, dtype = case
    data = inputs.linear(n, d_in, d_out, dtype)
    X, W, b = data["X"], data["W"], data["b"]
    if impl == TORCH:
        torch = request.getfixturevalue("torch")
        tX, tW, tb = torch_tensors(torch, data, "X", "W", "b")
        label(benchmark, "linear_forward", linear_shape(d_in, d_out, n), dtype, impl, role="external")
        result = run(benchmark, lambda: torch.addmm(tb, tX, tW)).numpy()
    else:
        label(benchmark, "linear_forward", linear_shape(d_in, d_out, n), dtype, impl)
        result = run(benchmark, lambda: fastnn.linear_forward(X, W, b, backend=impl))
    assert_close(result, data["forward"])


@pytest.mark.parametrize("impl", impls(TORCH))
@pytest.mark.parametrize("case", LAYER1_CASES + LAYER2_CASES, ids=case_id)
def bench_linear_backward(benchmark, inputs, request, case, impl):
    """(dX, dW, db); layer 1 with the fused ReLU mask ("linear_backward+mask"), layer 2 without.

    Targets: with mask at N=5000 within 1.08x the two bare GEMMs (bench_linear_backward_two_gemms)
    and never slower than numpy; with mask at N=5 >= 1.3x faster than numpy.
    """
    d_in, d_out, n, dtype = case
    masked = d_out == 128
    kernel = "linear_backward+mask" if masked else "linear_backward"
    data = inputs.linear(n, d_in, d_out, dtype)
    X, W, dY, mask = data["X"], data["W"], data["dY"], (data["mask"] if masked else None)
    target = backward_target(masked, n)
    if impl == TORCH:
        torch = request.getfixturevalue("torch")
        tX, tW, tdY, tA = torch_tensors(torch, data, "X", "W", "dY", "A")

        def torch_backward():
            dZ = torch.ops.aten.threshold_backward(tdY, tA, 0) if masked else tdY
            return dZ @ tW.T, tX.T @ dZ, dZ.sum(0)

        label(benchmark, kernel, linear_shape(d_in, d_out, n), dtype, impl, role="external", target=target)
        result = [t.numpy() for t in run(benchmark, torch_backward)]
    else:
        label(benchmark, kernel, linear_shape(d_in, d_out, n), dtype, impl, target=target)
        result = run(benchmark, lambda: fastnn.linear_backward(X, W, dY, mask=mask, backend=impl))
    expected = data["backward_mask" if masked else "backward"]
    for name, actual, reference in zip(("dX", "dW", "db"), result, expected):
        assert_close(actual, reference, name)


@pytest.mark.parametrize("case", [(784, 128, 5000, dtype) for dtype in DTYPES], ids=case_id)
def bench_linear_backward_two_gemms(benchmark, inputs, case):
    """Baseline "two-gemms": the two bare products linear_backward+mask needs at N=5000, 784->128.

    np.matmul(X.T, dZ, out=dW); np.matmul(dZ, W.T, out=dX) with dZ (already masked) and the
    outputs preallocated: no mask, no bias sum, no allocation. Target for the kernel: <= 1.08x this.
    """
    d_in, d_out, n, dtype = case
    data = inputs.linear(n, d_in, d_out, dtype)
    X, W, dZ = data["X"], data["W"], data["dZ"]
    dX, dW = np.empty_like(X), np.empty_like(W)

    def two_gemms():
        np.matmul(X.T, dZ, out=dW)
        np.matmul(dZ, W.T, out=dX)
        return dX, dW

    label(benchmark, "linear_backward+mask", linear_shape(d_in, d_out, n), dtype, "two-gemms",
          role="baseline", target=TARGET_BACKWARD_BIG)
    run(benchmark, two_gemms)
    ref_dX, ref_dW, _ = data["backward_mask"]
    assert_close(dX, ref_dX, "dX")
    assert_close(dW, ref_dW, "dW")


# ---------------------------------------------------------------------------- ReLU
RELU_SHAPE = (4096, 4096)  # 16M float32 elements, 64 MB: far larger than any cache
RELU_ID = "4096x4096"


@pytest.mark.parametrize("impl", impls(TORCH, "copy"))
def bench_relu_forward(benchmark, inputs, request, impl):
    """(Y, mask) = relu_forward(X) on 16M float32.

    Target: within 1.2x the time of "copy" (np.copy(X), the memory-bandwidth limit) and >= 1.2x
    faster than numpy.
    """
    data = inputs.relu(RELU_SHAPE, np.float32)
    X = data["X"]
    info = ("relu_forward", RELU_ID, X.dtype, impl)
    if impl == "copy":
        label(benchmark, *info, role="baseline", target=TARGET_RELU)
        np.testing.assert_array_equal(run(benchmark, lambda: np.copy(X)), X)
    elif impl == TORCH:
        torch = request.getfixturevalue("torch")
        tX = torch.from_numpy(X)
        label(benchmark, *info, role="external", target=TARGET_RELU)
        np.testing.assert_array_equal(run(benchmark, lambda: torch.relu(tX)).numpy(), data["Y"])
    else:
        label(benchmark, *info, target=TARGET_RELU)
        Y, mask = run(benchmark, lambda: fastnn.relu_forward(X, backend=impl))
        np.testing.assert_array_equal(Y, data["Y"])
        np.testing.assert_array_equal(mask, data["mask"])


@pytest.mark.parametrize("impl", impls(TORCH, "copy"))
def bench_relu_backward(benchmark, inputs, request, impl):
    """dX = relu_backward(dY, mask) on 16M float32.

    Target: within 1.2x the time of "copy" (np.copy(dY)) and >= 1.2x faster than numpy.
    """
    data = inputs.relu(RELU_SHAPE, np.float32)
    dY, mask = data["dY"], data["mask"]
    info = ("relu_backward", RELU_ID, dY.dtype, impl)
    if impl == "copy":
        label(benchmark, *info, role="baseline", target=TARGET_RELU)
        np.testing.assert_array_equal(run(benchmark, lambda: np.copy(dY)), dY)
    elif impl == TORCH:
        torch = request.getfixturevalue("torch")
        tdY, tY = torch.from_numpy(dY), torch.from_numpy(data["Y"])
        label(benchmark, *info, role="external", target=TARGET_RELU)
        result = run(benchmark, lambda: torch.ops.aten.threshold_backward(tdY, tY, 0)).numpy()
        np.testing.assert_array_equal(result, data["dX"])
    else:
        label(benchmark, *info, target=TARGET_RELU)
        np.testing.assert_array_equal(run(benchmark, lambda: fastnn.relu_backward(dY, mask, backend=impl)),
                                      data["dX"])


# ---------------------------------------------------------------------------- sigmoid
SIGMOID_SHAPE = (1000, 1000)
SIGMOID_ID = "1000x1000"


@pytest.mark.parametrize("impl", impls())
def bench_sigmoid_forward(benchmark, inputs, impl):
    """Y = sigmoid(X) on 1M float32. No target."""
    data = inputs.sigmoid(SIGMOID_SHAPE, np.float32)
    label(benchmark, "sigmoid_forward", SIGMOID_ID, np.float32, impl)
    assert_close(run(benchmark, lambda: fastnn.sigmoid_forward(data["X"], backend=impl)), data["Y"])


@pytest.mark.parametrize("impl", impls())
def bench_sigmoid_backward(benchmark, inputs, impl):
    """dX = dY * Y * (1 - Y) on 1M float32. No target."""
    data = inputs.sigmoid(SIGMOID_SHAPE, np.float32)
    label(benchmark, "sigmoid_backward", SIGMOID_ID, np.float32, impl)
    result = run(benchmark, lambda: fastnn.sigmoid_backward(data["dY"], data["Y"], backend=impl))
    assert_close(result, data["dX"])


# ---------------------------------------------------------------------------- losses
@pytest.mark.parametrize("impl", impls())
@pytest.mark.parametrize("n", [5, 5000])
def bench_softmax_cross_entropy(benchmark, inputs, n, impl):
    """(loss, dlogits) for (N, 10) float32 logits: the seed MLP's output layer. No target."""
    data = inputs.softmax(n, 10, np.float32)
    label(benchmark, "softmax_cross_entropy", f"N={n} C=10", np.float32, impl)
    result = run(benchmark, lambda: fastnn.softmax_cross_entropy(data["logits"], data["y"], backend=impl))
    assert_loss_close(result, data["reference"], np.float32)


@pytest.mark.parametrize("impl", impls())
def bench_logistic_loss(benchmark, inputs, impl):
    """(loss, dscores) for 1M float64 scores. No target."""
    n = 1_000_000
    data = inputs.logistic(n, np.float64)
    label(benchmark, "logistic_loss", f"N={n}", np.float64, impl)
    result = run(benchmark, lambda: fastnn.logistic_loss(data["scores"], data["y"], backend=impl))
    assert_loss_close(result, data["reference"], np.float64)
