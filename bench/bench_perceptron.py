"""Perceptron and kernel perceptron training on scikit-learn's digits: every backend beside the
straightforward NumPy implementation.

The data is fastnn.datasets.load_digits() (pixels / 16, 25% test split): 1,347 training examples
of 64 features, 10 classes. Each fit runs at most 20 epochs (random_state=0) and stops after an
epoch without a mistake, like the estimators.

Groups:
- "Perceptron.fit": fastnn.models.Perceptron(max_epochs=20, random_state=0).fit on each backend,
  and "numpy-loop" (role baseline): Algorithm 1 written directly as a per-example Python loop over
  NumPy rows (yhat = argmax(W @ x_i), two row updates on a mistake), the same example orders.
- "KernelPerceptron.fit": KernelPerceptron(kernel='rbf', gamma=0.1, ...).fit, and "numpy-loop":
  the RBF Gram matrix in plain NumPy, then Algorithm 2 as a per-example loop recomputing
  alpha @ K[:, i] for every prediction.
- "kernel_perceptron_epoch": 20 epochs of fastnn.perceptron.kernel_perceptron_epoch given the Gram
  matrix (the training algorithm without the Gram matrix), beside the same loop as "numpy-loop".

Target (never asserted): every compiled backend's fit >= 10x faster than numpy-loop, i.e. at most
0.1x its time. Plain `pytest` runs each once and checks the result: the linear models equal the
'numpy' reference's bit for bit (pixels / 16 make every update exact), the RBF models predict the
same test labels as the reference (up to rounding of the Gram matrix, on >= 99% of the test set).
"""
import numpy as np
import pytest

import fastnn

pytest.importorskip("sklearn")

from fastnn import datasets  # noqa: E402
from fastnn.models import KernelPerceptron, Perceptron  # noqa: E402
from fastnn.perceptron import kernel_perceptron_epoch  # noqa: E402
from bench_kernels import label, run  # noqa: E402

BACKENDS = fastnn.available_backends()
DTYPES = {"float64": np.float64, "float32": np.float32}
EPOCHS = 20
SEED = 0
GAMMA = 0.1
BASELINE = "numpy-loop"
TARGET = ">= 10x faster than numpy-loop (the straightforward NumPy implementation)"


# ---------------------------------------------------------------------------- the straightforward NumPy code
def numpy_loop_perceptron(X, y, n_classes, epochs=EPOCHS, seed=SEED):
    """Algorithm 1, one example at a time; returns W (n_classes, n_features)."""
    rng = np.random.RandomState(seed)
    W = np.zeros((n_classes, X.shape[1]), dtype=X.dtype)
    for _ in range(epochs):
        mistakes = 0
        for i in rng.permutation(len(X)):
            yhat = np.argmax(W @ X[i])
            if yhat != y[i]:
                W[yhat] -= X[i]
                W[y[i]] += X[i]
                mistakes += 1
        if mistakes == 0:
            break
    return W


def numpy_rbf_gram(X, Y, gamma):
    """exp(-gamma ||x - y||^2) from the expansion ||x||^2 + ||y||^2 - 2 x.y."""
    sq = np.sum(X * X, axis=1)[:, None] + np.sum(Y * Y, axis=1)[None, :] - 2 * (X @ Y.T)
    return np.exp(-gamma * np.maximum(sq, 0))


def numpy_loop_kernel_epochs(K, y, alpha, orders, stop_early=True):
    """Algorithm 2 over each order in turn: yhat = argmax(alpha @ K[:, i]) recomputed every time."""
    for order in orders:
        mistakes = 0
        for i in order:
            yhat = np.argmax(alpha @ K[:, i])
            if yhat != y[i]:
                alpha[yhat, i] -= 1
                alpha[y[i], i] += 1
                mistakes += 1
        if stop_early and mistakes == 0:
            break
    return alpha


def numpy_loop_kernel_perceptron(X, y, n_classes, gamma=GAMMA, epochs=EPOCHS, seed=SEED):
    """The Gram matrix, then Algorithm 2; returns alpha (n_classes, n_train)."""
    rng = np.random.RandomState(seed)
    K = numpy_rbf_gram(X, X, gamma).astype(X.dtype)
    alpha = np.zeros((n_classes, len(X)), dtype=X.dtype)
    orders = (rng.permutation(len(X)) for _ in range(epochs))  # drawn lazily, as the estimators do
    return numpy_loop_kernel_epochs(K, y, alpha, orders)


