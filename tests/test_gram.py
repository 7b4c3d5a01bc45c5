"""Gram matrices agree with scikit-learn's pairwise kernels and are exactly symmetric when Y is None."""
import contextlib
import threading

import numpy as np
import pytest
from sklearn.metrics.pairwise import pairwise_kernels

import fastnn
from fastnn.backends import _compiled as compiled

KERNEL_PARAMS = {"linear": {}, "poly": dict(gamma=0.2, degree=3, coef0=1.0), "rbf": dict(gamma=0.1)}


@contextlib.contextmanager
def _uncontrollable_blas():
    yield 0  # as single_threaded_blas does when threadpoolctl finds no BLAS it can control


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


@pytest.mark.parametrize("kernel", sorted(KERNEL_PARAMS))
@pytest.mark.parametrize("blas", ["one thread", "threaded"])
def test_symmetric_gram_on_both_tile_paths(kernel, blas, backend, dtype, monkeypatch):
    """Y None on small tiles (many of them, ragged at the edges): the tiles spread over fastnn's threads
    with BLAS held to one thread, and the threaded-BLAS bands, both equal to the reference."""
    if blas == "threaded":
        monkeypatch.setattr(compiled, "single_threaded_blas", _uncontrollable_blas)
    monkeypatch.setattr(compiled, "GRAM_TILE_ROWS", 128)
    monkeypatch.setattr(compiled, "GRAM_TILE_COLUMNS", 192)
    monkeypatch.setattr(compiled, "SYMMETRIC_BAND_ROWS", 128)
    monkeypatch.setattr(compiled, "RBF_BAND_ROWS", 128)
    monkeypatch.setattr(compiled, "RBF_COLUMN_CHUNK", 192)
    X = np.random.default_rng(9).standard_normal((701, 13)).astype(dtype)
    K = fastnn.gram(X, kernel=kernel, backend=backend, **KERNEL_PARAMS[kernel])
    expected = fastnn.gram(X, kernel=kernel, backend="numpy", **KERNEL_PARAMS[kernel])
    np.testing.assert_array_equal(K, K.T)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(K, expected, rtol=rtol, atol=rtol * np.abs(expected).max())
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


def exact_rbf(X, Y, gamma):
    """The definition, exp(-gamma sum((x - y)^2)), in float64 from the given values: no expansion."""
    X, Y = X.astype(np.float64), Y.astype(np.float64)
    return np.exp(-gamma * np.square(X[:, None, :] - Y[None, :, :]).sum(axis=-1))


@pytest.mark.parametrize("gamma", [1.0, 0.01])
@pytest.mark.parametrize("with_y", [False, True])
def test_float32_rbf_of_offset_data_matches_float64(gamma, with_y, backend):
    """Rows of 1000 + noise: the float32 expansion used to lose every digit (errors up to 1.0)."""
    rng = np.random.default_rng(4)
    X = (1000 + rng.random((30, 64))).astype(np.float32)
    Y = (1000 + rng.random((17, 64))).astype(np.float32) if with_y else None
    K32 = fastnn.gram(X, Y, gamma=gamma, backend=backend)
    K64 = fastnn.gram(X.astype(np.float64), None if Y is None else Y.astype(np.float64), gamma=gamma,
                      backend=backend)
    exact = exact_rbf(X, X if Y is None else Y, gamma)
    assert K32.dtype == np.float32
    np.testing.assert_allclose(K32, K64, rtol=0, atol=1e-6)
    np.testing.assert_allclose(K32, exact, rtol=0, atol=1e-6)
    np.testing.assert_allclose(K64, exact, rtol=0, atol=1e-12)


