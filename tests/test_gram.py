"""Gram matrices agree with scikit-learn's pairwise kernels and are exactly symmetric when Y is None."""
import numpy as np
import pytest
from sklearn.metrics.pairwise import pairwise_kernels

import fastnn

KERNEL_PARAMS = {"linear": {}, "poly": dict(gamma=0.2, degree=3, coef0=1.0), "rbf": dict(gamma=0.1)}


@pytest.mark.parametrize("kernel", sorted(KERNEL_PARAMS))
@pytest.mark.parametrize("with_y", [False, True])
def test_matches_scikit_learn(kernel, with_y, backend, dtype):
    rng = np.random.default_rng(0)
    X = rng.random((300, 20)).astype(dtype)
    Y = rng.random((70, 20)).astype(dtype) if with_y else None
    expected = pairwise_kernels(X.astype(np.float64), None if Y is None else Y.astype(np.float64),
                                metric=kernel, **KERNEL_PARAMS[kernel])
    K = fastnn.gram(X, Y, kernel=kernel, backend=backend, **KERNEL_PARAMS[kernel])
    assert K.dtype == np.dtype(dtype) and K.shape == expected.shape
    rtol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(K, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


@pytest.mark.parametrize("kernel", sorted(KERNEL_PARAMS))
def test_symmetric_exactly_with_unit_rbf_diagonal(kernel, backend, dtype):
    X = np.random.default_rng(1).standard_normal((700, 9)).astype(dtype)  # several row blocks, odd tiles
    K = fastnn.gram(X, kernel=kernel, backend=backend)
    np.testing.assert_array_equal(K, K.T)
    if kernel == "rbf":
        np.testing.assert_array_equal(np.diag(K), 1)


def test_default_gamma_is_one_over_n_features(backend):
    X = np.random.default_rng(2).random((10, 4))
    np.testing.assert_allclose(fastnn.gram(X, backend=backend), fastnn.gram(X, gamma=0.25, backend=backend))


def test_rbf_of_duplicate_points_is_one(backend, dtype):
    """Cancellation in ||x||^2 + ||y||^2 - 2 x.y must not give values above 1 or distances below 0."""
    X = np.repeat(np.random.default_rng(3).random((4, 50)).astype(dtype) * 100, 3, axis=0)
    Y = X.copy()
    K = fastnn.gram(X, Y, gamma=1.0, backend=backend)
    assert K.max() <= 1.0
    np.testing.assert_allclose(K[0, :3], 1.0)
