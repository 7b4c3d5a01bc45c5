"""Multiclass perceptron (Algorithm 1) and kernel multiclass perceptron (Algorithm 2) estimators.

Both train epoch by epoch: each epoch visits every training example once, in an order drawn from
`random_state` (or in the given order with shuffle=False), and is one call of a backend kernel
(fastnn.perceptron), so the compiled backends run an epoch without Python per example. Training
stops after the first epoch without a mistake, or after `max_epochs`.

The same random_state gives the same model on every backend (up to floating-point rounding; with
exactly representable data such as the digits' pixels / 16 and a linear model, bit for bit).
"""
import math
import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import perceptron as _epochs
from . import _persist
from .._config import resolve
from .._dask import is_dask_array, map_rows
from .._validation import FLOAT_DTYPES, MAX_INT, finite
from ..gram import KERNEL_FUNCTIONS, _working_memory_bytes, gram, gram_matvec
from ._streaming import KernelRowCache, streaming_epoch

class _EpochClassifier(ClassifierMixin, BaseEstimator):
    """What both perceptrons share: validation, label encoding, the epoch loop, predict."""

    def __init__(self, *, max_epochs=20, shuffle=True, random_state=None, backend=None, dtype=None):
        self.max_epochs = max_epochs
        self.shuffle = shuffle
        self.random_state = random_state
        self.backend = backend
        self.dtype = dtype

    # ------------------------------------------------------------------ subclass hooks
    def _init_state(self, X, n_classes):
        """Prepare training on X; return the function run_epoch(y_encoded, order) -> n_mistakes."""
        raise NotImplementedError

    def _finish(self, X):
        """Set the fitted attributes from the final state."""
        raise NotImplementedError

    def _scores(self, X):
        """(n_samples, n_classes) class scores of validated X."""
        raise NotImplementedError

    # ------------------------------------------------------------------ fitting
    def _float_dtype(self):
        if self.dtype is None:
            return [np.float64, np.float32]  # keep float32 input, convert anything else to float64
        try:
            dtype = np.dtype(self.dtype)
        except TypeError:
            dtype = None
        if dtype not in FLOAT_DTYPES:
            raise ValueError(f"dtype must be None, float32 or float64, got {self.dtype!r}")
        return dtype

    def _check_params(self):
        if (isinstance(self.max_epochs, (bool, np.bool_)) or not isinstance(self.max_epochs, numbers.Integral)
                or not 1 <= int(self.max_epochs) <= MAX_INT):
            raise ValueError(f"max_epochs must be a positive integer (at most 2**40), got {self.max_epochs!r}")
        self._float_dtype()
        resolve(self.backend)  # unknown or unavailable backend: fail before any work

    def fit(self, X, y):
        """Train on X (n_samples, n_features) and labels y (n_samples,) of any hashable type.

        Returns self.
        """
        self._check_params()
        X, y = validate_data(self, X, y, dtype=self._float_dtype(), order="C")
        check_classification_targets(y)
        self.classes_, y_encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; got 1 class "
                             f"({self.classes_[0]!r})")
        y_encoded = np.ascontiguousarray(y_encoded.reshape(-1), dtype=np.int64)
        n_samples = X.shape[0]
        rng = check_random_state(self.random_state)
        run_epoch = self._init_state(X, len(self.classes_))
        self.mistakes_ = []
        for _ in range(self.max_epochs):
            order = rng.permutation(n_samples) if self.shuffle else np.arange(n_samples)
            mistakes = int(run_epoch(y_encoded, order.astype(np.int64)))
            self.mistakes_.append(mistakes)
            if mistakes == 0:
                break
        self.n_iter_ = len(self.mistakes_)
        self._finish(X)
        return self

    # ------------------------------------------------------------------ prediction
    def _validated(self, X):
        check_is_fitted(self)
        return validate_data(self, X, dtype=self._fit_dtype, order="C", reset=False)

    def decision_function(self, X):
        """Class scores: (n_samples, n_classes), or (n_samples,) for two classes (> 0 means classes_[1]).
        A Dask array X gives a Dask array, one task per row chunk."""
        if is_dask_array(X):
            return self._dask_rows(self.decision_function, X, np.dtype(self._fit_dtype),
                                   None if len(self.classes_) == 2 else len(self.classes_))
        scores = self._scores(self._validated(X))
        if len(self.classes_) == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def predict(self, X):
        """The class with the highest score (ties: the first in classes_). A Dask array X gives a Dask
        array, one task per row chunk."""
        if is_dask_array(X):
            return self._dask_rows(self.predict, X, self.classes_.dtype, None)
        scores = self._scores(self._validated(X))
        return self.classes_[np.argmax(scores, axis=1)]

    # ------------------------------------------------------------------ persistence
    FILE_FORMAT = None  # "fastnn.<Class>/<version>"
    ARRAYS = ()  # fitted array attributes saved, without the trailing underscore

    def save(self, path):
        """Write the fitted model to a .npz file (no pickle), atomically: readers never see half a file.

        Returns the path. load() reads it back into an estimator that predicts exactly the same.
        """
        check_is_fitted(self)
        config = {"params": dict(self.get_params()), "n_features_in": int(self.n_features_in_),
                  "n_iter": int(self.n_iter_), "mistakes": [int(m) for m in self.mistakes_],
                  "dtype": np.dtype(self._fit_dtype).name}
        arrays = {"classes": self.classes_, **{name: getattr(self, f"{name}_") for name in self.ARRAYS}}
        return _persist.write(path, self.FILE_FORMAT, config, arrays)

    @classmethod
    def load(cls, path):
        """A fitted estimator read from a file written by save().

        ValueError if the file is not one: unreadable, truncated, of another estimator, malformed or
        with non-finite coefficients.
        """
        name = cls.__name__
        config, arrays = _persist.read(path, cls.FILE_FORMAT, ("classes", *cls.ARRAYS), f"fastnn {name}")
        try:
            estimator = cls._from_config(config, arrays)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise ValueError(f"{path} is not a valid saved {name}: {type(exc).__name__}: {exc}") from None
        return estimator

    @classmethod
    def _from_config(cls, config, arrays):
        params = config["params"]
        if not isinstance(params, dict) or not set(params) <= set(cls._get_param_names()):
            raise ValueError(f"its params are not {cls.__name__}'s constructor parameters")
        estimator = cls(**params)
        estimator._check_params()
        dtype = np.dtype(config["dtype"]) if isinstance(config["dtype"], str) else None
        if dtype not in FLOAT_DTYPES:
            raise ValueError(f"dtype {config['dtype']!r} is not float32 or float64")
        classes = arrays["classes"]
        if classes.ndim != 1 or len(classes) < 2 or len(np.unique(classes)) != len(classes):
            raise ValueError(f"classes of shape {classes.shape} are not two or more distinct labels")
        n_features = config["n_features_in"]
        if isinstance(n_features, bool) or not isinstance(n_features, int) or not 1 <= n_features <= MAX_INT:
            raise ValueError(f"n_features_in {n_features!r} is not a positive integer")
        mistakes = config["mistakes"]
        if (not isinstance(mistakes, list) or not all(isinstance(m, int) and m >= 0 for m in mistakes)
                or config["n_iter"] != len(mistakes)):
            raise ValueError("n_iter and mistakes do not describe the epochs run")
        estimator._restore(arrays, classes, n_features, dtype)
        estimator.classes_, estimator.n_features_in_, estimator._fit_dtype = classes, n_features, dtype
        estimator.n_iter_, estimator.mistakes_ = len(mistakes), mistakes
        return estimator

    def _restore(self, arrays, classes, n_features, dtype):
        """Check the saved arrays against each other and set the fitted attributes (ValueError if inconsistent)."""
        raise NotImplementedError

    def _dask_rows(self, method, X, dtype, columns):
        """method (predict or decision_function) on every row chunk of Dask X, as a Dask array."""
        check_is_fitted(self)
        return map_rows(method, X, self.n_features_in_, dtype=dtype, columns=columns)


