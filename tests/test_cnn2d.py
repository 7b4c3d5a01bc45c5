"""Image CNNs: fastnn.nn.conv2d_net and CNN2DClassifier.

- The seed's 2-layer and 3-layer CNNs and the CIFAR-10 tutorial CNN have their published parameter counts.
- conv2d_net's forward pass equals a hand-written NumPy forward (layer order, flatten order, activations).
- Every backend fits the numpy backend's model (float32 and float64) and predicts as it does.
- A CNN learns which half of an image is bright; flat, (n, H, W) and (n, C, H, W) inputs are equivalent.
- Bad parameters and inputs are ValueErrors naming the argument; save/load round-trips without pickle.
- CNN2DClassifier passes check_estimator on every backend (flat X is a one-row image there).
"""
import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")

from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastnn import nn  # noqa: E402
from fastnn.models import CNN2DClassifier, MLPClassifier  # noqa: E402

from child_process import NEUTRAL_CWD, child_env  # noqa: E402
from kernel_cases import BACKENDS  # noqa: E402

# scikit-learn's checks feed 2-D X of 1 to 20 features: a one-row image, so kernels of height 1, no pooling.
CHECKED = dict(channels=(3,), kernel_sizes=(1,), pool=None, optimizer="adam", batch_size=16, epochs=20)


@parametrize_with_checks([CNN2DClassifier(**CHECKED, backend=name) for name in BACKENDS])
def test_scikit_learn_compatible(estimator, check):
    check(estimator)


# ---------------------------------------------------------------------------- architectures
SEED_2_LAYER = dict()
SEED_3_LAYER = dict(channels=(64, 128), kernel_sizes=(7, 2), strides=(1, 1), paddings=(0, 0), pool=2)
TUTORIAL = dict(channels=(6, 16), kernel_sizes=(5, 5), strides=(1, 1), paddings=(0, 0), pool=2,
                hidden_layer_sizes=(120, 84))


@pytest.mark.parametrize("params, image, n_parameters, layers", [
    (SEED_2_LAYER, (1, 28, 28), 80_650,
     ["Conv2D(1, 64, (7, 7), stride=(1, 1), padding=(0, 0))", "ReLU()", "MaxPool2D((2, 2), stride=(2, 2))",
      "Flatten()", "Linear(7744, 10)"]),
    (SEED_3_LAYER, (1, 28, 28), 68_106, None),
    (TUTORIAL, (3, 32, 32), 62_006,
     ["Conv2D(3, 6, (5, 5), stride=(1, 1), padding=(0, 0))", "ReLU()", "MaxPool2D((2, 2), stride=(2, 2))",
      "Conv2D(6, 16, (5, 5), stride=(1, 1), padding=(0, 0))", "ReLU()", "MaxPool2D((2, 2), stride=(2, 2))",
      "Flatten()", "Linear(400, 120)", "ReLU()", "Linear(120, 84)", "ReLU()", "Linear(84, 10)"]),
])
def test_the_seeds_networks_have_their_parameter_counts(params, image, n_parameters, layers):
    X = np.random.default_rng(0).random((10,) + image, dtype=np.float32)
    clf = CNN2DClassifier(**params, epochs=1, random_state=0).fit(X, np.arange(10))
    assert clf.model_.n_parameters == n_parameters
    assert clf._n_parameters(image, 10, clf._architecture()) == n_parameters  # what load() checks
    if layers is not None:
        assert [repr(layer) for layer in clf.model_.layers] == layers


