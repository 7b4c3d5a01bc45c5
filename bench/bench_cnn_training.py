"""Training MNIST-1D's ConvBase (1x40 -> conv 25 K5 s2 p1 -> conv 25 K3 s2 p1 -> conv 25 K3 s2 p1 -> 10),
softmax cross-entropy, Adam lr 1e-2, batch 100: every backend beside PyTorch CPU (optional).

What fastnn times is what fastnn.nn.Trainer runs for such a model: the fused epoch kernel
(fastnn.experiments.train_cnn_fused, a whole epoch in one backend call). Each entry starts from the
same initial weights (PyTorch's default initialisation, drawn by fastnn) and visits the examples in
the same orders; the torch network is fastnn.experiments.torch_cnn of the same weights.

Groups:
- "convbase epoch 4000x1x40 batch 100 <dtype>": one epoch (40 Adam steps) on random data, in a
  shuffled order;
- "convbase 8000 steps mnist1d float32": the issue's training run, 200 epochs of 40 steps on
  MNIST-1D's 4,000 training examples (fastnn.datasets.load_mnist1d; skipped without the mnist1d
  package), with the batches in the data's order as MNIST-1D's reference loop takes them, timed
  once; extra_info has the test accuracy on the 1,000 test examples. One seed's accuracy is one draw:
  `fastnn experiment convbase-seeds --torch` gives the spread over seeds.
torch entries (role external, skipped without torch): torch.nn.Conv1d/Linear, cross_entropy,
torch.optim.Adam, zero_grad / backward / step per batch, 2 threads.

Targets (never asserted): the 8000-step run reaches >= 0.935 test accuracy in <= 1/3 of torch's time.
Plain `pytest` runs each entry once, untimed: the epoch entries check that 3 batches leave the same
weights as the 'numpy' backend; the 8000-step entries train one epoch only.
"""
import numpy as np
import pytest

import fastnn
from fastnn import nn
from fastnn.experiments import epoch_orders, torch_cnn, train_cnn_fused, train_torch_cnn

from bench_kernels import label, run

BACKENDS = fastnn.available_backends()
INPUT_SHAPE = (1, 40)
N_CLASSES = 10
BATCH = 100
LEARNING_RATE = 1e-2
EPOCHS = 200  # 200 epochs x 40 batches = 8,000 steps
TARGET = ">= 0.935 test accuracy in <= 1/3 of torch's time"


def convbase(dtype=np.float32, backend=None, random_state=0):
    return nn.conv1d_net(INPUT_SHAPE, N_CLASSES, dtype=dtype, random_state=random_state, backend=backend)


def fastnn_training(X, y, orders, model):
    """train(): one fused epoch per order, in place on model.params."""
    return lambda: train_cnn_fused(model, X, y, orders, learning_rate=LEARNING_RATE, batch_size=BATCH)


def torch_training(torch, X, y, orders, model):
    """(train(), network): the same network in PyTorch from model's weights, Adam, the same orders."""
    network = torch_cnn(torch, model)
    return (lambda: train_torch_cnn(torch, network, X, y, orders, learning_rate=LEARNING_RATE, batch_size=BATCH),
            network)


# ---------------------------------------------------------------------------- one epoch, random data
@pytest.fixture(scope="module", params=["float32", "float64"])
def epoch_data(request):
    dtype = np.dtype(request.param)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4000, *INPUT_SHAPE)).astype(dtype)
    y = rng.integers(0, N_CLASSES, 4000)
    return X, y, rng.permutation(4000), convbase(dtype).params


def _epoch_group(benchmark, dtype, impl, role="backend"):
    label(benchmark, "convbase epoch", f"4000x1x40 batch {BATCH}", dtype, impl, role)


@pytest.mark.parametrize("impl", BACKENDS)
def bench_convbase_epoch(benchmark, epoch_data, impl):
    X, y, order, params = epoch_data
    _epoch_group(benchmark, X.dtype, impl)
    model = convbase(X.dtype, impl)
    model.params[...] = params
    run(benchmark, fastnn_training(X, y, [order], model))
    if not benchmark.enabled:  # 3 batches from the same start equal the reference's
        results = []
        for backend in (impl, "numpy"):
            model = convbase(X.dtype, backend)
            model.params[...] = params
            fastnn_training(X, y, [order[:3 * BATCH]], model)()
            results.append(model.params)
        rtol = 1e-4 if X.dtype == np.float32 else 1e-10
        np.testing.assert_allclose(results[0], results[1], rtol=rtol, atol=rtol * 10)


def bench_convbase_epoch_torch(benchmark, epoch_data, torch):
    X, y, order, params = epoch_data
    if X.dtype != np.float32:
        pytest.skip("torch entry in float32 only")
    _epoch_group(benchmark, X.dtype, "torch", "external")
    model = convbase(X.dtype)
    model.params[...] = params
    train, _ = torch_training(torch, X, y, [order], model)
    run(benchmark, train)


# ---------------------------------------------------------------------------- the 8000-step run
@pytest.fixture(scope="module")
def mnist1d():
    from fastnn import datasets

    try:
        data = datasets.load_mnist1d()
    except ImportError as exc:
        pytest.skip(str(exc))
    X_train = data.X_train.reshape(-1, *INPUT_SHAPE)
    X_test = data.X_test.reshape(-1, *INPUT_SHAPE)
    orders = epoch_orders(len(X_train), EPOCHS, shuffle=False)  # MNIST-1D's reference loop
    return X_train, data.y_train, X_test, data.y_test, orders


def _training_group(benchmark, impl, role="backend"):
    label(benchmark, "convbase 8000 steps", "mnist1d", np.float32, impl, role, TARGET)


def _time_once(benchmark, train):
    """One timed round (under plain pytest, where benchmarks are disabled, one untimed call)."""
    benchmark.pedantic(train, rounds=1, iterations=1)


@pytest.mark.parametrize("impl", BACKENDS)
def bench_convbase_mnist1d(benchmark, mnist1d, impl):
    X_train, y_train, X_test, y_test, orders = mnist1d
    _training_group(benchmark, impl)
    model = convbase(np.float32, impl)
    _time_once(benchmark, fastnn_training(X_train, y_train, orders if benchmark.enabled else orders[:1], model))
    accuracy = float(np.mean(np.argmax(model.predict_logits(X_test), axis=1) == y_test))
    benchmark.extra_info["test_accuracy"] = accuracy
    assert accuracy > 0.3  # it learnt something even after one epoch


def bench_convbase_mnist1d_torch(benchmark, mnist1d, torch):
    X_train, y_train, X_test, y_test, orders = mnist1d
    _training_group(benchmark, "torch", "external")
    train, model = torch_training(torch, X_train, y_train, orders if benchmark.enabled else orders[:1],
                                  convbase())
    _time_once(benchmark, train)
    with torch.no_grad():
        logits = model(torch.from_numpy(X_test)).numpy()
    benchmark.extra_info["test_accuracy"] = float(np.mean(np.argmax(logits, axis=1) == y_test))
