"""Fixtures for the benchmarks: seeded inputs with their NumPy-reference results, and optional torch.

Inputs are built once per session (the 16M-element ReLU arrays are 64 MB each) from
np.random.default_rng seeded by the case itself, so every case gets the same data whatever
runs before it. Each case also carries the reference results (fastnn's 'numpy' backend),
computed once here, outside any timed call, for the benchmarks to check their results against.
"""
import json
import os
import time

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


# ---------------------------------------------------------------------------- suites and reports
SUITES = ("quick", "default", "full")
# Which benchmarks `fastnn bench` runs. quick: one group per target, float32 (float64 where the target is
# set there), about 2 minutes; default: all of them but the few that take minutes (about 5 minutes);
# full: everything. A rule is (function name, {parameter: values}); an entry matches when its values
# are among them. An entry matching no rule is in the default suite.
QUICK = [
    ("bench_relu_forward", {}), ("bench_relu_backward", {}),
    ("bench_linear_backward", {"case": [(784, 128, 5, "float32"), (784, 128, 5000, "float32")]}),
    ("bench_linear_backward_two_gemms", {"case": [(784, 128, 5000, "float32")]}),
    ("bench_gram", {"case": [(5000, 784, "rbf", "float32")]}),
    ("bench_conv1d_forward_backward", {"dtype": ["float32"]}),
    ("bench_mlp_epoch", {"batch": [5, 5000]}), ("bench_mlp_epoch_torch", {"batch": [5, 5000]}),
    ("bench_fit", {"model": ["Perceptron"], "dtype": ["float64"]}),
]
FULL_ONLY = [
    ("bench_convbase_mnist1d", {"impl": ["numpy"]}),  # 8,000 steps of the NumPy reference: minutes
]


def _matches(item, rules):
    params = getattr(getattr(item, "callspec", None), "params", {})
    name = getattr(item, "originalname", item.name)
    return any(name == rule_name and all(params.get(key) in values for key, values in wanted.items())
               for rule_name, wanted in rules)


def suite_of(item):
    """The smallest suite that runs this benchmark: 'quick', 'default' or 'full'."""
    return "quick" if _matches(item, QUICK) else "full" if _matches(item, FULL_ONLY) else "default"


def pytest_addoption(parser):
    group = parser.getgroup("fastnn benchmarks")
    group.addoption("--fastnn-suite", choices=SUITES, default="full",
                    help="with --benchmark-only: which benchmarks run (see QUICK and FULL_ONLY in this file): quick, "
                         "default or full (all; the default)")
    group.addoption("--fastnn-report-dir", default=None, metavar="DIR",
                    help="with --benchmark-only: after every benchmark, rewrite DIR/benchmarks.json and "
                         "DIR/benchmarks.md with the results so far; print each file's results when it finishes")


def pytest_configure(config):
    """Plain `pytest` runs every benchmark once, untimed, as a check of its result; `pytest
    --benchmark-only` (or --benchmark-enable) times them, and then fastnn's compact table (each
    backend against the numpy reference, the target met or missed) replaces pytest-benchmark's wide
    tables, unless --benchmark-columns is given.

    This lives here rather than in a repository-root conftest.py because a root conftest puts the
    source tree on sys.path, and the tests must import the installed package with its compiled
    extensions.
    """
    option = config.option
    if not hasattr(option, "benchmark_disable"):
        return  # pytest-benchmark is not installed: the benchmark fixture is missing anyway
    if not option.benchmark_only and not option.benchmark_enable:
        option.benchmark_disable = True
    elif option.benchmark_only:
        config.pluginmanager.register(_FastnnReport(config), "fastnn-bench-report")


def _suite_excludes(item, suite):
    """True if `suite` leaves the item out."""
    return SUITES.index(suite_of(item)) > SUITES.index(suite)


