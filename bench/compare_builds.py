"""Compare builds of the Cython kernels (portable, AVX2, or an experimental one) in one process.

    PYTHONPATH=. python bench/compare_builds.py [--builds portable,avx2,NAME...] [--rounds 9]
                                                [--threads 1] [--only SUBSTRING]

A build NAME other than portable/avx2 is a package fastnn._ext.NAME holding the same kernel modules
compiled with other flags (e.g. an AVX-512 experiment). Every case is timed through the public API
with the 'cython' backend's functions swapped for the build's (as tests/test_conformance.py does),
rounds interleaved (the builds' order rotates every round) so that load on a shared machine hits
them alike. Printed per case: the median milliseconds of each build and, per build after the first,
the median over rounds of its time / the previous build's time in the same round (so with
portable,avx2,avx512: avx2 vs portable, then avx512 vs avx2). --json FILE keeps every round's times.
A timing, not a test: nothing is asserted.
"""
import argparse
import importlib
import json
import statistics
import time

import numpy as np

import fastnn
from fastnn import _config, nn
from fastnn.backends import KERNELS, cython_kernels
from fastnn.experiments import train_cnn_fused
from fastnn.training import DenseEpochs


def load(name):
    """The kernels of build `name`: one of cython_kernels.PACKAGES or the package fastnn._ext.<name>
    (an experiment, assumed to run on this CPU; modules it lacks come from the shipped builds)."""
    if name not in cython_kernels.PACKAGES:
        importlib.import_module(f"fastnn._ext.{name}")  # ImportError when it was not built
        cython_kernels.PACKAGES[name] = f"fastnn._ext.{name}"
        cython_kernels.CPU_RUNS[name] = lambda: True
        cython_kernels.PREFERENCE = (name, *cython_kernels.PREFERENCE)
    return cython_kernels.load_build(name)


def use(build):
    """Make the 'cython' backend run `build`'s kernels."""
    module = _config.resolve("cython")
    for kernel in KERNELS:
        setattr(module, kernel, getattr(build, kernel))


# ---------------------------------------------------------------------------- cases
# Each case: name -> setup() returning run(); setup runs after use(build), so objects that keep a kernel
# (DenseEpochs, ConvEpochs) take the build's.

def mlp_epoch(batch, n=10_000, dtype=np.float32):
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (n, 784)).astype(dtype)
    y = rng.integers(0, 10, n)
    order = rng.permutation(n)
    params = nn.mlp([784, 128, 10], random_state=0, dtype=dtype).params

    def setup():
        model = nn.mlp([784, 128, 10], backend="cython", dtype=dtype)
        model.params[...] = params
        optimizer = nn.SGD(0.01)
        optimizer.setup(model.params)
        epochs = DenseEpochs(X, y, sizes=[784, 128, 10], batch_size=batch, backend="cython",
                             **optimizer.epoch_arguments())
        return lambda: epochs.run(order, model.params, optimizer.state, 0)
    return setup


def convbase_epoch(dtype=np.float32):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4000, 1, 40)).astype(dtype)
    y = rng.integers(0, 10, 4000)
    order = rng.permutation(4000)
    params = nn.conv1d_net((1, 40), 10, dtype=dtype, random_state=0).params

    def setup():
        model = nn.conv1d_net((1, 40), 10, dtype=dtype, backend="cython")
        model.params[...] = params
        return lambda: train_cnn_fused(model, X, y, [order], learning_rate=1e-2, batch_size=100)
    return setup


def mlp_predict(n=10_000):
    """predict_logits of 784-128-10 on n rows: what users run (on BLAS at this width, see
    fastnn.backends._compiled.BLAS_FORWARD_MIN_WORK_PER_ROW; the compiled forward below it)."""
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (n, 784)).astype(np.float32)

    def setup():
        model = nn.mlp([784, 128, 10], backend="cython", random_state=0)
        return lambda: model.predict_logits(X)
    return setup


def elementwise(kernel, shape, dtype=np.float32):
    rng = np.random.default_rng(0)
    X = rng.standard_normal(shape).astype(dtype)
    dY = rng.standard_normal(shape).astype(dtype)
    if kernel == "relu_forward":
        return lambda: lambda: fastnn.relu_forward(X, backend="cython")
    if kernel == "relu_backward":
        mask = np.packbits(X > 0, axis=-1, bitorder="little")
        return lambda: lambda: fastnn.relu_backward(dY, mask, backend="cython")
    if kernel == "sigmoid_forward":
        return lambda: lambda: fastnn.sigmoid_forward(X, backend="cython")
    if kernel == "sigmoid_backward":
        Y = 1 / (1 + np.exp(-X))
        return lambda: lambda: fastnn.sigmoid_backward(dY, Y, backend="cython")
    if kernel == "tanh_forward":
        return lambda: lambda: fastnn.tanh_forward(X, backend="cython")
    if kernel == "softmax_cross_entropy":
        y = rng.integers(0, shape[1], shape[0])
        return lambda: lambda: fastnn.softmax_cross_entropy(X, y, backend="cython")
    raise ValueError(kernel)


