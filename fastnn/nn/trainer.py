"""The epoch loop: mini-batches, per-epoch history, early stopping, divergence detection, progress bars.

Two ways to run an epoch, with the same arithmetic (fastnn.backends.training_ref):
  fused         dense models (Linear, act, ..., Linear) at batch sizes up to FUSED_MAX_BATCH, and conv
                stacks (Conv1D, ReLU, ..., Flatten, Linear) at any batch size: the whole epoch runs
                inside the backend (fastnn.training.DenseEpochs, fastnn.cnn_training.ConvEpochs), a few
                calls per epoch;
  layer by layer any Sequential at any batch size: forward, loss, backward and update per batch from
                Python, the products in BLAS. At large batches that overhead is negligible, and each
                batch's rows are split between fastnn's threads, one model replica per thread.
"""
import contextlib
import json
import math
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import _threads
from .. import _validation as v
from .._interrupt import deferred_interrupt
from ..cnn_training import ConvEpochs
from ..training import DenseEpochs
from .conv_layers import conv_stack_spec
from .layers import Sequential
from .losses import SoftmaxCrossEntropy, cross_entropy
from .optim import Optimizer

# Largest batch the fused epochs train; above it, BLAS products called per batch are as fast.
FUSED_MAX_BATCH = 64
# Smallest share of a batch a thread computes in a layer-by-layer epoch (Trainer._parallel_layer_epoch):
# a batch of 2 x 512 rows and more is split between two threads.
DATA_PARALLEL_MIN_ROWS = 512


class DivergenceError(FloatingPointError):
    """The training loss became NaN or infinite: the learning rate is too large for this model."""


@dataclass
class History:
    """Per-epoch metrics of a training run (lists indexed by epoch - 1) and where the best model was.

    loss, train_accuracy: with train_metrics 'running' (the default), the mean cross-entropy and the
    fraction of correct predictions over the epoch's mini-batches, each batch's taken in its forward
    pass before its update (what Keras reports); with 'exact', those of the model at the end of the
    epoch on the whole training set.
    val_loss, val_accuracy: of the model at the end of the epoch (empty without a validation set).
    time: seconds spent training up to the end of the epoch (the epochs' own work: no evaluation);
    wall_time: seconds since fit started up to the end of the epoch's evaluation, everything included
    (set-up, training, evaluation, exact training metrics, progress output, and the callbacks of the
    epochs before): what the user waits for.
    n_updates: optimizer updates made up to the end of the epoch.
    best_epoch: the epoch (1-based) with the highest validation accuracy (the last epoch without a
    validation set); stopped_early: True when patience ended training.
    train_metrics: 'running' or 'exact', how loss and train_accuracy were measured.
    """

    epoch: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    train_accuracy: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    time: list = field(default_factory=list)
    wall_time: list = field(default_factory=list)
    n_updates: list = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    train_metrics: str = "running"

    @property
    def n_updates_to_best(self):
        return self.n_updates[self.best_epoch - 1] if self.best_epoch else 0

    def to_dict(self):
        return {**asdict(self), "n_updates_to_best": self.n_updates_to_best}

    def save_json(self, path, **extra):
        """Write the history (and any extra JSON-able fields, e.g. settings) to path atomically."""
        temporary = f"{path}.tmp{os.getpid()}"
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump({**extra, "history": self.to_dict()}, f, indent=1)
        os.replace(temporary, path)
        return path


def accuracy(logits, y):
    """Fraction of rows whose largest logit (ties: lowest index) is at the label."""
    return float(np.mean(np.argmax(logits, axis=1) == y))


def evaluate(model, X, y):
    """(mean cross-entropy, accuracy) of model on X (N, *input_shape) with int labels y (N,).

    Every evaluation fit makes (validation, exact training metrics) is this one inference pass,
    model.predict_logits, so a faster inference serves them all.
    """
    logits = model.predict_logits(X)
    return cross_entropy(logits, y), accuracy(logits, y)


TRAIN_METRICS = ("running", "exact")
# An epoch's loss this many times above max(ln(n_classes), the untrained model's loss) means training
# exploded even if every number stays finite (a healthy run stays within a few times of both).
DIVERGENCE_FACTOR = 1e3
# Examples of the first epoch's order on which the untrained model's loss is measured.
INITIAL_LOSS_EXAMPLES = 256


