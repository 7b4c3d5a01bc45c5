"""fork after multithreaded kernels: children (os.fork, multiprocessing's fork context, a
ProcessPoolExecutor) run every kind of kernel correctly, never hang, are never killed.

Each case runs in a fresh interpreter with a timeout, so a hang fails the test instead of CI.
The parent first runs kernels large enough to start every thread pool (Cython's OpenMP regions,
Numba's parallel kernels, OpenBLAS), keeps their results, then forks; a child recomputes them and
compares. Kernels whose threads only split independent outputs must agree exactly; conv1d_backward's
weight gradients are sums of per-thread partials, so a single-threaded child may round them differently.
"""
import subprocess
import sys
import textwrap

import pytest
from child_process import NEUTRAL_CWD, child_env

CHILD_TIMEOUT = 240  # seconds for a whole scenario; a hung child would otherwise block forever

SCRIPT = textwrap.dedent(r"""
    import concurrent.futures, multiprocessing, os, sys, warnings
    import numpy as np
    import fastnn

    backend, dtype = sys.argv[1], np.dtype(sys.argv[2])
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 256)).astype(dtype)        # 2**18 elements: the parallel activation paths
    W = (rng.standard_normal((256, 256)) * 0.1).astype(dtype)
    b = rng.standard_normal(256).astype(dtype)
    x = rng.standard_normal((32, 8, 128)).astype(dtype)        # conv: 2.5 M multiply-adds, threads over the batch
    w = (rng.standard_normal((16, 8, 5)) * 0.1).astype(dtype)
    dy = rng.standard_normal((32, 16, 124)).astype(dtype)
    y = rng.integers(0, 10, 1000)
    sizes = [256, 64, 10]
    p_mlp = (rng.standard_normal(256 * 64 + 64 + 64 * 10 + 10) * 0.05).astype(dtype)
    xs = rng.standard_normal((1000, 1, 40)).astype(dtype)
    cnn = dict(channels=(8, 8), kernel_sizes=(5, 3), strides=(2, 2), paddings=(1, 1), n_classes=10)
    from fastnn.cnn_training import conv_stack_geometry, n_parameters
    p_cnn = (rng.standard_normal(n_parameters(conv_stack_geometry((1, 40), (8, 8), (5, 3), (2, 2), (1, 1)), 10))
             * 0.1).astype(dtype)
    x2 = rng.standard_normal((16, 3, 32, 32)).astype(dtype)   # conv2d: 1.4 M multiply-adds, threads over the batch
    w2 = (rng.standard_normal((6, 3, 5, 5)) * 0.1).astype(dtype)
    dy2 = rng.standard_normal((16, 6, 28, 28)).astype(dtype)
    INEXACT = {"conv_dw": 1e-5, "conv_db": 1e-5,  # of the largest entry: float32 thread-partial sums round
               "conv2d_dw": 1e-5, "conv2d_db": 1e-5}

    def compute():
        out = {}
        out["relu"], out["mask"] = fastnn.relu_forward(X, backend=backend)
        out["sigmoid"] = fastnn.sigmoid_forward(X, backend=backend)
        out["linear"] = fastnn.linear_forward(X, W, b, backend=backend)
        out["gram"] = fastnn.gram(X[:700], X[:300], kernel="rbf", gamma=0.01, backend=backend)
        out["gram_sym"] = fastnn.gram(X[:600], kernel="poly", gamma=0.01, degree=2, backend=backend)
        out["conv"] = fastnn.conv1d_forward(x, w, backend=backend)
        out["conv_dx"], out["conv_dw"], out["conv_db"] = fastnn.conv1d_backward(x, w, dy, backend=backend)
        out["pool"], out["argmax"] = fastnn.maxpool1d_forward(X[:, None], kernel_size=2, backend=backend)
        out["conv2d"] = fastnn.conv2d_forward(x2, w2, backend=backend)
        out["conv2d_dx"], out["conv2d_dw"], out["conv2d_db"] = fastnn.conv2d_backward(x2, w2, dy2, backend=backend)
        out["pool2d"], out["argmax2d"] = fastnn.maxpool2d_forward(X.reshape(250, 4, 16, 16), kernel_size=(1, 2),
                                                                  backend=backend)  # 2**17 outputs: threads
        out["leaky"] = fastnn.leaky_relu_forward(X, backend=backend)
        out["tanh"] = fastnn.tanh_forward(X, backend=backend)
        order = np.arange(200)  # (the fused epochs are single-threaded: short ones show the child is right)
        out["mlp"] = fastnn.mlp_train_epoch(X, y, order, p_mlp, np.zeros((2, p_mlp.size), dtype), sizes=sizes,
                                            batch_size=20, optimizer="adam", learning_rate=1e-3, backend=backend)[0]
        out["cnn"] = fastnn.cnn1d_train_epoch(xs, y, order, p_cnn, np.zeros((2, p_cnn.size), dtype), batch_size=50,
                                              optimizer="sgd", momentum=0.9, backend=backend, **cnn)[0]
        out["mlp_forward"] = fastnn.mlp_forward(X, p_mlp, sizes=sizes, backend=backend)  # 17 M multiply-adds
        out["cnn1d_forward"] = fastnn.cnn1d_forward(xs, p_cnn, backend=backend, **cnn)  # 3.5 M multiply-adds
        return out

    def mismatches(tag):
        # compare this process's results with the parent's (inherited through fork)
        bad = []
        for name, value in compute().items():
            scale = INEXACT.get(name, 0) * np.abs(EXPECTED[name]).max()
            ok = (np.allclose(value, EXPECTED[name], rtol=0, atol=scale) if name in INEXACT
                  else np.array_equal(value, EXPECTED[name]))
            if not ok:
                bad.append(f"{tag}:{name}")
        return bad

    def task(tag):
        return os.getpid(), fastnn.get_num_threads(), mismatches(tag)

    EXPECTED = compute()
    assert fastnn.get_num_threads() >= 1

    failures = []
    # 1. os.fork
    pid = os.fork()
    if pid == 0:
        bad = mismatches("os.fork")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fastnn.set_num_threads(2)  # refused in a child: its inherited pool cannot run 2 threads
        bad += [] if fastnn.get_num_threads() == 1 and caught else ["os.fork:set_num_threads"]
        print("child failures:", bad, flush=True)
        os._exit(1 if bad else 0)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        failures.append(f"os.fork child status {status}")
    # 2. multiprocessing, fork context
    with multiprocessing.get_context("fork").Pool(2) as pool:
        for child_pid, threads, bad in pool.map(task, ["pool-a", "pool-b"]):
            failures += bad + ([] if threads == 1 else [f"pool threads {threads}"])
    # 3. ProcessPoolExecutor with fork
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as executor:
        for child_pid, threads, bad in executor.map(task, ["executor"]):
            failures += bad + ([] if threads == 1 else [f"executor threads {threads}"])
    # the parent keeps its threads and its results
    failures += mismatches("parent-after")
    print("FAILURES" if failures else "ALL OK", failures, flush=True)
""")


