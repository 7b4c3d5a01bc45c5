"""The seed's MLP experiments, rerun fast (one training run, batch size, momentum, early stopping), and
MNIST-1D's ConvBase over many seeds, optionally beside the same network in PyTorch.

Each experiment takes a fastnn.datasets.Dataset (train / validation / test) and returns plain data
(dicts and lists, JSON-able); fastnn.plots draws them and the command line (`fastnn train mlp`,
`fastnn experiment ...`) writes both. Every run is seeded: the same arguments give the same numbers.
"""
import time
from dataclasses import dataclass

import numpy as np

from . import nn
from ._config import get_backend
from .cnn_training import ConvEpochs
from .nn.conv_layers import conv_stack_spec
from .nn.trainer import accuracy


@dataclass
class MLPSettings:
    """What one training run of the seed's MLP uses (the defaults are the seed's)."""

    hidden: tuple = (128,)
    activation: str = "relu"
    optimizer: str = "sgd"
    learning_rate: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 5
    epochs: int = 30
    patience: int = None
    dtype: str = "float32"
    backend: str = None
    random_state: int = 0
    verbose: bool = False

    def name(self):
        """The seed's result-file stem, e.g. MLP_lr0.01_b5."""
        return f"MLP_lr{self.learning_rate:g}_b{self.batch_size}"

    def to_dict(self):
        """The settings as JSON-able values, with the backend that runs (the default's name when None)."""
        values = {key: list(value) if isinstance(value, tuple) else value for key, value in vars(self).items()}
        values["backend"] = self.backend or get_backend()
        return values


def _make_optimizer(settings):
    if settings.optimizer == "adam":
        return nn.Adam(settings.learning_rate, weight_decay=settings.weight_decay)
    if settings.optimizer == "sgd":
        return nn.SGD(settings.learning_rate, momentum=settings.momentum, weight_decay=settings.weight_decay)
    raise ValueError(f"optimizer must be 'sgd' or 'adam', got {settings.optimizer!r}")


def _cast(data, dtype):
    return [np.ascontiguousarray(X, dtype=dtype) for X in (data.X_train, data.X_val, data.X_test)]


def train_mlp(data, settings, *, track_test=False):
    """Train the MLP of `settings` on data.X_train, validating on data.X_val; test on data.X_test.

    track_test: also record the test accuracy after every epoch (history['test_accuracy']).
    Returns a dict: settings, history (see fastnn.nn.History), test_accuracy (of the final
    model: the best epoch's when patience is set), wall_time (seconds of the whole fit, validation
    and the test tracking included), fit_time (training seconds, evaluation excluded), n_parameters,
    and the trained model under 'model' (not JSON-able; pop it before saving).
    """
    X_train, X_val, X_test = _cast(data, settings.dtype)
    n_classes = int(max(data.y_train.max(), data.y_val.max(), data.y_test.max())) + 1
    model = nn.mlp([X_train.shape[1], *settings.hidden, n_classes], activation=settings.activation,
                   dtype=settings.dtype, random_state=settings.random_state, backend=settings.backend)
    test_accuracy = []
    callbacks = [lambda epoch, m, history: test_accuracy.append(accuracy(m.predict_logits(X_test), data.y_test))] \
        if track_test else []
    trainer = nn.Trainer(model, _make_optimizer(settings), batch_size=settings.batch_size, epochs=settings.epochs,
                         patience=settings.patience, random_state=settings.random_state, verbose=settings.verbose,
                         callbacks=callbacks)
    start = time.perf_counter()
    history = trainer.fit(X_train, data.y_train, X_val, data.y_val).to_dict()
    wall_time = time.perf_counter() - start
    if track_test:
        history["test_accuracy"] = test_accuracy
    return {"settings": settings.to_dict(), "dataset": data.name, "history": history,
            "test_accuracy": accuracy(model.predict_logits(X_test), data.y_test),
            "wall_time": wall_time, "fit_time": history["time"][-1], "n_parameters": model.n_parameters,
            "model": model}


def batch_size_experiment(data, batch_sizes=(1, 5, 50, 500, 5000), settings=None):
    """For each batch size, train with early stopping; report what the seed's write-ups tabulated.

    Returns a list of dicts, one per batch size: batch_size, test_accuracy (best model), wall_time
    (of the whole fit), fit_time (training only), best_epoch, updates_to_best (gradient updates to
    the best model), epochs_run.
    """
    settings = settings or MLPSettings(epochs=100, patience=10)
    rows = []
    for batch_size in batch_sizes:
        run = train_mlp(data, MLPSettings(**{**vars(settings), "batch_size": int(batch_size)}))
        history = run["history"]
        rows.append({"batch_size": int(batch_size), "test_accuracy": run["test_accuracy"],
                     "wall_time": run["wall_time"], "fit_time": run["fit_time"], "best_epoch": history["best_epoch"],
                     "updates_to_best": history["n_updates_to_best"], "epochs_run": len(history["epoch"])})
    return rows


