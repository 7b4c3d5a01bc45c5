"""Packaging traps a new user falls into: importing the source tree instead of the installed package."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fastnn

PACKAGE = Path(fastnn.__file__).resolve().parent


def _checkout_like(tmp_path, with_compiled_modules):
    """A directory shaped like a clone (setup.py, src_ext/, fastnn/), with or without the .so files."""
    ignore = ["__pycache__"] + ([] if with_compiled_modules else ["*.so", "*.pyd"])
    shutil.copytree(PACKAGE, tmp_path / "fastnn", ignore=shutil.ignore_patterns(*ignore))
    (tmp_path / "setup.py").write_text("# marker\n")
    (tmp_path / "src_ext").mkdir()
    return tmp_path


def _import_in(directory):
    code = "import fastnn; print(','.join(fastnn.available_backends()))"
    return subprocess.run([sys.executable, "-c", code], cwd=directory, capture_output=True, text=True, timeout=120)


def test_importing_a_source_tree_without_compiled_modules_warns_with_the_fix(tmp_path):
    result = _import_in(_checkout_like(tmp_path, with_compiled_modules=False))
    assert result.returncode == 0, result.stderr
    assert "cython" not in result.stdout
    assert "RuntimeWarning: fastnn is being imported from its source tree" in result.stderr
    assert "pip install -e ." in result.stderr


def test_a_source_tree_with_built_modules_imports_quietly(tmp_path):
    if not list((PACKAGE / "_ext").glob("_cpu*")):
        pytest.skip("this fastnn has no compiled modules to copy")
    result = _import_in(_checkout_like(tmp_path, with_compiled_modules=True))
    assert result.returncode == 0, result.stderr
    assert "source tree" not in result.stderr
    assert "cython" in result.stdout.split(",")
