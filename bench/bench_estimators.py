"""What users run: the whole fit and predict calls of the estimators, beside a lean hand-written NumPy
loop doing the same arithmetic on the same number of batches and, optionally, PyTorch CPU.

Groups (float32):
- "fit mlp 784-128-10 x10000 batch B, E epoch(s)[ +val]": MLPClassifier(hidden_layer_sizes=(128,),
  batch_size=B, epochs=E, SGD lr 0.01).fit(X, y[, X_val, y_val]) on 10,000 examples (2,000 for
  validation), B in 5, 50, 5000; the estimator's own checks, shuffles, running metrics and, with
  +val, the validation loss and accuracy after every epoch;
- "fit convbase mnist1d, E epochs +val": CNN1DClassifier() (MNIST-1D's ConvBase, Adam lr 1e-2, batch
  100) fitted on MNIST-1D's 4,000 training signals with its 1,000 test signals as the validation set
  evaluated every epoch (skipped without the mnist1d package); 200 epochs are the issue's 8,000 steps;
- "predict mlp 10000x784" and "predict convbase 10000x1x40": predict on 10,000 examples.
Entries: "fastnn" (the estimator, default backend), "numpy-loop" (role baseline: per batch the
matmuls forward, the softmax gradient, the backward matmuls, the update in place, the running loss and
accuracy; per epoch the validation forward), "torch" (role external, skipped when torch is not
installed: torch.nn modules, cross_entropy, torch.optim, zero_grad / backward / step per batch,
loss.item() per batch, the validation forward under torch.no_grad(), 2 threads).

Default run (short): 1-epoch MLP fits and a 20-epoch ConvBase fit. FASTNN_BENCH_LONG=1 adds the
20-epoch MLP fits and the 200-epoch (8,000-step) ConvBase fit; each fit is timed once per round.

Targets (issue 11; never asserted): MLP fit at batch 5 >= 4x faster than numpy-loop and >= 12x than
torch; at batch 5000 >= 1.3x faster than numpy-loop and >= 1.2x than torch; ConvBase fit with
per-epoch validation >= 4x faster than torch.
Plain `pytest` runs each entry once, untimed, and checks the NumPy loops: a few batches of each leave
the same weights as fastnn's 'numpy' backend from the same start, and their predictions equal the
estimators'.
"""
import os

import numpy as np
import pytest

from fastnn import nn
from fastnn.models import CNN1DClassifier, MLPClassifier

from bench_kernels import label

LONG = os.environ.get("FASTNN_BENCH_LONG", "").strip() == "1"
SIZES = [784, 128, 10]
N_TRAIN, N_VAL, N_PREDICT = 10_000, 2_000, 10_000
MLP_LR = 0.01
CNN_LR, CNN_BATCH = 1e-2, 100
MLP_EPOCHS = [1, 20] if LONG else [1]
CNN_EPOCHS = 200 if LONG else 20
TARGETS = {5: ">= 4x faster than numpy-loop and >= 12x faster than torch",
           5000: ">= 1.3x faster than numpy-loop and >= 1.2x faster than torch"}
TARGET_CNN = ">= 4x faster than torch"


def _time_call(benchmark, call):
    """Time call() once per round (a whole fit), after one untimed call (JIT compilation, first touch of
    the arrays); a single untimed call under plain pytest."""
    if benchmark.enabled:
        call()
    return benchmark.pedantic(call, rounds=3 if LONG else 5, iterations=1)


def _time_once(benchmark, call):
    """A long fit, timed in one round."""
    return benchmark.pedantic(call, rounds=1, iterations=1)


def _smoke_rows(benchmark, *arrays):
    """The arrays, or under plain pytest (a check, not a timing) their first fifth, to keep CI short."""
    return arrays if benchmark.enabled else tuple(a[:len(a) // 5] for a in arrays)


# ---------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def mlp_data():
    """Pixels uniform in [0, 1] labelled by a random linear teacher (learnable), float32."""
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (N_TRAIN + N_VAL, SIZES[0])).astype(np.float32)
    teacher = rng.standard_normal((SIZES[0], SIZES[-1]))
    y = np.argmax((X - 0.5) @ teacher, axis=1)
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:]


