"""One training epoch of the seed's MLP (784 -> 128 -> 10, softmax cross-entropy, SGD lr 0.01) on
10,000 examples: every backend beside a plain NumPy training loop and, optionally, PyTorch CPU.

The data is random (pixels uniform in [0, 1], 10 classes): the speed of an epoch does not depend on
what the pixels show. Each timed call trains one epoch, in a fixed shuffled order, continuing from
the weights of the previous call (as training does).

Groups "mlp epoch 784-128-10 batch B float32" for B in 1, 5, 50, 500 and 5000:
- each backend: what fastnn.nn.Trainer runs for an epoch: below FUSED_MAX_BATCH the fused epoch
  kernel (fastnn.training.DenseEpochs, the whole epoch in the backend); above it, the trainer's
  layer-by-layer epoch (fastnn.nn.Sequential forward/backward on BLAS, one flat SGD update per batch);
- "numpy-loop" (role baseline): the training loop written directly in NumPy, per batch: two
  matmuls forward, the softmax gradient, the three backward matmuls, in-place SGD updates;
- "torch" (role external, skipped when torch is not installed): torch.nn.Sequential(Linear, ReLU,
  Linear), CrossEntropyLoss, torch.optim.SGD, zero_grad / backward / step per batch, 2 threads.

Targets (never asserted): batch 5: every compiled backend >= 3x faster than numpy-loop and >= 10x
faster than torch; batch 5000: >= 1.3x faster than numpy-loop (issue 11). Plain `pytest` runs each entry once,
untimed, and checks that 100 batches leave the same weights as the 'numpy' backend's.
"""
import numpy as np
import pytest

import fastnn
from fastnn import nn
from fastnn.nn.trainer import FUSED_MAX_BATCH
from fastnn.training import DenseEpochs

from bench_kernels import label, run

BACKENDS = fastnn.available_backends()
SIZES = [784, 128, 10]
N_EXAMPLES = 10_000
LEARNING_RATE = 0.01
TARGET_SMALL = ">= 3x faster than numpy-loop and >= 10x faster than torch"
TARGET_LARGE = ">= 1.3x faster than numpy-loop"
CHECK_BATCHES = 100
BATCHES = [1, 5, 50, 500, 5000]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (N_EXAMPLES, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], N_EXAMPLES)
    order = rng.permutation(N_EXAMPLES)
    model = nn.mlp(SIZES, random_state=0)
    return X, y, order, model.params


def _group(benchmark, batch, impl, role="backend"):
    label(benchmark, "mlp epoch", f"784-128-10 batch {batch}", np.float32, impl, role,
          TARGET_SMALL if batch <= 5 else TARGET_LARGE if batch >= 5000 else None)


def fastnn_epoch(X, y, order, params, batch, backend):
    """(epoch(), model): one call trains one epoch the way fastnn.nn.Trainer does at this batch size."""
    model = nn.mlp(SIZES, backend=backend)
    model.params[...] = params
    optimizer = nn.SGD(LEARNING_RATE)
    optimizer.setup(model.params)
    if batch <= FUSED_MAX_BATCH:
        epochs = DenseEpochs(X, y, sizes=SIZES, batch_size=batch, backend=backend, **optimizer.epoch_arguments())
        return lambda: epochs.run(order, model.params, optimizer.state, 0), model

    # The trainer's own layer-by-layer epoch (batches gathered into one reused array, layers reusing theirs).
    run = nn.Trainer(model, optimizer, batch_size=batch, fused=False)._layer_epoch(X, y)
    return lambda: run(order, 1), model


def numpy_loop_epoch(X, y, order, params, batch):
    """(epoch(), [W1, b1, W2, b2]): the plain NumPy training loop, updating its own copy of the weights."""
    W1 = params[:784 * 128].reshape(784, 128).copy()
    b1 = params[784 * 128:784 * 128 + 128].copy()
    W2 = params[784 * 128 + 128:-10].reshape(128, 10).copy()
    b2 = params[-10:].copy()

    def epoch():
        for start in range(0, len(order), batch):
            rows = order[start:start + batch]
            x, labels = X[rows], y[rows]
            u = x @ W1 + b1
            h = np.maximum(u, 0)
            a = h @ W2 + b2
            z = np.exp(a - a.max(axis=1, keepdims=True))
            z /= z.sum(axis=1, keepdims=True)
            z[np.arange(len(rows)), labels] -= 1
            da = z / np.float32(len(rows))
            dh = (da @ W2.T) * (u > 0)
            W2[...] -= LEARNING_RATE * (h.T @ da)
            b2[...] -= LEARNING_RATE * da.sum(axis=0)
            W1[...] -= LEARNING_RATE * (x.T @ dh)
            b1[...] -= LEARNING_RATE * dh.sum(axis=0)

    return epoch, [W1, b1, W2, b2]


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("impl", [*BACKENDS, "numpy-loop"])
def bench_mlp_epoch(benchmark, data, impl, batch):
    X, y, order, params = data
    if impl == "numpy-loop":
        _group(benchmark, batch, impl, "baseline")
        epoch, _ = numpy_loop_epoch(X, y, order, params, batch)
    else:
        _group(benchmark, batch, impl)
        epoch, _ = fastnn_epoch(X, y, order, params, batch, impl)
    run(benchmark, epoch)
    if not benchmark.enabled:
        _check_against_reference(impl, X, y, order, params, batch)


def _check_against_reference(impl, X, y, order, params, batch):
    """The weights after CHECK_BATCHES batches equal the 'numpy' backend's (up to float32 rounding).

    Not a whole epoch: this data has random labels, and over 2,000 float32 updates the rounding
    differences between summation orders grow chaotically (float64 runs agree to 1e-15 throughout).
    """
    prefix = order[:CHECK_BATCHES * batch]
    if impl == "numpy-loop":
        epoch, weights = numpy_loop_epoch(X, y, prefix, params, batch)
        epoch()
        trained = np.concatenate([w.reshape(-1) for w in weights])
    else:
        epoch, model = fastnn_epoch(X, y, prefix, params, batch, impl)
        epoch()
        trained = model.params
    reference_epoch, reference = fastnn_epoch(X, y, prefix, params, batch, "numpy")
    reference_epoch()
    np.testing.assert_allclose(trained, reference.params, rtol=1e-3, atol=2e-5)


@pytest.mark.parametrize("batch", BATCHES)
def bench_mlp_epoch_torch(benchmark, data, torch, batch):
    X, y, order, params = data
    _group(benchmark, batch, "torch", "external")
    model = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    with torch.no_grad():  # the same initial weights (torch keeps W as (out, in))
        model[0].weight.copy_(torch.from_numpy(params[:784 * 128].reshape(784, 128).T.copy()))
        model[0].bias.copy_(torch.from_numpy(params[784 * 128:784 * 128 + 128]))
        model[2].weight.copy_(torch.from_numpy(params[784 * 128 + 128:-10].reshape(128, 10).T.copy()))
        model[2].bias.copy_(torch.from_numpy(params[-10:]))
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    loss_function = torch.nn.CrossEntropyLoss()
    X_t, y_t, order_t = torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(order)

    def epoch():
        for start in range(0, N_EXAMPLES, batch):
            rows = order_t[start:start + batch]
            optimizer.zero_grad()
            loss_function(model(X_t[rows]), y_t[rows]).backward()
            optimizer.step()

    run(benchmark, epoch)
