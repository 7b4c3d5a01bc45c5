"""Losses that return their value and the gradient w.r.t. their input in one call."""
import numpy as np

from . import _validation as v
from ._config import resolve


def softmax_cross_entropy(logits, y, *, backend=None):
    """Mean softmax cross-entropy over a batch and its gradient.

    Parameters
    ----------
    logits : (N, C) float32 or float64
    y : (N,) integer class labels in [0, C)

    Returns
    -------
    loss : float, mean over the batch of -log softmax(logits)[i, y_i] (log-sum-exp, finite
        for finite logits of any size)
    dlogits : (N, C), dtype of logits: (softmax(logits) - onehot(y)) / N
    """
    logits = v.float_array("logits", logits, ndim=2)
    n, n_classes = logits.shape
    y = v.class_labels("y", y, n, n_classes)
    dlogits = np.empty_like(logits)
    loss = resolve(backend).softmax_cross_entropy(logits, y, dlogits)
    return float(loss), dlogits


def logistic_loss(scores, y, *, backend=None):
    """Mean logistic loss ln(1 + exp(-y * s)) for labels y in {-1, +1}, and its gradient.

    Parameters
    ----------
    scores : (N,) float32 or float64
    y : (N,) numeric labels, each -1 or +1

    Returns
    -------
    loss : float, computed stably for scores of any size
    dscores : (N,), dtype of scores: -y * sigmoid(-y * s) / N, i.e. (sigmoid(y s) - 1) y / N
    """
    scores = v.float_array("scores", scores, ndim=1)
    y = v.signed_labels("y", y, scores.shape[0], scores.dtype)
    dscores = np.empty_like(scores)
    loss = resolve(backend).logistic_loss(scores, y, dscores)
    return float(loss), dscores
