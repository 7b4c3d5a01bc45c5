"""The training system: the reference epoch's arithmetic, layers, optimizers, trainer and checkers.

- The reference training epoch moves the parameters by exactly -learning_rate times the gradient
  that central differences give (SGD), and by the textbook Adam and momentum formulas.
- Every backend's fused epochs and the layer-by-layer path give the same weights (float64, same seed).
- Early stopping keeps the best epoch's weights; a diverging loss is an error, not garbage.
- The gradient checker agrees with backprop and catches a wrong backward; the magnitude checker
  sees the same magnitude on batches of different sizes.
"""
import pickle

import numpy as np
import pytest

import fastnn
from fastnn import nn
from fastnn.backends import training_ref as ref

from kernel_cases import BACKENDS

EPS = 1e-6


def _data(rng, n=40, d=9, n_classes=4, dtype=np.float64):
    return rng.uniform(0, 1, (n, d)).astype(dtype), rng.integers(0, n_classes, n)


def _objective(params, sizes, X, y, activation, weight_decay):
    """Mean cross-entropy + weight_decay * sum ||W||^2, written independently of fastnn."""
    h = X
    layers = ref.layer_views(params, sizes)
    for l, (W, b) in enumerate(layers):
        h = h @ W + b
        if l < len(layers) - 1:
            h = np.maximum(h, 0) if activation == "relu" else 1 / (1 + np.exp(-h))
    shifted = h - h.max(axis=1, keepdims=True)
    loss = np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(y)), y])
    return loss + weight_decay * sum(float(np.sum(W * W)) for W, _ in layers)


def _numerical_gradient(params, *args):
    grad = np.empty_like(params)
    for j in range(params.size):
        step = np.zeros_like(params)
        step[j] = EPS
        grad[j] = (_objective(params + step, *args) - _objective(params - step, *args)) / (2 * EPS)
    return grad


def _one_batch(params, X, y, sizes, **kwargs):
    n_params = params.size
    new, state, _, _, n_updates = fastnn.mlp_train_epoch(
        X, y, np.arange(len(X)), params, np.zeros((2, n_params)), sizes=sizes, batch_size=len(X),
        backend="numpy", **kwargs)
    assert n_updates == 1
    return new, state


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_reference_sgd_step_is_minus_learning_rate_times_the_gradient(activation, weight_decay):
    rng = np.random.default_rng(3)
    sizes = [6, 5, 4, 3]
    X, y = _data(rng, n=7, d=6, n_classes=3)
    params = rng.normal(0, 0.5, ref.n_parameters(sizes))
    new, _ = _one_batch(params, X, y, sizes, activation=activation, learning_rate=1e-3, weight_decay=weight_decay)
    expected = _numerical_gradient(params, sizes, X, y, activation, weight_decay)
    np.testing.assert_allclose((params - new) / 1e-3, expected, rtol=1e-6, atol=1e-8)