def run_script(script, *args, timeout=CHILD_TIMEOUT):
    try:
        return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=timeout,
                              env=child_env(), cwd=NEUTRAL_CWD)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"timed out after {timeout} s (a forked child hung?); output so far: {exc.stdout!r} {exc.stderr!r}")


def test_children_made_by_fork_compute_what_the_parent_computed(backend):
    result = run_script(SCRIPT, backend, "float32")  # (fork does the same to both dtypes' kernels)
    assert result.returncode == 0 and "ALL OK" in result.stdout, (result.returncode, result.stdout, result.stderr[-3000:])
    assert "Terminating" not in result.stderr


def test_set_num_threads_validates_and_keeps_results():
    script = textwrap.dedent("""
        import numpy as np, fastnn
        X = np.random.default_rng(0).standard_normal((1000, 300))
        for bad in (0, -1, 1.5, True, "2"):
            try:
                fastnn.set_num_threads(bad)
            except ValueError:
                pass
            else:
                raise SystemExit(f"accepted {bad!r}")
        for backend in fastnn.available_backends():
            expected = fastnn.relu_forward(X, backend=backend)[0]
            fastnn.set_num_threads(1)
            assert fastnn.get_num_threads() == 1
            single = fastnn.relu_forward(X, backend=backend)[0]
            k1 = fastnn.gram(X[:500], X[:400], backend=backend)
            fastnn.set_num_threads(None)
            assert np.array_equal(single, expected), backend
            assert np.array_equal(k1, fastnn.gram(X[:500], X[:400], backend=backend)), backend
        print("OK")
    """)
    result = run_script(script, timeout=120)
    assert result.returncode == 0 and "OK" in result.stdout, (result.stdout, result.stderr[-3000:])
