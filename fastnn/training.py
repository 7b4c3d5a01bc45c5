"""A whole training epoch of a dense network as one kernel: fastnn.mlp_train_epoch.

At small batches a training step costs less than the Python that would drive it layer by layer, so
the step (forward, softmax cross-entropy, backward, L2, optimizer update) and the loop over the
epoch's batches run inside the backend. fastnn.backends.training_ref documents the arithmetic;
the compiled backends do the same, batch for batch. The training system (fastnn.nn.Trainer) calls
this for dense models at small batches and drives layers one by one otherwise.
"""
import math

import numpy as np

from . import _validation as v
from ._config import get_backend, resolve
from ._interrupt import BATCH_OVERHEAD_MACS, UPDATE_MACS_PER_PARAMETER, chunk_items, deferred_interrupt
from .backends import training_ref as ref

ACTIVATIONS = {"relu": ref.RELU, "sigmoid": ref.SIGMOID}
OPTIMIZERS = {"sgd": ref.SGD, "adam": ref.ADAM}


def _positive_int(name, value):
    """value as a Python int in [1, 2**40] (fastnn._validation.MAX_INT); ValueError naming `name`."""
    return v.integer(name, value, 1)


def _layer_sizes(sizes):
    """sizes as int64 after checking each entry (in [1, 2**40]) and the parameter count (at most 2**31 - 1)."""
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
        raise ValueError(f"sizes must be a 1-D sequence of at least two positive integers (input, ..., "
                         f"classes), got {sizes!r}")
    array = np.asarray(sizes, dtype=object) if not isinstance(sizes, np.ndarray) else sizes
    if array.ndim != 1 or array.size < 2:
        raise ValueError(f"sizes must be a 1-D sequence of at least two positive integers (input, ..., "
                         f"classes), got {sizes!r}")
    values = [v.integer(f"sizes[{i}]", size, 1) for i, size in enumerate(array.tolist())]
    v.element_count("a network", ref.n_parameters(values), f"sizes={values}")
    return np.array(values, dtype=np.int64)


def dense_work_elements(sizes, rows):
    """An upper bound on the elements the fused dense epoch allocates (activations and gradients of `rows`
    examples, transposed weights, parameter-sized buffers) for layer widths `sizes`."""
    return 4 * rows * sum(sizes) + 4 * ref.n_parameters(list(sizes))




def _hyperparameters(learning_rate, momentum, betas, epsilon, weight_decay):
    beta1, beta2 = betas
    checks = {
        "learning_rate": (learning_rate, lambda x: x > 0),
        "momentum": (momentum, lambda x: 0 <= x < 1),
        "betas[0]": (beta1, lambda x: 0 <= x < 1),
        "betas[1]": (beta2, lambda x: 0 <= x < 1),
        "epsilon": (epsilon, lambda x: x > 0),
        "weight_decay": (weight_decay, lambda x: x >= 0),
    }
    for name, (value, ok) in checks.items():
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not math.isfinite(value) or not ok(float(value)):
            raise ValueError(f"{name} is out of range: {value!r}")
    hyper = np.empty(ref.N_HYPER)
    hyper[[ref.LEARNING_RATE, ref.MOMENTUM, ref.BETA1, ref.BETA2, ref.EPSILON, ref.WEIGHT_DECAY]] = [
        learning_rate, momentum, beta1, beta2, epsilon, weight_decay]
    return hyper


