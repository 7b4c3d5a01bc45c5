"""Fuzz suite (issue 14 part 8): every public kernel and estimator, hostile arguments, every backend.

The table is in tests/fuzz_cases.py (about 1,000 cases per backend). Each backend's cases run in child
processes, many cases per child: a child prints a line before and after every case, so a case that
kills its child (a signal, an abort) or hangs past CASE_TIMEOUT is named, and the remaining cases
continue in a new child. A case passes when
- it neither kills nor hangs its process,
- it raises a clean error (ValueError or TypeError; fastnn.nn.DivergenceError for an estimator's fit),
- or it returns what the numpy backend returns for the same case (to float rounding), and the numpy
  backend did not refuse it.
The Gram kernel is fuzzed on its integer, type and shape arguments and on NaN/inf, not with arrays whose
products overflow. Where the Gram matrix or the kernel perceptron overflow on finite input (1e308 entries,
gamma, coef0 or degree at extremes: issue 14 part 7), a case must not crash or hang and must give a clean
error or a result, but the result is not compared with numpy's (fuzz_cases.comparable); neither is a fit
with random_state=None.
"""
import concurrent.futures
import functools
import json
import os
import queue
import subprocess
import sys
import threading

import numpy as np
import pytest
from child_process import NEUTRAL_CWD, child_env

import fuzz_cases
from kernel_cases import BACKENDS

HERE = os.path.dirname(os.path.abspath(__file__))
# Seconds for one case, including a first Numba compilation on a loaded 2-core machine.
CASE_TIMEOUT = float(os.environ.get("FASTNN_FUZZ_CASE_TIMEOUT", 240))
CLEAN_ERRORS = {"ValueError", "TypeError"}
CLEAN_FIT_ERRORS = CLEAN_ERRORS | {"DivergenceError"}
GROUPS = ("kernels", "estimators")


def _child_env():
    env = child_env()
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def _reader(stream, lines):
    for line in stream:
        lines.put(line)
    lines.put(None)