@pytest.fixture(scope="module")
def mnist1d():
    from fastnn import datasets

    try:
        data = datasets.load_mnist1d()
    except ImportError as exc:
        pytest.skip(str(exc))
    return data.X_train, data.y_train, data.X_test, data.y_test


# ---------------------------------------------------------------------------- the NumPy loops
def _softmax_gradient(logits, labels):
    """(sum of the cross-entropies, number correct, dlogits of the mean loss), all in the logits' dtype."""
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    z /= z.sum(axis=1, keepdims=True)
    picked = z[np.arange(len(labels)), labels]
    loss_sum = -float(np.log(np.maximum(picked, np.finfo(z.dtype).tiny)).sum())
    correct = int(np.count_nonzero(np.argmax(logits, axis=1) == labels))
    z[np.arange(len(labels)), labels] -= 1
    z /= z.dtype.type(len(labels))
    return loss_sum, correct, z


class NumpyMLP:
    """784-128-10 ReLU MLP, softmax cross-entropy, plain SGD: the training loop written directly in NumPy."""

    def __init__(self, params):
        d, h, c = SIZES
        self.W1 = params[:d * h].reshape(d, h).copy()
        self.b1 = params[d * h:d * h + h].copy()
        self.W2 = params[d * h + h:-c].reshape(h, c).copy()
        self.b2 = params[-c:].copy()

    def params(self):
        return np.concatenate([w.reshape(-1) for w in (self.W1, self.b1, self.W2, self.b2)])

    def logits(self, X):
        return np.maximum(X @ self.W1 + self.b1, 0) @ self.W2 + self.b2

    def epoch(self, X, y, order, batch):
        """One epoch over X[order]; returns the running (loss, accuracy)."""
        loss_sum, correct = 0.0, 0
        for start in range(0, len(order), batch):
            rows = order[start:start + batch]
            x, labels = X[rows], y[rows]
            u = x @ self.W1 + self.b1
            h = np.maximum(u, 0)
            batch_loss, batch_correct, da = _softmax_gradient(h @ self.W2 + self.b2, labels)
            loss_sum, correct = loss_sum + batch_loss, correct + batch_correct
            dh = (da @ self.W2.T) * (u > 0)
            self.W2 -= MLP_LR * (h.T @ da)
            self.b2 -= MLP_LR * da.sum(axis=0)
            self.W1 -= MLP_LR * (x.T @ dh)
            self.b1 -= MLP_LR * dh.sum(axis=0)
        return loss_sum / len(order), correct / len(order)


def _evaluate(logits, y):
    loss_sum, correct, _ = _softmax_gradient(logits, y)
    return loss_sum / len(y), correct / len(y)


def numpy_fit(net, X, y, X_val, y_val, *, epochs, batch, seed=0):
    """fit() as a NumPy loop: shuffled epochs, running metrics, validation after every epoch."""
    rng = np.random.default_rng(seed)
    history = []
    for _ in range(epochs):
        metrics = net.epoch(X, y, rng.permutation(len(X)), batch)
        if X_val is not None:
            metrics += _evaluate(net.logits(X_val), y_val)
        history.append(metrics)
    return history