def _checked_array(name, array, shape, dtype):
    """array if it has `shape` and `dtype` and is finite; ValueError naming it otherwise."""
    if array.shape != shape or array.dtype != dtype:
        raise ValueError(f"{name} has shape {array.shape} and dtype {array.dtype}, expected {shape} and {dtype}")
    finite(name, array)
    return np.ascontiguousarray(array)


class Perceptron(_EpochClassifier):
    """Multiclass perceptron (Algorithm 1): one weight vector per class, no intercept.

    Each epoch visits every example once; on a mistake (yhat = argmax_c w_c . x_i != y_i) it
    moves w_yhat -= x_i and w_{y_i} += x_i. Ties go to the first class.

    Parameters
    ----------
    max_epochs : int, default 20. Training stops earlier after an epoch without a mistake.
    shuffle : bool, default True: a new random example order each epoch (else the data's order).
    random_state : None, int or numpy RandomState: the example orders.
    backend : None (the current fastnn backend), 'numpy', 'numba' or 'cython'.
    dtype : None (float32 input stays float32, anything else becomes float64), float32 or float64.

    Attributes
    ----------
    classes_ : (n_classes,) the labels, sorted
    coef_ : (n_classes, n_features) the weight vectors, in the training dtype
    n_features_in_, n_iter_ (epochs run), mistakes_ (list: mistakes per epoch)
    """

    FILE_FORMAT = "fastnn.Perceptron/1"
    ARRAYS = ("coef",)

    def _restore(self, arrays, classes, n_features, dtype):
        self.coef_ = _checked_array("coef", arrays["coef"], (len(classes), n_features), dtype)

    def _init_state(self, X, n_classes):
        self._fit_dtype = X.dtype
        W = np.zeros((n_classes, X.shape[1]), dtype=X.dtype)
        epoch = _epochs._epoch_kernel(self.backend, "perceptron_epoch")
        self._W = W
        return lambda y, order: epoch(X, y, order, W)

    def _finish(self, X):
        self.coef_ = self._W
        del self._W

    def _scores(self, X):
        import fastnn

        return fastnn.linear_forward(X, self.coef_.T, backend=self.backend)