def test_reference_adam_and_momentum_follow_their_formulas():
    rng = np.random.default_rng(4)
    sizes = [5, 4, 3]
    X, y = _data(rng, n=6, d=5, n_classes=3)
    params = rng.normal(0, 0.5, ref.n_parameters(sizes))
    g = _numerical_gradient(params, sizes, X, y, "relu", 0.0)

    # Adam's first step from zero moments: p - lr * g / (|g| + eps) (the bias corrections cancel)
    new, state = _one_batch(params, X, y, sizes, optimizer="adam", learning_rate=0.01, epsilon=1e-8)
    np.testing.assert_allclose(new, params - 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(state[0], 0.1 * g, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(state[1], 0.001 * g * g, rtol=1e-5, atol=1e-14)

    # Two SGD steps with momentum on the same batch: v2 = alpha g(p0) + g(p1)
    alpha, lr = 0.7, 0.01
    new, state, *_ = fastnn.mlp_train_epoch(X, y, np.r_[np.arange(6), np.arange(6)], params,
                                           np.zeros((2, params.size)), sizes=sizes, batch_size=6,
                                           learning_rate=lr, momentum=alpha, backend="numpy")
    p1 = params - lr * g
    g1 = _numerical_gradient(p1, sizes, X, y, "relu", 0.0)
    np.testing.assert_allclose(state[0], alpha * g + g1, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(new, p1 - lr * (alpha * g + g1), rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------------------- layers
def test_initialisations_have_the_documented_distributions():
    normal = nn.Linear(400, 300)
    he = nn.Linear(300, 400, init="he")
    glorot = nn.Linear(400, 300, init="glorot")
    model = nn.Sequential([normal, nn.ReLU(), he, nn.ReLU(), glorot, nn.Sigmoid(), nn.Linear(300, 2)],
                          random_state=0)
    assert model.params.dtype == np.float32
    assert abs(normal.params["W"].std() - 0.1) < 0.002 and abs(normal.params["b"].std() - 0.1) < 0.02
    assert abs(he.params["W"].std() - np.sqrt(2 / 300)) < 0.002 and not he.params["b"].any()
    limit = np.sqrt(6 / 700)
    assert glorot.params["W"].max() <= limit and glorot.params["W"].min() >= -limit
    assert glorot.params["W"].max() > 0.99 * limit


def test_sequential_keeps_every_parameter_in_one_vector():
    model = nn.mlp([784, 128, 10], random_state=0)
    assert model.n_parameters == 101_770  # the seed's parameter count
    first = model.layers[0]
    assert np.shares_memory(first.params["W"], model.params) and np.shares_memory(first.grads["W"], model.grads)
    model.params[:] = 0
    assert not first.params["W"].any()
    assert model.dense_spec() == ([784, 128, 10], "relu")
    assert nn.mlp([5, 3, 2], activation="sigmoid").dense_spec() == ([5, 3, 2], "sigmoid")
    mixed = nn.Sequential([nn.Linear(5, 3), nn.ReLU(), nn.Linear(3, 3), nn.Sigmoid(), nn.Linear(3, 2)])
    assert mixed.dense_spec() is None
    assert model.weight_slices == [(0, 784 * 128), (784 * 128 + 128, 784 * 128 + 128 + 1280)]


def test_pickle_and_copy_keep_layers_viewing_the_parameter_vector():
    model = nn.mlp([6, 4, 3], random_state=1)
    X = np.random.default_rng(0).uniform(size=(5, 6)).astype(np.float32)
    expected = model.forward(X)
    for clone in (pickle.loads(pickle.dumps(model)), model.copy()):
        np.testing.assert_array_equal(clone.forward(X), expected)
        clone.params[:] = 0  # the layers see the change: their views share the clone's vector
        assert not clone.forward(X).any()
    np.testing.assert_array_equal(model.forward(X), expected)  # the original is untouched
    assert model.copy(np.float64).forward(X.astype(np.float64)).dtype == np.float64


def test_sequential_rejects_bad_input():
    model = nn.mlp([6, 4, 3])
    with pytest.raises(ValueError, match=r"X has shape \(5, 7\); this model takes \(n, 6\)"):
        model.forward(np.zeros((5, 7), dtype=np.float32))
    with pytest.raises(TypeError, match="X has dtype float64"):
        model.forward(np.zeros((5, 6)))
    with pytest.raises(ValueError, match="takes inputs of shape"):
        nn.Sequential([nn.Linear(6, 4), nn.ReLU(), nn.Linear(5, 3)])
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(0, 3)
    with pytest.raises(TypeError, match="Layer"):
        nn.Sequential([np.zeros(3)])


# ---------------------------------------------------------------------------- trainer
def _train(backend, fused, optimizer, activation="relu", batch_size=7, dtype=np.float64, epochs=3, **kwargs):
    rng = np.random.default_rng(5)
    X, y = _data(rng, n=61, d=9, dtype=dtype)
    model = nn.mlp([9, 8, 6, 4], activation=activation, dtype=dtype, random_state=0, backend=backend)
    trainer = nn.Trainer(model, optimizer, batch_size=batch_size, epochs=epochs, random_state=1, fused=fused, **kwargs)
    history = trainer.fit(X[:45], y[:45], X[45:], y[45:])
    return model, history


OPTIMIZERS = {
    "sgd": lambda: nn.SGD(0.05),
    "momentum-l2": lambda: nn.SGD(0.05, momentum=0.9, weight_decay=1e-3),
    "adam": lambda: nn.Adam(0.01, weight_decay=1e-3),
}


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_fused_epochs_and_layer_steps_give_the_same_weights_on_every_backend(optimizer, activation):
    expected, expected_history = _train("numpy", False, OPTIMIZERS[optimizer](), activation)
    assert expected_history.n_updates == [7, 14, 21]  # ceil(45 / 7) updates per epoch
    for backend in BACKENDS:
        for fused in (True, False):
            model, history = _train(backend, fused, OPTIMIZERS[optimizer](), activation)
            np.testing.assert_allclose(model.params, expected.params, rtol=1e-10, atol=1e-12,
                                       err_msg=f"{backend}, fused={fused}")
            np.testing.assert_allclose(history.loss, expected_history.loss, rtol=1e-10)
            assert history.train_accuracy == expected_history.train_accuracy  # running, from the training pass
            assert history.val_accuracy == expected_history.val_accuracy


def test_float32_training_matches_float64_closely(backend):
    model32, _ = _train(backend, "auto", nn.SGD(0.05, momentum=0.5), dtype=np.float32)
    model64, _ = _train("numpy", False, nn.SGD(0.05, momentum=0.5))
    np.testing.assert_allclose(model32.params, model64.params, rtol=0, atol=1e-4)


def test_history_counts_epochs_updates_and_time():
    model, history = _train("numpy", "auto", nn.SGD(0.05), epochs=4)
    assert history.epoch == [1, 2, 3, 4] and history.n_updates == [7, 14, 21, 28]
    assert len(history.loss) == len(history.train_accuracy) == len(history.val_accuracy) == 4
    assert all(b >= a for a, b in zip(history.time, history.time[1:]))
    assert history.best_epoch == 1 + int(np.argmax(history.val_accuracy))  # first of the best
    assert history.to_dict()["n_updates_to_best"] == 7 * history.best_epoch


def test_early_stopping_restores_the_best_epoch():
    rng = np.random.default_rng(0)
    X, y = _data(rng, n=200, d=9)
    y = (X[:, 0] + X[:, 1] > 1).astype(int) + 2 * (X[:, 2] > 0.5)  # learnable, so accuracy moves
    split = 120

    def fit(epochs, patience):
        model = nn.mlp([9, 16, 4], dtype=np.float64, random_state=0, backend="numpy")
        trainer = nn.Trainer(model, nn.SGD(0.5), batch_size=5, epochs=epochs, patience=patience, random_state=2)
        return model, trainer.fit(X[:split], y[:split], X[split:], y[split:])

    model, history = fit(60, patience=3)
    assert history.stopped_early and len(history.epoch) == history.best_epoch + 3
    best, _ = fit(history.best_epoch, patience=None)  # the same run, stopped at the best epoch
    np.testing.assert_array_equal(model.params, best.params)


def test_a_diverging_loss_raises_and_leaves_finite_weights(backend):
    rng = np.random.default_rng(0)
    X, y = _data(rng, n=50, d=9, dtype=np.float32)
    X *= 1e3
    for fused in (True, False):
        model = nn.mlp([9, 16, 4], dtype=np.float32, random_state=0, backend=backend)
        trainer = nn.Trainer(model, nn.SGD(1e30), batch_size=5, epochs=50, fused=fused)
        with pytest.raises(nn.DivergenceError, match="lower the learning rate"):
            trainer.fit(X, y)
        assert np.isfinite(model.params).all()


def test_trainer_rejects_bad_settings():
    model = nn.mlp([9, 4, 3])
    X, y = np.zeros((6, 9), dtype=np.float32), np.zeros(6, dtype=int)
    with pytest.raises(ValueError, match="patience.*validation set"):
        nn.Trainer(model, nn.SGD(), patience=2).fit(X, y)
    with pytest.raises(ValueError, match="batch_size"):
        nn.Trainer(model, nn.SGD(), batch_size=0)
    for fused in (True, False):
        with pytest.raises(ValueError, match="X contains NaN"):
            nn.Trainer(model, nn.SGD(), fused=fused).fit(np.where(np.eye(6, 9) > 0, np.nan, X).astype(np.float32), y)
    with pytest.raises(ValueError, match="label 3"):
        nn.Trainer(model, nn.SGD()).fit(X, np.full(6, 3))
    with pytest.raises(ValueError, match="fused=True needs a dense model"):
        nn.Trainer(nn.Sequential([nn.Linear(9, 4), nn.Sigmoid(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 3)]),
                   nn.SGD(), fused=True)
    with pytest.raises(ValueError, match="momentum"):
        nn.SGD(momentum=1.5)
    with pytest.raises(ValueError, match="learning_rate"):
        nn.Adam(learning_rate=-1.0)


# ---------------------------------------------------------------------------- checkers
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_gradient_checker_agrees_with_backprop(activation):
    rng = np.random.default_rng(1)
    X, y = _data(rng, n=8, d=9, dtype=np.float32)
    model = nn.mlp([9, 7, 5, 4], activation=activation, random_state=0)
    check = nn.check_gradients(model, X, y, weight_decay=0.01)
    assert len(check) == model.n_parameters  # every entry of every parameter
    assert check.max_relative_error < 1e-4
    assert check.n_at_kink < len(check) // 10
    assert str(check[0]).startswith("Check the gradient of W[0, 0] in the L1 layer from backpropagation: ")


def test_gradient_checker_flags_relu_kinks_instead_of_reporting_them_as_errors():
    # One unit whose pre-activation is 1e-4 for the only example: +-1e-3 on its bias crosses the kink.
    model = nn.mlp([2, 2, 2], dtype=np.float64, random_state=0)
    first = model.layers[0]
    first.params["W"][...] = [[1.0, 0.5], [0.0, 0.5]]
    first.params["b"][...] = [1e-4 - 0.3, 0.1]
    check = nn.check_gradients(model, np.array([[0.3, 0.2]]), np.array([1]))
    kinks = [entry for entry in check if entry.at_kink]
    assert [(entry.layer, entry.name, entry.index) for entry in kinks] == [(0, "W", (0, 0)), (0, "W", (1, 0)),
                                                                          (0, "b", (0,))]
    assert max(entry.relative_error for entry in kinks) > 0.1 > check.max_relative_error


def test_gradient_checker_catches_a_wrong_backward():
    class HalfGradientLinear(nn.Linear):
        def backward(self, dY, kernels, mask=None):
            dX = super().backward(dY, kernels, mask)
            self.grads["W"] *= 0.5
            return dX

    rng = np.random.default_rng(1)
    X, y = _data(rng, n=8, d=9)
    model = nn.Sequential([nn.Linear(9, 6), nn.ReLU(), HalfGradientLinear(6, 4)], random_state=0)
    check = nn.check_gradients(model, X.astype(np.float32), y, max_entries=5)
    errors = {(entry.layer, entry.name): entry.relative_error for entry in check}
    assert errors[(1, "W")] > 0.3 and errors[(0, "W")] < 1e-4  # layer 1: the second with parameters


def test_gradient_magnitudes_do_not_grow_with_the_batch():
    rng = np.random.default_rng(2)
    X, y = _data(rng, n=5000, d=20, dtype=np.float32)
    model = nn.mlp([20, 16, 4], random_state=0)
    norms = nn.gradient_magnitudes(model, X, y, batch_sizes=(50, 5000))
    assert set(norms) == {50, 5000}
    assert 0.2 < norms[50] / norms[5000] < 5  # a summed (not averaged) loss would give 1/100


def test_gradient_checker_samples_entries_whose_gradient_is_not_zero():
    """A border pixel (always 0) has an exactly zero weight gradient: checking it says nothing."""
    rng = np.random.default_rng(3)
    X, y = _data(rng, n=20, d=9)
    X[:, 0] = 0  # W1[0, :] gets no gradient
    model = nn.mlp([9, 6, 4], random_state=0)
    check = nn.check_gradients(model, X, y, max_entries=6)
    first_layer_w = [entry for entry in check if (entry.layer, entry.name) == (0, "W")]
    assert len(first_layer_w) == 6
    assert all(entry.backprop != 0 for entry in first_layer_w)
    assert all(entry.index[0] != 0 for entry in first_layer_w)
    magnitudes = [abs(entry.backprop) for entry in first_layer_w]
    assert magnitudes[0] == max(magnitudes)  # the largest gradient comes first (the line the CLI prints)
    assert check.passed()


def test_gradient_check_fails_a_wrong_backward():
    class DoubledBiasLinear(nn.Linear):
        def backward(self, dY, kernels, mask=None):
            dX = super().backward(dY, kernels, mask)
            self.grads["b"] *= 2
            return dX

    rng = np.random.default_rng(4)
    X, y = _data(rng, n=8, d=5)
    model = nn.Sequential([nn.Linear(5, 4), nn.ReLU(), DoubledBiasLinear(4, 3)], random_state=0)
    check = nn.check_gradients(model, X, y, max_entries=4)
    assert not check.passed()


MODELS_ON_THE_LAYER_PATH = {
    "dense-relu": lambda backend: nn.mlp([9, 11, 4], dtype=np.float64, random_state=0, backend=backend),
    "dense-sigmoid": lambda backend: nn.mlp([9, 6, 7, 4], activation="sigmoid", dtype=np.float64, random_state=0,
                                            backend=backend),
    "conv-pool": lambda backend: nn.conv1d_net((1, 9), 4, channels=(3,), kernel_sizes=(3,), strides=(1,),
                                               paddings=(1,), pool=2, dtype=np.float64, random_state=0,
                                               backend=backend),
    "conv2d-pool": lambda backend: nn.conv2d_net((1, 3, 3), 4, channels=(2,), kernel_sizes=(2,), strides=(1,),
                                                 paddings=(1,), pool=2, hidden_layer_sizes=(3,),
                                                 activation="leaky_relu", dtype=np.float64, random_state=0,
                                                 backend=backend),
}


@pytest.mark.parametrize("model", sorted(MODELS_ON_THE_LAYER_PATH))
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("n", [45, 41])  # last batch of 5 rows (split 3 + 2), or of 1 row (one thread)
def test_batches_split_between_threads_give_the_one_thread_result(model, optimizer, n, backend, monkeypatch):
    """Large batches run on two threads, each with its own model replica; the updates, running losses and
    accuracies must be the single-thread epoch's (up to the rounding of sums split in two)."""
    from fastnn.nn import trainer

    rng = np.random.default_rng(0)
    X, y = _data(rng, n=n)
    if model == "conv-pool":
        X = X.reshape(n, 1, 9)
    elif model == "conv2d-pool":
        X = X.reshape(n, 1, 3, 3)
    results = {}
    for name, min_rows in (("serial", 10**6), ("parallel", 4)):
        monkeypatch.setattr(trainer, "DATA_PARALLEL_MIN_ROWS", min_rows)
        network = MODELS_ON_THE_LAYER_PATH[model](backend)
        run = nn.Trainer(network, OPTIMIZERS[optimizer](), batch_size=10, epochs=3, fused=False, random_state=1)
        monkeypatch.setattr(fastnn._threads, "limit", 2)  # two threads even on a one-CPU machine
        results[name] = network, run.fit(X, y)
        monkeypatch.setattr(fastnn._threads, "limit", 0)
    (serial, serial_history), (parallel, parallel_history) = results["serial"], results["parallel"]
    np.testing.assert_allclose(parallel.params, serial.params, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(parallel_history.loss, serial_history.loss, rtol=1e-12)
    assert parallel_history.train_accuracy == serial_history.train_accuracy
    assert parallel_history.n_updates == serial_history.n_updates == [-(-n // 10) * e for e in (1, 2, 3)]


class _BlasThreads(nn.Layer):
    """An identity layer that records how many threads BLAS may use whenever it runs."""

    def __init__(self, seen):
        self.seen = seen

    def _record(self):
        from threadpoolctl import threadpool_info

        self.seen.append(max((info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"),
                             default=1))

    def forward(self, X, kernels, training):
        self._record()
        return X

    def backward(self, dY, kernels):
        self._record()
        return dY


def test_layer_epochs_and_layer_inference_run_blas_single_threaded():
    """Small GEMMs on BLAS's own threads wait for descheduled workers on a busy machine (see Trainer._layer_epoch)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas = [info for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]
    if not blas or max(info["num_threads"] for info in blas) < 2:
        pytest.skip("BLAS runs one thread here anyway")
    seen = []
    model = nn.Sequential([nn.Linear(6, 4), nn.Tanh(), _BlasThreads(seen), nn.Linear(4, 3)], random_state=0)
    X, y = np.random.default_rng(0).standard_normal((40, 6)).astype(np.float32), np.arange(40) % 3
    nn.Trainer(model, nn.SGD(0.1), batch_size=8, epochs=1, random_state=0).fit(X, y)
    model.layer_logits(X)
    assert len(seen) >= 2 * 5 + 1 and set(seen) == {1}
    seen.clear()
    model.forward(X)  # outside them, BLAS keeps its threads
    assert seen[0] >= 2
