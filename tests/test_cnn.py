"""Conv-1D training: reference gradients by finite differences, layers, fused epochs, the seed's mini CNN
and CNN1DClassifier.

- The reference conv, pooling and fused-epoch gradients equal central differences of the loss.
- The layer path (Conv1D, ReLU, MaxPool1D, Flatten, Linear) and the fused epoch agree on every backend.
- The mini CNN of Algorithm 3: backprop equals the homework's closed form, and SGD uses the weights
  from before the update.
- CNN1DClassifier passes check_estimator on every backend; save/load round-trips.
"""
import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastnn  # noqa: E402
from fastnn import nn  # noqa: E402
from fastnn.backends import cnn_training_ref, conv_ref, training_ref  # noqa: E402
from fastnn.cnn_training import conv_stack_geometry, n_parameters  # noqa: E402
from fastnn.examples import mini_cnn  # noqa: E402
from fastnn.models import CNN1DClassifier  # noqa: E402
from fastnn.nn.conv_layers import conv_stack_spec  # noqa: E402

from kernel_cases import BACKENDS  # noqa: E402

EPS = 1e-6


def _numeric_gradient(f, array):
    """Central differences of the scalar f() with respect to every entry of array (modified and restored)."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        old = array[index]
        array[index] = old + EPS
        up = f()
        array[index] = old - EPS
        down = f()
        array[index] = old
        grad[index] = (up - down) / (2 * EPS)
    return grad


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1), (3, 2), (1, 4)])
def test_reference_conv_gradients_match_finite_differences(stride, padding):
    rng = np.random.default_rng(stride * 10 + padding)
    x, w, b = rng.normal(size=(2, 3, 9)), rng.normal(size=(4, 3, 3)), rng.normal(size=4)
    l_out = conv_ref.output_length(9, 3, stride, padding)
    weights = rng.normal(size=(2, 4, l_out))  # loss = sum(weights * y): dy = weights

    def loss():
        return float(np.sum(weights * fastnn.conv1d_forward(x, w, b, stride=stride, padding=padding, backend="numpy")))

    dx, dw, db = fastnn.conv1d_backward(x, w, weights, stride=stride, padding=padding, backend="numpy")
    for analytic, array in ((dx, x), (dw, w), (db, b)):
        np.testing.assert_allclose(analytic, _numeric_gradient(loss, array), rtol=1e-6, atol=1e-8)


def test_reference_maxpool_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    x = rng.permutation(60).reshape(2, 3, 10) / 7.0  # distinct values: no ties, so the max is differentiable
    weights = rng.normal(size=(2, 3, 4))

    def loss():
        return float(np.sum(weights * fastnn.maxpool1d_forward(x, kernel_size=3, stride=2, backend="numpy")[0]))

    _, argmax = fastnn.maxpool1d_forward(x, kernel_size=3, stride=2, backend="numpy")
    dx = fastnn.maxpool1d_backward(weights, argmax, 10, backend="numpy")
    np.testing.assert_allclose(dx, _numeric_gradient(loss, x), rtol=1e-6, atol=1e-8)


def test_reference_epoch_gradient_matches_finite_differences():
    """One plain-SGD step of the reference epoch with learning rate 1 moves params by minus the gradient."""
    rng = np.random.default_rng(1)
    conv = conv_stack_geometry((2, 11), (3, 4), (3, 2), (2, 1), (1, 1))
    n_classes = 3
    params = rng.normal(0, 0.5, n_parameters(conv, n_classes))
    X, y = rng.normal(size=(5, 2, 11)), rng.integers(0, n_classes, 5)
    hyper = np.zeros(training_ref.N_HYPER)
    hyper[training_ref.LEARNING_RATE] = 1.0
    hyper[training_ref.WEIGHT_DECAY] = 0.01
    stepped = params.copy()
    cnn_training_ref.cnn1d_train_epoch(X, y, np.arange(5), conv, n_classes, 5, stepped, training_ref.SGD,
                                       np.zeros((2, params.size)), 0, hyper)
    weight_slices = [(w, b) for w, b, _ in cnn_training_ref.parameter_offsets(conv.tolist(), n_classes)]

    def loss():
        model = nn.conv1d_net((2, 11), n_classes, channels=(3, 4), kernel_sizes=(3, 2), strides=(2, 1),
                              paddings=(1, 1), dtype=np.float64, backend="numpy")
        model.params[...] = params
        value, _ = fastnn.softmax_cross_entropy(model.forward(X), y, backend="numpy")
        return value + 0.01 * sum(np.sum(params[w:b] ** 2) for w, b in weight_slices)

    np.testing.assert_allclose(params - stepped, _numeric_gradient(loss, params), rtol=1e-5, atol=1e-8)


def _net(pool=None, backend=None, dtype=np.float64):
    return nn.conv1d_net((2, 17), 4, channels=(5, 3), kernel_sizes=(3, 2), strides=(2, 1), paddings=(1, 2),
                         pool=pool, dtype=dtype, random_state=0, backend=backend)


def test_conv_stack_spec_recognises_only_what_the_fused_kernel_trains():
    assert conv_stack_spec(_net()) == dict(channels=(5, 3), kernel_sizes=(3, 2), strides=(2, 1), paddings=(1, 2),
                                           n_classes=4)
    assert conv_stack_spec(_net(pool=2)) is None
    assert conv_stack_spec(nn.mlp([3, 4, 2])) is None
    no_bias = nn.Sequential([nn.Conv1D(1, 2, 2, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2)],
                            input_shape=(1, 5))
    assert conv_stack_spec(no_bias) is None


@pytest.mark.parametrize("optimizer", [nn.SGD(0.05, momentum=0.9, weight_decay=0.01), nn.Adam(0.01)])
def test_fused_epochs_equal_the_layer_path(backend, optimizer):
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(23, 2, 17)), rng.integers(0, 4, 23)
    models = []
    for fused in (True, False):
        model = _net(backend=backend)
        trainer = nn.Trainer(model, optimizer, batch_size=7, epochs=3, random_state=0, fused=fused)
        assert trainer.uses_fused_epochs() is fused
        trainer.fit(X, y)
        optimizer.state = None  # fresh state for the next run
        models.append(model)
    np.testing.assert_allclose(models[0].params, models[1].params, rtol=1e-9, atol=1e-12)


def test_pooling_network_trains_layer_by_layer(backend):
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(40, 2, 17)), rng.integers(0, 4, 40)
    model = _net(pool=2, backend=backend)
    trainer = nn.Trainer(model, nn.Adam(0.01), batch_size=8, epochs=2, random_state=0)
    assert not trainer.uses_fused_epochs()
    history = trainer.fit(X, y)
    reference = _net(pool=2, backend="numpy")
    nn.Trainer(reference, nn.Adam(0.01), batch_size=8, epochs=2, random_state=0).fit(X, y)
    np.testing.assert_allclose(model.params, reference.params, rtol=1e-9, atol=1e-12)
    assert len(history.loss) == 2


def test_gradient_checker_works_on_conv_layers():
    model = _net(pool=2, backend="numpy")
    rng = np.random.default_rng(4)
    check = nn.check_gradients(model, rng.normal(size=(6, 2, 17)), rng.integers(0, 4, 6), weight_decay=0.01)
    assert check.max_relative_error < 1e-5


# ---------------------------------------------------------------------------- the seed's mini CNN
@pytest.mark.parametrize("x, y", [((1.0, 0.5, -1.0), 1), ((1.0, 2.0, -1.0), -1), ((-0.3, 0.2, 0.9), 1),
                                  ((-1.0, -2.0, -0.5), -1)])
def test_mini_cnn_gradients_equal_the_closed_form(x, y, backend):
    w, v = (0.5, -0.3), (0.8, 0.4)
    _, backprop = mini_cnn.gradients(mini_cnn.mini_cnn(w, v, backend=backend), x, y)
    np.testing.assert_allclose(backprop, mini_cnn.closed_form_gradients(w, v, x, y), rtol=1e-12, atol=1e-15)


def test_mini_cnn_sgd_updates_every_weight_from_the_weights_before_the_update(backend):
    w, v, x, y, lr = (0.5, -0.3), (0.8, -0.4), (1.0, 0.5, -1.0), 1, 0.5
    model = mini_cnn.mini_cnn(w, v, backend=backend)
    optimizer = nn.SGD(lr)
    optimizer.setup(model.params)
    mini_cnn.sgd_step(model, optimizer, x, y)
    expected = np.array([*w, *v]) - lr * np.array(mini_cnn.closed_form_gradients(w, v, x, y))
    np.testing.assert_allclose(model.params, expected, rtol=1e-12)
    # The known mistake, updating v first and computing w's gradient with the new v, lands elsewhere.
    new_v = tuple(expected[2:])
    wrong_w = np.array(w) - lr * np.array(mini_cnn.closed_form_gradients(w, new_v, x, y)[:2])
    assert np.abs(wrong_w - expected[:2]).max() > 1e-3


def test_mini_cnn_learns_the_toy_problem():
    X, labels = mini_cnn.toy_data()
    _, losses = mini_cnn.train(X, labels, backend="numpy")
    assert losses[-1] < 0.75 * losses[0]


# ---------------------------------------------------------------------------- CNN1DClassifier
SMALL = dict(channels=(4, 4), kernel_sizes=(2, 2), strides=(1, 1), paddings=(1, 1), batch_size=16, epochs=20)


# The default (MNIST-1D ConvBase) needs inputs of at least 3 positions; check_estimator's data has 1 or 2
# features, so the checks run on a small stack that fits any length.
@parametrize_with_checks([CNN1DClassifier(**SMALL, backend=name) for name in BACKENDS])
def test_scikit_learn_compatible(estimator, check):
    check(estimator)


def test_default_is_convbase():
    clf = CNN1DClassifier(epochs=1, random_state=0).fit(np.random.default_rng(0).normal(size=(50, 40)),
                                                        np.arange(50) % 10)
    assert [repr(layer) for layer in clf.model_.layers] == [
        "Conv1D(1, 25, 5, stride=2, padding=1)", "ReLU()", "Conv1D(25, 25, 3, stride=2, padding=1)", "ReLU()",
        "Conv1D(25, 25, 3, stride=2, padding=1)", "ReLU()", "Flatten()", "Linear(125, 10)"]
    assert clf.model_.n_parameters == 5210


def test_three_dimensional_input_and_shape_errors():
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(30, 2, 12)), rng.integers(0, 3, 30)
    clf = CNN1DClassifier(**SMALL, random_state=0).fit(X, y)
    assert clf.predict(X).shape == (30,)
    with pytest.raises(ValueError, match=r"\(2, 13\)"):
        clf.predict(rng.normal(size=(4, 2, 13)))
    with pytest.raises(ValueError, match="n_features = 2"):
        CNN1DClassifier(epochs=1).fit(rng.normal(size=(10, 2)), np.arange(10) % 2)
    with pytest.raises(ValueError, match="strides"):
        CNN1DClassifier(strides=(2, 2)).fit(X, y)
    with pytest.raises(ValueError, match="pool"):
        CNN1DClassifier(pool=0).fit(X, y)


def test_refitting_on_another_length_validates_on_the_new_one():
    rng = np.random.default_rng(7)
    clf = CNN1DClassifier(**{**SMALL, "epochs": 1}, random_state=0).fit(rng.normal(size=(20, 12)), np.arange(20) % 2)
    X, y = rng.normal(size=(20, 9)), np.arange(20) % 2
    clf.fit(X, y, X[:5], y[:5])
    assert clf.model_.input_shape == (1, 9) and len(clf.history_["val_loss"]) == 1


def test_save_and_load_round_trip(tmp_path):
    rng = np.random.default_rng(6)
    X, y = rng.normal(size=(40, 1, 9)), rng.choice(["a", "b", "c"], 40)
    clf = CNN1DClassifier(**SMALL, pool=2, random_state=0).fit(X, y)
    loaded = CNN1DClassifier.load(clf.save(tmp_path / "cnn.npz"))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.get_params() == clf.get_params()
    with pytest.raises(ValueError, match="format"):
        fastnn.models.MLPClassifier.load(tmp_path / "cnn.npz")


@pytest.fixture(scope="module")
def mnist1d(tmp_path_factory):
    pytest.importorskip("mnist1d.data")
    from fastnn.datasets import load_mnist1d

    return load_mnist1d(cache_dir=tmp_path_factory.mktemp("mnist1d"))  # generated offline, ~2 s


@pytest.mark.parametrize("backend_name", [name for name in BACKENDS if name != "numpy"])
def test_convbase_learns_mnist1d(backend_name, mnist1d):
    """1,000 Adam steps of the default ConvBase on MNIST-1D pass 85 % test accuracy.

    (The full 8,000-step run and its timing against PyTorch are in bench/bench_cnn_training.py.)
    """
    data = mnist1d
    clf = CNN1DClassifier(epochs=25, random_state=0, backend=backend_name).fit(data.X_train, data.y_train)
    assert clf.n_updates_ == 1000
    assert clf.score(data.X_test, data.y_test) >= 0.85