def run_children(backend, group):
    """index -> outcome for every case of `group` on `backend`, restarting after a child that died."""
    n_cases = len(fuzz_cases.all_cases(group))
    outcomes, first = {}, 0
    while first < n_cases:
        process = subprocess.Popen([sys.executable, os.path.join(HERE, "fuzz_cases.py"), backend, group, str(first)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_child_env(),
                                   cwd=NEUTRAL_CWD)
        lines = queue.Queue()
        threading.Thread(target=_reader, args=(process.stdout, lines), daemon=True).start()
        running = None
        while True:
            try:
                line = lines.get(timeout=CASE_TIMEOUT)
            except queue.Empty:
                process.kill()
                outcomes[running if running is not None else first] = {"status": "hang"}
                break
            if line is None:  # the child exited
                process.wait()
                if running is not None:
                    outcomes[running] = {"status": "crash", "returncode": process.returncode,
                                         "stderr": process.stderr.read()[-2000:]}
                elif len(outcomes) < n_cases and first not in outcomes:
                    pytest.fail(f"the fuzz child ({backend}, {group}) failed to start: {process.stderr.read()[-2000:]}")
                break
            record = json.loads(line)
            if "begin" in record:
                running = record["begin"]
            else:
                outcomes[record.pop("end")] = record
                running = None
        process.wait()
        process.stdout.close()
        process.stderr.close()
        first = max(outcomes) + 1 if outcomes else n_cases
    return outcomes


@functools.lru_cache(maxsize=None)
def all_outcomes(group):
    """backend -> outcomes of the group's cases, the children run two at a time (CI has 2 cores)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {backend: pool.submit(run_children, backend, group) for backend in BACKENDS}
        return {backend: future.result() for backend, future in futures.items()}


def _decode(value):
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if value is None or value.get("dtype") == "str":
        return value
    data = np.array([float(x) for x in value["data"]], dtype=np.float64).reshape(value["shape"])
    return {"dtype": value["dtype"], "data": data}


def _dtypes(value):
    if isinstance(value, list):
        return set().union(*map(_dtypes, value)) if value else set()
    return {value["dtype"]} if value else set()


def _same(result, reference, rtol, path="result"):
    """None when result equals reference to float rounding (rtol), else a description of the difference."""
    if isinstance(reference, list) or isinstance(result, list):
        if not (isinstance(reference, list) and isinstance(result, list) and len(result) == len(reference)):
            return f"{path}: structure differs"
        for i, (a, b) in enumerate(zip(result, reference)):
            problem = _same(a, b, rtol, f"{path}[{i}]")
            if problem:
                return problem
        return None
    if reference is None or result is None or reference.get("dtype") == "str":
        return None if result == reference else f"{path}: {result!r} != {reference!r}"
    if result["dtype"] != reference["dtype"] or result["data"].shape != reference["data"].shape:
        return f"{path}: {result['dtype']}{result['data'].shape} != {reference['dtype']}{reference['data'].shape}"
    a, b = result["data"], reference["data"]
    finite = np.isfinite(b)
    scale = np.max(np.abs(b[finite]), initial=0.0)
    close = np.isclose(a, b, rtol=rtol, atol=rtol * scale, equal_nan=True)
    if not close.all():
        at = np.argwhere(~close)[0]
        return f"{path}{tuple(at.tolist())}: {a[tuple(at)]!r} != numpy's {b[tuple(at)]!r}"
    return None


def _problems(backend, group):
    cases = fuzz_cases.all_cases(group)
    outcomes = all_outcomes(group)
    mine, reference = outcomes[backend], outcomes["numpy"]
    clean = CLEAN_ERRORS if group == "kernels" else CLEAN_FIT_ERRORS
    problems = []
    for index, case in enumerate(cases):
        outcome, expected = mine.get(index, {"status": "missing"}), reference.get(index, {"status": "missing"})
        label = fuzz_cases.case_id(case)
        status = outcome["status"]
        if status in ("crash", "hang", "missing"):
            problems.append(f"{label}: {status} {outcome.get('returncode', '')} {outcome.get('stderr', '')[-300:]}")
        elif status == "error":
            if not clean & set(outcome["mro"]):
                problems.append(f"{label}: {outcome['type']}: {outcome['message']}")
        elif expected["status"] != "ok":
            problems.append(f"{label}: returned a result where numpy raised "
                            f"{expected.get('type', expected['status'])}: {expected.get('message', '')}")
        elif fuzz_cases.comparable(case):
            reference_result = _decode(expected["result"])
            rtol = fuzz_cases.relative_tolerance(case, _dtypes(reference_result))
            difference = _same(_decode(outcome["result"]), reference_result, rtol)
            if difference:
                problems.append(f"{label}: {difference}")
    return problems


@pytest.mark.parametrize("group", GROUPS)
def test_hostile_arguments_give_a_clean_error_or_numpys_result(backend, group):
    problems = _problems(backend, group)
    assert not problems, f"{len(problems)} fuzz case(s) failed on {backend}:\n" + "\n".join(problems[:40])


def test_the_table_covers_every_public_kernel_and_estimator():
    import fastnn
    import fastnn.models

    # Configuration functions (backends, thread counts) are not kernels; set_num_threads is tested by its owner.
    kernels = {name for name in fastnn.__all__ if "backend" not in name and "num_threads" not in name}
    assert kernels == set(fuzz_cases.kernel_bases())
    assert set(fastnn.models.__all__) == set(fuzz_cases.estimator_bases())
    cases = fuzz_cases.all_cases("kernels")
    values = {json.dumps(case["value"]) for case in cases}
    for hostile in (2**31, 2**62, 2**63, 2**64, -1, 0, True, 2.5, ["np", "uint64", 2**64 - 1]):
        assert json.dumps(hostile) in values


def test_the_fuzz_cases_are_exercised_by_valid_calls():
    """The unmodified call of every kernel and estimator succeeds on numpy: the hostile cases are one change
    away from a valid call, so an error in them comes from the hostile value."""
    for group in GROUPS:
        outcomes = all_outcomes(group)["numpy"]
        for index, case in enumerate(fuzz_cases.all_cases(group)):
            if case["arg"] is None:
                assert outcomes[index]["status"] == "ok", fuzz_cases.case_id(case)
