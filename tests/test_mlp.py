"""MLPClassifier: scikit-learn conventions, the seed's digits target, same model on every backend, .npz files.

- It passes check_estimator on every backend.
- On scikit-learn's digits (hidden 128, batch 5, lr 0.01, 30 epochs) it reaches 0.95 test accuracy.
- The same random_state gives the same model on every backend (float64, up to rounding).
- save() / load() round-trip without pickle; a malformed file is a clear ValueError.
"""
import os
import zipfile

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastnn import datasets  # noqa: E402
from fastnn.models import MLPClassifier  # noqa: E402
from fastnn.nn import DivergenceError  # noqa: E402

from kernel_cases import BACKENDS  # noqa: E402


@parametrize_with_checks([MLPClassifier(backend=name) for name in BACKENDS])
def test_scikit_learn_compatible(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    X_train, X_test, y_train, y_test = datasets.load_digits()
    return X_train.astype(np.float32), X_test.astype(np.float32), y_train, y_test


def test_digits_reach_the_seed_accuracy(digits, backend):
    X_train, X_test, y_train, y_test = digits
    clf = MLPClassifier((128,), batch_size=5, learning_rate=0.01, epochs=30, random_state=0, backend=backend)
    clf.fit(X_train, y_train)
    assert clf.score(X_test, y_test) >= 0.95
    assert clf.n_iter_ == 30 and clf.n_updates_ == 30 * -(-len(X_train) // 5)
    assert len(clf.history_["loss"]) == 30 and clf.history_["loss"][-1] < clf.history_["loss"][0]
    assert [W.shape for W in clf.coefs_] == [(64, 128), (128, 10)]
    assert [b.shape for b in clf.intercepts_] == [(128,), (10,)]


def test_same_seed_same_model_on_every_backend(digits):
    X_train, X_test, y_train, _ = digits
    X_train, X_test = X_train[:300].astype(np.float64), X_test.astype(np.float64)
    fitted = [MLPClassifier((32,), momentum=0.9, epochs=3, dtype="float64", random_state=7, backend=name)
              .fit(X_train, y_train[:300]) for name in BACKENDS]
    for clf in fitted[1:]:
        for W, W_ref in zip(clf.coefs_, fitted[0].coefs_):
            np.testing.assert_allclose(W, W_ref, rtol=1e-9, atol=1e-11)
        np.testing.assert_array_equal(clf.predict(X_test), fitted[0].predict(X_test))


def _numpy_probabilities(clf, X, activation):
    """predict_proba computed with plain NumPy from coefs_ and intercepts_."""
    act = {"leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z), "tanh": np.tanh}[activation]
    h = X.astype(np.float64)
    for i, (W, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        h = h @ W.astype(np.float64) + b
        if i < len(clf.coefs_) - 1:
            h = act(h)
    h = np.exp(h - h.max(axis=1, keepdims=True))
    return h / h.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("activation", ["leaky_relu", "tanh"])
def test_leaky_relu_and_tanh_give_the_reference_model_on_every_backend(digits, activation, dtype):
    """The fused epochs and the compiled inference know only relu and sigmoid: these train and predict
    layer by layer, and every backend must still give the numpy backend's model."""
    X_train, X_test, y_train, _ = digits
    X_train, X_test = X_train[:200].astype(dtype), X_test[:100].astype(dtype)
    fitted = [MLPClassifier((16, 8), activation=activation, momentum=0.9, epochs=2, dtype=dtype, random_state=3,
                            backend=name).fit(X_train, y_train[:200]) for name in BACKENDS]
    tol = 2e-4 if np.dtype(dtype) == np.float32 else 1e-10
    for clf in fitted:
        assert clf.model_.dense_spec() is None and clf.model_.compiled_logits(X_test) is None
        assert type(clf.model_.layers[1]).__name__ == {"leaky_relu": "LeakyReLU", "tanh": "Tanh"}[activation]
        for W, W_ref in zip(clf.coefs_ + clf.intercepts_, fitted[0].coefs_ + fitted[0].intercepts_):
            assert W.dtype == np.dtype(dtype)
            np.testing.assert_allclose(W, W_ref, rtol=tol, atol=tol * np.abs(W_ref).max())
        proba = clf.predict_proba(X_test)
        np.testing.assert_allclose(proba, _numpy_probabilities(clf, X_test, activation), rtol=tol, atol=tol)
        np.testing.assert_allclose(proba, fitted[0].predict_proba(X_test), rtol=tol, atol=tol)


@pytest.mark.parametrize("activation", ["leaky_relu", "tanh"])
def test_leaky_relu_and_tanh_networks_learn_digits(digits, activation):
    X_train, X_test, y_train, y_test = digits
    clf = MLPClassifier((64,), activation=activation, batch_size=16, learning_rate=0.05, momentum=0.5, epochs=10,
                        random_state=0).fit(X_train, y_train)
    assert clf.score(X_test, y_test) >= 0.9


def test_patience_holds_out_validation_data_and_keeps_the_best_epoch(digits):
    X_train, X_test, y_train, y_test = digits
    clf = MLPClassifier((64,), learning_rate=0.05, epochs=40, patience=3, validation_fraction=0.2, random_state=0)
    clf.fit(X_train, y_train)
    history = clf.history_
    assert len(history["val_accuracy"]) == clf.n_iter_
    best = int(np.argmax(history["val_accuracy"])) + 1
    assert clf.best_epoch_ == best
    assert clf.n_iter_ == 40 or (history["stopped_early"] and clf.n_iter_ == best + 3)
    # explicit validation data is used as given
    explicit = clone(clf).set_params(patience=None, epochs=2).fit(X_train, y_train, X_test, y_test)
    assert len(explicit.history_["val_accuracy"]) == 2


def test_string_labels_and_predict_proba(digits):
    X_train, X_test, y_train, _ = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    clf = MLPClassifier((32,), epochs=3, random_state=0).fit(X_train, names[y_train])
    proba = clf.predict_proba(X_test)
    assert proba.shape == (len(X_test), 10) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.predict(X_test), clf.classes_[np.argmax(proba, axis=1)])


def test_save_and_load_round_trip(tmp_path, digits):
    X_train, X_test, y_train, _ = digits
    clf = MLPClassifier((16, 8), activation="sigmoid", optimizer="adam", learning_rate=0.01, epochs=2,
                        random_state=0).fit(X_train, y_train)
    path = clf.save(tmp_path / "model.npz")
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind
    with zipfile.ZipFile(path) as archive:  # plain arrays only: loadable without pickle
        assert sorted(archive.namelist()) == ["classes.npy", "config.npy", "format.npy", "params.npy"]
    loaded = MLPClassifier.load(path)
    assert loaded.get_params() == clf.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(X_test), clf.predict_proba(X_test))
    assert loaded.history_ == clf.history_ and loaded.best_epoch_ == clf.best_epoch_


def test_loading_a_malformed_file_is_a_clear_error(tmp_path, digits):
    X_train, _, y_train, _ = digits
    clf = MLPClassifier((8,), epochs=1, random_state=0).fit(X_train, y_train)
    good = dict(np.load(clf.save(tmp_path / "good.npz")))

    def write(name, **arrays):
        path = tmp_path / name
        np.savez(path, **arrays)
        return path

    (tmp_path / "garbage.npz").write_bytes(b"not a zip file at all")
    cases = {
        tmp_path / "garbage.npz": "is not a saved fastnn MLPClassifier",
        tmp_path / "missing.npz": "is not a saved fastnn MLPClassifier",
        write("no_params.npz", **{k: v for k, v in good.items() if k != "params"}): "params",
        write("other_format.npz", **{**good, "format": np.array("something else")}): "format",
        write("short_params.npz", **{**good, "params": good["params"][:-1]}): "do not fit",
        write("bad_config.npz", **{**good, "config": np.array("{not json")}): "not a valid saved",
        write("objects.npz", **{**good, "classes": np.array([1, "a"], dtype=object)}): "not a saved",
    }
    for path, words in cases.items():
        with pytest.raises(ValueError, match=words):
            MLPClassifier.load(path)


def test_saving_never_leaves_a_partial_file(tmp_path, digits, monkeypatch):
    X_train, _, y_train, _ = digits
    clf = MLPClassifier((8,), epochs=1, random_state=0).fit(X_train, y_train)
    target = tmp_path / "model.npz"
    target.write_bytes(b"previous contents")

    def failing_savez(file, **arrays):
        file.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        clf.save(target)
    assert target.read_bytes() == b"previous contents" and os.listdir(tmp_path) == ["model.npz"]


def test_bad_parameters_are_rejected_at_fit():
    X, y = np.random.default_rng(0).uniform(size=(20, 4)), np.arange(20) % 2
    for params, words in [(dict(hidden_layer_sizes=(0,)), "hidden_layer_sizes"),
                          (dict(activation="softplus"), "activation"),
                          (dict(optimizer="lbfgs"), "optimizer"), (dict(batch_size=0), "batch_size"),
                          (dict(patience=0), "patience"), (dict(validation_fraction=1.0), "validation_fraction"),
                          (dict(dtype="float16"), "dtype"), (dict(learning_rate=-1.0), "learning_rate"),
                          (dict(backend="fortran"), "unknown backend")]:
        with pytest.raises(ValueError, match=words):
            MLPClassifier(**params).fit(X, y)
    with pytest.raises(ValueError, match="y_val holds label 7"):
        MLPClassifier(epochs=1).fit(X, y, X[:3], np.array([0, 1, 7]))


def test_divergence_is_reported():
    X, y = np.random.default_rng(0).uniform(size=(40, 4)) * 1e3, np.arange(40) % 3
    with pytest.raises(DivergenceError):
        MLPClassifier((8,), learning_rate=1e30, epochs=20, random_state=0).fit(X, y)