class Trainer:
    """Trains a Sequential classifier with softmax cross-entropy.

    Parameters
    ----------
    model : fastnn.nn.Sequential whose outputs are logits
    optimizer : fastnn.nn.SGD or fastnn.nn.Adam
    batch_size : int >= 1
    epochs : maximum number of epochs
    patience : None, or stop after this many epochs without a better validation accuracy and restore
        the best weights (needs a validation set)
    shuffle : visit the examples in a new random order every epoch (np.random.default_rng(random_state))
    random_state : seed of the epoch orders
    fused : 'auto' (fused epochs for dense models at batch_size <= FUSED_MAX_BATCH and for conv stacks),
        True or False
    verbose : progress bar per epoch (tqdm) and a line of metrics per epoch, on stderr
    callbacks : functions called as callback(epoch, model, history) at the end of every epoch, after
        its metrics are recorded (e.g. to evaluate a test set per epoch)
    train_metrics : 'running' (default): an epoch's training loss and accuracy are the means over its
        mini-batches, each measured in the batch's own forward pass before its update (as Keras
        reports them); they come with the training pass and cost nothing. 'exact': the loss and
        accuracy of the model at the end of each epoch on the whole training set; this costs one more
        inference pass over the training set per epoch (for 784-128-10 on 10,000 examples, about a
        third of an epoch's arithmetic at large batches, where the epoch is BLAS-bound).
    """

    def __init__(self, model, optimizer, *, batch_size=5, epochs=30, patience=None, shuffle=True, random_state=None,
                 fused="auto", verbose=False, callbacks=(), train_metrics="running"):
        if not isinstance(model, Sequential):
            raise TypeError(f"model must be a fastnn.nn.Sequential, got {type(model).__name__}")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a fastnn.nn optimizer (SGD, Adam), got {type(optimizer).__name__}")
        for name, value, low in (("batch_size", batch_size, 1), ("epochs", epochs, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if patience is not None and (isinstance(patience, bool) or not isinstance(patience, (int, np.integer))
                                     or patience < 1):
            raise ValueError(f"patience must be None or an integer >= 1, got {patience!r}")
        if fused not in ("auto", True, False):
            raise ValueError(f"fused must be 'auto', True or False, got {fused!r}")
        if fused is True and model.dense_spec() is None and conv_stack_spec(model) is None:
            raise ValueError("fused=True needs a dense model (Linear, activation, ..., Linear) or a conv stack "
                             "(Conv1D, ReLU, ..., Conv1D, ReLU, Flatten, Linear)")
        check_train_metrics(train_metrics)
        self.model, self.optimizer = model, optimizer
        self.batch_size, self.epochs, self.patience = int(batch_size), int(epochs), patience
        self.shuffle, self.random_state, self.fused, self.verbose = shuffle, random_state, fused, verbose
        self.callbacks = list(callbacks)
        self.train_metrics = train_metrics
        self.loss = SoftmaxCrossEntropy()

    def uses_fused_epochs(self):
        if self.fused == "auto":
            dense = self.model.dense_spec() is not None and self.batch_size <= FUSED_MAX_BATCH
            return dense or conv_stack_spec(self.model) is not None
        return self.fused

    def _labels(self, name, y, n):
        y = np.asarray(y)
        return v.class_labels(name, y, n, self.model.n_outputs)

    def fit(self, X, y, X_val=None, y_val=None):
        """Train on X (N, *input_shape) with int labels y (N,); returns the History.

        X_val, y_val: the validation set for val_* metrics, best_epoch and early stopping.
        Raises DivergenceError when the loss becomes NaN or infinite (parameters are left as they
        were before the batch that diverged), or explodes while staying finite: an epoch's loss above
        DIVERGENCE_FACTOR times the larger of ln(n_classes) and the untrained model's loss
        (parameters are left as after that epoch).
        """
        started = time.perf_counter()
        model = self.model
        X = model.check_input(X)
        y = self._labels("y", y, X.shape[0])
        has_val = X_val is not None
        if has_val:
            X_val = model.check_input(X_val, "X_val")
            y_val = self._labels("y_val", y_val, X_val.shape[0])
        elif y_val is not None:
            raise ValueError("y_val was given without X_val")
        if self.patience is not None and not has_val:
            raise ValueError("early stopping (patience) needs a validation set: pass X_val and y_val")

        optimizer = self.optimizer
        if optimizer.state is None or optimizer.state.shape != (2, model.n_parameters) \
                or optimizer.state.dtype != model.dtype:
            optimizer.setup(model.params)
        run_epoch = self._fused_epoch(X, y) if self.uses_fused_epochs() else self._layer_epoch(X, y)
        rng = np.random.default_rng(self.random_state)
        history = History(train_metrics=self.train_metrics)
        best_score, best_params, waited = -math.inf, None, 0
        train_time, divergence_limit = 0.0, None
        for epoch in range(1, self.epochs + 1):
            order = rng.permutation(X.shape[0]) if self.shuffle else np.arange(X.shape[0])
            if divergence_limit is None:
                divergence_limit = self._divergence_limit(X[order[:INITIAL_LOSS_EXAMPLES]],
                                                          y[order[:INITIAL_LOSS_EXAMPLES]])
            start = time.perf_counter()
            loss, train_accuracy = run_epoch(order, epoch)
            train_time += time.perf_counter() - start
            self._check_divergence(epoch, loss, divergence_limit)
            score = self._record(history, epoch, loss, train_accuracy, train_time, (X, y),
                                 (X_val, y_val) if has_val else None)
            if not has_val or score > best_score:
                best_score, history.best_epoch, waited = score, epoch, 0
                if self.patience is not None:
                    best_params = model.params.copy()
            else:
                waited += 1
            history.wall_time.append(time.perf_counter() - started)
            self._report(history)
            for callback in self.callbacks:
                callback(epoch, model, history)
            if self.patience is not None and waited >= self.patience:
                history.stopped_early = True
                break
        if best_params is not None:
            model.params[...] = best_params
        return history

    def _record(self, history, epoch, loss, train_accuracy, train_time, train, validation):
        """Append the epoch's metrics to history (evaluating what train_metrics and validation ask for);
        returns the score that picks the best epoch: validation accuracy, else training accuracy."""
        if self.train_metrics == "exact":
            loss, train_accuracy = evaluate(self.model, *train)
        history.epoch.append(epoch)
        history.loss.append(loss)
        history.train_accuracy.append(train_accuracy)
        history.time.append(train_time)
        history.n_updates.append(self.optimizer.n_updates)
        if validation is None:
            return train_accuracy
        val_loss, val_accuracy = evaluate(self.model, *validation)
        history.val_loss.append(val_loss)
        history.val_accuracy.append(val_accuracy)
        return val_accuracy

    # ------------------------------------------------------------------ divergence
    def _divergence_limit(self, X, y):
        """The loss above which an epoch counts as exploded (see fit), from the untrained model on X, y."""
        initial_loss, _ = evaluate(self.model, X, y)
        return DIVERGENCE_FACTOR * max(math.log(self.model.n_outputs), initial_loss)

    def _check_divergence(self, epoch, loss, limit):
        advice = f"lower the learning rate (now {self.optimizer.learning_rate})"
        if not math.isfinite(loss):
            raise DivergenceError(
                f"training diverged in epoch {epoch}: the loss became {loss} after {self.optimizer.n_updates} "
                f"updates; {advice}")
        if math.isfinite(limit) and loss > limit:
            raise DivergenceError(
                f"training diverged in epoch {epoch}: the loss reached {loss:.4g} after {self.optimizer.n_updates} "
                f"updates, more than {DIVERGENCE_FACTOR:g} times the larger of ln(n_classes) and the untrained "
                f"model's loss ({limit / DIVERGENCE_FACTOR:.4g}); {advice}, or scale the inputs to a range "
                f"near [-1, 1]")

    # ------------------------------------------------------------------ the two kinds of epoch
    def _fused_epochs(self, X, y):
        """DenseEpochs or ConvEpochs for this model, data and optimizer."""
        arguments = self.optimizer.epoch_arguments()
        arguments.pop("step", None)
        conv_spec = conv_stack_spec(self.model)
        if conv_spec is not None:
            return ConvEpochs(X, y, batch_size=self.batch_size, backend=self.model.backend, **conv_spec, **arguments)
        sizes, activation = self.model.dense_spec()
        return DenseEpochs(X, y, sizes=sizes, batch_size=self.batch_size, activation=activation,
                           backend=self.model.backend, **arguments)

    def _fused_epoch(self, X, y):
        optimizer = self.optimizer
        epochs = self._fused_epochs(X, y)
        n_batches = -(-X.shape[0] // self.batch_size)

        def run(order, epoch):
            """(running loss, running accuracy) of one epoch over X[order]."""
            with self._progress(epoch, n_batches) as bar:
                def advance(n_updates):  # after each chunk of whole batches: Ctrl-C leaves params and count in step
                    optimizer.n_updates += n_updates
                    bar.update(n_updates)

                loss_sum, n_correct, n_updates = epochs.run(order, self.model.params, optimizer.state,
                                                            optimizer.n_updates, progress=advance)
            n_visited = min(len(order), (n_updates + 1) * self.batch_size)
            return loss_sum / n_visited, n_correct / n_visited

        return run

    def _layer_epoch(self, X, y):
        """run(order, epoch): one epoch layer by layer, returning (running loss, running accuracy).

        Each batch is gathered into one reused array, and the layers keep their activations and
        gradients in arrays reused from batch to batch (Sequential.reusing_buffers). Batches of at
        least DATA_PARALLEL_MIN_ROWS rows are split between threads (_parallel_layer_epoch); smaller
        ones run on this thread with BLAS single-threaded, as each thread of the parallel epoch does:
        their GEMMs are too small for BLAS's threads to pay, and on a busy machine a GEMM that waits
        for a descheduled BLAS worker takes a scheduler time slice (12-16 ms measured) instead of
        0.2 ms. Interleaved on the shared 2-core machine (load 6), one BLAS thread made an epoch of
        784-128-10 at batch 128 10x faster (4.1 -> 0.38 s, 10,000 rows) and at batch 512 2.6x, and
        the seed's 2-layer CNN at batch 64 1.7x (cython) to 2.6x (numba) faster.
        """
        v.finite("X", X)  # (DenseEpochs makes this check for the fused epochs)
        workers = min(_threads.get_num_threads(), min(self.batch_size, X.shape[0]) // DATA_PARALLEL_MIN_ROWS)
        if workers >= 2:
            return self._parallel_layer_epoch(X, y, workers)
        model, optimizer, batch = self.model, self.optimizer, self.batch_size
        weight_slices = model.weight_slices
        batch_rows = np.empty((min(batch, X.shape[0]), *X.shape[1:]), dtype=X.dtype)

        from ..backends._compiled import _one_blas_thread

        def run(order, epoch):
            loss_sum, n_correct, n_visited = 0.0, 0, 0
            n_batches = -(-len(order) // batch)
            with self._progress(epoch, n_batches) as bar, deferred_interrupt() as check, model.reusing_buffers(), \
                    _one_blas_thread():
                for start in range(0, len(order), batch):
                    rows = order[start:start + batch]
                    X_batch, y_batch = gather_rows(X, rows, batch_rows[:len(rows)]), y[rows]
                    logits = model.forward(X_batch, training=True)
                    loss, dlogits = self.loss(logits, y_batch, model.backend)
                    loss_sum += loss * len(rows)
                    n_correct += int(np.count_nonzero(np.argmax(logits, axis=1) == y_batch))
                    n_visited += len(rows)
                    if not math.isfinite(loss):
                        break
                    model.backward(dlogits)
                    optimizer.step(model.params, model.grads, weight_slices)
                    bar.update(1)
                    check()  # Ctrl-C: KeyboardInterrupt between batches, never inside an update
            return loss_sum / n_visited, n_correct / n_visited

        return run

    def _parallel_layer_epoch(self, X, y, workers):
        """run(order, epoch) as _layer_epoch's, with every batch's rows split between `workers` threads.

        Thread k runs forward and backward on its share of the batch in its own model replica
        (Sequential.replica: shared parameters, own activations and gradients), with BLAS
        single-threaded; its loss gradient is scaled by its share of the batch, so the replicas'
        gradients add up to the batch mean's, and one optimizer step follows. The result is the
        one-thread epoch's up to rounding (sums split in parts). Separate single-threaded GEMMs need
        no synchronisation inside a GEMM, and leave no BLAS worker spinning on a busy machine.
        """
        from ..backends._compiled import _one_blas_thread, run_on_threads

        model, optimizer, batch = self.model, self.optimizer, self.batch_size
        replicas = [model] + [model.replica() for _ in range(workers - 1)]
        part_rows = -(-min(batch, X.shape[0]) // workers)
        buffers = [np.empty((part_rows, *X.shape[1:]), dtype=X.dtype) for _ in replicas]
        weight_slices = model.weight_slices

        def part(k, rows, n_batch, results):
            replica = replicas[k]
            X_part = np.take(X, rows, axis=0, out=buffers[k][:len(rows)], mode="clip")
            y_part = y[rows]
            logits = replica.forward(X_part, training=True)
            loss, dlogits = self.loss(logits, y_part, replica.backend)
            results[k] = (loss * len(rows), int(np.count_nonzero(np.argmax(logits, axis=1) == y_part)))
            if math.isfinite(loss):
                dlogits *= dlogits.dtype.type(len(rows) / n_batch)  # this part's share of the batch mean
                replica.backward(dlogits)

        def run(order, epoch):
            loss_sum, n_correct, n_visited = 0.0, 0, 0
            n_batches = -(-len(order) // batch)
            with contextlib.ExitStack() as stack:
                bar = stack.enter_context(self._progress(epoch, n_batches))
                check = stack.enter_context(deferred_interrupt())
                stack.enter_context(_one_blas_thread())
                for replica in replicas:
                    stack.enter_context(replica.reusing_buffers())
                for start in range(0, len(order), batch):
                    rows = order[start:start + batch]
                    bounds = [-(-len(rows) * k // workers) for k in range(workers + 1)]  # part 0 never empty
                    parts = [(k, rows[bounds[k]:bounds[k + 1]]) for k in range(workers) if bounds[k + 1] > bounds[k]]
                    results = {}
                    run_on_threads(lambda k, part_rows: part(k, part_rows, len(rows), results), parts)
                    batch_loss = sum(loss for loss, _ in results.values())
                    loss_sum += batch_loss
                    n_correct += sum(correct for _, correct in results.values())
                    n_visited += len(rows)
                    if not math.isfinite(batch_loss):
                        break
                    for k, _ in parts[1:]:
                        model.grads += replicas[k].grads
                    optimizer.step(model.params, model.grads, weight_slices)
                    bar.update(1)
                    check()  # Ctrl-C: KeyboardInterrupt between batches, never inside an update
            return loss_sum / n_visited, n_correct / n_visited

        return run

    # ------------------------------------------------------------------ reporting
    def _progress(self, epoch, n_batches):
        """A progress bar of the epoch's batches on stderr, only when stderr is a terminal (or in a notebook).

        In a log (stderr redirected) the per-epoch metric lines are the progress: a bar there would
        leave carriage-return debris ("0%|...") in every epoch's line.
        """
        if not self.verbose or not (_is_terminal(sys.stderr) or "ipykernel" in sys.modules):
            return _NoProgress()
        try:
            from tqdm.auto import tqdm  # a widget in a notebook
        except ImportError:
            return _NoProgress()
        # mininterval 0: fused epochs update the bar only once per chunk of batches, so draw every update.
        return tqdm(total=n_batches, desc=f"epoch {epoch}/{self.epochs}", unit="batch", leave=False,
                    file=sys.stderr, mininterval=0, dynamic_ncols=True)

    def _report(self, history):
        if not self.verbose:
            return
        line = (f"epoch {history.epoch[-1]:3d}  loss {history.loss[-1]:.4f}  "
                f"train acc {history.train_accuracy[-1]:.4f}")
        if history.val_accuracy:
            line += f"  val acc {history.val_accuracy[-1]:.4f}"
        print(f"{line}  ({history.wall_time[-1]:.2f} s, training {history.time[-1]:.2f} s)", file=sys.stderr)


def check_train_metrics(train_metrics):
    if train_metrics not in TRAIN_METRICS:
        raise ValueError(f"train_metrics must be one of {TRAIN_METRICS}, got {train_metrics!r}")
    return train_metrics


# Rows at and above which a batch is gathered on two threads (each np.take releases the GIL).
PARALLEL_GATHER_BYTES = 1 << 22


def gather_rows(X, rows, out):
    """out[i] = X[rows[i]] for X (N, ...) and int64 rows (n,) in [0, N) (unchecked: the epoch's order);
    out (n, ...) C-contiguous of X's dtype. Returns out.

    np.take with mode='clip' copies straight into out (mode='raise' would buffer); large batches
    are split in two halves copied on two threads (one under fastnn.set_num_threads(1) and in a child
    made by fork), which brings the gather to memory speed.
    """
    n = len(rows)
    if out.nbytes < PARALLEL_GATHER_BYTES or n < 2 or _threads.get_num_threads() < 2:
        return np.take(X, rows, axis=0, out=out, mode="clip")
    half = n // 2
    other = threading.Thread(target=np.take, args=(X, rows[half:]), kwargs=dict(axis=0, out=out[half:], mode="clip"))
    other.start()
    try:
        np.take(X, rows[:half], axis=0, out=out[:half], mode="clip")
    finally:
        other.join()
    return out


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


class _NoProgress:
    """What _progress returns when no bar is drawn: a context manager whose update does nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        pass
