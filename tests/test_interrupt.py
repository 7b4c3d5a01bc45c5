"""Ctrl-C: long fused epochs and large convolutions stop with KeyboardInterrupt between chunks of
whole batches (or samples), leaving the parameters as after a whole number of batches; chunked
calls give the results of one call.

The SIGINT tests run the long call in a child process with a timeout; the child reports how many
batches it applied and saves its parameters, which must equal a reference run of that many batches.
"""
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from child_process import NEUTRAL_CWD, child_env

import fastnn
import fastnn._interrupt as interrupt
from fastnn.cnn_training import ConvEpochs
from fastnn.training import DenseEpochs

SIZES = [64, 32, 32, 5]
CNN = dict(channels=(6, 6), kernel_sizes=(5, 3), strides=(2, 1), paddings=(2, 1), n_classes=5)


def dense_epochs(backend, dtype, optimizer, n=300, **hyper):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n, SIZES[0])).astype(dtype)
    y = rng.integers(0, SIZES[-1], n)
    epochs = DenseEpochs(X, y, sizes=SIZES, batch_size=7, optimizer=optimizer, backend=backend, **hyper)
    params = (rng.standard_normal(epochs.n_params) * 0.1).astype(dtype)
    return epochs, params


def conv_epochs(backend, dtype, optimizer, n=200, **hyper):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((n, 2, 30)).astype(dtype)
    y = rng.integers(0, 5, n)
    epochs = ConvEpochs(X, y, batch_size=9, optimizer=optimizer, backend=backend, **CNN, **hyper)
    params = (rng.standard_normal(epochs.n_params) * 0.1).astype(dtype)
    return epochs, params


def run(epochs, params, order, chunk_batches, step=3):
    """(params, state, loss_sum, n_correct, n_updates, progress reports) of epochs.run in chunks."""
    epochs.chunk_batches = chunk_batches
    params = params.copy()
    state = np.zeros((2, params.size), params.dtype)
    reports = []
    loss, correct, updates = epochs.run(order, params, state, step, progress=reports.append)
    return params, state, loss, correct, updates, reports


HYPER = {"sgd": dict(learning_rate=0.05), "momentum": dict(learning_rate=0.05, momentum=0.9, weight_decay=1e-3),
         "adam": dict(learning_rate=1e-2, weight_decay=1e-3)}


