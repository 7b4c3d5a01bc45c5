"""Dask arrays through fastnn.gram, fastnn.gram_matvec and the estimators' predict, on a 2-worker LocalCluster.

The cluster is started by the tests themselves (two worker processes, one thread each) and every
result is compared with fastnn on NumPy arrays. Computations wait at most TIMEOUT seconds, so a
hung cluster fails the test instead of the run. Skipped when dask[distributed] is not installed.
"""
import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")

import fastnn  # noqa: E402
from fastnn.models import KernelPerceptron, Perceptron  # noqa: E402

TIMEOUT = 60


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = distributed.Client(cluster, timeout=TIMEOUT)
    try:
        client.wait_for_workers(2, timeout=TIMEOUT)
        yield client
    finally:
        client.close()
        cluster.close()


def compute(client, array):
    return client.compute(array).result(timeout=TIMEOUT)


def _data(dtype, n=300, n_features=7, seed=0):
    return np.random.default_rng(seed).random((n, n_features)).astype(dtype)


@pytest.mark.parametrize("kernel, dtype", [("rbf", "float32"), ("rbf", "float64"), ("poly", "float64")])
def test_gram_on_the_cluster_equals_numpy(client, kernel, dtype):
    X, Y = _data(dtype), _data(dtype, n=170, seed=1)
    X_dask = da.from_array(X, chunks=(64, 3))  # features split too: gamma must still be 1 / 7
    K = fastnn.gram(X_dask, kernel=kernel)
    assert isinstance(K, da.Array) and K.dtype == np.dtype(dtype) and K.chunks[0] == X_dask.chunks[0]
    result = compute(client, K)
    tolerance = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(result, fastnn.gram(X, kernel=kernel), rtol=tolerance, atol=tolerance)
    np.testing.assert_array_equal(result, result.T)
    if kernel == "rbf":
        np.testing.assert_array_equal(np.diag(result), 1)
    K_xy = compute(client, fastnn.gram(X_dask, da.from_array(Y, chunks=50), kernel=kernel))
    np.testing.assert_allclose(K_xy, fastnn.gram(X, Y, kernel=kernel), rtol=tolerance, atol=tolerance)


def _tile_tasks(array, function_name):
    """The graph's tasks that run `function_name` (wrapped in functools.partial)."""
    graph = dict(array.__dask_graph__())
    found = []
    for key, task in graph.items():
        text = repr(task)
        if function_name in text and isinstance(key, tuple) and key[0].startswith("fastnn-"):
            found.append(key)
    return found


def test_each_off_diagonal_tile_pair_is_computed_once():
    X = da.from_array(_data("float64", n=320), chunks=64)  # 5 row blocks
    K = fastnn.gram(X)
    assert len(_tile_tasks(K, "_gram_tile")) == 5 * 6 // 2  # diagonal + upper tiles; the lower ones transpose
    assert len(_tile_tasks(K, "_transposed")) == 5 * 4 // 2
    product = fastnn.gram_matvec(X, None, np.ones(320))
    assert len(_tile_tasks(product, "_pair_products")) == 10 and len(_tile_tasks(product, "_tile_product")) == 5


@pytest.mark.parametrize("with_y", [False, True])
def test_gram_matvec_on_the_cluster_equals_numpy(client, with_y):
    X, Y = _data("float64"), _data("float64", n=170, seed=1)
    target = Y if with_y else X
    V = np.random.default_rng(2).standard_normal((target.shape[0], 3))
    expected = fastnn.gram(X, Y if with_y else None) @ V
    X_dask = da.from_array(X, chunks=64)
    Y_dask = da.from_array(Y, chunks=50) if with_y else None
    result = compute(client, fastnn.gram_matvec(X_dask, Y_dask, da.from_array(V, chunks=40)))
    np.testing.assert_allclose(result, expected, rtol=1e-12, atol=1e-12)
    vector = compute(client, fastnn.gram_matvec(X_dask, Y_dask, V[:, 0]))
    assert vector.shape == (300,)
    np.testing.assert_allclose(vector, expected[:, 0], rtol=1e-12, atol=1e-12)


def test_predict_on_the_cluster_equals_numpy(client):
    X = _data("float32", n=400)
    y = (X[:, 0] + X[:, 1] > 1).astype(int) + (X[:, 2] > 0.5)
    X_dask = da.from_array(X, chunks=(90, 7))
    for model in (KernelPerceptron(random_state=0, max_epochs=5), Perceptron(random_state=0)):
        model.fit(X, y)
        predicted = model.predict(X_dask)
        assert isinstance(predicted, da.Array)
        np.testing.assert_array_equal(compute(client, predicted), model.predict(X))
        # float32 scores: the chunks' kernel tiles round differently from the whole test set's
        np.testing.assert_allclose(compute(client, model.decision_function(X_dask)), model.decision_function(X),
                                   rtol=1e-5, atol=1e-5)


def test_workers_run_a_compiled_backend(client):
    backends = client.run(fastnn.get_backend)
    assert len(backends) == 2
    assert set(backends.values()) <= set(fastnn.available_backends())


@pytest.mark.parametrize("call, error, message", [
    (lambda: fastnn.gram(da.ones((10, 3), dtype=int)), TypeError, "X must be a float32 or float64"),
    (lambda: fastnn.gram(da.ones((10, 3, 2))), ValueError, "X must be 2-D"),
    (lambda: fastnn.gram(da.ones((10, 3)), da.ones((4, 2))), ValueError, "same number of features"),
    (lambda: fastnn.gram(da.ones((10, 3)), da.ones((4, 3), dtype=np.float32)), TypeError, "Y has dtype float32"),
    (lambda: fastnn.gram(da.ones((10, 3)), gamma=-1.0), ValueError, "gamma must be a positive"),
    (lambda: fastnn.gram_matvec(da.ones((10, 3)), None, np.ones(9)), ValueError, "V must have shape"),
    (lambda: KernelPerceptron().fit(np.eye(3), [0, 1, 1]).predict(da.ones((4, 2))), ValueError, "expected"),
])
def test_bad_dask_input_is_refused_when_the_graph_is_built(call, error, message):
    with pytest.raises(error, match=message):
        call()
