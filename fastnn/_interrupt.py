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

# Aimed time per chunk: 10 per second keeps Ctrl-C within ~0.1-0.2 s, and a chunk boundary (a kernel
# call, a few passes over the parameters) costs well under 1% of it.
CHUNK_SECONDS = 0.1
# Multiply-adds per second each backend sustains on fused epochs and convolutions, rounded down from
# what a shared 2-core Intel Xeon (AVX-512) measured (numpy: 0.12-4 G/s, ConvBase epochs slowest; numba:
# 4.6-12; cython: 7.7-13), so chunks err on the short side; and the fixed cost of one batch in multiply-add
# equivalents (its loop and call overhead, which dominates for tiny networks: ~100, 3 and 0.5 us).
MACS_PER_SECOND = {"numpy": 1e8, "numba": 4e9, "cython": 8e9}
BATCH_OVERHEAD_MACS = {"numpy": 1e4, "numba": 1.2e4, "cython": 4e3}


def chunk_items(backend, macs_per_item, overhead_macs=0.0):
    """How many items (batches, samples) of `macs_per_item` multiply-adds fit in one chunk of `backend`."""
    budget = CHUNK_SECONDS * MACS_PER_SECOND.get(backend, min(MACS_PER_SECOND.values()))
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