def _reference_forward(model, X, activation):
    """The logits of a conv2d_net model computed with plain NumPy from its layers' parameters."""
    act = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh, "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
           "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z)}[activation]
    h = X
    for layer in model.layers:
        if isinstance(layer, nn.Conv2D):
            (ph, pw), (sh, sw) = layer.padding, layer.stride
            padded = np.pad(h, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
            windows = sliding_window_view(padded, layer.kernel_size, axis=(2, 3))[:, :, ::sh, ::sw]
            h = np.einsum("ncijpq,ocpq->noij", windows, layer.params["w"]) + layer.params["b"][:, None, None]
        elif isinstance(layer, nn.MaxPool2D):
            windows = sliding_window_view(h, layer.kernel_size, axis=(2, 3))
            h = windows[:, :, ::layer.stride[0], ::layer.stride[1]].max(axis=(4, 5))
        elif isinstance(layer, nn.Flatten):
            h = h.reshape(len(h), -1)
        elif isinstance(layer, nn.Linear):
            h = h @ layer.params["W"] + layer.params["b"]
        else:
            h = act(h)
    return h


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid"])
def test_conv2d_net_computes_the_network_it_describes(activation):
    model = nn.conv2d_net((2, 9, 10), 3, channels=(3, 4), kernel_sizes=(3, (2, 3)), strides=(1, (1, 2)),
                          paddings=(1, 0), pool=2, hidden_layer_sizes=(5,), activation=activation,
                          dtype=np.float64, random_state=0, backend="numpy")
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv2D", nn.layers.ACTIVATION_LAYERS[activation].__name__, "MaxPool2D", "Conv2D",
        nn.layers.ACTIVATION_LAYERS[activation].__name__, "MaxPool2D", "Flatten", "Linear",
        nn.layers.ACTIVATION_LAYERS[activation].__name__, "Linear"]
    X = np.random.default_rng(1).standard_normal((4, 2, 9, 10))
    np.testing.assert_allclose(model.forward(X), _reference_forward(model, X, activation), rtol=1e-12, atol=1e-12)
    # PyTorch's default initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C_in KH KW
    first = model.layers[0].params["w"]
    assert np.abs(first).max() <= 1 / np.sqrt(2 * 9) and np.abs(first).max() > 0.8 / np.sqrt(2 * 9)


# ---------------------------------------------------------------------------- backends agree
SMALL = dict(channels=(3, 4), kernel_sizes=(3, (2, 3)), strides=(1, (1, 2)), paddings=(1, 0), pool=2,
             hidden_layer_sizes=(5,), batch_size=8, epochs=2, learning_rate=0.05, momentum=0.9)


def _images(n, seed, shape=(2, 9, 10)):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n,) + shape), rng.integers(0, 3, n)


@pytest.mark.parametrize("activation", ["relu", "tanh", "leaky_relu"])
@pytest.mark.parametrize("backend_name", [name for name in BACKENDS if name != "numpy"])
def test_every_backend_fits_the_reference_model(backend_name, dtype, activation):
    X, y = _images(30, seed=2)
    X = X.astype(dtype)
    fitted = [CNN2DClassifier(**SMALL, activation=activation, dtype=dtype, random_state=3, backend=name).fit(X, y)
              for name in ("numpy", backend_name)]
    reference, actual = (clf.model_.params for clf in fitted)
    assert actual.dtype == np.dtype(dtype)
    tol = 2e-4 if np.dtype(dtype) == np.float32 else 1e-10
    np.testing.assert_allclose(actual, reference, rtol=tol, atol=tol * np.abs(reference).max())
    np.testing.assert_allclose(fitted[1].predict_proba(X), fitted[0].predict_proba(X), rtol=tol, atol=tol)
    assert fitted[1].n_updates_ == fitted[0].n_updates_ == 2 * 4
    assert fitted[1].history_["loss"] == pytest.approx(fitted[0].history_["loss"], rel=tol)