def linear(n, d_in=784, d_out=128, dtype=np.float32):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d_in)).astype(dtype)
    W = rng.standard_normal((d_in, d_out)).astype(dtype)
    b = rng.standard_normal(d_out).astype(dtype)

    def setup():
        Y = fastnn.linear_forward(X, W, b, backend="cython")
        _, mask = fastnn.relu_forward(Y, backend="cython")

        def run():
            fastnn.linear_forward(X, W, b, backend="cython")
            fastnn.linear_backward(X, W, Y, mask=mask, backend="cython")
        return run
    return setup


def conv1d(n, c_in, c_out, length, k, stride, padding):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c_in, length)).astype(np.float32)
    w = (rng.standard_normal((c_out, c_in, k)) / np.sqrt(c_in * k)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)

    def setup():
        y = fastnn.conv1d_forward(x, w, b, stride=stride, padding=padding, backend="cython")
        dy = np.ones_like(y)

        def run():
            fastnn.conv1d_forward(x, w, b, stride=stride, padding=padding, backend="cython")
            fastnn.conv1d_backward(x, w, dy, stride=stride, padding=padding, backend="cython")
        return run
    return setup


def conv2d(n, c_in, c_out, size, k, need_dx):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c_in, size, size)).astype(np.float32)
    w = (rng.standard_normal((c_out, c_in, k, k)) / np.sqrt(c_in * k * k)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)

    def setup():
        y = fastnn.conv2d_forward(x, w, b, backend="cython")
        dy = np.ones_like(y)

        def run():
            fastnn.conv2d_forward(x, w, b, backend="cython")
            fastnn.conv2d_backward(x, w, dy, need_dx=need_dx, backend="cython")
        return run
    return setup


def gram_rbf(n=5000, d=784, dtype=np.float32):
    X = np.random.default_rng(0).uniform(0, 1, (n, d)).astype(dtype)
    return lambda: lambda: fastnn.gram(X, kernel="rbf", backend="cython")


def perceptron_fit():
    from fastnn.datasets import load_digits
    from fastnn.models import Perceptron
    X_train, _, y_train, _ = load_digits()

    def setup():
        model = Perceptron(max_epochs=20, random_state=0, backend="cython")
        return lambda: model.fit(X_train, y_train)
    return setup


def kernel_perceptron_fit():
    from fastnn.datasets import load_digits
    from fastnn.models import KernelPerceptron
    X_train, _, y_train, _ = load_digits()

    def setup():
        model = KernelPerceptron(kernel="rbf", gamma=0.1, max_epochs=20, random_state=0, backend="cython")
        return lambda: model.fit(X_train, y_train)
    return setup


def mlp_fit(batch, n=10_000):
    """MLPClassifier((128,), batch_size=batch, epochs=1).fit on n random 784-pixel examples, 2,000 for validation."""
    from fastnn.models import MLPClassifier
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (n + 2000, 784)).astype(np.float32)
    y = rng.integers(0, 10, n + 2000)

    def setup():
        return lambda: MLPClassifier((128,), batch_size=batch, epochs=1, random_state=0, backend="cython").fit(
            X[:n], y[:n], X[n:], y[n:])
    return setup


def cnn_fit(epochs=2):
    """CNN1DClassifier() (ConvBase, Adam, batch 100).fit on 4,000 random 1x40 signals, 1,000 for validation."""
    from fastnn.models import CNN1DClassifier
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5000, 1, 40)).astype(np.float32)
    y = rng.integers(0, 10, 5000)

    def setup():
        return lambda: CNN1DClassifier(epochs=epochs, random_state=0, backend="cython").fit(
            X[:4000], y[:4000], X[4000:], y[4000:])
    return setup


