"""MLPClassifier: the seed's multilayer perceptron as a scikit-learn estimator on fastnn's training system.

fit builds fastnn.nn.mlp([n_features, *hidden_layer_sizes, n_classes]) and trains it with
fastnn.nn.Trainer: at small batches each epoch runs inside the backend (fastnn.mlp_train_epoch),
at large ones layer by layer on BLAS. save() and load() use a .npz file without pickle.
"""
import json
import numbers
import os

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._config import resolve
from .._validation import FLOAT_DTYPES
from ..nn import Trainer, mlp
from ..nn.optim import OPTIMIZERS as OPTIMIZERS_BY_NAME
from ..nn.layers import ACTIVATION_LAYERS, Linear

FILE_FORMAT = "fastnn.MLPClassifier/1"
_SEED_LIMIT = 2**31 - 1


def _is_int(value, low):
    return not isinstance(value, bool) and isinstance(value, numbers.Integral) and value >= low


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """Multilayer perceptron classifier: Linear, activation, ..., Linear, softmax cross-entropy.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (128,)
    activation : 'relu' (default) or 'sigmoid', after every hidden layer
    optimizer : 'sgd' (with momentum) or 'adam'
    learning_rate : float, default 0.01
    momentum : float in [0, 1), default 0 (SGD only: v = momentum v + g; w -= learning_rate v)
    weight_decay : float >= 0, default 0: the L2 term weight_decay * sum ||W||^2 (biases excluded)
    batch_size : int, default 5 (the seed's); the last batch of an epoch may be smaller
    epochs : int, default 30: the maximum number of epochs
    patience : None (default) or int: stop after this many epochs without a better validation
        accuracy and keep the best weights
    validation_fraction : float in (0, 1), default 0.1: held out of the training data for early
        stopping when patience is set and fit gets no X_val
    shuffle : bool, default True: a new example order every epoch
    random_state : None, int or RandomState: initialisation (N(0, 0.1^2)), orders and the split
    dtype : 'float32' (default) or 'float64': of the parameters and the arithmetic
    backend : None (the current fastnn backend), 'numpy', 'numba' or 'cython'
    verbose : bool: progress bar and metrics per epoch on stderr

    Attributes
    ----------
    classes_ : (n_classes,) labels, sorted
    coefs_, intercepts_ : lists of (n_in, n_out) weights and (n_out,) biases, layer by layer
    history_ : dict of per-epoch lists (loss, train_accuracy, val_loss, val_accuracy, time, n_updates)
    n_iter_ : epochs run;  n_updates_ : optimizer updates made;  best_epoch_ : the epoch kept
    n_features_in_ : number of features
    """

    def __init__(self, hidden_layer_sizes=(128,), *, activation="relu", optimizer="sgd", learning_rate=0.01,
                 momentum=0.0, weight_decay=0.0, batch_size=5, epochs=30, patience=None, validation_fraction=0.1,
                 shuffle=True, random_state=None, dtype="float32", backend=None, verbose=False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.shuffle = shuffle
        self.random_state = random_state
        self.dtype = dtype
        self.backend = backend
        self.verbose = verbose

    # ------------------------------------------------------------------ checks
    def _float_dtype(self):
        try:
            dtype = np.dtype(self.dtype)
        except TypeError:
            dtype = None
        if dtype not in FLOAT_DTYPES:
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        return dtype

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, numbers.Integral) else sizes
        try:
            sizes = tuple(sizes)
        except TypeError:
            sizes = None
        if sizes is None or not all(_is_int(size, 1) for size in sizes):
            raise ValueError(f"hidden_layer_sizes must be a tuple of positive integers, got {self.hidden_layer_sizes!r}")
        return tuple(int(size) for size in sizes)

    def _check_params(self):
        if self.activation not in ACTIVATION_LAYERS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATION_LAYERS)}, got {self.activation!r}")
        if self.optimizer not in OPTIMIZERS_BY_NAME:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS_BY_NAME)}, got {self.optimizer!r}")
        for name in ("batch_size", "epochs"):
            if not _is_int(getattr(self, name), 1):
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.patience is not None and not _is_int(self.patience, 1):
            raise ValueError(f"patience must be None or a positive integer, got {self.patience!r}")
        fraction = self.validation_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction < 1:
            raise ValueError(f"validation_fraction must lie in (0, 1), got {fraction!r}")
        resolve(self.backend)  # an unknown or unavailable backend fails before any work
        return self._hidden_sizes(), self._float_dtype()

    def _make_optimizer(self):
        if self.optimizer == "sgd":
            return OPTIMIZERS_BY_NAME["sgd"](self.learning_rate, momentum=self.momentum,
                                             weight_decay=self.weight_decay)
        return OPTIMIZERS_BY_NAME["adam"](self.learning_rate, weight_decay=self.weight_decay)

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y, X_val=None, y_val=None):
        """Train on X (n_samples, n_features) with labels y; X_val, y_val: validation set (optional).

        Without X_val and with patience set, validation_fraction of the training data is held out.
        Returns self. Raises fastnn.nn.DivergenceError if the loss becomes NaN or infinite.
        """
        hidden, dtype = self._check_params()
        optimizer = self._make_optimizer()
        X, y = validate_data(self, X, y, dtype=dtype, order="C")
        check_classification_targets(y)
        self.classes_, y_encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"MLPClassifier needs samples of at least 2 classes; got 1 class ({self.classes_[0]!r})")
        y_encoded = y_encoded.reshape(-1).astype(np.int64)
        rng = check_random_state(self.random_state)
        init_seed, order_seed, split_seed = (int(seed) for seed in rng.randint(_SEED_LIMIT, size=3))

        if X_val is not None or y_val is not None:
            if X_val is None or y_val is None:
                raise ValueError("pass both X_val and y_val, or neither")
            X_val = validate_data(self, X_val, dtype=dtype, order="C", reset=False)
            y_val = self._encode(y_val, len(X_val))
        elif self.patience is not None:
            X, y_encoded, X_val, y_val = self._hold_out(X, y_encoded, split_seed)

        self.model_ = mlp([X.shape[1], *hidden, len(self.classes_)], activation=self.activation, dtype=dtype,
                          random_state=init_seed, backend=self.backend)
        trainer = Trainer(self.model_, optimizer, batch_size=self.batch_size, epochs=self.epochs,
                          patience=self.patience if X_val is not None else None, shuffle=self.shuffle,
                          random_state=order_seed, verbose=self.verbose)
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
    @property
    def coefs_(self):
        check_is_fitted(self, "model_")
        return [layer.params["W"] for layer in self.model_.layers if isinstance(layer, Linear)]

    @property
    def intercepts_(self):
        check_is_fitted(self, "model_")
        return [layer.params["b"] for layer in self.model_.layers if isinstance(layer, Linear)]

    def _logits(self, X):
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=self.model_.dtype, order="C", reset=False)
        return self.model_.predict_logits(X)

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
        path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(path))
        temporary = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
        config = {"params": {k: v for k, v in self.get_params().items()},
                  "n_features_in": int(self.n_features_in_), "n_iter": self.n_iter_, "n_updates": self.n_updates_,
                  "best_epoch": self.best_epoch_, "history": self.history_}
        try:
            with open(temporary, "wb") as f:
                np.savez(f, format=np.array(FILE_FORMAT), config=np.array(json.dumps(config)),
                         params=self.model_.params, classes=self.classes_)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
        return path

    @classmethod
    def load(cls, path):
        """A fitted MLPClassifier read from a file written by save(). ValueError if the file is not one."""
        try:
            with np.load(os.fspath(path), allow_pickle=False) as data:
                contents = {key: data[key] for key in ("format", "config", "params", "classes")}
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise ValueError(f"{path} is not a saved fastnn MLPClassifier ({type(exc).__name__}: {exc})") from exc
        if str(contents["format"]) != FILE_FORMAT:
            raise ValueError(f"{path} has format {str(contents['format'])!r}, expected {FILE_FORMAT!r}")
        try:
            config = json.loads(str(contents["config"]))
            params = config["params"]
            params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
            estimator = cls(**params)
            hidden, dtype = estimator._check_params()
            classes = contents["classes"]
            model = mlp([config["n_features_in"], *hidden, len(classes)], activation=estimator.activation,
                        dtype=dtype, backend=estimator.backend)
            if contents["params"].shape != model.params.shape or contents["params"].dtype != model.params.dtype:
                raise ValueError(f"parameters of shape {contents['params'].shape} and dtype "
                                 f"{contents['params'].dtype} do not fit the model {model}")
            model.params[...] = contents["params"]
            estimator.model_, estimator.classes_ = model, classes
            estimator.n_features_in_ = config["n_features_in"]
            estimator.n_iter_, estimator.n_updates_ = config["n_iter"], config["n_updates"]
            estimator.best_epoch_, estimator.history_ = config["best_epoch"], config["history"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path} is not a valid saved MLPClassifier: {exc}") from exc
        return estimator