def momentum_experiment(data, momenta=(0.1, 0.3, 0.5, 0.7, 0.9), settings=None):
    """Train once per momentum alpha (v = alpha v + g; w -= eta v); {alpha: per-epoch training loss}."""
    settings = settings or MLPSettings(epochs=30)
    return {float(alpha): train_mlp(data, MLPSettings(**{**vars(settings), "momentum": float(alpha)}))["history"]["loss"]
            for alpha in momenta}


def early_stopping_experiment(data, settings=None, patience=5):
    """Train for settings.epochs without stopping, recording train, validation and test accuracy per epoch.

    Returns the history (with test_accuracy) plus best_epoch (highest validation accuracy) and
    stop_epoch: where early stopping with `patience` would have stopped (None if it would not have),
    and the test accuracy at both points.
    """
    settings = settings or MLPSettings(epochs=30)
    run = train_mlp(data, MLPSettings(**{**vars(settings), "patience": None}), track_test=True)
    history = run["history"]
    val = history["val_accuracy"]
    best, stop, best_so_far = 0, None, -1.0
    for epoch, score in enumerate(val, start=1):
        if score > best_so_far:
            best, best_so_far = epoch, score
        elif epoch - best >= patience:
            stop = epoch
            break
    best_before_stop = best
    return {"history": history, "patience": patience, "stop_epoch": stop, "best_epoch": best_before_stop,
            "test_accuracy_at_best": history["test_accuracy"][best_before_stop - 1],
            "test_accuracy_at_end": history["test_accuracy"][-1], "wall_time": run["wall_time"],
            "fit_time": run["fit_time"]}



# ---------------------------------------------------------------------------- ConvBase on MNIST-1D
def epoch_orders(n, epochs, *, shuffle, random_state=None):
    """The example order of each of `epochs` epochs over n examples: a fresh permutation per epoch
    drawn from np.random.default_rng(random_state) (shuffle), or the data's own order every epoch, which
    is how MNIST-1D's reference training loop (mnist1d's train.py) takes its batches."""
    if not shuffle:
        return [np.arange(n)] * epochs
    rng = np.random.default_rng(random_state)
    return [rng.permutation(n) for _ in range(epochs)]


def train_cnn_fused(model, X, y, orders, *, learning_rate=1e-2, batch_size=100):
    """Train a conv-ReLU stack with a linear head (model: fastnn.nn.Sequential of the ConvBase family)
    with Adam, one fused epoch (fastnn.cnn1d_train_epoch) per entry of `orders`, in place on model.params.

    X (n, C, L) in model.dtype, y (n,) int labels; orders: int arrays of example indices.
    Returns the training time in seconds (the epochs only: no evaluation, no set-up).
    """
    spec = conv_stack_spec(model)
    if spec is None:
        raise ValueError("train_cnn_fused needs Conv1D, ReLU, ..., Flatten, Linear with biases (no pooling)")
    optimizer = nn.Adam(learning_rate)
    optimizer.setup(model.params)
    epochs = ConvEpochs(X, y, batch_size=batch_size, backend=model.backend, **spec,
                        **{k: v for k, v in optimizer.epoch_arguments().items() if k != "step"})
    start = time.perf_counter()
    for order in orders:
        _, _, n_updates = epochs.run(order, model.params, optimizer.state, optimizer.n_updates)
        optimizer.n_updates += n_updates
    return time.perf_counter() - start


def torch_cnn(torch, model, dtype=np.float32):
    """The network of `model` (Conv1D/ReLU stack, Flatten, Linear: what train_cnn_fused trains) as a
    torch.nn.Sequential of nn.Conv1d, nn.ReLU, nn.Flatten, nn.Linear with the same weights, in `dtype`
    (float32, as PyTorch trains by default, or float64)."""
    spec = conv_stack_spec(model)
    if spec is None:
        raise ValueError("torch_cnn needs Conv1D, ReLU, ..., Flatten, Linear with biases (no pooling)")
    modules, c_in = [], model.input_shape[0]
    for c_out, k, stride, padding in zip(spec["channels"], spec["kernel_sizes"], spec["strides"], spec["paddings"]):
        modules += [torch.nn.Conv1d(c_in, c_out, k, stride=stride, padding=padding), torch.nn.ReLU()]
        c_in = c_out
    head = model.layers[-1]
    modules += [torch.nn.Flatten(), torch.nn.Linear(head.in_features, head.out_features)]
    dtype = np.dtype(dtype)
    network = torch.nn.Sequential(*modules).to(getattr(torch, dtype.name))
    params = np.asarray(model.params, dtype=dtype)
    start = 0
    with torch.no_grad():
        for module in network:
            for name in ("weight", "bias"):
                tensor = getattr(module, name, None)
                if tensor is None:
                    continue
                values = params[start:start + tensor.numel()]
                if isinstance(module, torch.nn.Linear) and name == "weight":  # fastnn keeps W as (in, out)
                    values = values.reshape(tensor.shape[::-1]).T
                tensor.copy_(torch.from_numpy(np.ascontiguousarray(values.reshape(tensor.shape))))
                start += tensor.numel()
    if start != params.size:
        raise ValueError(f"model has {params.size} parameters, the torch network {start}")
    return network


