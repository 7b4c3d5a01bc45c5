"""Kernel methods past one machine's memory: gram_matvec and the streaming KernelPerceptron.

Targets (never asserted; issue 13):
- gram_matvec of a 20,000 x 784 RBF kernel within 1.3x the time of the same GEMMs and at least 1.5x
  faster than gram(...) @ V, with peak memory (RSS above the inputs) under 1.1x working_memory;
- KernelPerceptron at 10,000 examples streaming (kernel_cache) within 1.5x the in-memory fit;
- the Dask Gram of 20,000 x 784 on a 2-worker LocalCluster within 1.5x of the in-process gram (here
  reduced to row sums on the workers, so the 1.6 GB result does not travel to the client).

Under pytest the cases are small (a plain `pytest` runs each once as a check); FASTNN_BENCH_LARGE=1
runs the issue's sizes. Peak memory needs a fresh process each: `python bench/bench_scale.py`
runs every case in a child process (resource.getrusage's peak RSS) and prints times, peak RSS
above the inputs and ratios within the run.
"""
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pytest

import fastnn
from fastnn.backends import _compiled

LARGE = os.environ.get("FASTNN_BENCH_LARGE") == "1"
MATVEC_N = 20000 if LARGE else 2000
PERCEPTRON_N = 10000 if LARGE else 1500
WORKING_MEMORY = 64  # MiB


def matvec_inputs(n, dtype, k=1):
    rng = np.random.default_rng([n, k])
    return rng.random((n, 784)).astype(dtype), rng.standard_normal((n, k)).astype(dtype)


def same_gemms(X, V, band_rows, column_chunk):
    """The GEMMs gram_matvec runs, without the kernel: the centered inner-product tiles of the upper
    band structure and their products with V (both orders), i.e. its time without the epilogue."""
    out = np.zeros((X.shape[0], V.shape[1]), dtype=np.float64)

    def multiply(G, r0, r1, c0, c1, x, y):
        out[r0:r1] += G @ V[c0:c1]
        if max(c0, r1) < c1:
            out[max(c0, r1):c1] += G[:, max(c0, r1) - c0:].T @ V[r0:r1]

    _compiled.rbf_tile_loop(X, None, band_rows, column_chunk, multiply)
    return out


def classification_data(n, d=784, seed=0):
    """n examples of 10 classes around random centers in [0, 1]^d, 5% of labels flipped (not separable)."""
    rng = np.random.default_rng(seed)
    centers = rng.random((10, d))
    y = rng.integers(0, 10, n)
    X = (0.5 * centers[y] + 0.5 * rng.random((n, d))).astype(np.float32)
    flip = rng.random(n) < 0.05
    y[flip] = rng.integers(0, 10, flip.sum())
    return X, y


