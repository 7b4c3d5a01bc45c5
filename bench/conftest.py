"""Fixtures for the benchmarks: seeded inputs with their NumPy-reference results, and optional torch.

Inputs are built once per session (the 16M-element ReLU arrays are 64 MB each) from
np.random.default_rng seeded by the case itself, so every case gets the same data whatever
runs before it. Each case also carries the reference results (fastnn's 'numpy' backend),
computed once here, outside any timed call, for the benchmarks to check their results against.
"""
import os

import numpy as np
import pytest

import fastnn

SEED = 20240601


def _rng(*key):
    """A generator seeded by SEED and the integers of `key` (the case's sizes)."""
    return np.random.default_rng([SEED, *key])


class Inputs:
    """Builds and caches the inputs of each benchmark case (one instance per session)."""

    def __init__(self):
        self._cache = {}

    def _cached(self, key, build):
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def linear(self, n, d_in, d_out, dtype):
        """One dense layer Z = X @ W + b followed by a ReLU, as in the seed MLP.

        Keys: X, W, b, dY, Z (pre-activation), A (= relu(Z)), mask (relu_forward's bit mask of Z),
        dZ (dY masked by the ReLU), and the references forward (= Z), backward_mask and
        backward (each a tuple dX, dW, db), all from the 'numpy' backend.
        """
        dtype = np.dtype(dtype)

        def build():
            rng = _rng(n, d_in, d_out, dtype.itemsize)
            X = rng.standard_normal((n, d_in)).astype(dtype)
            W = (rng.standard_normal((d_in, d_out)) / np.sqrt(d_in)).astype(dtype)
            b = (0.1 * rng.standard_normal(d_out)).astype(dtype)
            dY = rng.standard_normal((n, d_out)).astype(dtype)
            Z = fastnn.linear_forward(X, W, b, backend="numpy")
            A, mask = fastnn.relu_forward(Z, backend="numpy")
            return {
                "X": X, "W": W, "b": b, "dY": dY, "Z": Z, "A": A, "mask": mask,
                "dZ": fastnn.relu_backward(dY, mask, backend="numpy"),
                "forward": Z,
                "backward_mask": fastnn.linear_backward(X, W, dY, mask=mask, backend="numpy"),
                "backward": fastnn.linear_backward(X, W, dY, backend="numpy"),
            }

        return self._cached(("linear", n, d_in, d_out, dtype.str), build)

    def relu(self, shape, dtype):
        """X, dY and the references Y, mask (relu_forward of X) and dX (relu_backward of dY)."""
        dtype = np.dtype(dtype)

        def build():
            rng = _rng(*shape, dtype.itemsize)
            X = rng.standard_normal(shape, dtype=dtype)
            dY = rng.standard_normal(shape, dtype=dtype)
            Y, mask = fastnn.relu_forward(X, backend="numpy")
            return {"X": X, "dY": dY, "Y": Y, "mask": mask,
                    "dX": fastnn.relu_backward(dY, mask, backend="numpy")}

        return self._cached(("relu", shape, dtype.str), build)

    def sigmoid(self, shape, dtype):
        """X (with a few large magnitudes), dY and the references Y = sigmoid(X) and dX."""
        dtype = np.dtype(dtype)

        def build():
            rng = _rng(*shape, dtype.itemsize, 1)
            X = (4 * rng.standard_normal(shape)).astype(dtype)
            dY = rng.standard_normal(shape).astype(dtype)
            Y = fastnn.sigmoid_forward(X, backend="numpy")
            return {"X": X, "dY": dY, "Y": Y, "dX": fastnn.sigmoid_backward(dY, Y, backend="numpy")}

        return self._cached(("sigmoid", shape, dtype.str), build)

    def softmax(self, n, n_classes, dtype):
        """logits (N, C), labels y and the reference (loss, dlogits)."""
        dtype = np.dtype(dtype)

        def build():
            rng = _rng(n, n_classes, dtype.itemsize)
            logits = (3 * rng.standard_normal((n, n_classes))).astype(dtype)
            y = rng.integers(0, n_classes, size=n)
            return {"logits": logits, "y": y,
                    "reference": fastnn.softmax_cross_entropy(logits, y, backend="numpy")}

        return self._cached(("softmax", n, n_classes, dtype.str), build)

    def logistic(self, n, dtype):
        """scores (N,), labels y in {-1, +1} and the reference (loss, dscores)."""
        dtype = np.dtype(dtype)

        def build():
            rng = _rng(n, dtype.itemsize)
            scores = (3 * rng.standard_normal(n)).astype(dtype)
            y = np.where(rng.random(n) < 0.5, -1.0, 1.0).astype(dtype)
            return {"scores": scores, "y": y, "reference": fastnn.logistic_loss(scores, y, backend="numpy")}

        return self._cached(("logistic", n, dtype.str), build)


@pytest.fixture(scope="session")
def inputs():
    return Inputs()


@pytest.fixture(scope="session")
def torch():
    """PyTorch as an outside yardstick on 2 threads; the test is skipped when torch is not installed."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(2)
    return torch


def pytest_configure(config):
    """Plain `pytest` runs every benchmark once, untimed, as a check of its result; `pytest
    --benchmark-only` (or --benchmark-enable) times them.

    This lives here rather than in a repository-root conftest.py because a root conftest puts the
    source tree on sys.path, and the tests must import the installed package with its compiled
    extensions.
    """
    option = config.option
    if hasattr(option, "benchmark_disable") and not option.benchmark_only and not option.benchmark_enable:
        option.benchmark_disable = True


def pytest_benchmark_update_machine_info(config, machine_info):
    """Record what `python -m fastnn bench-report` prints about the machine in the JSON file."""
    from fastnn._bench_report import machine_summary

    machine_info["fastnn"] = machine_summary()
