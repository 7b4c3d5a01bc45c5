"""Choosing backends, and degrading gracefully when one cannot be loaded."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastnn


def test_reference_backend_is_always_available():
    assert "numpy" in fastnn.available_backends()


def test_required_backends_are_available(required_backends):
    """CI sets FASTNN_REQUIRE_BACKENDS=numpy,numba,cython so a backend that silently failed to build fails here."""
    missing = {name: fastnn.unavailable_backends().get(name) for name in required_backends
               if name not in fastnn.available_backends()}
    assert not missing, f"required backends did not load: {missing}"


def test_required_cython_build_is_used():
    """CI sets FASTNN_REQUIRE_CYTHON_BUILD=avx512 so a silently dropped vectorized build fails here: the
    build in use must be the required one or, on a CPU that cannot run it, the best below it that it can."""
    required = os.environ.get("FASTNN_REQUIRE_CYTHON_BUILD")
    if not required:
        pytest.skip("FASTNN_REQUIRE_CYTHON_BUILD not set")
    from fastnn.backends import cython_kernels

    order = cython_kernels.PREFERENCE
    assert required in order, f"FASTNN_REQUIRE_CYTHON_BUILD must be one of {order}"
    expected = next(name for name in order[order.index(required):] if cython_kernels.CPU_RUNS[name]())
    assert cython_kernels.BUILD == expected, cython_kernels.describe_build()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/cpuinfo")
@pytest.mark.skipif("cython" not in fastnn.available_backends(), reason="Cython backend not built")
def test_cpu_detection_agrees_with_the_kernel():
    """Linux lists a CPU feature in /proc/cpuinfo only when it also enabled the registers it needs."""
    from fastnn._ext._cpu import has_avx2_fma, has_avx512

    with open("/proc/cpuinfo") as fh:
        flags = next((line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), None)
    if flags is None:
        pytest.skip("/proc/cpuinfo has no flags line (not x86)")
    assert has_avx2_fma() is ({"avx2", "fma"} <= set(flags))
    assert has_avx512() is ({"avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl"} <= set(flags))


@pytest.mark.skipif("cython" not in fastnn.available_backends(), reason="Cython backend not built")
def test_a_build_takes_the_modules_it_lacks_from_the_next_build_down():
    import importlib.util

    from fastnn.backends import cython_kernels

    for position, name in enumerate(cython_kernels.PREFERENCE):
        try:
            build = cython_kernels.load_build(name)
        except ImportError:
            continue
        for stem, module in build.modules.items():
            supplier = next(other for other in cython_kernels.PREFERENCE[position:] if cython_kernels.CPU_RUNS[other]()
                            and importlib.util.find_spec(f"{cython_kernels.PACKAGES[other]}.{stem}") is not None)
            assert module == f"{cython_kernels.PACKAGES[supplier]}.{stem}"


@pytest.mark.skipif("cython" not in fastnn.available_backends(), reason="Cython backend not built")
def test_a_build_that_was_not_built_is_refused(monkeypatch):
    from fastnn.backends import cython_kernels

    monkeypatch.setitem(cython_kernels.PACKAGES, "avx512", "fastnn._ext.not_built")
    monkeypatch.setitem(cython_kernels.CPU_RUNS, "avx512", lambda: True)
    with pytest.raises(ImportError, match="not built"):
        cython_kernels.load_build("avx512")
    monkeypatch.setitem(cython_kernels.CPU_RUNS, "avx512", lambda: False)
    with pytest.raises(ImportError, match="cannot run"):
        cython_kernels.load_build("avx512")


BUILD_REPORT = """
    import json
    from fastnn.backends import cython_kernels
    print(json.dumps({"build": cython_kernels.BUILD, "modules": cython_kernels._build.modules}))
