"""Losses of the training system: the mean softmax cross-entropy of a batch of logits."""
import numpy as np

from .._config import resolve


class SoftmaxCrossEntropy:
    """Mean over the batch of -log softmax(logits)[i, y_i], computed by the backend kernel."""

    def __call__(self, logits, y, backend=None):
        """(loss, dlogits) for logits (N, C) and int64 labels y (N,) in [0, C), already validated.

        dlogits = (softmax(logits) - onehot(y)) / N, the gradient of the mean loss.
        """
        dlogits = np.empty_like(logits)
        loss = resolve(backend).softmax_cross_entropy(logits, y, dlogits)
        return float(loss), dlogits


def cross_entropy(logits, y):
    """Mean softmax cross-entropy of logits (N, C) for labels y (N,), in float64 (for reports)."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=1))
    return float(np.mean(log_sum - shifted[np.arange(len(y)), y]))
