"""KernelPerceptron(kernel_cache=...): training without the Gram matrix, kernel rows in an LRU cache.

- The streaming fit makes exactly the in-memory fit's updates (same alpha, mistakes, predictions on
  the same seed), with a cache as large as K (each row computed at most once) and with a cache of a
  few rows (evictions), on every backend and dtype; it never calls gram on the training set.
- The LRU cache evicts the least recently used rows and returns the Gram matrix's rows.
- predict and decision_function, tiled by working_memory, equal the support-vector formula.
"""
import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastnn  # noqa: E402
from fastnn import datasets  # noqa: E402
from fastnn.models import KernelPerceptron  # noqa: E402
from fastnn.models import _streaming, perceptron  # noqa: E402



@pytest.fixture(scope="module")
def digits_600():
    X_train, X_test, y_train, _ = datasets.load_digits()
    return X_train[:600], y_train[:600], X_test


@pytest.mark.parametrize("cache_rows", [600, 7])
def test_streaming_fit_makes_the_in_memory_updates(digits_600, cache_rows, backend, dtype, monkeypatch):
    X, y, X_test = digits_600
    X = X.astype(dtype)
    params = dict(kernel="rbf", gamma=0.05, max_epochs=6, random_state=3, backend=backend)
    in_memory = KernelPerceptron(**params).fit(X, y)
    cache_mib = cache_rows * X.shape[0] * X.dtype.itemsize / 2**20
    monkeypatch.setattr(perceptron, "gram", None)  # the streaming fit must never form K
    streaming = KernelPerceptron(kernel_cache=cache_mib, **params).fit(X, y)
    assert streaming.mistakes_ == in_memory.mistakes_
    np.testing.assert_array_equal(streaming.dual_coef_, in_memory.dual_coef_)
    np.testing.assert_array_equal(streaming.support_, in_memory.support_)
    np.testing.assert_array_equal(streaming.predict(X_test.astype(dtype)), in_memory.predict(X_test.astype(dtype)))
    if cache_rows >= X.shape[0]:
        assert streaming.kernel_rows_computed_ <= X.shape[0]  # each row at most once
    else:
        assert streaming.kernel_rows_computed_ > len(streaming.support_) > cache_rows  # evictions, recomputed rows


def test_streaming_fit_with_poly_and_linear_kernels(digits_600):
    X, y, _ = digits_600
    for kernel in ("poly", "linear"):
        params = dict(kernel=kernel, gamma=0.01, degree=2, max_epochs=3, random_state=0)
        in_memory = KernelPerceptron(**params).fit(X, y)
        streaming = KernelPerceptron(kernel_cache=1.5, **params).fit(X, y)  # ~half of K
        np.testing.assert_array_equal(streaming.dual_coef_, in_memory.dual_coef_)


def test_lru_cache_evicts_the_least_recently_used_row(backend):
    X = np.random.default_rng(0).standard_normal((50, 4))
    K = fastnn.gram(X, backend=backend)
    cache = _streaming.KernelRowCache(X, 3 * 50 * 8 / 2**20, dict(backend=backend), None)
    assert cache.slots == 3 and cache.block == 1
    for i in (5, 6, 7):
        np.testing.assert_allclose(cache.row(i), K[i], rtol=0, atol=1e-14)
    cache.row(5)  # 6 is now the least recently used
    cache.row(8)
    assert cache.slot_of[6] < 0 and min(cache.slot_of[[5, 7, 8]]) >= 0
    assert cache.rows_computed == 4
    np.testing.assert_allclose(cache.row(8), K[8], rtol=0, atol=1e-14)
    np.testing.assert_allclose(cache.row(7), K[7], rtol=0, atol=1e-14)
    assert cache.rows_computed == 4


def test_a_miss_computes_the_upcoming_uncached_rows_in_one_block():
    X = np.random.default_rng(1).standard_normal((40, 3))
    cache = _streaming.KernelRowCache(X, 1.0, {}, None)
    assert cache.slots == 40
    cache.row(2, upcoming=np.array([2, 9, 9, 4, 11]))
    assert cache.rows_computed == 4 and all(cache.slot_of[[2, 9, 4, 11]] >= 0)
    np.testing.assert_allclose(cache.data[cache.slot_of[[2, 9, 4, 11]]], fastnn.gram(X)[[2, 9, 4, 11]],
                               rtol=0, atol=1e-14)


@pytest.mark.parametrize("params, message", [
    (dict(kernel_cache=0), "kernel_cache must be None or a positive number of MiB"),
    (dict(kernel_cache=-1.0), "kernel_cache must be None or a positive"),
    (dict(kernel_cache=True), "kernel_cache must be None or a positive"),
    (dict(kernel_cache="1G"), "kernel_cache must be None or a positive"),
    (dict(kernel_cache=float("inf")), "kernel_cache must be None or a positive"),
    (dict(kernel_cache=1e-9), r"kernel_cache=1e-09 MiB cannot hold one kernel row of 4 training examples"),
    (dict(working_memory=0), "working_memory must be a positive number"),
])
def test_bad_memory_params(params, message):
    with pytest.raises(ValueError, match=message):
        KernelPerceptron(**params).fit(np.eye(4), [0, 1, 0, 1])


def test_predictions_in_small_tiles_equal_the_support_vector_formula(digits_600, backend):
    X, y, X_test = digits_600
    model = KernelPerceptron(gamma=0.05, max_epochs=3, random_state=0, backend=backend).fit(X, y)
    expected = (model.dual_coef_[:, model.support_] @ fastnn.gram(model.support_vectors_, X_test, gamma=0.05,
                                                                  backend="numpy")).T
    default = model.decision_function(X_test)
    np.testing.assert_allclose(default, expected, rtol=1e-10, atol=1e-10)
    model.set_params(working_memory=0.2)  # tiles of 64 test rows or fewer
    np.testing.assert_allclose(model.decision_function(X_test), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(model.predict(X_test), model.classes_[np.argmax(expected, axis=1)])


@parametrize_with_checks([KernelPerceptron(kernel_cache=0.01, working_memory=1)])  # the API; backends: above
def test_streaming_estimator_is_sklearn_compatible(estimator, check):
    check(estimator)
