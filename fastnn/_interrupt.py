"""Ctrl-C during long compiled calls: bounded chunks of work, KeyboardInterrupt between them.

A compiled kernel runs without the GIL and Python runs signal handlers only between bytecodes, so
a fused epoch or a large convolution made as one call ignores Ctrl-C until it returns. The public
functions therefore split such work into chunks of about CHUNK_SECONDS (estimated from multiply-
adds, never measured, so the split and the results depend only on the arguments) and check for an
interrupt between chunks. Inside `deferred_interrupt()` a Ctrl-C only sets a flag that check()
turns into KeyboardInterrupt after the caller recorded the finished chunk, so what a caller keeps
(parameters updated in place, the optimizer's step count) always describes whole batches.
"""
import contextlib
import signal
import threading

# Aimed time per chunk: a Ctrl-C is seen within about this, and a chunk boundary costs well under 1% of it.
CHUNK_SECONDS = 0.2
# Multiply-adds per second the backends sustain on fused epochs and convolutions, about what a shared 2-core
# Intel Xeon (AVX-512) measured (numpy: 0.12-4 G/s, its ConvBase epochs slowest; numba: 4.6-12; cython:
# 11-29); and the fixed cost of one batch in multiply-add equivalents (its loop and call overhead, which
# dominates for tiny networks: ~100, 3 and 0.5 us).
MACS_PER_SECOND = {"numpy": 1e8, "numba": 8e9, "cython": 1.6e10}
# The same for conv1d_forward/backward calls (numpy: one BLAS product per batch; measured 2-20 G/s).
CONV_MACS_PER_SECOND = {"numpy": 2e9, "numba": 4e9, "cython": 8e9}
BATCH_OVERHEAD_MACS = {"numpy": 1e4, "numba": 2.4e4, "cython": 8e3}
# The optimizer's pass over every parameter per batch, in multiply-add equivalents per parameter: memory-
# bound, it dominates at batch 1 (784-128-10 at batch 1 measured 47 us per batch on a quiet machine, 190
# under load: ~0.5-2 ns per parameter). Estimates on the slow side make chunks (and Ctrl-C waits) shorter
# but the calls more frequent; this one gives ~0.1 s chunks at batch 1 when the machine is quiet.
UPDATE_MACS_PER_PARAMETER = 12
# Seconds per parameter that starting a fused-epoch call costs: the Cython kernels copy the parameters and
# optimizer state into their working layout and back (measured 4-10 ns). Chunks last at least
# CALL_OVERHEAD_RATIO times that, so that on large networks the copies stay below 1% of the epoch.
CALL_SECONDS_PER_PARAMETER = {"cython": 8e-9}
CALL_OVERHEAD_RATIO = 100


def chunk_items(backend, macs_per_item, overhead_macs=0.0, n_params=0, rates=MACS_PER_SECOND):
    """How many items (batches, samples) of `macs_per_item` multiply-adds (+ overhead_macs each) make one
    chunk of `backend`'s work at `rates`, for a call that carries n_params parameters in and out."""
    seconds = max(CHUNK_SECONDS, CALL_OVERHEAD_RATIO * CALL_SECONDS_PER_PARAMETER.get(backend, 0.0) * n_params)
    budget = seconds * rates.get(backend, min(rates.values()))
    return max(1, int(budget // (macs_per_item + overhead_macs + 1)))


@contextlib.contextmanager
def deferred_interrupt():
    """Hold Ctrl-C (SIGINT) back until the block calls the yielded check(), which raises KeyboardInterrupt.

    A Ctrl-C during the block and not yet checked raises KeyboardInterrupt when the block ends. Outside
    the main thread, or when SIGINT has a handler other than Python's default, nothing is deferred and
    check() does nothing (the signal's usual handling applies).
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield _no_check
        return
    pressed = []

    def check():
        if pressed:
            pressed.clear()
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
    try:
        yield check
    finally:
        signal.signal(signal.SIGINT, previous)
    check()


def _no_check():
    pass
