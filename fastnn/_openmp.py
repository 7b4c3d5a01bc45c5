"""fastnn's OpenMP runtime waits passively, and the process's environment stays the user's.

Idle OpenMP workers (of the Cython kernels' and Numba's parallel regions) should sleep instead of
spinning: spinning workers take the cores BLAS needs next, and a batch-5000 training epoch, which
alternates parallel ReLU passes with GEMMs, measured 1.5-2x slower with GNU OpenMP's default
(active) waiting. GNU libgomp reads OMP_WAIT_POLICY once, in its load-time constructor, and has no
call to change it afterwards. So load_passive_openmp() sets OMP_WAIT_POLICY=PASSIVE, loads the
libgomp fastnn's kernels use, and puts os.environ back exactly as it was: libraries loaded later
(PyTorch and scikit-learn vendor their own libgomp copies) read the user's environment, not fastnn's.

The Cython extensions and Numba's 'omp' threading layer link the same system libgomp.so.1 (one copy
per process), so both get the passive policy. Nothing is set when the user set OMP_WAIT_POLICY (their
value holds for every runtime), and a libgomp that was loaded before fastnn keeps the policy it
started with.
"""
import ctypes
import importlib
import os
import sys

POLICY = "OMP_WAIT_POLICY"
# A small extension that links OpenMP: importing it loads the libgomp fastnn was built against (the
# system's, or a copy a wheel vendors under another name).
OPENMP_EXTENSION = "fastnn._ext._activations"


def _load_runtimes():
    try:
        importlib.import_module(OPENMP_EXTENSION)
    except Exception:  # not built, or broken: the backend table reports it when it is asked for
        pass
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libgomp.so.1")  # the one Numba's 'omp' threading layer links
        except OSError:
            pass


def load_passive_openmp():
    """Load fastnn's OpenMP runtime with passive waiting; os.environ is left as it was. Idempotent."""
    if POLICY in os.environ:
        _load_runtimes()
        return
    os.environ[POLICY] = "PASSIVE"
    try:
        _load_runtimes()
    finally:
        del os.environ[POLICY]