def mlp_train_epoch(X, y, order, params, state, *, sizes, batch_size, activation="relu", optimizer="sgd",
                    step=0, learning_rate=0.01, momentum=0.0, betas=(0.9, 0.999), epsilon=1e-8,
                    weight_decay=0.0, backend=None):
    """Train a dense network for one epoch over X[order] in mini-batches.

    The network: sizes[0] -> ... -> sizes[-1] fully connected layers, `activation` after each but
    the last, softmax cross-entropy on the last. Batches are consecutive slices of `order` (the last
    one possibly shorter). Arithmetic: fastnn.backends.training_ref.

    Parameters
    ----------
    X : (N, sizes[0]) float32 or float64, finite
    y : (N,) integer labels in [0, sizes[-1])
    order : (M,) integer indices into X: the examples in the order they are visited
    params : (P,) dtype of X: W_0, b_0, W_1, b_1, ... flattened, W_l of shape (sizes[l], sizes[l+1]),
        before the epoch (not modified). P = fastnn.backends.training_ref.n_parameters(sizes).
    state : (2, P) dtype of X: the optimizer state before the epoch (SGD: the velocity in row 0;
        Adam: the moments in rows 0 and 1; zeros to start), not modified
    sizes : sequence of L+1 ints in [1, 2**40], with at most 2**31 - 1 parameters in all
    batch_size : int in [1, 2**40]; the work memory of min(batch_size, N) examples is at most 2**31 - 1 elements
    activation : 'relu' or 'sigmoid'
    optimizer : 'sgd' (with momentum; 0 is plain SGD) or 'adam'
    step : int in [0, 2**40], the number of Adam updates made before this epoch (its bias corrections)
    learning_rate, momentum, betas, epsilon, weight_decay : floats; weight_decay adds 2 weight_decay W
        to the weights' gradients (L2, not the biases)

    Returns
    -------
    params_new, state_new : (P,), (2, P): the parameters and optimizer state after the epoch
    loss : float, mean cross-entropy of the visited examples, each from the forward pass before its
        batch's update (NaN or inf when training diverged: the epoch then stops at that batch, unapplied)
    accuracy : float, fraction of the visited examples predicted correctly in those forward passes
    n_updates : int, the number of batches whose update was applied
    """
    epochs = DenseEpochs(X, y, sizes=sizes, batch_size=batch_size, activation=activation, optimizer=optimizer,
                         learning_rate=learning_rate, momentum=momentum, betas=betas, epsilon=epsilon,
                         weight_decay=weight_decay, backend=backend)
    return run_epoch_once(epochs, order, params, state, step)