@pytest.mark.parametrize("with_y", [False, True])
def test_rbf_of_near_duplicates_far_from_origin(with_y, backend, dtype):
    """Spread-out rows (large centered norms) with near-duplicate partners: here even float64's
    expansion cancels (error bound ~1 at scale 1e6), so those pairs must be recomputed directly."""
    scale, jitter = (1e3, 1e-2) if dtype == "float32" else (1e6, 1e-3)
    rng = np.random.default_rng(5)
    X = rng.normal(0, scale, (40, 64)).astype(dtype)
    X[1::2] = X[0::2] + (jitter * rng.standard_normal((20, 64))).astype(dtype)  # pairs (0, 1), (2, 3), ...
    Y = X[::-1].copy() if with_y else None
    gamma = 1.0 / (64 * jitter ** 2)  # kernel values of the pairs around exp(-2)
    K = fastnn.gram(X, Y, gamma=gamma, backend=backend)
    exact = exact_rbf(X, X if Y is None else Y, gamma)
    pairs = exact > 1e-3
    assert pairs.sum() == 80  # 40 self pairs and 40 near-duplicate pairs (both orders), with Y reversed too
    np.testing.assert_allclose(K, exact, rtol=0, atol=1e-6 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("blas", ["one thread", "threaded"])
def test_rbf_accuracy_across_tile_boundaries(blas, backend, monkeypatch):
    """Duplicates planted on both sides of the compiled backends' tile boundaries, on both tile paths:
    tiles spread over fastnn's threads with BLAS held to one thread, and the threaded-BLAS fallback."""
    if blas == "threaded":
        monkeypatch.setattr(compiled, "single_threaded_blas", _uncontrollable_blas)
    monkeypatch.setattr(compiled, "RBF_BAND_ROWS", 256)
    monkeypatch.setattr(compiled, "RBF_COLUMN_CHUNK", 1024)
    monkeypatch.setattr(compiled, "GRAM_TILE_ROWS", 256)
    monkeypatch.setattr(compiled, "GRAM_TILE_COLUMNS", 512)
    rng = np.random.default_rng(6)
    X = (500 + rng.random((600, 24))).astype(np.float32)
    Y = (500 + rng.random((1100, 24))).astype(np.float32)
    planted = [(255, 1023), (256, 1024), (511, 0), (599, 1099), (0, 700), (255, 511), (256, 512)]
    for i, j in planted:
        Y[j] = X[i]
    K = fastnn.gram(X, Y, gamma=1.0, backend=backend)
    for i, j in planted:
        assert K[i, j] == 1.0
    sample = rng.choice(600, 40, replace=False)
    np.testing.assert_allclose(K[sample], exact_rbf(X[sample], Y, 1.0), rtol=0, atol=1e-6)
    X[[300, 557]] = X[[10, 256]]  # duplicates within X too, across the symmetric tiles' bands
    K_sym = fastnn.gram(X, gamma=1.0, backend=backend)
    np.testing.assert_array_equal(K_sym, K_sym.T)
    np.testing.assert_array_equal(np.diag(K_sym), 1)
    assert K_sym[10, 300] == K_sym[256, 557] == 1.0
    np.testing.assert_allclose(K_sym[sample], exact_rbf(X[sample], X, 1.0), rtol=0, atol=1e-6)


def _blas_threads():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    return [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]


def test_rbf_gram_restores_blas_threads(backend, monkeypatch):
    """The RBF Gram holds BLAS to one thread while its threads compute tiles, then restores it: after
    a call, after a failing call, and after concurrent calls from several threads."""
    before = _blas_threads()
    X = np.random.default_rng(8).random((700, 30))
    fastnn.gram(X, backend=backend)
    assert _blas_threads() == before
    seen = []

    def failing_epilogue(*args):
        seen.append(_blas_threads())
        raise RuntimeError("epilogue failed")

    with monkeypatch.context() as patch:
        patch.setattr(compiled, "GRAM_TILE_ROWS", 64)
        with pytest.raises(RuntimeError, match="epilogue failed"):
            compiled.rbf_tiles(X, None, 0.1, np.empty((700, 700)), failing_epilogue)
    assert _blas_threads() == before
    if before:
        assert seen[0] == [1] * len(before)  # pinned while the tiles ran
        assert len(seen) <= fastnn.get_num_threads()  # each thread stopped at its first failure
    results = []
    threads = [threading.Thread(target=lambda: results.append(fastnn.gram(X, backend=backend))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _blas_threads() == before
    for K in results:
        np.testing.assert_array_equal(K, results[0])


@pytest.mark.parametrize("kernel", sorted(KERNEL_PARAMS))
def test_values_whose_products_overflow_are_refused(kernel, backend, dtype):
    big = np.sqrt(np.finfo(dtype).max)  # x.x overflows
    X = np.ones((3, 4), dtype=dtype)
    X[1, 2] = big
    with pytest.raises(ValueError, match="X has values up to .* could overflow"):
        fastnn.gram(X, kernel=kernel, backend=backend)
    with pytest.raises(ValueError, match="Y has values up to"):
        fastnn.gram(np.ones((2, 4), dtype=dtype), X, kernel=kernel, backend=backend)


def test_poly_degree_zero_is_one_and_overflow_is_infinite_on_every_backend(backend, dtype):
    X = np.array([[1e3, 2e3], [-3e3, 1.0], [0.5, 0.25]], dtype=dtype)
    np.testing.assert_array_equal(fastnn.gram(X, kernel="poly", degree=0, gamma=1e30, backend=backend), 1)
    K = fastnn.gram(X, kernel="poly", degree=61, gamma=1.0, coef0=0.0, backend=backend)
    expected = fastnn.gram(X, kernel="poly", degree=61, gamma=1.0, coef0=0.0, backend="numpy")
    assert np.isinf(expected).any() and np.isfinite(expected).any()
    np.testing.assert_allclose(K, expected, rtol=1e-4)  # the same infinities, finite values to rounding


@pytest.mark.parametrize("gamma", [1e30, 1e300])
@pytest.mark.parametrize("with_y", [False, True])
def test_rbf_at_huge_gamma_is_one_on_duplicates_and_zero_elsewhere(gamma, with_y, backend, dtype):
    """The reference's float32 RBF used to have a NaN diagonal here (inf * 0 in the argument)."""
    X = np.random.default_rng(7).random((6, 3)).astype(dtype)
    K = fastnn.gram(X, X.copy() if with_y else None, gamma=gamma, backend=backend)
    np.testing.assert_array_equal(K, np.eye(6, dtype=dtype))
