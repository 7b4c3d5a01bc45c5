"""Compiled inference (fastnn.mlp_forward, fastnn.cnn1d_forward) as the models use it.

The kernels themselves are in the conformance suite (kernel_cases.py); here: bad input, and that
Sequential.predict_logits and the estimators' predictions are those of the layer-by-layer path.
"""
import numpy as np
import pytest

import fastnn
from fastnn import datasets
from fastnn.models import CNN1DClassifier, MLPClassifier
from fastnn.nn import Flatten, Linear, ReLU, Sequential, conv1d_net, mlp

f32, f64 = np.float32, np.float64


def arr(*shape, dtype=f64):
    return np.ones(shape, dtype=dtype)


# 4 -> 3 -> 2: 23 parameters; conv stack 1x6 -> 2 channels (K 3) -> 4 positions -> 2 classes: 26.
DENSE = dict(X=arr(3, 4), params=arr(23), sizes=[4, 3, 2])
CONV = dict(X=arr(3, 1, 6), params=arr(26), channels=(2,), kernel_sizes=(3,), strides=(1,), paddings=(0,), n_classes=2)

BAD_INPUTS = [
    ("mlp_forward", dict(DENSE, X=arr(4)), ValueError, ["X", "2-D"]),
    ("mlp_forward", dict(DENSE, X=arr(0, 4)), ValueError, ["X", "empty"]),
    ("mlp_forward", dict(DENSE, sizes=[5, 3, 2]), ValueError, ["sizes[0] = 5", "4 features"]),
    ("mlp_forward", dict(DENSE, sizes=[4, 0, 2]), ValueError, ["sizes", "positive"]),
    ("mlp_forward", dict(DENSE, sizes=[4]), ValueError, ["sizes", "at least two"]),
    ("mlp_forward", dict(DENSE, sizes=[4, 2**40, 2**40, 2]), ValueError, ["sizes", "limit"]),
    ("mlp_forward", dict(DENSE, params=arr(22)), ValueError, ["params", "(22,)", "(23,)"]),
    ("mlp_forward", dict(DENSE, params=arr(23, dtype=f32)), TypeError, ["params", "float32"]),
    ("mlp_forward", dict(DENSE, params=np.full(23, np.nan)), ValueError, ["params", "NaN"]),
    ("mlp_forward", dict(DENSE, X=np.full((3, 4), np.inf)), ValueError, ["X", "infinity"]),
    ("mlp_forward", dict(DENSE, X=np.ones((3, 4), dtype=int)), TypeError, ["X", "int64"]),
    ("mlp_forward", dict(DENSE, activation="tanh"), ValueError, ["activation", "tanh"]),
    ("cnn1d_forward", dict(CONV, X=arr(3, 6)), ValueError, ["X", "3-D"]),
    ("cnn1d_forward", dict(CONV, kernel_sizes=(7,)), ValueError, ["kernel size 7", "conv layer 0", "length 6"]),
    ("cnn1d_forward", dict(CONV, strides=(1, 1)), ValueError, ["strides", "one entry per conv layer"]),
    ("cnn1d_forward", dict(CONV, channels=(0,)), ValueError, ["channels[0]", "positive"]),
    ("cnn1d_forward", dict(CONV, paddings=(-1,)), ValueError, ["padding", "-1"]),
    ("cnn1d_forward", dict(CONV, n_classes=0), ValueError, ["n_classes"]),
    ("cnn1d_forward", dict(CONV, params=arr(25)), ValueError, ["params", "(25,)", "(26,)"]),
    ("cnn1d_forward", dict(CONV, params=arr(26, dtype=f32)), TypeError, ["params", "float32"]),
    ("cnn1d_forward", dict(CONV, X=np.full((3, 1, 6), np.nan)), ValueError, ["X", "NaN"]),
]


@pytest.mark.parametrize("kernel, kwargs, error, words", BAD_INPUTS,
                         ids=[f"{k}-{i}" for i, (k, *_rest) in enumerate(BAD_INPUTS)])
def test_bad_input_is_rejected_with_a_clear_message(kernel, kwargs, error, words, backend):
    with pytest.raises(error) as excinfo:
        getattr(fastnn, kernel)(**kwargs, backend=backend)
    message = str(excinfo.value)
    for word in words:
        assert word in message, f"{word!r} missing from {message!r}"


def _dense(activation, dtype, backend):
    return mlp([23, 17, 9, 5], activation=activation, dtype=dtype, random_state=1, backend=backend)


def _conv(dtype, backend):
    return conv1d_net((2, 29), 3, channels=(6, 5), kernel_sizes=(5, 3), strides=(2, 1), paddings=(1, 2), dtype=dtype,
                      random_state=1, backend=backend)


@pytest.mark.parametrize("make", [lambda d, b: _dense("relu", d, b), lambda d, b: _dense("sigmoid", d, b), _conv],
                         ids=["dense-relu", "dense-sigmoid", "conv"])