class FusedEpochs:
    """Validated training data and settings for repeated fused epochs, updating parameters in place.

    What a fused epoch function (fastnn.mlp_train_epoch, fastnn.cnn1d_train_epoch) does once per call,
    checking X, y and the settings, is done here once for a whole training run; run() then only checks
    the order and the arrays' layout. Subclasses describe the network and call their backend kernel.
    """

    def _setup(self, X, y, n_classes, n_params, batch_size, optimizer, hyper_arguments):
        n = X.shape[0]
        self.X = X
        self.y = v.class_labels("y", y, n, n_classes)
        v.finite("X", self.X)
        self.n_params = n_params
        self.batch_size = _positive_int("batch_size", batch_size)
        v.element_count("the fused epoch's work buffers", self._work_elements(min(self.batch_size, n)),
                        f"batch_size={self.batch_size} and this network")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
        self.optimizer = OPTIMIZERS[optimizer]
        self.hyper = _hyperparameters(**hyper_arguments)

    def check_order(self, order):
        return v.indices("order", order, self.X.shape[0], "training examples")

    def _set_chunks(self, backend, macs_per_example):
        """Batches per kernel call: about CHUNK_SECONDS of work (fastnn._interrupt), so Ctrl-C is seen."""
        name = get_backend() if backend is None else backend
        overhead = BATCH_OVERHEAD_MACS.get(name, 0) + UPDATE_MACS_PER_PARAMETER * self.n_params
        self.chunk_batches = chunk_items(name, macs_per_example * self.batch_size, overhead, self.n_params)

    def run(self, order, params, state, step, progress=None):
        """Train on X[order] batch by batch, updating params (P,) and state (2, P) in place.

        order: int64 indices from check_order; params, state: C-contiguous, writeable, dtype of X;
        step: Adam updates made so far. Returns (loss_sum, n_correct, n_updates) as in the backend.

        The batches run in kernel calls of chunk_batches whole batches each, carrying the optimizer
        state and step, which gives the parameters and state of one call bit for bit (loss_sum only
        sums the calls' sums). After each call, progress(n_updates) is called if given, then a Ctrl-C
        raises KeyboardInterrupt: params and state then hold the batches reported to progress.
        """
        for name, array, shape in (("params", params, (self.n_params,)), ("state", state, (2, self.n_params))):
            if (not isinstance(array, np.ndarray) or array.dtype != self.X.dtype or array.shape != shape
                    or not array.flags.c_contiguous or not array.flags.writeable):
                raise ValueError(f"{name} must be a writeable C-contiguous {self.X.dtype} array of shape {shape}")
        if np.shares_memory(params, state):
            raise ValueError("params and state must not overlap")
        loss_sum, n_correct, n_updates = 0.0, 0, 0
        span = self.chunk_batches * self.batch_size
        with deferred_interrupt() as check:
            for start in range(0, len(order), span):
                part = order[start:start + span]
                part_loss, part_correct, part_updates = self._kernel(part, params, state, step + n_updates)
                loss_sum += float(part_loss)
                n_correct += int(part_correct)
                n_updates += int(part_updates)
                if progress is not None:
                    progress(int(part_updates))
                check()
                if part_updates < -(-len(part) // self.batch_size):  # diverged: the kernel stopped there
                    break
        return loss_sum, n_correct, n_updates

    def _kernel(self, order, params, state, step):
        raise NotImplementedError

    def _work_elements(self, rows):
        """Elements of work memory the backend allocates for batches of `rows` examples (a bound)."""
        raise NotImplementedError


def run_epoch_once(epochs, order, params, state, step):
    """The body of the one-call epoch functions: check, copy, run, and average over visited examples."""
    order = epochs.check_order(order)
    if order.size == 0:
        raise ValueError("order is empty: an epoch must visit at least one example")
    params = v.float_array("params", params, ndim=1, dtype=epochs.X.dtype)
    v.same_shape("params", params, f"the network's {epochs.n_params} parameters", (epochs.n_params,))
    state = v.float_array("state", state, ndim=2, dtype=epochs.X.dtype)
    v.same_shape("state", state, "the optimizer state (2, P)", (2, epochs.n_params))
    v.finite("params", params)
    v.finite("state", state)
    step = v.integer("step", step, 0)
    params_new = np.array(params, order="C", copy=True)
    state_new = np.array(state, order="C", copy=True)
    loss_sum, n_correct, n_updates = epochs.run(order, params_new, state_new, int(step))
    n_visited = min(order.size, (n_updates + 1) * epochs.batch_size)
    return params_new, state_new, loss_sum / n_visited, n_correct / n_visited, n_updates


class DenseEpochs(FusedEpochs):
    """FusedEpochs of a dense network (fastnn.mlp_train_epoch)."""

    def __init__(self, X, y, *, sizes, batch_size, activation="relu", optimizer="sgd", learning_rate=0.01,
                 momentum=0.0, betas=(0.9, 0.999), epsilon=1e-8, weight_decay=0.0, backend=None):
        X = v.float_array("X", X, ndim=2)
        self.sizes = _layer_sizes(sizes)
        if self.sizes[0] != X.shape[1]:
            raise ValueError(f"sizes[0] = {self.sizes[0]} but X has {X.shape[1]} features (shape {X.shape})")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.activation = ACTIVATIONS[activation]
        self._setup(X, y, int(self.sizes[-1]), ref.n_parameters(self.sizes.tolist()), batch_size, optimizer,
                    dict(learning_rate=learning_rate, momentum=momentum, betas=betas, epsilon=epsilon,
                         weight_decay=weight_decay))
        self.kernel = resolve(backend).mlp_train_epoch
        # multiply-adds per example: the forward product and two backward ones per layer
        self._set_chunks(backend, 3 * int(np.sum(self.sizes[:-1] * self.sizes[1:])))

    def _work_elements(self, rows):
        return dense_work_elements(self.sizes.tolist(), rows)

    def _kernel(self, order, params, state, step):
        return self.kernel(self.X, self.y, order, self.sizes, self.activation, self.batch_size, params,
                           self.optimizer, state, step, self.hyper)
