"""Model files (issue 14 part 5): save/load round-trips for every estimator, and load() refuses any file that
is not a model it wrote with a ValueError, before allocating what the file describes.

- every estimator (MLPClassifier, CNN1DClassifier, CNN2DClassifier, Perceptron, KernelPerceptron) saves and
  loads back to identical predictions and scores;
- truncated files, random bytes, files of another estimator, malformed configs, object arrays, forged
  .npy headers and architectures far larger than the stored parameters: ValueError;
- non-finite parameters: ValueError.
"""
import io
import json
import pathlib
import zipfile

import numpy as np
import pytest

pytest.importorskip("sklearn")

from fastnn.models import CNN1DClassifier, CNN2DClassifier, KernelPerceptron, MLPClassifier, Perceptron  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.normal(size=(48, 8))
Y = np.array(["ant", "bee", "cat"])[np.arange(48) % 3]

ESTIMATORS = {
    "mlp": lambda: MLPClassifier((5,), epochs=2, random_state=0),
    "cnn": lambda: CNN1DClassifier((3,), (3,), (1,), (1,), epochs=2, random_state=0),
    "cnn-pool": lambda: CNN1DClassifier((3, 2), (3, 2), (1, 1), (1, 0), pool=2, epochs=2, random_state=0,
                                        dtype="float64"),
    "cnn2d": lambda: CNN2DClassifier((3,), ((1, 3),), pool=(1, 2), epochs=2, random_state=0),
    "cnn2d-image": lambda: CNN2DClassifier((2,), (2,), paddings=((1, 0),), pool=None, hidden_layer_sizes=(4,),
                                           activation="tanh", image_shape=(2, 4), epochs=2, random_state=0,
                                           dtype="float64"),
    "perceptron": lambda: Perceptron(random_state=0),
    "perceptron-f32": lambda: Perceptron(random_state=0, dtype="float32"),
    "kernel-perceptron": lambda: KernelPerceptron(kernel="poly", degree=2, random_state=0),
    "kernel-perceptron-rbf": lambda: KernelPerceptron(gamma=0.5, random_state=0, dtype="float32"),
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """name -> (fitted estimator, path of its saved file)."""
    directory = tmp_path_factory.mktemp("models")
    fitted = {}
    for name, make in ESTIMATORS.items():
        estimator = make().fit(X, Y)
        fitted[name] = (estimator, pathlib.Path(estimator.save(directory / f"{name}.npz")))
    return fitted


def scores(estimator, X):
    if hasattr(estimator, "predict_proba"):
        return estimator.predict_proba(X)
    return estimator.decision_function(X)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_round_trip_predicts_identically(saved, name):
    estimator, path = saved[name]
    with zipfile.ZipFile(path) as archive:  # plain arrays only, no pickle
        for member in archive.namelist():
            with archive.open(member) as f:
                np.lib.format.read_array(f, allow_pickle=False)
    loaded = type(estimator).load(path)
    assert loaded.get_params() == estimator.get_params()
    np.testing.assert_array_equal(loaded.predict(X), estimator.predict(X))
    np.testing.assert_array_equal(scores(loaded, X), scores(estimator, X))
    assert loaded.n_iter_ == estimator.n_iter_ and loaded.n_features_in_ == estimator.n_features_in_


@pytest.mark.parametrize("name", ["perceptron", "kernel-perceptron"])
def test_perceptron_save_is_atomic(saved, name, tmp_path, monkeypatch):
    estimator, _ = saved[name]
    target = tmp_path / "model.npz"
    target.write_bytes(b"previous contents")

    def failing_savez(file, **arrays):
        file.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        estimator.save(target)
    assert target.read_bytes() == b"previous contents" and [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_unfitted_perceptron_cannot_be_saved(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        Perceptron().save(tmp_path / "x.npz")


@pytest.mark.parametrize("name", ESTIMATORS)
def test_truncated_files_are_value_errors(saved, name, tmp_path):
    estimator, path = saved[name]
    data = path.read_bytes()
    cuts = sorted(set([0, 1, 4, 30, 100] + [len(data) * i // 23 for i in range(1, 23)] + [len(data) - 1]))
    for cut in cuts:
        broken = tmp_path / f"cut{cut}.npz"
        broken.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="not a"):
            type(estimator).load(broken)


def test_corrupted_bytes_are_value_errors(saved, tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "random.npz").write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    for name, (estimator, path) in saved.items():
        with pytest.raises(ValueError):
            type(estimator).load(tmp_path / "random.npz")
        data = bytearray(path.read_bytes())
        for trial in range(12):  # flip bytes anywhere in the archive: a clean error or the same model
            corrupted = bytearray(data)
            for at in rng.integers(0, len(data), 3):
                corrupted[at] ^= 0xFF
            (tmp_path / "flipped.npz").write_bytes(bytes(corrupted))
            try:
                loaded = type(estimator).load(tmp_path / "flipped.npz")
            except ValueError:
                continue
            assert loaded.predict(X).shape == (len(X),)


def test_a_file_of_another_estimator_is_a_value_error(saved):
    for name, (estimator, _) in saved.items():
        for other, (other_estimator, other_path) in saved.items():
            if type(other_estimator) is type(estimator):
                continue
            with pytest.raises(ValueError, match="format"):
                type(estimator).load(other_path)


def members(path):
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def write(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def with_config(good, **changes):
    config = json.loads(str(good["config"]))
    for key, value in changes.items():
        if key.startswith("params."):
            config["params"][key[len("params."):]] = value
        elif value is None:
            del config[key]
        else:
            config[key] = value
    return {**good, "config": np.array(json.dumps(config))}


def test_architecture_larger_than_the_stored_parameters_is_refused_before_building(saved, tmp_path, monkeypatch):
    """A 5 KB file must not make load() allocate gigabytes: the parameter count is checked first."""
    cases = {
        "mlp": with_config(members(saved["mlp"][1]), **{"params.hidden_layer_sizes": [2**20, 2**10]}),
        "cnn": with_config(members(saved["cnn"][1]), **{"params.channels": [2**15], "params.kernel_sizes": [2**14],
                                                        "params.paddings": [2**14]}),
        "cnn-long": with_config(members(saved["cnn"][1]), input_shape=[1, 2**28], n_features_in=2**28),
        "cnn2d": with_config(members(saved["cnn2d"][1]), **{"params.channels": [2**15],
                                                            "params.kernel_sizes": [[1, 2**14]],
                                                            "params.paddings": [[0, 2**14]]}),
        "cnn2d-large": with_config(members(saved["cnn2d"][1]), input_shape=[1, 2**14, 2**14], n_features_in=2**28),
    }
    for name, arrays in cases.items():
        cls = type(saved[name.split("-")[0]][0])

        def no_build(*args, **kwargs):
            raise AssertionError("load() built the network before checking its size")

        monkeypatch.setattr(cls, "_build", no_build)
        path = write(tmp_path / f"{name}.npz", **arrays)
        assert path.stat().st_size < 10_000
        with pytest.raises(ValueError, match="do not fit|limit|fit"):
            cls.load(path)
        monkeypatch.undo()


def forged_npz(path, arrays, forged_key, shape):
    """An npz whose member forged_key declares `shape` in its .npy header but holds 16 bytes of data."""
    with zipfile.ZipFile(path, "w") as archive:
        for key, array in arrays.items():
            buffer = io.BytesIO()
            if key == forged_key:
                np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": shape})
                buffer.write(b"\0" * 16)
            else:
                np.lib.format.write_array(buffer, array, allow_pickle=False)
            archive.writestr(f"{key}.npy", buffer.getvalue())
    return path


def test_cnn2d_files_whose_shapes_disagree_are_refused(saved, tmp_path):
    good = members(saved["cnn2d-image"][1])
    for case, arrays in {"n-features": with_config(good, n_features_in=9),
                         "image-shape": with_config(good, **{"params.image_shape": [4, 2]}),
                         "input-shape": with_config(good, input_shape=[1, 4, 2])}.items():
        with pytest.raises(ValueError, match="not a valid saved"), _named("cnn2d-image", case):
            CNN2DClassifier.load(write(tmp_path / f"{case}.npz", **arrays))


def test_forged_array_headers_are_refused_before_allocating(saved, tmp_path):
    for name, (estimator, path) in saved.items():
        good = members(path)
        key = "params" if "params" in good else ("coef" if "coef" in good else "dual_coef")
        forged = forged_npz(tmp_path / f"{name}.npz", good, key, (2**40,))
        with pytest.raises(ValueError, match="declares"):
            type(estimator).load(forged)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_parameters_are_refused(saved, tmp_path, value):
    for name, (estimator, path) in saved.items():
        good = members(path)
        key = "params" if "params" in good else ("coef" if "coef" in good else "support_vectors")
        bad = good[key].copy()
        bad.flat[0] = value
        with pytest.raises(ValueError, match="NaN or infinity"):
            type(estimator).load(write(tmp_path / f"{name}.npz", **{**good, key: bad}))


class _named:
    """Context manager that names the case in an AssertionError/Failed escaping it."""

    def __init__(self, *names):
        self.names = names

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        if kind is not None and not issubclass(kind, ValueError):
            raise AssertionError(f"case {self.names}: {kind.__name__}: {value}") from value
        if kind is None:
            raise AssertionError(f"case {self.names}: load() accepted it")
        return False


def test_malformed_contents_are_value_errors(saved, tmp_path):
    for name, (estimator, path) in saved.items():
        good = members(path)
        array_key = next(k for k in good if k not in ("format", "config", "classes"))
        cases = {
            "not-json": {**good, "config": np.array("{not json")},
            "json-list": {**good, "config": np.array("[1, 2]")},
            "deep-json": {**good, "config": np.array("[" * 100_000 + "]" * 100_000)},
            "config-number": {**good, "config": np.array(3.0)},
            "format-number": {**good, "format": np.array(1)},
            "unknown-param": with_config(good, **{"params.rocket": 1}),
            "bad-param": with_config(good, **{"params.dtype": "int8"}),
            "params-list": with_config(good, params=[1, 2]),
            "no-n-iter": with_config(good, n_iter=None),
            "n-features-string": with_config(good, n_features_in="8"),
            "classes-2d": {**good, "classes": good["classes"].reshape(1, -1)},
            "one-class": {**good, "classes": good["classes"][:1]},
            "repeated-classes": {**good, "classes": np.repeat(good["classes"][:1], len(good["classes"]))},
            "object-classes": {**good, "classes": np.array([1, "a", None], dtype=object)},
            "wrong-dtype": {**good, array_key: good[array_key].astype(np.float16)},
            "wrong-shape": {**good, array_key: good[array_key][..., :-1]},
            "missing-array": {k: v for k, v in good.items() if k != array_key},
        }
        for case, arrays in cases.items():
            with pytest.raises(ValueError, match="not a|format"), _named(name, case):
                type(estimator).load(write(tmp_path / f"{name}-{case}.npz", **arrays))
        with pytest.raises(ValueError):
            type(estimator).load(tmp_path / "does-not-exist.npz")
        with pytest.raises(ValueError):
            type(estimator).load(tmp_path)  # a directory
