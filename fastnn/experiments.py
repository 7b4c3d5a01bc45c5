"""The seed's MLP experiments, rerun fast: one training run, batch size, momentum and early stopping.

Each function takes a fastnn.datasets.Dataset (train / validation / test) and returns plain data
(dicts and lists, JSON-able); fastnn.plots draws them and the command line (`fastnn train mlp`,
`fastnn experiment ...`) writes both. Every run is seeded: the same arguments give the same numbers.
"""
from dataclasses import dataclass

import numpy as np

from . import nn
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
        return {key: list(value) if isinstance(value, tuple) else value for key, value in vars(self).items()}


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
    model: the best epoch's when patience is set), fit_time (training seconds, evaluation excluded),
    n_parameters, and the trained model under 'model' (not JSON-able; pop it before saving).
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
    history = trainer.fit(X_train, data.y_train, X_val, data.y_val).to_dict()
    if track_test:
        history["test_accuracy"] = test_accuracy
    return {"settings": settings.to_dict(), "dataset": data.name, "history": history,
            "test_accuracy": accuracy(model.predict_logits(X_test), data.y_test),
            "fit_time": history["time"][-1], "n_parameters": model.n_parameters, "model": model}


def batch_size_experiment(data, batch_sizes=(1, 5, 50, 500, 5000), settings=None):
    """For each batch size, train with early stopping; report what the seed's write-ups tabulated.

    Returns a list of dicts, one per batch size: batch_size, test_accuracy (best model), fit_time,
    best_epoch, updates_to_best (gradient updates to the best model), epochs_run.
    """
    settings = settings or MLPSettings(epochs=100, patience=10)
    rows = []
    for batch_size in batch_sizes:
        run = train_mlp(data, MLPSettings(**{**vars(settings), "batch_size": int(batch_size)}))
        history = run["history"]
        rows.append({"batch_size": int(batch_size), "test_accuracy": run["test_accuracy"],
                     "fit_time": run["fit_time"], "best_epoch": history["best_epoch"],
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
            "test_accuracy_at_end": history["test_accuracy"][-1], "fit_time": run["fit_time"]}

