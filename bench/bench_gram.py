"""Gram-matrix benchmarks: every backend beside the NumPy reference, the bare GEMM and scikit-learn.

Targets (never asserted): the RBF Gram of 5,000 x 784 (Y = X) at least 1.5x faster than
sklearn.metrics.pairwise.rbf_kernel in float32 and 1.4x in float64, and within 1.2x the time of the
bare float64 X @ X.T (the GEMM limit; NumPy computes it with BLAS syrk, using the symmetry).

The RBF kernel's squared distances are computed in float64 whatever the input dtype (float32's
expansion ||x||^2 + ||y||^2 - 2 x.y cancels: see fastnn.backends.rbf_numerics), so the float32 RBF
Gram costs a float64 GEMM: `gemm-f64` is that baseline, and `gemm` the float32 X @ X.T it used to
cost before accuracy was fixed. scikit-learn upcasts float32 distance blocks the same way.

`sklearn` entries are an outside yardstick (skipped when scikit-learn is not installed); the `gemm`
entries compute only the inner products, no kernel function.
"""
import numpy as np
import pytest

import fastnn
from bench_kernels import BACKENDS, assert_close, label, run

SKLEARN = "sklearn"
GEMM = "gemm"
GEMM64 = "gemm-f64"
TARGET_RBF = {"float32": "<= 1.2x the time of gemm-f64 and >= 1.5x faster than sklearn",
              "float64": "<= 1.2x the time of gemm and >= 1.4x faster than sklearn"}
# (n, n_features, kernel, dtype); gamma = 1 / n_features, the default of both libraries.
CASES = [(5000, 784, "rbf", "float32"), (5000, 784, "rbf", "float64"), (5000, 784, "linear", "float32"),
         (1347, 64, "rbf", "float64")]  # the last: digits' training split, as the kernel perceptron uses it


@pytest.fixture(scope="module")
def gram_inputs():
    cache = {}

    def get(n, n_features, kernel, dtype):
        key = (n, n_features, kernel, dtype)
        if key not in cache:
            X = np.random.default_rng([n, n_features]).random((n, n_features)).astype(dtype)
            cache[key] = X, fastnn.gram(X, kernel=kernel, backend="numpy")
        return cache[key]

    return get


PARAMS = [pytest.param(case, impl, id=f"{impl}-{case[2]}-{case[0]}x{case[1]}-{case[3]}")
          for case in CASES
          for impl in [*BACKENDS, SKLEARN, GEMM] + ([GEMM64] if (case[2], case[3]) == ("rbf", "float32") else [])]


@pytest.mark.parametrize("case, impl", PARAMS)
def bench_gram(benchmark, gram_inputs, case, impl):
    n, n_features, kernel, dtype = case
    X, reference = gram_inputs(*case)
    target = TARGET_RBF[dtype] if (kernel, n) == ("rbf", 5000) else None
    shape = f"{n}x{n_features} Y=X"
    if impl == GEMM:
        label(benchmark, f"gram {kernel}", shape, dtype, impl, role="baseline", target=target)
        run(benchmark, lambda: X @ X.T)
        return
    if impl == GEMM64:
        X64 = X.astype(np.float64)
        label(benchmark, f"gram {kernel}", shape, dtype, impl, role="baseline", target=target)
        run(benchmark, lambda: X64 @ X64.T)
        return
    if impl == SKLEARN:
        pairwise = pytest.importorskip("sklearn.metrics.pairwise")
        label(benchmark, f"gram {kernel}", shape, dtype, impl, role="external", target=target)
        result = run(benchmark, lambda: pairwise.pairwise_kernels(X, metric=kernel))
        assert_close(result.astype(dtype), reference)
        return
    label(benchmark, f"gram {kernel}", shape, dtype, impl, target=target)
    result = run(benchmark, lambda: fastnn.gram(X, kernel=kernel, backend=impl))
    assert_close(result, reference)