class NumpyConvBase:
    """Conv1D-ReLU x3 (channels last: activations (N, L, C)), Flatten, Linear, Adam, in NumPy.

    Conv weights are (C_out, C_in, K) as in fastnn and PyTorch; the head's rows are in (L, C) order,
    so fastnn's (C, L)-ordered head is permuted once at construction.
    """

    def __init__(self, model):
        spec = nn.conv_layers.conv_stack_spec(model)
        self.geometry = list(zip(spec["kernel_sizes"], spec["strides"], spec["paddings"]))
        self.params, start = [], 0
        for layer in model.layers:
            for name, shape in layer.param_shapes().items():
                value = model.params[start:start + int(np.prod(shape))].reshape(shape).copy()
                start += value.size
                if isinstance(layer, nn.Linear) and name == "W":
                    channels = spec["channels"][-1]
                    value = value.reshape(channels, -1, shape[1]).transpose(1, 0, 2).reshape(shape).copy()
                self.params.append(value)
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.step = 0

    def fastnn_order_params(self):
        """The parameters flattened in fastnn's layout (head rows back in (C, L) order)."""
        out = [p.reshape(-1) for p in self.params[:-2]]
        W = self.params[-2]
        channels = self.params[-4].shape[0]
        out.append(W.reshape(-1, channels, W.shape[1]).transpose(1, 0, 2).reshape(-1))
        out.append(self.params[-1].reshape(-1))
        return np.concatenate(out)

    @staticmethod
    def _conv(x, w, b, k, stride, padding):
        """(y (N, L_out, C_out), cols (N * L_out, C_in * K)) for x (N, L, C_in)."""
        n, length, _ = x.shape
        xp = np.pad(x, ((0, 0), (padding, padding), (0, 0)))
        l_out = (length + 2 * padding - k) // stride + 1
        windows = np.lib.stride_tricks.sliding_window_view(xp, k, axis=1)[:, ::stride][:, :l_out]
        cols = windows.reshape(n * l_out, -1)  # (C_in, K) per row, as w's last two axes
        y = cols @ w.reshape(w.shape[0], -1).T + b
        return y.reshape(n, l_out, -1), cols

    def forward(self, x, keep=False):
        caches = []
        for i, (k, stride, padding) in enumerate(self.geometry):
            u, cols = self._conv(x, self.params[2 * i], self.params[2 * i + 1], k, stride, padding)
            h = np.maximum(u, 0)
            if keep:
                caches.append((x.shape, cols, h))
            x = h
        flat = x.reshape(len(x), -1)
        logits = flat @ self.params[-2] + self.params[-1]
        return (logits, caches, flat) if keep else logits

    def logits(self, X):
        return self.forward(X.reshape(len(X), -1, 1))

    def _backward(self, dlogits, caches, flat):
        grads = [None] * len(self.params)
        grads[-2], grads[-1] = flat.T @ dlogits, dlogits.sum(axis=0)
        d = (dlogits @ self.params[-2].T).reshape(caches[-1][2].shape)
        for i in reversed(range(len(self.geometry))):
            k, stride, padding = self.geometry[i]
            x_shape, cols, h = caches[i]
            w = self.params[2 * i]
            d = d * (h > 0)
            d2 = d.reshape(-1, w.shape[0])
            grads[2 * i], grads[2 * i + 1] = (d2.T @ cols).reshape(w.shape), d2.sum(axis=0)
            if i:
                n, length, c_in = x_shape
                l_out = h.shape[1]
                dcols = (d2 @ w.reshape(w.shape[0], -1)).reshape(n, l_out, c_in, k)
                dxp = np.zeros((n, length + 2 * padding, c_in), dtype=d.dtype)
                for j in range(k):
                    dxp[:, j:j + stride * (l_out - 1) + 1:stride] += dcols[..., j]
                d = dxp[:, padding:padding + length]
        return grads

    def _adam(self, grads, beta1=0.9, beta2=0.999, epsilon=1e-8):
        self.step += 1
        scale = CNN_LR / (1 - beta1 ** self.step)
        root = np.sqrt(1 - beta2 ** self.step)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
            p -= scale * m / (np.sqrt(v) / root + epsilon)

    def epoch(self, X, y, order, batch):
        loss_sum, correct = 0.0, 0
        for start in range(0, len(order), batch):
            rows = order[start:start + batch]
            logits, caches, flat = self.forward(X[rows].reshape(len(rows), -1, 1), keep=True)
            batch_loss, batch_correct, dlogits = _softmax_gradient(logits, y[rows])
            loss_sum, correct = loss_sum + batch_loss, correct + batch_correct
            self._adam(self._backward(dlogits, caches, flat))
        return loss_sum / len(order), correct / len(order)


