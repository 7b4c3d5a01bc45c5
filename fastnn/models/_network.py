"""What the network classifiers (MLPClassifier, CNN1DClassifier, CNN2DClassifier) share: training parameters and their
checks, fit with an optional validation set or hold-out, prediction, and save/load without pickle.

A subclass stores its architecture parameters in __init__ (scikit-learn style) and implements
_architecture() (check them), _input(X, reset) (validated C-contiguous arrays of the model's input
shape) and _build(input_shape, n_classes, architecture, dtype, random_state) (a fastnn.nn.Sequential).
"""
import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from .._config import resolve
from .._validation import FLOAT_DTYPES, MAX_INT, all_finite
from ..nn import Trainer
from ..nn.trainer import check_train_metrics
from ..nn.optim import OPTIMIZERS as OPTIMIZERS_BY_NAME
from . import _persist

_SEED_LIMIT = 2**31 - 1


def is_int(value, low):
    """Whether value is an integer (not a bool) in [low, 2**40], the range of every size-like parameter."""
    return (not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Integral)
            and low <= int(value) <= MAX_INT)


def int_tuple(name, value, low=1):
    """value (an int or a sequence of ints in [low, 2**40]) as a tuple; ValueError naming `name` otherwise."""
    values = (value,) if isinstance(value, numbers.Integral) else value
    try:
        values = tuple(values)
    except TypeError:
        values = None
    if values is None or not all(is_int(v, low) for v in values):
        raise ValueError(f"{name} must be a tuple of integers in [{low}, 2**40], got {value!r}")
    return tuple(int(v) for v in values)


