"""How many threads fastnn's own parallel loops use, and why a child made by fork uses one.

fastnn's parallel loops are the Cython kernels' OpenMP regions and the Numba kernels built with
parallel=True (BLAS has its own threads: use threadpoolctl for those). After fork, a child inherits
the parent's GNU OpenMP thread pool without its threads: a multi-thread region then hangs (Cython)
or Numba's OpenMP layer kills the child ("fork() called from a process already using GNU OpenMP").
A single-thread region starts no pool, so, as PyTorch's data loader does for its workers, an
os.register_at_fork handler makes the child run every fastnn kernel on one thread: the same results
(only thread-partial sums, such as conv1d_backward's, may round differently), never a hang.
"""
import contextlib
import os
import sys
import threading
import warnings

# 0: each runtime's default; n > 0: at most n threads per parallel loop. Read by the Numba backend
# on every dispatch; pushed into each compiled module (which keeps its own copy) by _set.
limit = 0
_forked = False  # this process was made by fork after fastnn was imported
_modules = []  # loaded compiled modules with a set_max_threads(n) function


def _set(n):
    global limit
    previous, limit = limit, n
    for module in _modules:
        module.set_max_threads(n)
    numba = sys.modules.get("numba")
    if previous and not n and numba is not None:  # lifting a limit: Numba's own default again (this thread)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def register_module(module):
    """Have the compiled `module`'s set_max_threads(n) follow the limit from now on."""
    if module not in _modules:
        _modules.append(module)
    module.set_max_threads(limit)


def set_num_threads(n):
    """Use at most `n` threads in fastnn's parallel loops (None: each runtime's default).

    The limit applies to the Cython OpenMP regions and the Numba parallel kernels of this process;
    1 runs them serially. In a child made by fork it stays 1 (with a warning for n > 1): the
    inherited OpenMP thread pool cannot run more. BLAS's own thread count is not changed, but the
    compiled Gram kernels run their tiles' GEMMs on fastnn's threads (at most min(n, BLAS's
    threads), with BLAS held to one thread during the call: single_threaded_blas).
    """
    if n is None:
        n = 0
    elif isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be None or an integer >= 1, got {n!r}")
    if _forked and n != 1:
        warnings.warn("fastnn runs single-threaded in a process made by fork (its parent's OpenMP thread pool "
                      "does not survive fork); set_num_threads ignored", RuntimeWarning, stacklevel=2)
        return
    _set(n)


def get_num_threads():
    """The most threads a fastnn parallel loop will use: the limit, else the CPUs this process may run on."""
    if limit:
        return limit
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# One BLAS thread during a call that runs its own GEMMs on several threads (single_threaded_blas).
_blas_lock = threading.Lock()
_blas_controller = None  # threadpoolctl's controller of the BLAS libraries loaded, made on first use
_blas_users = 0  # calls inside single_threaded_blas, across threads
_blas_limiter = None  # restores the BLAS thread counts when the last of them leaves
_blas_threads = 0  # BLAS's own thread count before the first of them entered (0: not controllable)


def _blas_libraries():
    global _blas_controller
    if _blas_controller is None:
        try:
            from threadpoolctl import ThreadpoolController
            _blas_controller = ThreadpoolController().select(user_api="blas")
        except Exception:  # threadpoolctl missing or unable to inspect this process: leave BLAS alone
            _blas_controller = False
    return _blas_controller


@contextlib.contextmanager
def single_threaded_blas():
    """Within: every BLAS call of the process runs on one thread; yields how many threads BLAS had
    before (the most it may use), or 0 when BLAS cannot be controlled (then nothing is changed).

    For kernels that run many small GEMMs on their own threads, each followed by work on its
    result while it is in cache (the RBF Gram): a multithreaded BLAS alternating with other threads
    spins and synchronises between calls. scikit-learn's KMeans pins BLAS the same way
    (threadpoolctl). Nested and concurrent uses share one limit, restored when the last one leaves;
    meanwhile other threads' BLAS calls run on one thread too.
    """
    global _blas_users, _blas_limiter, _blas_threads
    with _blas_lock:
        if _blas_users == 0:
            libraries = _blas_libraries()
            _blas_threads = min((lib.num_threads for lib in libraries.lib_controllers), default=0) if libraries else 0
            _blas_limiter = libraries.limit(limits=1) if _blas_threads else None
        _blas_users += 1
        threads = _blas_threads
    try:
        yield threads
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0 and _blas_limiter is not None:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None


def _after_fork_in_child():
    global _forked, _blas_lock, _blas_users, _blas_limiter
    _forked = True
    _set(1)
    # A fork during another thread's pinned call: a fresh lock, and the child keeps one BLAS thread.
    _blas_lock, _blas_users, _blas_limiter = threading.Lock(), 0, None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