def test_predict_logits_runs_compiled_and_equals_the_layer_path(make, backend, dtype):
    model = make(dtype, backend)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((301, *model.input_shape)).astype(dtype)
    assert model.compiled_logits(X) is not None
    logits = model.predict_logits(X)
    assert logits.dtype == np.dtype(dtype) and logits.shape == (301, model.n_outputs)
    tolerance = 1e-5 if np.dtype(dtype) == f32 else 1e-12
    np.testing.assert_allclose(logits, model.layer_logits(X), rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("make", [
    lambda d, b: conv1d_net((1, 20), 3, channels=(4,), kernel_sizes=(3,), strides=(1,), paddings=(0,), pool=2,
                            dtype=d, random_state=0, backend=b),
    lambda d, b: Sequential([Linear(7, 5, bias=False), ReLU(), Linear(5, 3)], dtype=d, random_state=0, backend=b),
    lambda d, b: Sequential([Flatten(), Linear(7, 3)], input_shape=(1, 7), dtype=d, random_state=0, backend=b),
], ids=["pooling", "no-bias", "flatten-linear"])
def test_other_models_fall_back_to_the_layer_path(make, backend, dtype):
    model = make(dtype, backend)
    X = np.random.default_rng(0).standard_normal((9, *model.input_shape)).astype(dtype)
    assert model.compiled_logits(X) is None
    np.testing.assert_array_equal(model.predict_logits(X), model.layer_logits(X))


@pytest.fixture(scope="module")
def digits():
    X_train, X_test, y_train, y_test = datasets.load_digits()
    return X_train.astype(np.float32), X_test.astype(np.float32), y_train, y_test


def _layer_proba(clf, X):
    logits = clf.model_.layer_logits(clf._input(X, clf.model_.dtype, reset=False)).astype(np.float64)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_estimators_predict_as_the_layer_path_did(digits, backend, dtype_name):
    X_train, X_test, y_train, y_test = digits
    clf = MLPClassifier(hidden_layer_sizes=(37,), epochs=2, batch_size=50, random_state=0, dtype=dtype_name,
                        backend=backend).fit(X_train, y_train)
    proba = _layer_proba(clf, X_test)
    np.testing.assert_allclose(clf.predict_proba(X_test), proba, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(clf.predict(X_test), clf.classes_[np.argmax(proba, axis=1)])
    assert clf.score(X_test, y_test) == (clf.classes_[np.argmax(proba, axis=1)] == y_test).mean()

    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 40))
    y = (X[:, :20].sum(axis=1) > 0).astype(int)
    cnn = CNN1DClassifier(epochs=2, batch_size=30, random_state=0, dtype=dtype_name, backend=backend).fit(X, y)
    proba = _layer_proba(cnn, X)
    np.testing.assert_allclose(cnn.predict_proba(X), proba, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(cnn.predict(X), cnn.classes_[np.argmax(proba, axis=1)])
    assert cnn.score(X, y) == (cnn.predict(X) == y).mean()


def _cython_forward_is_avx512():
    from fastnn.backends import cython_kernels

    return cython_kernels._build.modules["_training"].startswith(cython_kernels.PACKAGES["avx512"])


@pytest.mark.parametrize("threads", [1, 2])
def test_wide_dense_networks_run_on_blas_with_the_reference_result(backend, dtype, threads, monkeypatch):
    """Above BLAS_FORWARD_MIN_WORK_PER_ROW the compiled backends' mlp_forward (but the AVX-512 build's) is
    GEMMs on row ranges, one per thread with BLAS single-threaded inside; the logits are the reference's
    either way, and BLAS's own thread count is restored afterwards."""
    from threadpoolctl import threadpool_info

    from fastnn.backends import _compiled

    sizes = [200, 100, 7]
    assert np.dot(sizes[:-1], sizes[1:]) >= _compiled.BLAS_FORWARD_MIN_WORK_PER_ROW
    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 1, (2 * _compiled.BLAS_FORWARD_CHUNK + 37, sizes[0])).astype(dtype)
    params = (0.1 * rng.standard_normal(sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:])))).astype(dtype)
    blas_threads = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    calls = []
    monkeypatch.setattr(_compiled, "blas_dense_forward",
                        lambda *a, original=_compiled.blas_dense_forward: calls.append(len(a[0])) or original(*a))
    previous = fastnn._threads.limit  # 0: no limit
    fastnn.set_num_threads(threads)
    try:
        logits = fastnn.mlp_forward(X, params, sizes=sizes, backend=backend)
    finally:
        fastnn.set_num_threads(previous or None)
    expected = fastnn.mlp_forward(X, params, sizes=sizes, backend="numpy")
    tolerance = 1e-5 if np.dtype(dtype) == f32 else 1e-12
    np.testing.assert_allclose(logits, expected, rtol=tolerance, atol=tolerance)
    if backend == "numba" or (backend == "cython" and not _cython_forward_is_avx512()):
        assert sum(calls) == len(X) and len(calls) == threads  # one row range per thread, all on BLAS
    else:
        assert not calls  # the reference's own forward, or the AVX-512 compiled forward (faster than BLAS)
    assert [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"] == blas_threads
