"""Training epochs of the multiclass perceptron (Algorithm 1) and the kernel perceptron (Algorithm 2).

One call runs one pass over the training examples in a given order, entirely inside the backend
(no Python per example on the compiled backends). The estimators in fastnn.models call these
epoch after epoch; they are public so that any training loop can use them.

Neither function modifies the caller's arrays: the state (W, or alpha and scores) is copied and
the updated copy returned. Ties in a prediction go to the lowest class index (np.argmax).
"""

import numpy as np

from . import _validation as v
from ._config import resolve


def _epoch_kernel(backend, name):
    """The backend function `name` of backend `backend` (None: the current backend)."""
    return getattr(resolve(backend), name)




def _check_scores_cannot_overflow(X, W, n_updates):
    """ValueError when a score W[c] . X[i] of this epoch could overflow X's dtype.

    After u updates every weight is within max|W| + u max|X| of zero, so a score is at most
    D (max|W| + u max|X|) max|X| in magnitude. Overflowing scores made the backends disagree
    (infinite weights on one, unchanged ones on another); a clear error is the defined result.
    """
    if X.size == 0:
        return
    x_max = float(np.abs(X).max())
    w_max = float(np.abs(W).max()) if W.size else 0.0
    bound = X.shape[1] * (w_max + n_updates * x_max) * x_max  # inf when it overflows float64 itself
    limit = float(np.finfo(X.dtype).max) / 4
    if bound > limit:
        raise ValueError(f"X has values up to {x_max:.3g} (W up to {w_max:.3g}): the scores W . x of an epoch "
                         f"of {n_updates} steps could overflow {X.dtype} (bound {bound:.3g}); scale the data")


def _labels(y, n, n_classes, what):
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"y must have shape ({n},), one label per {what}, got {labels.shape}")
    return v.class_labels("y", labels, n, n_classes)


def perceptron_epoch(X, y, order, W, *, backend=None):
    """One epoch of the multiclass perceptron (Algorithm 1) over the examples X[order].

    For each i in order: yhat = argmax_c W[c] . X[i] (ties: lowest c); if yhat != y[i]:
    W[yhat] -= X[i] and W[y[i]] += X[i].

    Parameters
    ----------
    X : (N, D) float32 or float64, finite, small enough that no score of the epoch can overflow
        (D (max|W| + M max|X|) max|X| below a quarter of the dtype's largest value)
    y : (N,) integer labels in [0, C)
    order : (M,) integer indices in [0, N), the examples in the order they are visited (repeats allowed)
    W : (C, D), dtype of X: the weights before the epoch (not modified)

    Returns
    -------
    W_new : (C, D), dtype of X: the weights after the epoch
    n_mistakes : int, the number of updates made
    """
    X = v.float_array("X", X, ndim=2)
    n, n_features = X.shape
    W = v.float_array("W", W, ndim=2, dtype=X.dtype)
    if W.shape[1] != n_features:
        raise ValueError(f"W has shape {W.shape}, expected (n_classes, {n_features}) for X of shape {X.shape}")
    y = _labels(y, n, W.shape[0], "row of X")
    order = v.indices("order", order, n, "training examples")
    v.finite("X", X)
    v.finite("W", W)
    _check_scores_cannot_overflow(X, W, order.shape[0])
    W_new = np.array(W, order="C", copy=True)
    mistakes = _epoch_kernel(backend, "perceptron_epoch")(X, y, order, W_new)
    return W_new, int(mistakes)


def kernel_perceptron_epoch(K, y, order, alpha, scores=None, *, backend=None):
    """One epoch of the kernel multiclass perceptron (Algorithm 2) over the examples in `order`.

    For each i in order: yhat = argmax_c sum_m alpha[c, m] K[m, i] (ties: lowest c); if
    yhat != y[i]: alpha[yhat, i] -= 1 and alpha[y[i], i] += 1. The compiled backends predict from
    scores = alpha @ K, kept up to date (a mistake on i adds K[i] to scores[y[i]] and subtracts it
    from scores[yhat]); the NumPy reference recomputes alpha @ K[:, i] for every prediction.

    Parameters
    ----------
    K : (N, N) float32 or float64: the Gram matrix of the training set, K[m, i] = k(x_m, x_i). It
        must be finite; this is not checked (scanning N^2 entries costs more than an epoch usually
        does). NaN cannot crash any backend but makes the predictions unspecified.
    y : (N,) integer labels in [0, C)
    order : (M,) integer indices in [0, N), the examples in the order they are visited
    alpha : (C, N), dtype of K: the dual coefficients before the epoch (not modified)
    scores : (C, N), dtype of K, or None: alpha @ K (computed when None). Pass the scores returned
        by the previous epoch to continue training without recomputing them; they must equal
        alpha @ K (up to rounding), which is not checked.

    Returns
    -------
    alpha_new : (C, N), dtype of K
    scores_new : (C, N), dtype of K: alpha_new @ K
    n_mistakes : int
    """
    K = v.float_array("K", K, ndim=2)
    n = K.shape[0]
    if K.shape != (n, n):
        raise ValueError(f"K must be a square (N, N) Gram matrix of the training set, got shape {K.shape}")
    alpha = v.float_array("alpha", alpha, ndim=2, dtype=K.dtype)
    if alpha.shape[1] != n:
        raise ValueError(f"alpha has shape {alpha.shape}, expected (n_classes, {n}) for K of shape {K.shape}")
    y = _labels(y, n, alpha.shape[0], "row of K")
    order = v.indices("order", order, n, "training examples")
    v.finite("alpha", alpha)  # K is not scanned: that would cost more than a typical epoch
    alpha_new = np.array(alpha, order="C", copy=True)
    if scores is None:
        scores_new = np.matmul(alpha_new, K)
    else:
        scores = v.float_array("scores", scores, ndim=2, dtype=K.dtype)
        v.same_shape("scores", scores, "alpha", alpha.shape)
        v.finite("scores", scores)
        scores_new = np.array(scores, order="C", copy=True)
    mistakes = _epoch_kernel(backend, "kernel_perceptron_epoch")(K, y, order, alpha_new, scores_new)
    return alpha_new, scores_new, int(mistakes)