# ---------------------------------------------------------------------------- pytest-benchmark entries
@pytest.mark.parametrize("impl", ["gram_matvec", "same_gemms", "gram_then_matmul"])
def bench_gram_matvec(benchmark, impl):
    X, V = matvec_inputs(MATVEC_N, "float64")
    benchmark.group = f"gram_matvec rbf {MATVEC_N}x784 float64"
    if impl == "gram_matvec":
        result = benchmark(lambda: fastnn.gram_matvec(X, None, V, working_memory=WORKING_MEMORY))
    elif impl == "same_gemms":
        from fastnn.gram import tile_shape

        tiles = tile_shape(MATVEC_N, MATVEC_N, 784, 1, 8, WORKING_MEMORY)
        benchmark(lambda: same_gemms(X, V, *tiles))
        return
    else:
        result = benchmark(lambda: fastnn.gram(X) @ V)
    reference = fastnn.gram(X[:200], X) @ V
    np.testing.assert_allclose(result[:200], reference, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", ["in-memory", "streaming"])
def bench_kernel_perceptron_streaming(benchmark, mode):
    from fastnn.models import KernelPerceptron

    X, y = classification_data(PERCEPTRON_N + 500)
    benchmark.group = f"KernelPerceptron.fit {PERCEPTRON_N}x784 float32"
    cache = None if mode == "in-memory" else 2048
    model = benchmark(lambda: KernelPerceptron(kernel_cache=cache, max_epochs=3, gamma=0.01, random_state=0)
                      .fit(X[:PERCEPTRON_N], y[:PERCEPTRON_N]))
    benchmark.extra_info["accuracy"] = model.score(X[PERCEPTRON_N:], y[PERCEPTRON_N:])


# ---------------------------------------------------------------------------- child-process measurements
def _peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _child(case, n):
    """Run one case in this (fresh) process; print JSON with seconds and peak RSS above the inputs."""
    result = {}
    if case.startswith("matvec") or case == "same_gemms" or case == "gram_then_matmul":
        X, V = matvec_inputs(n, "float64")
        fastnn.gram_matvec(X[:600], None, V[:600], working_memory=WORKING_MEMORY)  # imports, thread pools
        base = _peak_rss_mib()
        start = time.perf_counter()
        if case == "matvec":
            fastnn.gram_matvec(X, None, V, working_memory=WORKING_MEMORY)
        elif case == "matvec_default_memory":
            fastnn.gram_matvec(X, None, V)
        elif case == "same_gemms":
            from fastnn.gram import tile_shape

            same_gemms(X, V, *tile_shape(n, n, 784, 1, 8, WORKING_MEMORY))
        else:
            fastnn.gram(X) @ V
    elif case.startswith("dask") or case == "gram_row_sums":
        X = np.random.default_rng(n).random((n, 784)).astype(np.float32)
        fastnn.gram(X[:600])
        base = _peak_rss_mib()
        if case == "gram_row_sums":
            start = time.perf_counter()
            result["checksum"] = float(fastnn.gram(X).sum(axis=1, dtype=np.float64).sum())
        else:
            import dask.array as da
            from dask.distributed import Client, LocalCluster

            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                    Client(cluster) as client:
                X_dask = client.persist(da.from_array(X, chunks=(4096, 784)))
                client.compute(fastnn.gram(X_dask[:600])).result()  # workers import fastnn
                start = time.perf_counter()
                sums = fastnn.gram(X_dask).sum(axis=1, dtype=np.float64)
                result["checksum"] = float(client.compute(sums).result().sum())
                result["seconds"] = time.perf_counter() - start
    else:
        from fastnn.models import KernelPerceptron

        X, y = classification_data(n + 2000)
        base = _peak_rss_mib()
        start = time.perf_counter()
        cache = None if case == "perceptron_in_memory" else 2048
        model = KernelPerceptron(kernel_cache=cache, max_epochs=3, gamma=0.01, random_state=0).fit(X[:n], y[:n])
        result.update(accuracy=model.score(X[n:], y[n:]), mistakes=model.mistakes_,
                      rows=model.kernel_rows_computed_)
    result.setdefault("seconds", time.perf_counter() - start)
    result.update(peak_above_inputs_mib=_peak_rss_mib() - base)
    print(json.dumps(result))


def _measure(case, n):
    out = subprocess.run([sys.executable, __file__, "--child", case, str(n)], capture_output=True, text=True,
                         timeout=3600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main_dask():
    n = 20000
    runs = {case: _measure(case, n) for case in ("dask_gram_row_sums", "gram_row_sums")}
    print(f"RBF Gram of {n} x 784 float32, row sums: 2-worker LocalCluster vs in process")
    for case, r in runs.items():
        print(f"  {case:20s} {r['seconds']:8.2f} s   checksum {r['checksum']:.6e}")
    print(f"  dask / in-process: {runs['dask_gram_row_sums']['seconds'] / runs['gram_row_sums']['seconds']:.2f}x")


def main():
    n = 20000
    matvec = {case: _measure(case, n) for case in ("matvec", "same_gemms", "gram_then_matmul")}
    print(f"RBF gram(X) @ V, X {n} x 784 float64, V ({n}, 1), working_memory {WORKING_MEMORY} MiB")
    for case, r in matvec.items():
        print(f"  {case:18s} {r['seconds']:8.2f} s   peak RSS above inputs {r['peak_above_inputs_mib']:8.0f} MiB")
    print(f"  gram_matvec / same GEMMs: {matvec['matvec']['seconds'] / matvec['same_gemms']['seconds']:.2f}x;"
          f" gram @ V / gram_matvec: {matvec['gram_then_matmul']['seconds'] / matvec['matvec']['seconds']:.2f}x")
    n = 10000
    fits = {case: _measure(case, n) for case in ("perceptron_streaming", "perceptron_in_memory")}
    print(f"KernelPerceptron.fit, {n} x 784 float32, 3 epochs (streaming: kernel_cache=2048 MiB)")
    for case, r in fits.items():
        print(f"  {case:22s} {r['seconds']:8.2f} s   accuracy {r['accuracy']:.4f}   rows {r['rows']}   "
              f"peak RSS above inputs {r['peak_above_inputs_mib']:6.0f} MiB")
    print(f"  streaming / in-memory: {fits['perceptron_streaming']['seconds'] / fits['perceptron_in_memory']['seconds']:.2f}x")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--dask":
        main_dask()
    else:
        main()
        main_dask()
