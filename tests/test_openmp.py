"""`import fastnn` leaves the process's environment alone, while fastnn's own OpenMP workers wait passively.

GNU libgomp prints its settings at load when OMP_DISPLAY_ENV=VERBOSE, including GOMP_SPINCOUNT:
0 with OMP_WAIT_POLICY=PASSIVE, 300000 by default, 30000000000 with ACTIVE. Each check runs in a
child process (the settings are fixed once per process).
"""
import glob
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="GNU OpenMP on Linux")

CHILD = """
    import ctypes, json, os, sys
    import numpy as np
    before = dict(os.environ)
    import fastnn
    getenv = ctypes.CDLL(None).getenv
    getenv.restype = ctypes.c_char_p
    result = {"environ_unchanged": dict(os.environ) == before, "libc_getenv": getenv(b"OMP_WAIT_POLICY")}
    for backend in fastnn.available_backends():  # run each backend's parallel ReLU (OpenMP regions)
        fastnn.relu_forward(np.ones((600, 600), dtype=np.float32), backend=backend)
    if len(sys.argv) > 1:  # another OpenMP runtime loaded after fastnn, as PyTorch loads its own copy
        ctypes.CDLL(sys.argv[1])
    result["libgomp_files"] = sorted({line.split()[-1] for line in open("/proc/self/maps") if "libgomp" in line})
    result["libc_getenv"] = result["libc_getenv"] and result["libc_getenv"].decode()
    print(json.dumps(result))
"""


def _run(env_extra, *args):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OMP_", "GOMP_"))}
    env.update(env_extra, OMP_DISPLAY_ENV="VERBOSE")
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(CHILD), *args], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    spin_counts = re.findall(r"GOMP_SPINCOUNT = '(\d+)'", result.stderr)
    return json.loads(result.stdout), spin_counts


def test_import_leaves_the_environment_and_fastnn_openmp_waits_passively():
    report, spin_counts = _run({})
    assert report["environ_unchanged"] and report["libc_getenv"] is None
    # one runtime, initialised once, shared by the Cython kernels and Numba's 'omp' layer, passive
    assert len(report["libgomp_files"]) == 1 and spin_counts == ["0"]


def test_a_policy_the_user_set_is_kept():
    report, spin_counts = _run({"OMP_WAIT_POLICY": "ACTIVE"})
    assert report["environ_unchanged"] and report["libc_getenv"] == "ACTIVE"
    assert spin_counts == ["30000000000"]


def test_an_openmp_runtime_loaded_later_reads_the_users_environment():
    sklearn = pytest.importorskip("sklearn")
    vendored = glob.glob(os.path.join(os.path.dirname(sklearn.__file__), os.pardir, "scikit_learn.libs", "libgomp*"))
    if not vendored:
        pytest.skip("this scikit-learn does not vendor libgomp")
    report, spin_counts = _run({}, vendored[0])
    assert len(report["libgomp_files"]) == 2
    assert spin_counts == ["0", "300000"]  # fastnn's passive, the later one at libgomp's default