def _halves(n, seed, size=8):
    """Images (n, size, size) of noise with the left or the right half brighter; label 0 = left."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.random((n, size, size), dtype=np.float32) * 0.5
    for i, label in enumerate(y):
        X[i, :, label * size // 2:(label + 1) * size // 2] += 0.5
    return X, y


def test_a_cnn_learns_which_half_is_bright(backend):
    X, y = _halves(200, seed=4)
    X_test, y_test = _halves(200, seed=5)
    clf = CNN2DClassifier((4,), (3,), pool=2, learning_rate=0.1, momentum=0.9, batch_size=16, epochs=5,
                          random_state=0, backend=backend).fit(X, y)
    assert clf.score(X_test, y_test) > 0.9
    assert clf.history_["loss"][-1] < clf.history_["loss"][0]


def test_flat_two_and_three_dimensional_inputs_are_the_same_images():
    X, y = _halves(60, seed=6)
    params = dict(channels=(2,), kernel_sizes=((3, 2),), epochs=2, random_state=0, backend="numpy")
    by_layout = [CNN2DClassifier(**params).fit(X, y),
                 CNN2DClassifier(**params).fit(X[:, None], y),
                 CNN2DClassifier(**params, image_shape=(8, 8)).fit(X.reshape(60, -1), y),
                 CNN2DClassifier(**params, image_shape=(1, 8, 8)).fit(X.reshape(60, -1), y)]
    for clf in by_layout:
        assert clf.model_.input_shape == (1, 8, 8) and clf.n_features_in_ == 64
        np.testing.assert_array_equal(clf.model_.params, by_layout[0].model_.params)
    # a fitted model reads flat rows as its images, and images as images, whatever it was fitted on
    proba = by_layout[0].predict_proba(X)
    np.testing.assert_array_equal(by_layout[0].predict_proba(X.reshape(60, -1)), proba)
    np.testing.assert_array_equal(by_layout[2].predict_proba(X[:, None]), proba)
    # a flat X without image_shape is a one-row image
    row = CNN2DClassifier((2,), (1,), pool=None, epochs=1, random_state=0).fit(X.reshape(60, -1), y)
    assert row.model_.input_shape == (1, 1, 64)


def test_refitting_on_other_images_uses_the_new_shape_for_validation_and_prediction():
    X, y = _halves(30, seed=12)
    clf = CNN2DClassifier((2,), (3,), epochs=1, random_state=0).fit(X, y)
    X_big, y_big = _halves(30, seed=13, size=10)
    clf.fit(X_big, y_big, X_big[:10], y_big[:10])  # X_val has the new shape, not the first fit's
    assert clf.model_.input_shape == (1, 10, 10) and len(clf.history_["val_loss"]) == 1
    assert clf.predict(X_big.reshape(30, -1)).shape == (30,)
    with pytest.raises(ValueError, match="64 values per example"):
        clf.predict(X)


def test_inference_runs_wide_conv_layers_in_smaller_chunks():
    seed = nn.conv2d_net((1, 28, 28), 10, random_state=0, backend="numpy")
    assert seed.max_activation == 64 * 22 * 22 and seed.inference_chunk_rows() == (1 << 23) // (64 * 22 * 22)
    assert nn.mlp([784, 128, 10]).inference_chunk_rows() == 4096
    small = nn.conv2d_net((1, 8, 8), 3, channels=(2,), kernel_sizes=(3,), random_state=0, dtype=np.float64)
    X = np.random.default_rng(0).standard_normal((50, 1, 8, 8))
    np.testing.assert_allclose(small.layer_logits(X, chunk_rows=7), small.forward(X), rtol=1e-12, atol=1e-14)


def test_the_callers_arrays_are_not_modified():
    X, y = _halves(40, seed=7)
    X_val, y_val = _halves(10, seed=8)
    copies = [a.copy() for a in (X, y, X_val, y_val)]
    clf = CNN2DClassifier((2,), (3,), epochs=2, random_state=0).fit(X, y, X_val, y_val)
    clf.predict_proba(X)
    for array, copy in zip((X, y, X_val, y_val), copies):
        np.testing.assert_array_equal(array, copy)
    assert len(clf.history_["val_accuracy"]) == 2


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("params, X_shape, words", [
    (dict(channels=()), (6, 8, 8), ["channels"]),
    (dict(channels=(2, 0)), (6, 8, 8), ["channels"]),
    (dict(kernel_sizes=(3, 3)), (6, 8, 8), ["kernel_sizes", "one entry per conv layer"]),
    (dict(kernel_sizes=((3, 0),)), (6, 8, 8), ["kernel_sizes"]),
    (dict(kernel_sizes=((3, 3, 3),)), (6, 8, 8), ["kernel_sizes", "pair"]),
    (dict(kernel_sizes="7"), (6, 8, 8), ["kernel_sizes"]),
    (dict(strides=(0,)), (6, 8, 8), ["strides"]),
    (dict(paddings=(-1,)), (6, 8, 8), ["paddings"]),
    (dict(pool=0), (6, 8, 8), ["pool"]),
    (dict(pool=(2, 2, 2)), (6, 8, 8), ["pool"]),
    (dict(hidden_layer_sizes=(0,)), (6, 8, 8), ["hidden_layer_sizes"]),
    (dict(activation="softplus"), (6, 8, 8), ["activation", "leaky_relu"]),
    (dict(image_shape=(0, 8)), (6, 64), ["image_shape"]),
    (dict(image_shape=8), (6, 64), ["image_shape"]),
    (dict(image_shape=(7, 8)), (6, 64), ["image_shape", "56", "64"]),
    (dict(image_shape=(2, 8, 8)), (6, 8, 8), ["image_shape", "(1, 8, 8)"]),
    (dict(), (6, 64), ["does not fit", "image_shape"]),  # a flat X is one row: a 7x7 kernel does not fit it
    (dict(), (6, 2, 2, 2, 2), ["X must be"]),
    (dict(kernel_sizes=(9,)), (6, 8, 8), ["does not fit", "kernel height 9"]),
    (dict(paddings=(9,)), (6, 8, 8), ["padding"]),
])
def test_bad_parameters_and_inputs_are_clear_errors(params, X_shape, words):
    X = np.zeros(X_shape)
    y = np.arange(X_shape[0]) % 2
    with pytest.raises(ValueError) as excinfo:
        CNN2DClassifier(**params, epochs=1).fit(X, y)
    for word in words:
        assert word in str(excinfo.value)


HOSTILE = """
import numpy as np
import fastnn
from fastnn.models import CNN2DClassifier

