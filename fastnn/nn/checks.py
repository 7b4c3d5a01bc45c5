"""The seed's two checkers: backprop against central differences, and gradient magnitudes by batch size.

check_gradients compares, entry by entry, the gradient backprop computes with
(F(w + eps) - F(w - eps)) / (2 eps), F the mean cross-entropy of a batch plus the L2 term. It works
on a float64 copy of the model: in float32 a difference quotient with eps = 1e-3 is mostly rounding.
Where moving an entry by +-eps flips a ReLU on or off for some example, the loss has a kink inside
the difference and the two numbers legitimately differ: such entries are flagged (at_kink) and left
out of max_relative_error.
gradient_magnitudes computes the L1 norm of the first layer's weight gradient on batches of
different sizes: mean-loss gradients estimate the same full gradient, so they should be of the same
magnitude (a sum instead of a mean would grow with the batch).
"""
from dataclasses import dataclass

import numpy as np

from .layers import ReLU
from .losses import SoftmaxCrossEntropy


@dataclass(frozen=True)
class GradientEntry:
    """One checked entry: parameter `name` at `index` of the layer-with-parameters number `layer`
    (0-based: the seed's L1 layer is 0). at_kink: a ReLU switched between w - eps and w + eps."""

    layer: int
    name: str
    index: tuple
    backprop: float
    numeric: float
    at_kink: bool = False

    @property
    def relative_error(self):
        scale = max(abs(self.backprop), abs(self.numeric))
        return abs(self.backprop - self.numeric) / scale if scale > 0 else 0.0

    def __str__(self):
        return (f"Check the gradient of {self.name}{list(self.index)} in the L{self.layer + 1} layer from "
                f"backpropagation: {self.backprop:.7f} and from approximation: {self.numeric:.7f} "
                f"(relative error {self.relative_error:.1e}{', at a ReLU kink' if self.at_kink else ''})")


# Backprop and float64 central differences with eps = 1e-3 agree to ~1e-7 relatively away from kinks
# (the O(eps^2) truncation error); a wrong backward pass is off by far more.
RELATIVE_ERROR_THRESHOLD = 1e-4


class GradientCheck(list):
    """The checked entries (a list of GradientEntry)."""

    def passed(self, threshold=RELATIVE_ERROR_THRESHOLD):
        """True when every entry not at a ReLU kink agrees within `threshold` (relative error)."""
        return self.max_relative_error <= threshold

    @property
    def max_relative_error(self):
        """The largest relative error among the entries not at a ReLU kink."""
        return max((entry.relative_error for entry in self if not entry.at_kink), default=0.0)

    @property
    def n_at_kink(self):
        return sum(entry.at_kink for entry in self)

    def worst(self, k=5):
        return sorted(self, key=lambda entry: entry.relative_error, reverse=True)[:k]


def _data_loss(model, X, y):
    """(mean cross-entropy, the on/off pattern of every ReLU) at the model's current parameters."""
    loss, _ = SoftmaxCrossEntropy()(model.forward(X, training=True), y, model.backend)
    pattern = b"".join(layer.mask.tobytes() for layer in model.layers if isinstance(layer, ReLU))
    return loss, pattern


def check_gradients(model, X, y, *, eps=1e-3, weight_decay=0.0, max_entries=None, random_state=0):
    """Backprop vs central differences for the entries of every parameter of `model` on (X, y).

    Parameters
    ----------
    model : fastnn.nn.Sequential (not modified: the check runs on a float64 copy)
    X : (N, *input_shape) float, y : (N,) int labels: the batch the loss is averaged over
    eps : the step of the central difference (the seed's 1e-3)
    weight_decay : lambda of the L2 term lambda ||W||^2 included in the loss
    max_entries : check at most this many entries per parameter: the half with the largest backprop
        gradients, the rest drawn (random_state) among the other non-zero ones, so that no check is
        spent on an entry whose gradient is exactly zero (a border pixel's weight, say) while others
        are not; None checks every entry

    Returns
    -------
    GradientCheck: one GradientEntry per checked entry, with both numbers and the relative error
    """
    model = model.copy(np.float64)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    weight_slices = model.weight_slices
    loss, dlogits = SoftmaxCrossEntropy()(model.forward(X, training=True), y, model.backend)
    model.backward(dlogits)
    grads = model.grads.copy()
    for a, b in weight_slices:
        grads[a:b] += 2.0 * weight_decay * model.params[a:b]

    rng = np.random.default_rng(random_state)
    check = GradientCheck()
    ordinals = {layer: k for k, layer in enumerate(sorted({layer for layer, *_ in model.param_slices}))}
    for layer, name, start, stop in model.param_slices:
        decayed = (start, stop) in weight_slices
        shape = model.layers[layer].param_shapes()[name]
        size = stop - start
        picks = np.arange(size) if max_entries is None else _informative_entries(grads[start:stop], max_entries, rng)
        for flat in picks:
            j = start + int(flat)
            saved = model.params[j]
            model.params[j] = saved + eps
            plus, plus_pattern = _data_loss(model, X, y)
            model.params[j] = saved - eps
            minus, minus_pattern = _data_loss(model, X, y)
            model.params[j] = saved
            numeric = (plus - minus) / (2 * eps)
            if decayed:  # only w_j's own term of lambda ||W||^2 changes: no O(P) sum per entry
                numeric += weight_decay * ((saved + eps) ** 2 - (saved - eps) ** 2) / (2 * eps)
            index = tuple(int(i) for i in np.unravel_index(int(flat), shape))
            check.append(GradientEntry(ordinals[layer], name, index, float(grads[j]), numeric,
                                       at_kink=plus_pattern != minus_pattern))
    return check


def _informative_entries(grad, k, rng):
    """Up to k flat indices into grad, largest |grad| first: ceil(k/2) of the largest, then random
    non-zero ones, then (only if the non-zero ones run out) zeros."""
    order = np.argsort(-np.abs(grad), kind="stable")
    if k >= grad.size:
        return order
    n_top = -(-k // 2)
    rest = order[n_top:]
    nonzero = rest[grad[rest] != 0]
    drawn = rng.choice(nonzero, min(k - n_top, nonzero.size), replace=False)
    zeros = rest[grad[rest] == 0][:k - n_top - drawn.size]
    return np.concatenate([order[:n_top], drawn, zeros]).astype(np.int64)


def gradient_magnitudes(model, X, y, *, batch_sizes=(50, 5000), random_state=0):
    """{batch size: L1 norm of the first layer's weight gradient} on random batches of X.

    The seed's magnitude check: with a mean loss, batches of 50 and 5000 estimate the same gradient,
    so the norms should be of the same magnitude. A batch size above len(X) uses all of X.
    """
    rng = np.random.default_rng(random_state)
    first = next((start, stop) for _, _, start, stop in model.param_slices)
    norms = {}
    X = np.asarray(X, dtype=model.dtype)
    y = np.asarray(y, dtype=np.int64)
    for batch in batch_sizes:
        rows = rng.choice(len(X), min(batch, len(X)), replace=False)
        logits = model.forward(X[rows], training=True)
        _, dlogits = SoftmaxCrossEntropy()(logits, y[rows], model.backend)
        model.backward(dlogits)
        norms[batch] = float(np.abs(model.grads[first[0]:first[1]]).sum())
    return norms