def train_torch_cnn(torch, network, X, y, orders, *, learning_rate=1e-2, batch_size=100):
    """What train_cnn_fused does, in PyTorch: cross_entropy, torch.optim.Adam, zero_grad / backward /
    step per batch, in place on `network` (from torch_cnn; X is cast to its dtype). Returns the training
    time in seconds."""
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate)
    dtype = np.dtype(str(next(network.parameters()).dtype).removeprefix("torch."))
    X_t, y_t = torch.from_numpy(np.ascontiguousarray(X, dtype=dtype)), torch.from_numpy(np.asarray(y))
    orders_t = [torch.from_numpy(np.asarray(order)) for order in orders]
    start = time.perf_counter()
    for order in orders_t:
        for first in range(0, len(order), batch_size):
            rows = order[first:first + batch_size]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(network(X_t[rows]), y_t[rows]).backward()
            optimizer.step()
    return time.perf_counter() - start


def _summary(values):
    values = np.asarray(values, dtype=float)
    return {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
            "max": float(values.max()), "n": int(values.size)}


def convbase_seeds(data, seeds=range(10), *, shuffle=False, epochs=200, learning_rate=1e-2, batch_size=100,
                   dtype="float32", backend=None, torch=None, verbose=False):
    """Train MNIST-1D's ConvBase once per seed and report the final test accuracy of each run.

    data: a Dataset of (n, L) signals (fastnn.datasets.load_mnist1d()). Each seed draws the initial
    weights (PyTorch's default initialisation) and, with shuffle, the epochs' orders; without shuffle
    every epoch takes the batches in the data's order, as MNIST-1D's reference loop does. Adam with
    `learning_rate`, `batch_size` examples per step, `epochs` passes (the defaults: 200 x 40 = 8,000 steps).
    torch: the torch module, to train the same network from the same weights in the same orders too
    (PyTorch stays optional: pass None to skip it).

    Returns {"settings", "rows": [{seed, test_accuracy, fit_time[, torch_test_accuracy, torch_fit_time]}],
    "test_accuracy": summary (mean, population std, min, max, n)[, "torch_test_accuracy": summary]}.
    Raises ValueError for no seeds or a non-positive epochs, learning_rate or batch_size.
    """
    seeds = [int(seed) for seed in seeds]
    if not seeds:
        raise ValueError("seeds must hold at least one seed, got none")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
    X_train = np.ascontiguousarray(data.X_train.reshape(len(data.X_train), 1, -1), dtype=dtype)
    X_test = np.ascontiguousarray(data.X_test.reshape(len(data.X_test), 1, -1), dtype=dtype)
    n_classes = int(max(data.y_train.max(), data.y_test.max())) + 1
    rows = []
    for seed in seeds:
        model = nn.conv1d_net(X_train.shape[1:], n_classes, dtype=dtype, random_state=seed, backend=backend)
        orders = epoch_orders(len(X_train), epochs, shuffle=shuffle, random_state=seed)
        network = torch_cnn(torch, model) if torch is not None else None  # from the initial weights
        fit_time = train_cnn_fused(model, X_train, data.y_train, orders, learning_rate=learning_rate,
                                   batch_size=batch_size)
        row = {"seed": seed, "test_accuracy": accuracy(model.predict_logits(X_test), data.y_test),
               "fit_time": fit_time}
        if network is not None:
            row["torch_fit_time"] = train_torch_cnn(torch, network, X_train, data.y_train, orders,
                                                    learning_rate=learning_rate, batch_size=batch_size)
            with torch.no_grad():
                logits = network(torch.from_numpy(X_test.astype(np.float32))).numpy()
            row["torch_test_accuracy"] = accuracy(logits, data.y_test)
        rows.append(row)
        if verbose:
            print("  ".join(f"{key} {value:.4f}" if isinstance(value, float) else f"{key} {value}"
                            for key, value in row.items()), flush=True)
    result = {"settings": {"seeds": seeds, "shuffle": bool(shuffle), "epochs": int(epochs),
                           "steps": int(epochs * -(-len(X_train) // batch_size)), "learning_rate": learning_rate,
                           "batch_size": int(batch_size), "dtype": str(np.dtype(dtype)),
                           "backend": backend or get_backend()},
              "rows": rows, "test_accuracy": _summary([row["test_accuracy"] for row in rows])}
    if torch is not None:
        result["torch_test_accuracy"] = _summary([row["torch_test_accuracy"] for row in rows])
    return result