# ---------------------------------------------------------------------------- PyTorch
def torch_mlp(torch, params):
    d, h, c = SIZES
    model = torch.nn.Sequential(torch.nn.Linear(d, h), torch.nn.ReLU(), torch.nn.Linear(h, c))
    with torch.no_grad():  # the same initial weights (torch keeps W as (out, in))
        model[0].weight.copy_(torch.from_numpy(params[:d * h].reshape(d, h).T.copy()))
        model[0].bias.copy_(torch.from_numpy(params[d * h:d * h + h]))
        model[2].weight.copy_(torch.from_numpy(params[d * h + h:-c].reshape(h, c).T.copy()))
        model[2].bias.copy_(torch.from_numpy(params[-c:]))
    return model


def torch_fit(torch, model, optimizer, X, y, X_val, y_val, *, epochs, batch, seed=0):
    """The usual PyTorch loop: shuffled batches, running loss and accuracy, validation after every epoch."""
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    val = (torch.from_numpy(X_val), torch.from_numpy(y_val)) if X_val is not None else None
    rng = np.random.default_rng(seed)
    history = []
    for _ in range(epochs):
        model.train()
        order = torch.from_numpy(rng.permutation(len(X)))
        loss_sum, correct = 0.0, 0
        for start in range(0, len(order), batch):
            rows = order[start:start + batch]
            optimizer.zero_grad()
            logits = model(X_t[rows])
            loss = torch.nn.functional.cross_entropy(logits, y_t[rows])
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(rows)
            correct += int((logits.argmax(dim=1) == y_t[rows]).sum())
        metrics = (loss_sum / len(order), correct / len(order))
        if val is not None:
            model.eval()
            with torch.no_grad():
                logits = model(val[0])
                metrics += (float(torch.nn.functional.cross_entropy(logits, val[1])),
                            float((logits.argmax(dim=1) == val[1]).float().mean()))
        history.append(metrics)
    return history


def torch_predict(torch, model, X):
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(X)).argmax(dim=1).numpy()


# ---------------------------------------------------------------------------- MLP fit
def _mlp_group(benchmark, batch, epochs, validation, impl, role):
    shape = f"784-128-10 x{N_TRAIN} batch {batch}, {epochs} epoch{'s' if epochs > 1 else ''}" \
            + (" +val" if validation else "")
    label(benchmark, "fit mlp", shape, np.float32, impl, role, TARGETS.get(batch))


def _initial_params():
    return nn.mlp(SIZES, random_state=0).params


@pytest.mark.parametrize("validation", [False, True], ids=["noval", "val"])
@pytest.mark.parametrize("epochs", MLP_EPOCHS)
@pytest.mark.parametrize("batch", [5, 50, 5000])
@pytest.mark.parametrize("impl", ["fastnn", "numpy-loop"])
def bench_fit_mlp(benchmark, mlp_data, impl, batch, epochs, validation):
    X, y, X_val, y_val = _smoke_rows(benchmark, *mlp_data)
    val = (X_val, y_val) if validation else (None, None)
    if impl == "fastnn":
        _mlp_group(benchmark, batch, epochs, validation, impl, "backend")
        make = lambda: MLPClassifier((128,), learning_rate=MLP_LR, batch_size=batch, epochs=epochs,  # noqa: E731
                                     random_state=0)
        fitted = _time_call(benchmark, lambda: make().fit(X, y, *val) if validation else make().fit(X, y))
        benchmark.extra_info["train_accuracy"] = fitted.history_["train_accuracy"][-1]
        assert len(fitted.history_["val_accuracy"]) == (epochs if validation else 0)
    else:
        _mlp_group(benchmark, batch, epochs, validation, impl, "baseline")
        history = _time_call(benchmark, lambda: numpy_fit(NumpyMLP(_initial_params()), X, y, *val, epochs=epochs,
                                                          batch=batch))
        benchmark.extra_info["train_accuracy"] = history[-1][1]
        if not benchmark.enabled and batch == 50 and not validation:
            _check_numpy_mlp(X, y)