class _FastnnReport:
    """The --benchmark-only behaviour: deselection, results written as they come, a compact summary."""

    def __init__(self, config):
        self.config = config
        self.suite = config.getoption("fastnn_suite", "full")
        self.out_dir = config.getoption("fastnn_report_dir", None)
        self.own_table = config.getoption("benchmark_columns") is None
        self.machine = None
        self.n_selected = 0
        self.n_written = 0
        self.file_done = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, config, items):
        """Deselect (rather than skip, as pytest-benchmark does) what does not run: tests without
        the benchmark fixture and benchmarks outside the chosen suite."""
        kept, dropped = [], []
        for item in items:
            is_benchmark = "benchmark" in getattr(item, "fixturenames", ())
            (kept if is_benchmark and not _suite_excludes(item, self.suite) else dropped).append(item)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept

    def pytest_collection_finish(self, session):
        self.n_selected = len(session.items)  # after -k and the other deselections

    def pytest_sessionstart(self, session):
        if self.own_table:  # pytest-benchmark's display() skips its tables (it still checks regressions)
            self.config._benchmarksession.quiet = True

    def pytest_runtest_teardown(self, item, nextitem):
        """Note that a benchmark file is done when its last test is (printed by logfinish: output
        written here would be captured with the test's)."""
        self.file_done = item.path.name if nextitem is None or nextitem.path != item.path else None

    def pytest_runtest_logfinish(self, nodeid, location):
        if self.out_dir is None:
            return
        benchmarks = [b for b in self.config._benchmarksession.benchmarks if b]
        if len(benchmarks) != self.n_written:
            self.n_written = len(benchmarks)
            self._write(benchmarks)
        if self.file_done:
            self._print_file(self.file_done)

    def _print_file(self, name):
        """Print the results of a benchmark file once its last benchmark has run."""
        rows = [row for row in self._rows() if row["file"] == name]
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if rows and reporter is not None:
            from fastnn import _bench_report as report

            reporter.write("\n")  # after the progress dots
            reporter.write_line(f"{name} done ({self.n_written} benchmarks timed of {self.n_selected} selected, "
                                f"{self._elapsed()}); results so far in {self.out_dir}:")
            reporter.write_line(report.text_table(rows).rstrip())

    def pytest_terminal_summary(self, terminalreporter):
        if not self.own_table:
            return
        rows = self._rows()
        if not rows:
            return
        from fastnn import _bench_report as report

        terminalreporter.section("fastnn benchmarks: median time, spread, speed-up over the numpy reference")
        terminalreporter.write_line(report.text_table(rows).rstrip())
        terminalreporter.write_line("(pytest-benchmark's own tables: add --benchmark-columns=min,median,iqr,rounds)")

    # ------------------------------------------------------------------ helpers
    def _rows(self):
        from fastnn import _bench_report as report

        benchmarks = [b.as_dict(include_data=False) for b in self.config._benchmarksession.benchmarks if b]
        rows = report.build_rows({"benchmarks": benchmarks})
        files = {b["group"]: b["fullname"].split("::")[0].rsplit("/", 1)[-1] for b in benchmarks}
        for row in rows:
            row["file"] = files.get(row["group"])
        return rows

    def _elapsed(self):
        seconds = time.perf_counter() - _START
        return f"{seconds / 60:.1f} min elapsed"

    def _write(self, benchmarks):
        from fastnn import _bench_report as report

        if self.machine is None:
            self.machine = report.machine_summary()
        data = {"machine_info": {"fastnn": self.machine}, "partial": True,
                "benchmarks": [b.as_dict(include_data=False) for b in benchmarks]}
        os.makedirs(self.out_dir, exist_ok=True)
        _replace(os.path.join(self.out_dir, "benchmarks.json"), json.dumps(data, indent=1))
        header = (f"{report.format_machine(self.machine)}\n\nPartial results: {len(benchmarks)} benchmarks timed "
                  f"of {self.n_selected} selected ({self._elapsed()}).")
        _replace(os.path.join(self.out_dir, "benchmarks.md"),
                 report.markdown_document(report.build_rows(data), header))


def _replace(path, text):
    """Write text to path through a temporary file, so a reader never sees half a file."""
    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(temporary, path)


_START = time.perf_counter()


def pytest_benchmark_update_machine_info(config, machine_info):
    """Record what `python -m fastnn bench-report` prints about the machine in the JSON file."""
    from fastnn._bench_report import machine_summary

    machine_info["fastnn"] = machine_summary()
