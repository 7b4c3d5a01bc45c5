"""Optimizers working on a model's flat parameter vector: SGD with momentum, and Adam.

Both keep their state in one (2, P) array, the layout the fused epoch kernel takes, so the
trainer can switch between layer-by-layer steps and fused epochs without converting anything.
The arithmetic is fastnn.backends.training_ref's (the same the compiled epochs do):

    L2:   g = dJ/dW + 2 weight_decay W on the weights (not the biases), seed eq. 13
    SGD:  v = momentum v + g;  w = w - learning_rate v      (momentum 0 is plain SGD)
    Adam: m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
          w = w - learning_rate / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + epsilon)
"""
import math
import numbers

import numpy as np

from ..backends import training_ref as ref


def _number(name, value, low, high=math.inf, *, low_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < low or value >= high or (low_open and value == low):
        bounds = f"{'(' if low_open else '['}{low}, {high})"
        raise ValueError(f"{name} must lie in {bounds}, got {value!r}")
    return float(value)


class Optimizer:
    """State and update rule for a flat parameter vector. n_updates counts the updates made."""

    name = None

    def __init__(self, learning_rate, weight_decay):
        self.learning_rate = _number("learning_rate", learning_rate, 0.0, low_open=True)
        self.weight_decay = _number("weight_decay", weight_decay, 0.0)
        self.state = None
        self.n_updates = 0

    def setup(self, params):
        """Zero state for params (P,), and no updates made."""
        self.state = np.zeros((2, params.size), dtype=params.dtype)
        self.n_updates = 0

    def epoch_arguments(self):
        """The keyword arguments of fastnn.mlp_train_epoch that describe this optimizer."""
        raise NotImplementedError

    def step(self, params, grads, weight_slices):
        """One update of params (in place) from grads, which gets the L2 term added in place."""
        ref.add_weight_decay(grads, params, weight_slices, self.weight_decay)
        self.n_updates += 1
        self._update(params, grads)


class SGD(Optimizer):
    """Mini-batch SGD with momentum: v = momentum v + g; w = w - learning_rate v."""

    name = "sgd"

    def __init__(self, learning_rate=0.01, momentum=0.0, weight_decay=0.0):
        super().__init__(learning_rate, weight_decay)
        self.momentum = _number("momentum", momentum, 0.0, 1.0)

    def __repr__(self):
        return f"SGD(learning_rate={self.learning_rate}, momentum={self.momentum}, weight_decay={self.weight_decay})"

    def epoch_arguments(self):
        return dict(optimizer="sgd", learning_rate=self.learning_rate, momentum=self.momentum,
                    weight_decay=self.weight_decay)

    def _update(self, params, grads):
        ref.sgd_update(params, grads, self.state[0], self.learning_rate, self.momentum)


class Adam(Optimizer):
    """Adam (Kingma and Ba), with L2 added to the gradient (not decoupled weight decay)."""

    name = "adam"

    def __init__(self, learning_rate=0.001, betas=(0.9, 0.999), epsilon=1e-8, weight_decay=0.0):
        super().__init__(learning_rate, weight_decay)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (_number("betas[0]", betas[0], 0.0, 1.0), _number("betas[1]", betas[1], 0.0, 1.0))
        self.epsilon = _number("epsilon", epsilon, 0.0, low_open=True)

    def __repr__(self):
        return (f"Adam(learning_rate={self.learning_rate}, betas={self.betas}, epsilon={self.epsilon}, "
                f"weight_decay={self.weight_decay})")

    def epoch_arguments(self):
        return dict(optimizer="adam", learning_rate=self.learning_rate, betas=self.betas, epsilon=self.epsilon,
                    weight_decay=self.weight_decay, step=self.n_updates)

    def _update(self, params, grads):
        ref.adam_update(params, grads, self.state[0], self.state[1], self.n_updates, self.learning_rate,
                        self.betas[0], self.betas[1], self.epsilon)


OPTIMIZERS = {"sgd": SGD, "adam": Adam}