def _check_numpy_mlp(X, y, batch=50, n_batches=20):
    """NumpyMLP's batches leave the weights fastnn's 'numpy' backend leaves (float32 rounding)."""
    params, order = _initial_params(), np.random.default_rng(1).permutation(len(X))[:batch * n_batches]
    net = NumpyMLP(params)
    net.epoch(X, y, order, batch)
    model = nn.mlp(SIZES, backend="numpy")
    model.params[...] = params
    trainer = nn.Trainer(model, nn.SGD(MLP_LR), batch_size=batch, epochs=1, shuffle=False, fused=False)
    trainer.fit(X[order], y[order])
    np.testing.assert_allclose(net.params(), model.params, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("validation", [False, True], ids=["noval", "val"])
@pytest.mark.parametrize("epochs", MLP_EPOCHS)
@pytest.mark.parametrize("batch", [5, 50, 5000])
def bench_fit_mlp_torch(benchmark, mlp_data, torch, batch, epochs, validation):
    X, y, X_val, y_val = _smoke_rows(benchmark, *mlp_data)
    _mlp_group(benchmark, batch, epochs, validation, "torch", "external")
    val = (X_val, y_val) if validation else (None, None)

    def fit():
        model = torch_mlp(torch, _initial_params())
        return torch_fit(torch, model, torch.optim.SGD(model.parameters(), lr=MLP_LR), X, y, *val, epochs=epochs,
                         batch=batch)

    benchmark.extra_info["train_accuracy"] = _time_call(benchmark, fit)[-1][1]


# ---------------------------------------------------------------------------- ConvBase fit
def _cnn_group(benchmark, epochs, impl, role):
    label(benchmark, "fit convbase", f"mnist1d, {epochs} epochs ({epochs * 40} steps) +val", np.float32, impl, role,
          TARGET_CNN)


def _convbase(backend=None):
    return nn.conv1d_net((1, 40), 10, random_state=0, backend=backend)


@pytest.mark.parametrize("impl", ["fastnn", "numpy-loop"])
def bench_fit_convbase(benchmark, mnist1d, impl):
    X, y, X_val, y_val = mnist1d
    epochs = CNN_EPOCHS if benchmark.enabled else 1
    if impl == "fastnn":
        _cnn_group(benchmark, epochs, impl, "backend")
        fit = lambda: CNN1DClassifier(epochs=epochs, random_state=0).fit(X, y, X_val, y_val)  # noqa: E731
        fitted = _time_once(benchmark, fit)
        benchmark.extra_info["val_accuracy"] = fitted.history_["val_accuracy"][-1]
        assert len(fitted.history_["val_accuracy"]) == epochs
    else:
        _cnn_group(benchmark, epochs, impl, "baseline")
        history = _time_once(benchmark, lambda: numpy_fit(NumpyConvBase(_convbase()), X, y, X_val, y_val,
                                                          epochs=epochs, batch=CNN_BATCH))
        benchmark.extra_info["val_accuracy"] = history[-1][3]
        if not benchmark.enabled:
            _check_numpy_convbase(X, y)


def _check_numpy_convbase(X, y, n_batches=3):
    """NumpyConvBase's Adam steps leave the weights fastnn's 'numpy' backend leaves (float32 rounding)."""
    model = _convbase("numpy")
    net = NumpyConvBase(model)
    order = np.arange(CNN_BATCH * n_batches)
    net.epoch(X, y, order, CNN_BATCH)
    trainer = nn.Trainer(model, nn.Adam(CNN_LR), batch_size=CNN_BATCH, epochs=1, shuffle=False)
    trainer.fit(X[order].reshape(-1, 1, 40), y[order])
    np.testing.assert_allclose(net.fastnn_order_params(), model.params, rtol=1e-3, atol=1e-5)


def bench_fit_convbase_torch(benchmark, mnist1d, torch):
    from fastnn.experiments import torch_cnn

    X, y, X_val, y_val = mnist1d
    epochs = CNN_EPOCHS if benchmark.enabled else 1
    _cnn_group(benchmark, epochs, "torch", "external")
    X3, X_val3 = X.reshape(-1, 1, 40), X_val.reshape(-1, 1, 40)

    def fit():
        network = torch_cnn(torch, _convbase())
        return torch_fit(torch, network, torch.optim.Adam(network.parameters(), lr=CNN_LR), X3, y, X_val3, y_val,
                         epochs=epochs, batch=CNN_BATCH)

    benchmark.extra_info["val_accuracy"] = _time_once(benchmark, fit)[-1][3]


# ---------------------------------------------------------------------------- predict
@pytest.fixture(scope="module")
def fitted_mlp(mlp_data):
    X, y, _, _ = mlp_data
    return MLPClassifier((128,), batch_size=50, epochs=1, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def fitted_convbase():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N_PREDICT, 40)).astype(np.float32)
    y = rng.integers(0, 10, N_PREDICT)
    return CNN1DClassifier(epochs=1, random_state=0).fit(X[:1000], y[:1000]), X