CASES = {
    "MLPClassifier.fit 10000x784 b5 1 epoch +val": mlp_fit(5),
    "MLPClassifier.fit 10000x784 b50 1 epoch +val": mlp_fit(50),
    "CNN1DClassifier.fit 4000x1x40 2 epochs +val": cnn_fit(),
    "mlp epoch 784-128-10 batch 5 f32 (10k)": mlp_epoch(5),
    "mlp epoch 784-128-10 batch 1 f32 (2k)": mlp_epoch(1, n=2000),
    "mlp epoch 784-128-10 batch 50 f32 (10k)": mlp_epoch(50),
    "mlp epoch 784-128-10 batch 5 f64 (10k)": mlp_epoch(5, dtype=np.float64),
    "mlp predict 10000x784": mlp_predict(),
    "convbase epoch 4000x1x40 b100 f32": convbase_epoch(),
    "convbase epoch 4000x1x40 b100 f64": convbase_epoch(np.float64),
    "linear fwd+bwd(mask) 784->128 N=5": linear(5),
    "linear fwd+bwd(mask) 784->128 N=500": linear(500),
    "relu_forward 10000x128": elementwise("relu_forward", (10_000, 128)),
    "relu_backward 10000x128": elementwise("relu_backward", (10_000, 128)),
    "sigmoid_forward 10000x128": elementwise("sigmoid_forward", (10_000, 128)),
    "sigmoid_backward 10000x128": elementwise("sigmoid_backward", (10_000, 128)),
    "tanh_forward 10000x128": elementwise("tanh_forward", (10_000, 128)),
    "softmax_xent 10000x10": elementwise("softmax_cross_entropy", (10_000, 10)),
    "softmax_xent 10000x128": elementwise("softmax_cross_entropy", (10_000, 128)),
    "relu_forward 4096x4096": elementwise("relu_forward", (4096, 4096)),
    "conv1d fwd+bwd A N=100 25->25 L=19 K3 s2": conv1d(100, 25, 25, 19, 3, 2, 1),
    "conv1d fwd+bwd B N=512 32->64 L=128 K5": conv1d(512, 32, 64, 128, 5, 1, 0),
    "conv2d fwd+bwd seed-first N=100 1->64 7x7/28": conv2d(100, 1, 64, 28, 7, False),
    "conv2d fwd+bwd tutorial-2 N=100 6->16 5x5/14": conv2d(100, 6, 16, 14, 5, True),
    "gram rbf 5000x784 f32": gram_rbf(),
    "gram rbf 2000x784 f64": gram_rbf(2000, dtype=np.float64),
    "Perceptron.fit digits": perceptron_fit(),
    "KernelPerceptron.fit digits rbf": kernel_perceptron_fit(),
}


def time_once(run):
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def compare(case, builds, rounds, min_time=0.02):
    """{build name: [seconds per call, one per round]} with calls repeated to last >= min_time per sample."""
    runs = {}
    for build in builds:
        use(build)
        runs[build.name] = CASES[case]()
        runs[build.name]()  # warm up (first-touch, thread pool)
    reps = max(1, int(np.ceil(min_time / max(time_once(runs[builds[0].name]), 1e-6))))
    times = {build.name: [] for build in builds}
    for r in range(rounds):
        for build in builds[r % len(builds):] + builds[:r % len(builds)]:
            use(build)  # runs that resolve kernels per call take this build's
            run = runs[build.name]
            start = time.perf_counter()
            for _ in range(reps):
                run()
            times[build.name].append((time.perf_counter() - start) / reps)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", default="portable,avx2")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1, help="fastnn threads (0: the default)")
    parser.add_argument("--only", default="", help="cases whose name contains this (comma-separated)")
    parser.add_argument("--json", help="write {case: {build: [seconds per round]}} to this file")
    args = parser.parse_args()
    fastnn.set_num_threads(args.threads or None)
    builds = [load(name) for name in args.builds.split(",")]
    names = [b.name for b in builds]
    pairs = list(zip(names[1:], names))
    print(f"threads={fastnn.get_num_threads()} rounds={args.rounds}; median ms per build, then the median of the "
          f"per-round ratios {', '.join(f'{a}/{b}' for a, b in pairs)} (< 1: faster)")
    print(f"{'case':46s} " + " ".join(f"{n:>9s}" for n in names) + "  "
          + " ".join(f"{a + '/' + b:>16s}" for a, b in pairs))
    results = {}
    only = [s for s in args.only.split(",") if s]
    for case in CASES:
        if only and not any(s in case for s in only):
            continue
        times = results[case] = compare(case, builds, args.rounds)
        medians = [statistics.median(times[n]) * 1e3 for n in names]
        ratios = [statistics.median(t / u for t, u in zip(times[a], times[b])) for a, b in pairs]
        print(f"{case:46s} " + " ".join(f"{m:9.3f}" for m in medians) + "  "
              + " ".join(f"{r:16.3f}" for r in ratios), flush=True)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump({"threads": fastnn.get_num_threads(), "rounds": args.rounds, "times": results}, fh)
    use(cython_kernels.load_build(cython_kernels.BUILD))


if __name__ == "__main__":
    main()