X, y = np.zeros((4, 8, 8)), np.arange(4) % 2
cases = [dict(channels=(2**40,)), dict(channels=(2**41,)), dict(channels=(2**31,)), dict(kernel_sizes=(2**63,)),
         dict(kernel_sizes=((1, 2**40),), paddings=((0, 2**40),)), dict(strides=((2**62, 1),)),
         dict(paddings=(2**40,)), dict(pool=2**62), dict(pool=(1, 2**63)), dict(hidden_layer_sizes=(2**40,)),
         dict(hidden_layer_sizes=(2**16, 2**16)), dict(image_shape=(2**62, 2**62, 2**62)),
         dict(channels=(np.uint64(2**64 - 1),)), dict(batch_size=2**63), dict(epochs=2**63)]
for backend in fastnn.available_backends():
    for i, params in enumerate(cases):
        try:
            CNN2DClassifier(**{"epochs": 1, **params}, backend=backend).fit(
                X.reshape(4, -1) if "image_shape" in params else X, y)
        except ValueError:
            continue
        raise SystemExit(f"case {i} {params} on {backend} was accepted")
print("all refused")
"""


def test_hostile_sizes_are_refused_in_a_child_process():
    """Sizes near 2**40 and 2**63 get a ValueError before anything is allocated or compiled code runs; the
    fits run in a child process so that a crash or an attempt at a huge allocation fails this test."""
    result = subprocess.run([sys.executable, "-c", HOSTILE], capture_output=True, text=True, timeout=300,
                            env=child_env(), cwd=NEUTRAL_CWD)
    assert result.returncode == 0, result.stderr[-2000:] + result.stdout[-2000:]
    assert "all refused" in result.stdout


def test_predicting_other_images_is_a_clear_error():
    X, y = _halves(20, seed=9)
    clf = CNN2DClassifier((2,), (3,), epochs=1, random_state=0).fit(X, y)
    for bad, words in [(np.zeros((3, 9, 8)), ["72 values", "64"]), (np.zeros((3, 2, 4, 8)), ["(2, 4, 8)", "(1, 8, 8)"]),
                       (np.zeros((3, 63)), ["63 features"]), (np.full((3, 8, 8), np.nan), ["NaN"])]:
        with pytest.raises(ValueError) as excinfo:
            clf.predict(bad)
        for word in words:
            assert word in str(excinfo.value)


# ---------------------------------------------------------------------------- persistence
def test_save_and_load_round_trip(tmp_path):
    X, y = _images(40, seed=10)
    labels = np.array(["cat", "dog", "emu"])[y]
    clf = CNN2DClassifier(**SMALL, activation="tanh", image_shape=(2, 9, 10), random_state=0)
    clf.set_params(pool=(2, 2), kernel_sizes=((3, 3), (2, 3)))
    clf.fit(X.reshape(40, -1), labels)
    loaded = CNN2DClassifier.load(clf.save(tmp_path / "cnn2d.npz"))
    assert loaded.get_params() == clf.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X.reshape(40, -1)), clf.predict(X.reshape(40, -1)))
    assert loaded.n_features_in_ == 180 and loaded.n_iter_ == clf.n_iter_
    with pytest.raises(ValueError, match="format"):
        MLPClassifier.load(tmp_path / "cnn2d.npz")


def test_loading_a_file_whose_parameters_do_not_fit_is_a_clear_error(tmp_path):
    X, y = _images(20, seed=11)
    path = CNN2DClassifier(**SMALL, random_state=0).fit(X, y).save(tmp_path / "cnn2d.npz")
    saved = np.load(path)
    config = json.loads(saved["config"].item())
    config["params"]["channels"] = [3, 5]
    forged = tmp_path / "forged.npz"
    np.savez(forged, format=saved["format"], config=np.array(json.dumps(config)), params=saved["params"],
             classes=saved["classes"])
    with pytest.raises(ValueError, match="do not fit the model"):
        CNN2DClassifier.load(forged)