class NetworkClassifier(ClassifierMixin, BaseEstimator):
    """Base of the network classifiers; see MLPClassifier for the training parameters."""

    FILE_FORMAT = None  # "fastnn.<Class>/<version>", written by save()
    TUPLE_PARAMS = ()  # constructor parameters that JSON turns into lists and load() turns back

    # ------------------------------------------------------------------ checks
    def _float_dtype(self):
        try:
            dtype = np.dtype(self.dtype)
        except TypeError:
            dtype = None
        if dtype not in FLOAT_DTYPES:
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        return dtype

    def _check_params(self):
        """(architecture, dtype) after checking every parameter; ValueError naming the bad one."""
        if self.optimizer not in OPTIMIZERS_BY_NAME:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS_BY_NAME)}, got {self.optimizer!r}")
        for name in ("batch_size", "epochs"):
            if not is_int(getattr(self, name), 1):
                raise ValueError(f"{name} must be a positive integer (at most 2**40), got {getattr(self, name)!r}")
        if self.patience is not None and not is_int(self.patience, 1):
            raise ValueError(f"patience must be None or a positive integer (at most 2**40), got {self.patience!r}")
        fraction = self.validation_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction < 1:
            raise ValueError(f"validation_fraction must lie in (0, 1), got {fraction!r}")
        check_train_metrics(self.train_metrics)
        resolve(self.backend)  # an unknown or unavailable backend fails before any work
        return self._architecture(), self._float_dtype()

    def _make_optimizer(self):
        if self.optimizer == "sgd":
            return OPTIMIZERS_BY_NAME["sgd"](self.learning_rate, momentum=self.momentum,
                                             weight_decay=self.weight_decay)
        return OPTIMIZERS_BY_NAME["adam"](self.learning_rate, weight_decay=self.weight_decay)

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y, X_val=None, y_val=None, *, callbacks=()):
        """Train on X with labels y; X_val, y_val: a validation set (optional).

        Without X_val and with patience set, validation_fraction of the training data is held out.
        callbacks: functions called as callback(epoch, model, history) after every epoch (see
        fastnn.nn.Trainer; model is the fastnn.nn.Sequential being trained).
        Returns self. Raises fastnn.nn.DivergenceError if the loss becomes NaN or infinite.
        """
        architecture, dtype = self._check_params()
        optimizer = self._make_optimizer()
        self.__dict__.pop("model_", None)  # a previous fit's network must not judge this fit's X_val
        X, y = self._input(X, dtype, reset=True, y=y)
        check_classification_targets(y)
        self.classes_, y_encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; got 1 class "
                             f"({self.classes_[0]!r})")
        y_encoded = y_encoded.reshape(-1).astype(np.int64)
        rng = check_random_state(self.random_state)
        init_seed, order_seed, split_seed = (int(seed) for seed in rng.randint(_SEED_LIMIT, size=3))

        if X_val is not None or y_val is not None:
            if X_val is None or y_val is None:
                raise ValueError("pass both X_val and y_val, or neither")
            X_val = self._input(X_val, dtype, reset=False)
            y_val = self._encode(y_val, len(X_val))
        elif self.patience is not None:
            X, y_encoded, X_val, y_val = self._hold_out(X, y_encoded, split_seed)

        self.model_ = self._build(X.shape[1:], len(self.classes_), architecture, dtype, init_seed)
        trainer = Trainer(self.model_, optimizer, batch_size=self.batch_size, epochs=self.epochs,
                          patience=self.patience if X_val is not None else None, shuffle=self.shuffle,
                          random_state=order_seed, verbose=self.verbose, callbacks=callbacks,
                          train_metrics=self.train_metrics)
        history = trainer.fit(X, y_encoded, X_val, y_val)
        self.history_ = history.to_dict()
        self.n_iter_ = len(history.epoch)
        self.n_updates_ = optimizer.n_updates
        self.best_epoch_ = history.best_epoch
        return self

    def _encode(self, y, n):
        y = np.asarray(y)
        if y.shape != (n,):
            raise ValueError(f"y_val must have shape ({n},), one label per row of X_val, got {y.shape}")
        codes = np.searchsorted(self.classes_, y)
        codes[codes == len(self.classes_)] = 0
        unknown = self.classes_[codes] != y
        if unknown.any():
            raise ValueError(f"y_val holds label {y[unknown][0].item()!r}, not seen in y (classes {self.classes_.tolist()})")
        return codes.astype(np.int64)

    def _hold_out(self, X, y, seed):
        n_val = int(round(self.validation_fraction * len(X)))
        if n_val < 1 or n_val >= len(X):
            raise ValueError(f"validation_fraction={self.validation_fraction} of {len(X)} samples leaves no "
                             f"validation or no training data; pass X_val and y_val")
        order = np.random.default_rng(seed).permutation(len(X))
        val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
        return X[train], y[train], X[val], y[val]

    # ------------------------------------------------------------------ prediction
    def _logits(self, X):
        check_is_fitted(self, "model_")
        return self.model_.predict_logits(self._input(X, self.model_.dtype, reset=False))

    def predict_proba(self, X):
        """(n_samples, n_classes) float64 class probabilities, the softmax of the logits."""
        logits = self._logits(X).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        return logits

    def predict(self, X):
        """The class with the largest logit (ties: the first in classes_)."""
        logits = self._logits(X)
        return self.classes_[np.argmax(logits, axis=1)]

    # ------------------------------------------------------------------ persistence
    def save(self, path):
        """Write the fitted model to a .npz file (no pickle), atomically: readers never see half a file."""
        check_is_fitted(self, "model_")
        if self.classes_.dtype.kind == "O":
            raise ValueError("classes_ of object dtype cannot be saved without pickle; use int or str labels")
        config = {"params": dict(self.get_params()), "input_shape": list(self.model_.input_shape),
                  "n_features_in": int(self.n_features_in_), "n_iter": self.n_iter_, "n_updates": self.n_updates_,
                  "best_epoch": self.best_epoch_, "history": self.history_}
        return _persist.write(path, self.FILE_FORMAT, config, {"params": self.model_.params, "classes": self.classes_})

    @classmethod
    def load(cls, path):
        """A fitted estimator read from a file written by save().

        ValueError if the file is not one: unreadable, truncated, of another estimator, malformed, with
        non-finite parameters, or describing a network whose parameters are not the array it holds
        (checked before the network is allocated).
        """
        name = cls.__name__
        config, arrays = _persist.read(path, cls.FILE_FORMAT, ("params", "classes"), f"fastnn {name}")
        try:
            estimator, model = cls._from_config(config, arrays)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise ValueError(f"{path} is not a valid saved {name}: {type(exc).__name__}: {exc}") from None
        return estimator

    @classmethod
    def _from_config(cls, config, arrays):
        """(estimator, model) rebuilt from a model file's config and arrays; KeyError/TypeError/ValueError
        when they do not describe a fitted estimator of this class."""
        params = config["params"]
        if not isinstance(params, dict) or not set(params) <= set(cls._get_param_names()):
            raise ValueError(f"its params are not {cls.__name__}'s constructor parameters")
        for key in cls.TUPLE_PARAMS:
            if isinstance(params.get(key), list):
                params[key] = _tuples(params[key])
        estimator = cls(**params)
        architecture, dtype = estimator._check_params()
        classes, stored = arrays["classes"], arrays["params"]
        if classes.ndim != 1 or len(classes) < 2 or len(np.unique(classes)) != len(classes):
            raise ValueError(f"classes of shape {classes.shape} are not two or more distinct labels")
        input_shape = config.get("input_shape", [config["n_features_in"]])
        if not isinstance(input_shape, list) or not all(is_int(d, 1) for d in input_shape):
            raise ValueError(f"input_shape {input_shape!r} is not a list of positive integers")
        input_shape = tuple(input_shape)
        if not is_int(config["n_features_in"], 1) or not cls._n_features_fit(config["n_features_in"], input_shape):
            raise ValueError(f"n_features_in {config['n_features_in']!r} does not match input_shape {input_shape}")
        expected = estimator._n_parameters(input_shape, len(classes), architecture)
        if stored.shape != (expected,) or stored.dtype != dtype:
            raise ValueError(f"parameters of shape {stored.shape} and dtype {stored.dtype} do not fit the model "
                             f"(it has {expected} parameters of dtype {dtype})")
        if not all_finite(stored):
            raise ValueError("its parameters contain NaN or infinity")
        for key in ("n_iter", "n_updates", "best_epoch"):
            if not is_int(config[key], 0):
                raise ValueError(f"{key} {config[key]!r} is not a non-negative integer")
        if not isinstance(config["history"], dict):
            raise ValueError("its history is not a JSON object")
        model = estimator._build(input_shape, len(classes), architecture, dtype, None)
        model.params[...] = stored
        estimator.model_, estimator.classes_ = model, classes
        estimator.n_features_in_ = config["n_features_in"]
        estimator.n_iter_, estimator.n_updates_ = config["n_iter"], config["n_updates"]
        estimator.best_epoch_, estimator.history_ = config["best_epoch"], config["history"]
        return estimator, model

    @staticmethod
    def _n_features_fit(n_features_in, input_shape):
        """Whether a saved n_features_in_ is consistent with the saved model's input_shape (one example's)."""
        return n_features_in in input_shape

    def _n_parameters(self, input_shape, n_classes, architecture):
        """The number of parameters _build would allocate, computed without allocating (ValueError when the
        architecture does not fit input_shape)."""
        raise NotImplementedError


def _tuples(value):
    """value with every list, at any depth, turned into a tuple (JSON gives back lists for tuples)."""
    return tuple(_tuples(item) for item in value) if isinstance(value, (list, tuple)) else value
