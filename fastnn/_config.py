"""Choosing the backend: available_backends, get/set_backend, use_backend and FASTNN_BACKEND.

Backends are imported lazily, the first time they are asked for, so `import fastnn` stays
cheap and never fails because Numba or the compiled extensions are missing: a backend that
cannot be imported is left out of `available_backends()` and the reason is kept in
`unavailable_backends()`.
"""
import contextlib
import contextvars
import os
import warnings

from .backends import BACKEND_MODULES, PREFERENCE, import_backend

_loaded = {}  # name -> backend module
_failed = {}  # name -> human-readable reason
_default = None  # name chosen by set_backend / FASTNN_BACKEND / preference
_override = contextvars.ContextVar("fastnn_backend", default=None)  # set by use_backend


def _try_load(name):
    if name in _loaded:
        return True
    if name in _failed:
        return False
    try:
        _loaded[name] = import_backend(name)
    except Exception as exc:  # ImportError, or a broken install raising something else
        _failed[name] = f"{type(exc).__name__}: {exc}"
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
