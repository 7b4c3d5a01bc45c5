"""Choosing the backend: available_backends, get/set_backend, use_backend and FASTNN_BACKEND.

Backends are imported lazily, the first time they are asked for, so `import fastnn` stays
cheap and never fails because Numba or the compiled extensions are missing: a backend that
cannot be imported is left out of `available_backends()` and the reason is kept in
`unavailable_backends()`.
"""
import contextlib
import contextvars
import importlib.util
import os
import warnings
from pathlib import Path

from .backends import BACKEND_MODULES, PREFERENCE, import_backend

_loaded = {}  # name -> backend module
_failed = {}  # name -> human-readable reason
_default = None  # name chosen by set_backend / FASTNN_BACKEND / preference
_override = contextvars.ContextVar("fastnn_backend", default=None)  # set by use_backend


SOURCE_TREE_ADVICE = (
    "fastnn is being imported from its source tree ({root}), which has no compiled modules, not from the "
    "installed package: the Cython backend is unavailable and Numba compiles on first use. Run Python "
    "from another directory (the installed fastnn is then used), or build the extensions in place with "
    "`pip install -e .` (or `python setup.py build_ext --inplace`).")


def source_tree_without_extensions():
    """The checkout's root when fastnn is imported from a source tree whose extensions were never built
    (the usual cause: running Python in the clone after `pip install .`), else None."""
    root = Path(__file__).resolve().parent.parent
    if not ((root / "setup.py").is_file() and (root / "src_ext").is_dir()):
        return None
    try:
        built = importlib.util.find_spec("fastnn._ext._cpu") is not None
    except (ImportError, ValueError):
        built = False
    return None if built else root


def warn_if_source_tree_without_extensions():
    root = source_tree_without_extensions()
    if root is not None:
        warnings.warn(SOURCE_TREE_ADVICE.format(root=root), RuntimeWarning, stacklevel=3)


def _try_load(name):
    if name in _loaded:
        return True
    if name in _failed:
        return False
    try:
        _loaded[name] = import_backend(name)
    except Exception as exc:  # ImportError, or a broken install raising something else
        reason = f"{type(exc).__name__}: {exc}"
        root = source_tree_without_extensions() if name == "cython" else None
        _failed[name] = reason if root is None else f"{reason}. {SOURCE_TREE_ADVICE.format(root=root)}"
        return False
    return True


def _check_name(name):
    if name not in BACKEND_MODULES:
        raise ValueError(f"unknown backend {name!r}; choose one of {sorted(BACKEND_MODULES)}")


def available_backends():
    """Names of the backends that load on this machine, fastest first (e.g. ('cython', 'numba', 'numpy'))."""
    return tuple(name for name in PREFERENCE if _try_load(name))


def unavailable_backends():
    """{name: reason} for every backend that could not be loaded."""
    available_backends()
    return dict(_failed)


def _require(name):
    _check_name(name)
    if not _try_load(name):
        raise RuntimeError(f"backend {name!r} is not available: {_failed[name]}")
    return _loaded[name]


def _initial_default():
    requested = os.environ.get("FASTNN_BACKEND", "").strip().lower()
    if requested:
        if requested in BACKEND_MODULES and _try_load(requested):
            return requested
        reason = _failed.get(requested, f"not one of {sorted(BACKEND_MODULES)}")
        warnings.warn(f"FASTNN_BACKEND={requested!r} ignored ({reason}); using the fastest available backend",
                      RuntimeWarning, stacklevel=3)
    return next(name for name in PREFERENCE if _try_load(name))


def get_backend():
    """Name of the backend kernels run on when no `backend=` is given."""
    global _default
    override = _override.get()
    if override is not None:
        return override
    if _default is None:
        _default = _initial_default()
    return _default


def set_backend(name):
    """Make `name` ('numpy', 'numba' or 'cython') the default backend for this process."""
    global _default
    _require(name)
    _default = name


@contextlib.contextmanager
def use_backend(name):
    """Run the enclosed block on backend `name`; thread- and task-local, restores the previous choice."""
    _require(name)
    token = _override.set(name)
    try:
        yield name
    finally:
        _override.reset(token)


def resolve(backend=None):
    """The backend module for `backend` (a name), or for the current choice when None."""
    name = get_backend() if backend is None else backend
    module = _loaded.get(name)
    return module if module is not None else _require(name)
