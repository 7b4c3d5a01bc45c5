"""What fit reports and what it refuses: running and exact training metrics, training and wall time,
evaluation through one inference pass, a loss that explodes while staying finite, and the layer
path's reused arrays.

- Running metrics come from the training pass: with a learning rate too small to move the weights
  they equal the untrained model's metrics on the whole training set, on the fused and layer paths.
- Exact metrics are those of the final model on the whole training set.
- history.wall_time covers everything fit did, so it is never below history.time.
- Adam at a learning rate of 1e6 raises DivergenceError on every backend and path, before returning.
- Reusing arrays between batches changes no result.
"""
import pickle

import numpy as np
import pytest

from fastnn import nn
from fastnn.models import CNN1DClassifier, MLPClassifier
from fastnn.nn.trainer import evaluate, gather_rows


def _data(n=60, d=9, n_classes=4, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, (n, d))
    y = (X[:, 0] + X[:, 1] > 1).astype(int) + 2 * (X[:, 2] > 0.5)  # learnable
    return X, y


def _trainer(model, *, fused, lr=0.05, **kwargs):
    return nn.Trainer(model, nn.SGD(lr), batch_size=7, epochs=3, random_state=1, fused=fused, **kwargs)


def _conv_model(backend):
    return nn.conv1d_net((1, 9), 4, channels=(3,), kernel_sizes=(3,), strides=(1,), paddings=(1,), dtype=np.float64,
                         random_state=0, backend=backend)


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("fused", [True, False])
def test_running_metrics_of_an_unmoved_model_are_its_metrics_on_the_training_set(backend, fused, kind):
    X, y = _data()
    if kind == "conv":
        X, model = X.reshape(-1, 1, 9), _conv_model(backend)
    else:
        model = nn.mlp([9, 8, 4], dtype=np.float64, random_state=0, backend=backend)
    untrained = evaluate(model, X, y)
    history = _trainer(model, fused=fused, lr=1e-300).fit(X, y)
    assert history.train_metrics == "running"
    np.testing.assert_allclose(history.loss, untrained[0], rtol=1e-12)
    assert history.train_accuracy == [untrained[1]] * 3


@pytest.mark.parametrize("fused", [True, False])
def test_exact_metrics_are_the_final_models_on_the_training_set(backend, fused):
    X, y = _data()
    model = nn.mlp([9, 8, 4], dtype=np.float64, random_state=0, backend=backend)
    history = _trainer(model, fused=fused, train_metrics="exact").fit(X, y)
    assert history.train_metrics == "exact"
    loss, accuracy = evaluate(model, X, y)
    assert history.loss[-1] == loss and history.train_accuracy[-1] == accuracy
    running = _trainer(nn.mlp([9, 8, 4], dtype=np.float64, random_state=0, backend=backend), fused=fused).fit(X, y)
    assert running.loss != history.loss  # the two kinds differ on a model that learns


def test_history_records_training_and_wall_time():
    X, y = _data()
    calls = []
    model = nn.mlp([9, 8, 4], dtype=np.float64, random_state=0)
    history = _trainer(model, fused="auto", callbacks=[lambda *args: calls.append(args[0])]).fit(X[:40], y[:40],
                                                                                                 X[40:], y[40:])
    assert calls == [1, 2, 3] and len(history.wall_time) == len(history.time) == 3
    assert all(wall >= train > 0 for wall, train in zip(history.wall_time, history.time))
    assert history.wall_time == sorted(history.wall_time)
    assert set(history.to_dict()) >= {"time", "wall_time", "train_metrics"}


def test_train_metrics_is_checked_by_name():
    model = nn.mlp([9, 8, 4])
    with pytest.raises(ValueError, match="train_metrics"):
        nn.Trainer(model, nn.SGD(), train_metrics="final")
    X, y = _data()
    for estimator in (MLPClassifier(train_metrics="final"), CNN1DClassifier(train_metrics=None)):
        with pytest.raises(ValueError, match="train_metrics"):
            estimator.fit(X, y)


def test_estimators_pass_train_metrics_on():
    X, y = _data(n=80)
    running = MLPClassifier((8,), epochs=2, batch_size=100, random_state=0).fit(X, y)
    exact = MLPClassifier((8,), epochs=2, batch_size=100, random_state=0, train_metrics="exact").fit(X, y)
    assert running.history_["train_metrics"] == "running" and exact.history_["train_metrics"] == "exact"
    assert exact.history_["train_accuracy"][-1] == exact.score(X, y)


# ---------------------------------------------------------------------------- divergence
@pytest.mark.parametrize("fused", [True, False])
def test_a_loss_that_explodes_while_finite_raises(backend, fused):
    X, y = _data(n=200)
    model = nn.mlp([9, 16, 4], dtype=np.float32, random_state=0, backend=backend)
    trainer = nn.Trainer(model, nn.Adam(1e6), batch_size=5, epochs=20, random_state=0, fused=fused)
    with pytest.raises(nn.DivergenceError, match=r"diverged in epoch 1: the loss reached .*lower the learning rate"):
        trainer.fit(X.astype(np.float32), y)


def test_estimator_fit_raises_on_explosion_and_healthy_runs_do_not():
    X, y = _data(n=200)
    with pytest.raises(nn.DivergenceError, match="scale the inputs"):
        MLPClassifier((16,), optimizer="adam", learning_rate=1e6, epochs=3, random_state=0).fit(X, y)
    # A large but workable learning rate and an untrained loss far above ln(4) are not divergence.
    MLPClassifier((16,), optimizer="adam", learning_rate=0.1, epochs=5, random_state=0).fit(X, y)
    MLPClassifier((16,), learning_rate=1e-4, epochs=3, random_state=0).fit(300 * X, y)


# ---------------------------------------------------------------------------- reused arrays
def test_reused_buffers_give_the_same_gradients_and_are_released(backend):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 9)), rng.integers(0, 4, 30)
    model = nn.Sequential([nn.Linear(9, 8), nn.ReLU(), nn.Linear(8, 6), nn.Sigmoid(), nn.Linear(6, 4)],
                          dtype=np.float64, random_state=0, backend=backend)
    loss = nn.SoftmaxCrossEntropy()

    def gradients(rows):
        _, dlogits = loss(model.forward(X[rows], training=True), y[rows], backend)
        model.backward(dlogits)
        return model.grads.copy()

    batches = [np.arange(0, 12), np.arange(12, 24), np.arange(24, 30)]  # the last one shorter
    expected = [gradients(rows) for rows in batches]
    with model.reusing_buffers():
        reused = [gradients(rows) for rows in batches + batches]
    for got, want in zip(reused, expected + expected):
        np.testing.assert_array_equal(got, want)
    assert not any("_buffers" in layer.__dict__ for layer in model.layers)
    pickle.loads(pickle.dumps(model))


@pytest.mark.parametrize("shape", [(7, 3), (3000, 784), (2001, 3, 500)])
def test_gather_rows_copies_the_rows_in_order(shape):
    rng = np.random.default_rng(0)
    X = rng.standard_normal(shape).astype(np.float32)
    rows = rng.permutation(shape[0])[: shape[0] // 2 + 1]
    out = np.empty((len(rows), *shape[1:]), dtype=np.float32)
    assert gather_rows(X, rows, out) is out
    np.testing.assert_array_equal(out, X[rows])