# ---------------------------------------------------------------------------- data and references
class Digits:
    """The digits split in each dtype and the 'numpy' backend's models, built once per session."""

    def __init__(self):
        self.X_train, self.X_test, self.y_train, self.y_test = datasets.load_digits()
        self._cache = {}

    def _cached(self, key, build):
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def X(self, dtype):
        return self._cached(("X", dtype), lambda: (self.X_train.astype(dtype), self.X_test.astype(dtype)))

    def reference(self, model, dtype):
        """The model fitted on the 'numpy' backend (outside any timed call)."""
        return self._cached(("ref", model, dtype),
                            lambda: make_model(model, "numpy", dtype).fit(self.X(dtype)[0], self.y_train))

    def gram(self, dtype):
        X_train = self.X(dtype)[0]
        return self._cached(("gram", dtype),
                            lambda: np.ascontiguousarray(numpy_rbf_gram(X_train, X_train, GAMMA), dtype=dtype))

    def orders(self):
        rng = np.random.RandomState(SEED)
        return self._cached("orders", lambda: [rng.permutation(len(self.y_train)) for _ in range(EPOCHS)])


@pytest.fixture(scope="session")
def digits():
    return Digits()


def make_model(model, backend, dtype):
    common = dict(max_epochs=EPOCHS, random_state=SEED, backend=backend, dtype=dtype)
    if model == "Perceptron":
        return Perceptron(**common)
    return KernelPerceptron(kernel="rbf", gamma=GAMMA, **common)


def shape_of(digits, model):
    n, d = digits.X_train.shape
    kernel = f" rbf gamma={GAMMA}" if model == "KernelPerceptron" else ""
    return f"digits {n}x{d}{kernel} {EPOCHS} epochs"


def check_predictions(predicted, expected, exact):
    if exact:
        np.testing.assert_array_equal(predicted, expected)
    else:
        assert np.mean(predicted == expected) >= 0.99


# ---------------------------------------------------------------------------- benchmarks
@pytest.mark.parametrize("impl", [*BACKENDS, BASELINE])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("model", ["Perceptron", "KernelPerceptron"])
def bench_fit(benchmark, digits, model, dtype, impl):
    """Fit on the digits' training split. Target: compiled backends >= 10x faster than numpy-loop."""
    X_train, X_test = digits.X(dtype)
    y_train = digits.y_train
    reference = digits.reference(model, dtype)
    linear = model == "Perceptron"
    if impl == BASELINE:
        label(benchmark, f"{model}.fit", shape_of(digits, model), dtype, impl, role="baseline", target=TARGET)
        if linear:
            W = run(benchmark, lambda: numpy_loop_perceptron(X_train, y_train, 10))
            np.testing.assert_array_equal(W, reference.coef_)
        else:
            alpha = run(benchmark, lambda: numpy_loop_kernel_perceptron(X_train, y_train, 10))
            scores = alpha @ numpy_rbf_gram(X_train, X_test, GAMMA).astype(alpha.dtype)
            check_predictions(np.argmax(scores, axis=0), reference.predict(X_test), exact=False)
        return
    label(benchmark, f"{model}.fit", shape_of(digits, model), dtype, impl, target=TARGET)
    fitted = run(benchmark, lambda: make_model(model, impl, dtype).fit(X_train, y_train))
    if linear:
        np.testing.assert_array_equal(fitted.coef_, reference.coef_)
    check_predictions(fitted.predict(X_test), reference.predict(X_test), exact=linear)


@pytest.mark.parametrize("impl", [*BACKENDS, BASELINE])
def bench_kernel_perceptron_epochs(benchmark, digits, impl):
    """20 epochs of Algorithm 2 given the RBF Gram matrix of the training split (float64), no early stop.

    Every backend makes the same updates as numpy-loop here up to rounding of the running scores.
    """
    dtype = np.float64
    K = digits.gram(dtype)
    y = digits.y_train
    orders = digits.orders()
    shape = f"digits N={len(y)} C=10 rbf gamma={GAMMA} {EPOCHS} epochs"
    expected = digits._cached("epochs-ref", lambda: numpy_loop_kernel_epochs(
        K, y, np.zeros((10, len(y)), dtype), orders, stop_early=False))
    if impl == BASELINE:
        label(benchmark, "kernel_perceptron_epoch", shape, dtype, impl, role="baseline", target=TARGET)
        alpha = run(benchmark, lambda: numpy_loop_kernel_epochs(K, y, np.zeros((10, len(y)), dtype), orders,
                                                                stop_early=False))
    else:
        def epochs():
            alpha, scores = np.zeros((10, len(y)), dtype), None
            for order in orders:
                alpha, scores, _ = kernel_perceptron_epoch(K, y, order, alpha, scores, backend=impl)
            return alpha

        label(benchmark, "kernel_perceptron_epoch", shape, dtype, impl, target=TARGET)
        alpha = run(benchmark, epochs)
    # Same updates as the straightforward loop: at most a rounding-level tie could differ.
    assert np.mean(np.all(alpha == expected, axis=0)) >= 0.99