@pytest.mark.parametrize("make", [dense_epochs, conv_epochs], ids=["dense", "cnn"])
@pytest.mark.parametrize("setting", sorted(HYPER))
def test_chunked_epochs_equal_one_call_bit_for_bit(backend, dtype, make, setting):
    epochs, params = make(backend, dtype, "adam" if setting == "adam" else "sgd", **HYPER[setting])
    order = np.random.default_rng(3).permutation(epochs.X.shape[0])[:-4]  # a short last batch
    whole = run(epochs, params, order, 10 ** 9)
    chunked = run(epochs, params, order, 3)
    n_batches = -(-order.size // epochs.batch_size)
    assert whole[5] == [n_batches] and sum(chunked[5]) == n_batches and len(chunked[5]) == -(-n_batches // 3)
    np.testing.assert_array_equal(chunked[0], whole[0])  # params
    np.testing.assert_array_equal(chunked[1], whole[1])  # optimizer state (Adam's steps carried across calls)
    assert chunked[3:5] == whole[3:5]  # n_correct, n_updates
    assert chunked[2] == pytest.approx(whole[2], rel=1e-13)  # sums of the calls' loss sums: rounding only


def test_chunked_epoch_stops_where_one_call_diverges(backend):
    epochs, params = dense_epochs(backend, "float64", "sgd", learning_rate=1e6)
    order = np.arange(epochs.X.shape[0])
    whole = run(epochs, params, order, 10 ** 9)
    chunked = run(epochs, params, order, 2)
    assert not np.isfinite(whole[2]) and not np.isfinite(chunked[2])
    assert whole[4] == chunked[4] < -(-order.size // epochs.batch_size)
    np.testing.assert_array_equal(chunked[0], whole[0])
    np.testing.assert_array_equal(chunked[1], whole[1])


def test_public_epoch_functions_chunk_internally(backend, monkeypatch):
    """mlp_train_epoch's results do not depend on the chunking (here forced to one batch per call)."""
    epochs, params = dense_epochs(backend, "float64", "adam", **HYPER["adam"])
    arguments = dict(sizes=SIZES, batch_size=7, optimizer="adam", step=5, backend=backend, **HYPER["adam"])
    state = np.zeros((2, params.size))
    order = np.arange(epochs.X.shape[0])
    whole = fastnn.mlp_train_epoch(epochs.X, epochs.y, order, params, state, **arguments)
    monkeypatch.setattr(fastnn.training, "chunk_items", lambda *args: 1)  # one batch per call
    chunked = fastnn.mlp_train_epoch(epochs.X, epochs.y, order, params, state, **arguments)
    np.testing.assert_array_equal(chunked[0], whole[0])
    np.testing.assert_array_equal(chunked[1], whole[1])
    assert chunked[3:] == whole[3:] and chunked[2] == pytest.approx(whole[2], rel=1e-13)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals need the main thread")
def test_interrupt_during_a_chunk_stops_after_it_with_consistent_params(backend):
    """SIGINT raised in-process while the second chunk's progress is reported: KeyboardInterrupt after it,
    and params/state are those of the batches reported."""
    epochs, params = dense_epochs(backend, "float64", "adam", **HYPER["adam"])
    order = np.arange(epochs.X.shape[0])
    epochs.chunk_batches = 4
    trained, state, reports = params.copy(), np.zeros((2, params.size)), []

    def progress(n):
        reports.append(n)
        if len(reports) == 2:
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        epochs.run(order, trained, state, 0, progress=progress)
    assert reports == [4, 4] and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    reference = run(epochs, params, order[:8 * epochs.batch_size], 10 ** 9, step=0)
    np.testing.assert_array_equal(trained, reference[0])
    np.testing.assert_array_equal(state, reference[1])


def test_large_convolutions_chunked_over_the_batch_match_one_call(backend, dtype, monkeypatch):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((37, 3, 50)).astype(dtype)
    w = rng.standard_normal((4, 3, 5)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    dy = rng.standard_normal((37, 4, 24)).astype(dtype)
    y = fastnn.conv1d_forward(x, w, b, stride=2, padding=1, backend=backend)
    grads = fastnn.conv1d_backward(x, w, dy, stride=2, padding=1, backend=backend)
    monkeypatch.setattr(interrupt, "CHUNK_SECONDS", 1e-12)  # one sample per call
    np.testing.assert_array_equal(fastnn.conv1d_forward(x, w, b, stride=2, padding=1, backend=backend), y)
    dx, dw, db = fastnn.conv1d_backward(x, w, dy, stride=2, padding=1, backend=backend)
    np.testing.assert_array_equal(dx, grads[0])  # per sample: exact
    tol = 1e-5 if dtype == "float32" else 1e-12  # summed over the calls: rounding only
    np.testing.assert_allclose(dw, grads[1], rtol=tol, atol=tol * np.abs(grads[1]).max())
    np.testing.assert_allclose(db, grads[2], rtol=tol, atol=tol * np.abs(grads[2]).max())


# ------------------------------------------------------------------------------------ SIGINT in a child
CHILD = textwrap.dedent(r"""
    import sys
    import numpy as np
    import fastnn
    from fastnn.training import DenseEpochs

    mode, backend, out = sys.argv[1:4]
    rng = np.random.default_rng(0)
    if mode == "epoch":
        X = rng.standard_normal((1000, 256))
        y = rng.integers(0, 10, 1000)
        epochs = DenseEpochs(X, y, sizes=[256, 256, 256, 10], batch_size=64, optimizer="adam", learning_rate=1e-3,
                             backend=backend)
        params = rng.standard_normal(epochs.n_params) * 0.05
        state = np.zeros((2, params.size))
        epochs.run(np.arange(64), params.copy(), state.copy(), 0)  # load/compile before the clock starts
        order = np.tile(np.arange(1000), 400)  # 6250 batches: ~8 s of compiled work, minutes on numpy
        done = []
        print("READY", flush=True)
        try:
            epochs.run(order, params, state, 0, progress=done.append)
            print("FINISHED", flush=True)
        except KeyboardInterrupt:
            np.savez(out, params=params, state=state, done=sum(done))
            print("KeyboardInterrupt", sum(done), -(-order.size // 64), flush=True)
    else:  # a convolution of ~6.6e10 multiply-adds (several seconds on every backend), 32 MB in and out
        x = rng.standard_normal((1000, 128, 64)).astype(np.float32)
        w = rng.standard_normal((128, 128, 63)).astype(np.float32)
        calls = []
        kernel = fastnn._config.resolve(backend).conv1d_forward
        fastnn._config.resolve(backend).conv1d_forward = lambda *a: (calls.append(1), kernel(*a))
        fastnn.conv1d_forward(x[:2], w, padding=31, backend=backend)
        calls.clear()
        print("READY", flush=True)
        try:
            fastnn.conv1d_forward(x, w, padding=31, backend=backend)
            print("FINISHED", flush=True)
        except KeyboardInterrupt:
            print("KeyboardInterrupt", len(calls), len(fastnn.conv.batch_chunks(x, w, 64, backend, passes=1)), flush=True)
""")


def interrupted_child(mode, backend, out, delay=0.5, timeout=120):
    """Start the child, send SIGINT `delay` s after it is ready; its stdout's last line, split."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode, backend, str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=child_env(), cwd=NEUTRAL_CWD)
    killer = threading.Timer(timeout, proc.kill)  # a child that never gets ready or never stops fails the test
    killer.start()
    try:
        ready = proc.stdout.readline()
        assert ready.strip() == "READY", (ready, proc.stderr.read()[-3000:] if proc.poll() is not None else "")
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate()
    finally:
        killer.cancel()
    assert proc.returncode == 0, (proc.returncode, stdout, stderr[-3000:])
    return stdout.split()


# The compiled backends: a child per case costs seconds, and the numpy backend chunks through the same code.
COMPILED = [name for name in ("cython", "numba") if name in fastnn.available_backends()]


@pytest.mark.parametrize("backend", COMPILED)
def test_ctrl_c_stops_a_long_fused_epoch_after_whole_batches(backend, tmp_path):
    out = tmp_path / "state.npz"
    words = interrupted_child("epoch", backend, out)
    assert words[0] == "KeyboardInterrupt", words
    done, total = int(words[1]), int(words[2])
    assert done < total
    saved = np.load(out)
    # the reference: the same initial parameters trained on exactly `done` batches in one call
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 256))
    y = rng.integers(0, 10, 1000)
    epochs = DenseEpochs(X, y, sizes=[256, 256, 256, 10], batch_size=64, optimizer="adam", learning_rate=1e-3,
                         backend=backend)
    params = rng.standard_normal(epochs.n_params) * 0.05
    reference = run(epochs, params, np.tile(np.arange(1000), 400)[:done * 64], 10 ** 9, step=0)
    np.testing.assert_array_equal(saved["params"], reference[0])
    np.testing.assert_array_equal(saved["state"], reference[1])


@pytest.mark.parametrize("backend", COMPILED)
def test_ctrl_c_stops_a_large_convolution(backend, tmp_path):
    words = interrupted_child("conv", backend, tmp_path / "unused")
    assert words[0] == "KeyboardInterrupt", words
    calls, chunks = int(words[1]), int(words[2])
    assert 1 <= calls < chunks  # stopped between two of its chunks of samples


@pytest.mark.parametrize("fused", [True, False])
def test_trainer_interrupted_keeps_params_and_update_count_in_step(backend, fused, monkeypatch):
    """Ctrl-C in Trainer.fit (here a SIGINT raised in-process after the 6th batch): KeyboardInterrupt, and
    the model and optimizer are those of a run of exactly 6 batches."""
    from fastnn import nn

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((60, 9)), rng.integers(0, 4, 60)

    def trainer(epochs):
        model = nn.mlp([9, 8, 4], dtype=np.float64, random_state=0, backend=backend)
        return nn.Trainer(model, nn.Adam(0.01), batch_size=5, epochs=epochs, shuffle=False, fused=fused)

    reference = trainer(1)
    reference.fit(X[:30], y[:30])  # 6 batches
    interrupted, calls = trainer(3), []
    if fused:
        monkeypatch.setattr(fastnn.training, "chunk_items", lambda *args: 2)  # 2 batches per kernel call
        kernel = DenseEpochs._kernel

        def counting_kernel(self, *args):
            result = kernel(self, *args)
            calls.append(1)
            if len(calls) == 3:
                signal.raise_signal(signal.SIGINT)
            return result

        monkeypatch.setattr(DenseEpochs, "_kernel", counting_kernel)
    else:
        step = interrupted.optimizer.step

        def counting_step(*args):
            step(*args)
            calls.append(1)
            if len(calls) == 6:
                signal.raise_signal(signal.SIGINT)

        interrupted.optimizer.step = counting_step
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(X, y)
    assert interrupted.optimizer.n_updates == 6
    np.testing.assert_array_equal(interrupted.model.params, reference.model.params)
    np.testing.assert_array_equal(interrupted.optimizer.state, reference.optimizer.state)
