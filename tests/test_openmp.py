"""fastnn leaves OpenMP's settings to the user, and its training layers start no OpenMP region.

GNU OpenMP reads OMP_WAIT_POLICY once per process, at load, and PyTorch, Numba and fastnn's Cython
kernels share one libgomp.so.1 (the dynamic loader matches PyTorch's bundled copy by its soname), so
a policy set for fastnn would be imposed on the others: `import fastnn` used to set PASSIVE, which made
PyTorch's own training 2.6x slower. libgomp prints its settings at load under OMP_DISPLAY_ENV=VERBOSE,
including GOMP_SPINCOUNT: 300000 by default, 0 with PASSIVE, 30000000000 with ACTIVE.

Instead the layers run their elementwise passes (between GEMMs) on Python threads that block when
idle: libgomp creates its worker threads at the first parallel region and keeps them, so a layer-path
epoch that starts no OpenMP region leaves the process's thread count unchanged. Each check runs in a
child process (both facts are per process).
"""
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
from child_process import NEUTRAL_CWD, child_env

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="GNU OpenMP, /proc on Linux")

IMPORT = """
    import ctypes, json, os
    before = dict(os.environ)
    import fastnn
    getenv = ctypes.CDLL(None).getenv
    getenv.restype = ctypes.c_char_p
    value = getenv(b"OMP_WAIT_POLICY")
    print(json.dumps({"environ_unchanged": dict(os.environ) == before, "policy": value and value.decode()}))
"""

THREADS = """
    import json, os, sys, time
    import numpy as np
    import fastnn
    from fastnn import nn

    backend = sys.argv[1]
    def n_threads():
        return len(os.listdir("/proc/self/task"))

    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (3000, 300)).astype(np.float32)
    y = rng.integers(0, 10, 3000)
    fastnn.relu_forward(np.ones((10, 10), dtype=np.float32), backend=backend)  # small: serial, compiles numba
    np.ones((500, 500), dtype=np.float32) @ np.ones((500, 500), dtype=np.float32)  # BLAS threads started
    before = n_threads()
    for activation in ("relu", "sigmoid"):
        model = nn.mlp([300, 200, 100, 10], activation=activation, random_state=0, backend=backend)
        nn.Trainer(model, nn.SGD(0.01), batch_size=1500, epochs=2, fused=False).fit(X, y, X[:500], y[:500])
    for _ in range(100):  # a joined Python thread can stay listed for a moment; OpenMP's workers stay for good
        if n_threads() <= before:
            break
        time.sleep(0.01)
    after_layers = n_threads()
    fastnn.relu_forward(np.ones((3000, 300), dtype=np.float32), backend=backend)  # large: an OpenMP region
    print(json.dumps({"before": before, "after_layers": after_layers, "after_kernel": n_threads()}))
"""


def _run(script, env_extra=None, *args):
    env = child_env({key: value for key, value in os.environ.items() if not key.startswith(("OMP_", "GOMP_"))},
                    **(env_extra or {}))
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], env=env, capture_output=True,
                            text=True, timeout=300, cwd=NEUTRAL_CWD)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


@pytest.mark.parametrize("user_policy", [None, "ACTIVE", "PASSIVE"])
def test_import_leaves_the_environment_and_openmp_settings_alone(user_policy):
    env = {"OMP_DISPLAY_ENV": "VERBOSE"}
    if user_policy:
        env["OMP_WAIT_POLICY"] = user_policy
    report, stderr = _run(IMPORT + "\n    fastnn.relu_forward(__import__('numpy').ones((600, 600), 'f'), "
                                   "backend='cython' if 'cython' in fastnn.available_backends() else None)\n", env)
    assert report["environ_unchanged"] and report["policy"] == user_policy
    spin_counts = re.findall(r"GOMP_SPINCOUNT = '(\d+)'", stderr)
    expected = {None: "300000", "ACTIVE": "30000000000", "PASSIVE": "0"}[user_policy]
    assert spin_counts in ([], [expected])  # [] when no backend here loads OpenMP


@pytest.mark.parametrize("backend", [b for b in ("cython", "numba") if b in __import__("fastnn").available_backends()])
def test_layer_path_training_starts_no_openmp_threads(backend):
    report, _ = _run(THREADS, None, backend)
    assert report["after_layers"] == report["before"]
    assert report["after_kernel"] > report["before"]  # the check can see OpenMP's workers when they start