"""


@pytest.mark.skipif("cython" not in fastnn.available_backends(), reason="Cython backend not built")
@pytest.mark.parametrize("cap", ["avx2", "portable"])
def test_environment_variable_caps_the_cython_build(cap):
    from fastnn.backends import cython_kernels

    report = json.loads(_run_python(BUILD_REPORT, env_extra={"FASTNN_CYTHON_BUILD": cap}).stdout)
    allowed = cython_kernels.PREFERENCE[cython_kernels.PREFERENCE.index(cap):]
    assert report["build"] in allowed
    packages = {cython_kernels.PACKAGES[name] for name in allowed}
    assert all(module.rpartition(".")[0] in packages for module in report["modules"].values())


def test_default_is_the_fastest_available_compiled_backend():
    report = json.loads(_run_python(REPORT).stdout)  # a fresh process without FASTNN_BACKEND
    assert report["default"] == [name for name in ("cython", "numba", "numpy") if name in report["available"]][0]


def test_set_backend_and_use_backend_nest_and_restore(backend):
    previous = fastnn.get_backend()
    try:
        fastnn.set_backend(backend)
        assert fastnn.get_backend() == backend
        with fastnn.use_backend("numpy") as name:
            assert name == "numpy" and fastnn.get_backend() == "numpy"
            with fastnn.use_backend(backend):
                assert fastnn.get_backend() == backend
            assert fastnn.get_backend() == "numpy"
        assert fastnn.get_backend() == backend
    finally:
        fastnn.set_backend(previous)


def test_use_backend_restores_after_an_exception():
    previous = fastnn.get_backend()
    with pytest.raises(KeyError):
        with fastnn.use_backend("numpy"):
            raise KeyError
    assert fastnn.get_backend() == previous


def test_unknown_backend_names_the_choices():
    with pytest.raises(ValueError, match="cython"):
        fastnn.set_backend("cuda")
    with pytest.raises(ValueError):
        with fastnn.use_backend("cuda"):
            pass


def test_keyword_overrides_current_backend(monkeypatch):
    calls = []
    reference = fastnn._config.resolve("numpy")
    monkeypatch.setattr(reference, "sigmoid_forward",
                        lambda X, Y: (calls.append("numpy"), Y.fill(0.5)))
    with fastnn.use_backend(fastnn.available_backends()[0]):
        fastnn.sigmoid_forward(np.zeros(3), backend="numpy")
    assert calls == ["numpy"]


def _run_python(code, env_extra=None, path_prefix=None):
    env = {key: value for key, value in os.environ.items() if key != "FASTNN_BACKEND"}
    env.update(env_extra or {})
    if path_prefix:
        env["PYTHONPATH"] = os.pathsep.join([path_prefix, env.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            env=env, timeout=300, cwd=os.path.dirname(__file__))
    assert result.returncode == 0, result.stderr
    return result


REPORT = """
    import json, warnings
    warnings.simplefilter("always")
    import fastnn, numpy as np
    Y = fastnn.linear_forward(np.ones((2, 3)), np.ones((3, 4)))
    print(json.dumps({"available": fastnn.available_backends(), "unavailable": fastnn.unavailable_backends(),
                      "default": fastnn.get_backend(), "ok": bool((Y == 3).all())}))
"""


def test_missing_numba_degrades_gracefully(tmp_path):
    (tmp_path / "numba.py").write_text("raise ImportError('numba is not installed (simulated)')\n")
    report = json.loads(_run_python(REPORT, path_prefix=str(tmp_path)).stdout)
    assert "numba" not in report["available"] and report["ok"]
    assert "simulated" in report["unavailable"]["numba"]


def test_missing_compiled_extension_degrades_gracefully(tmp_path):
    blocker = """
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.startswith("fastnn._ext._"):
                    raise ImportError(f"{name} was not built (simulated)")
        sys.meta_path.insert(0, Block())
    """
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(blocker))
    report = json.loads(_run_python(REPORT, path_prefix=str(tmp_path)).stdout)
    assert "cython" not in report["available"] and report["ok"]
    assert "simulated" in report["unavailable"]["cython"]
    assert report["default"] == report["available"][0]


def test_environment_variable_selects_backend():
    report = json.loads(_run_python(REPORT, env_extra={"FASTNN_BACKEND": "numpy"}).stdout)
    assert report["default"] == "numpy"


def test_bad_environment_variable_warns_and_falls_back():
    result = _run_python(REPORT, env_extra={"FASTNN_BACKEND": "gpu"})
    report = json.loads(result.stdout)
    assert report["default"] == report["available"][0]
    assert "FASTNN_BACKEND='gpu' ignored" in result.stderr