class KernelPerceptron(_EpochClassifier):
    """Kernel multiclass perceptron (Algorithm 2): w_c = sum_i alpha[c, i] phi(x_i).

    Training uses only the Gram matrix K of the training set (fastnn.gram); each epoch visits
    every example once and on a mistake moves alpha[yhat, i] -= 1, alpha[y_i, i] += 1. Prediction
    uses only the training points with a nonzero column of alpha (the support vectors):
    score_c(x) = sum_{i in support} alpha[c, i] k(x_i, x), computed by fastnn.gram_matvec in tiles
    of test rows x support vectors, so predicting on a million rows stays within working_memory.

    With kernel_cache (MiB) set, fit never forms K: the rows a mistake needs are computed on demand
    (fastnn.gram_rows) and kept in an LRU cache of that size (LIBSVM's kernel cache). The updates are
    those of the in-memory fit on a compiled backend (running scores, the same additions in the same
    order); a cache as large as K computes each row at most once.

    Parameters
    ----------
    kernel : 'rbf' (default), 'poly' or 'linear', as in fastnn.gram
    gamma : float or None (1 / n_features), degree : int (3), coef0 : float (1.0): as in fastnn.gram
    max_epochs, shuffle, random_state, backend, dtype : as in Perceptron
    kernel_cache : None (default: fit computes the whole Gram matrix) or MiB of kernel rows to keep
        while training without it; must hold at least one row (n_train values of the training dtype)
    working_memory : None (1024) or MiB bounding the kernel tiles of predict/decision_function and
        of the row computations of a streaming fit (see fastnn.gram_matvec)

    Attributes
    ----------
    classes_ : (n_classes,)
    dual_coef_ : (n_classes, n_train) alpha, in the training dtype
    support_ : (n_support,) indices of the training points with a nonzero column of alpha
    support_vectors_ : (n_support, n_features) those training points
    n_features_in_, n_iter_, mistakes_ : as in Perceptron
    kernel_rows_computed_ : kernel rows computed by a streaming fit (n_train for an in-memory one)
    """

    def __init__(self, *, kernel="rbf", gamma=None, degree=3, coef0=1.0, max_epochs=20, shuffle=True,
                 random_state=None, backend=None, dtype=None, kernel_cache=None, working_memory=None):
        super().__init__(max_epochs=max_epochs, shuffle=shuffle, random_state=random_state, backend=backend,
                         dtype=dtype)
        self.kernel = kernel
        self.gamma = gamma
        self.degree = degree
        self.coef0 = coef0
        self.kernel_cache = kernel_cache
        self.working_memory = working_memory

    def _check_params(self):
        super()._check_params()
        if self.kernel not in KERNEL_FUNCTIONS:
            raise ValueError(f"kernel must be one of {KERNEL_FUNCTIONS}, got {self.kernel!r}")
        gamma, degree, coef0 = self.gamma, self.degree, self.coef0
        if gamma is not None and (isinstance(gamma, bool) or not isinstance(gamma, numbers.Real)
                                  or not (math.isfinite(gamma) and gamma > 0)):
            raise ValueError(f"gamma must be a positive finite number or None, got {gamma!r}")
        if (isinstance(degree, (bool, np.bool_)) or not isinstance(degree, numbers.Integral)
                or not 0 <= int(degree) <= MAX_INT):
            raise ValueError(f"degree must be a non-negative integer (at most 2**40), got {degree!r}")
        if isinstance(coef0, bool) or not isinstance(coef0, numbers.Real) or not math.isfinite(coef0):
            raise ValueError(f"coef0 must be a finite number, got {coef0!r}")
        self._check_memory_params()

    def _check_memory_params(self):
        cache = self.kernel_cache
        if cache is not None and (isinstance(cache, bool) or not isinstance(cache, numbers.Real)
                                  or not (math.isfinite(cache) and cache > 0)):
            raise ValueError(f"kernel_cache must be None or a positive number of MiB, got {cache!r}")
        _working_memory_bytes(self.working_memory)

    FILE_FORMAT = "fastnn.KernelPerceptron/1"
    ARRAYS = ("dual_coef", "support", "support_vectors")

    def _restore(self, arrays, classes, n_features, dtype):
        dual_coef = arrays["dual_coef"]
        if dual_coef.ndim != 2:
            raise ValueError(f"dual_coef has shape {dual_coef.shape}, expected (n_classes, n_train)")
        self.dual_coef_ = _checked_array("dual_coef", dual_coef, (len(classes), dual_coef.shape[1]), dtype)
        support = np.flatnonzero(np.any(self.dual_coef_ != 0, axis=0))
        if arrays["support"].shape != support.shape or not np.array_equal(arrays["support"], support):
            raise ValueError("support does not list the columns of dual_coef that are not zero")
        self.support_ = support
        self.support_vectors_ = _checked_array("support_vectors", arrays["support_vectors"],
                                               (len(support), n_features), dtype)
        self._support_coef = np.ascontiguousarray(self.dual_coef_[:, support])

    def _gram(self, X, Y=None):
        return gram(X, Y, kernel=self.kernel, gamma=self.gamma, degree=self.degree, coef0=self.coef0,
                    backend=self.backend)

    def _init_state(self, X, n_classes):
        self._fit_dtype = X.dtype
        if self.kernel_cache is not None:
            return self._init_streaming_state(X, n_classes)
        self.kernel_rows_computed_ = X.shape[0]
        K = self._gram(X)
        alpha = np.zeros((n_classes, X.shape[0]), dtype=X.dtype)
        scores = np.zeros_like(alpha)  # = alpha @ K
        epoch = _epochs._epoch_kernel(self.backend, "kernel_perceptron_epoch")
        self._alpha = alpha
        return lambda y, order: epoch(K, y, order, alpha, scores)

    def _finish(self, X):
        self.dual_coef_ = self._alpha
        del self._alpha
        self.support_ = np.flatnonzero(np.any(self.dual_coef_ != 0, axis=0))
        self.support_vectors_ = np.ascontiguousarray(X[self.support_])
        self._support_coef = np.ascontiguousarray(self.dual_coef_[:, self.support_])

    def _init_streaming_state(self, X, n_classes):
        """Training without K: the epoch of fastnn.models._streaming over an LRU cache of kernel rows."""
        params = dict(kernel=self.kernel, gamma=self.gamma, degree=self.degree, coef0=self.coef0,
                      backend=self.backend)
        cache = KernelRowCache(X, self.kernel_cache, params, self.working_memory)
        alpha = np.zeros((n_classes, X.shape[0]), dtype=X.dtype)
        scores = np.zeros_like(alpha)  # = alpha @ K, kept up to date as the compiled epochs do
        self._alpha = alpha

        def run_epoch(y, order):
            mistakes = streaming_epoch(cache, y, order, alpha, scores)
            self.kernel_rows_computed_ = cache.rows_computed
            return mistakes

        self.kernel_rows_computed_ = 0
        return run_epoch

    def _scores(self, X):
        """(n_samples, n_classes): sum over support vectors of alpha * k(sv, x), in working_memory tiles."""
        if len(self.support_) == 0:
            return np.zeros((X.shape[0], len(self.classes_)), dtype=self._fit_dtype)
        return gram_matvec(X, self.support_vectors_, self._support_coef.T, kernel=self.kernel, gamma=self.gamma,
                           degree=self.degree, coef0=self.coef0, working_memory=self.working_memory,
                           backend=self.backend)