def _mlp_weights(classifier):
    return np.concatenate([a.reshape(-1) for pair in zip(classifier.coefs_, classifier.intercepts_) for a in pair])


@pytest.mark.parametrize("impl", ["fastnn", "numpy-loop", "torch"])
def bench_predict_mlp(benchmark, request, mlp_data, fitted_mlp, impl):
    X = np.concatenate([mlp_data[0], mlp_data[2]])[:N_PREDICT]
    role = {"fastnn": "backend", "numpy-loop": "baseline", "torch": "external"}[impl]
    label(benchmark, "predict mlp", f"{N_PREDICT}x784", np.float32, impl, role)
    params = _mlp_weights(fitted_mlp)
    if impl == "fastnn":
        predict = lambda: fitted_mlp.predict(X)  # noqa: E731
    elif impl == "numpy-loop":
        net = NumpyMLP(params)
        predict = lambda: np.argmax(net.logits(X), axis=1)  # noqa: E731
    else:
        torch = request.getfixturevalue("torch")
        model = torch_mlp(torch, params)
        predict = lambda: torch_predict(torch, model, X)  # noqa: E731
    labels = _time_call(benchmark, predict)
    assert np.mean(labels == fitted_mlp.predict(X)) > 0.999  # float32 ties aside, the same classes


@pytest.mark.parametrize("impl", ["fastnn", "numpy-loop", "torch"])
def bench_predict_convbase(benchmark, request, fitted_convbase, impl):
    classifier, X = fitted_convbase
    role = {"fastnn": "backend", "numpy-loop": "baseline", "torch": "external"}[impl]
    label(benchmark, "predict convbase", f"{N_PREDICT}x1x40", np.float32, impl, role)
    model = classifier.model_
    if impl == "fastnn":
        predict = lambda: classifier.predict(X)  # noqa: E731
    elif impl == "numpy-loop":
        net = NumpyConvBase(model)
        predict = lambda: np.argmax(net.logits(X), axis=1)  # noqa: E731
    else:
        from fastnn.experiments import torch_cnn

        torch = request.getfixturevalue("torch")
        network = torch_cnn(torch, model)
        X3 = X.reshape(-1, 1, 40)
        predict = lambda: torch_predict(torch, network, X3)  # noqa: E731
    labels = _time_call(benchmark, predict)
    assert np.mean(labels == classifier.predict(X)) > 0.999
