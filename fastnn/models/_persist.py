"""Model files: .npz archives of plain arrays and a JSON config, written atomically and read without
pickle, checking every member's declared size against what the file holds before anything is allocated.

A saved estimator is a zip archive (np.savez) with members `format` (a string such as
"fastnn.MLPClassifier/1"), `config` (a JSON string) and the estimator's arrays. Reading one that was
truncated, corrupted, written by another program or by another estimator gives a ValueError naming
the file, never zipfile.BadZipFile, KeyError, EOFError or an allocation of what a forged header claims.
"""
import json
import math
import os
import zipfile

import numpy as np

# Largest member fastnn reads from a model file (uncompressed), and largest JSON config: far more than
# any model fastnn trains (2**31 - 1 parameters of float64 are 16 GiB) is refused as not a model file.
MAX_MEMBER_BYTES = 2**34
MAX_CONFIG_CHARS = 2**26


def write(path, format_name, config, arrays):
    """Write `arrays` (name -> ndarray of a non-object dtype), `format` and the JSON `config` to path, atomically.

    The archive is written to a temporary file in the same directory and renamed over `path`, so a
    reader never sees half a file and an earlier file survives a failed save. Returns path as a str.
    """
    for name, array in arrays.items():
        if np.asarray(array).dtype.kind == "O":
            raise ValueError(f"{name} of object dtype cannot be saved without pickle; use int or str labels")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as f:
            np.savez(f, format=np.array(format_name), config=np.array(json.dumps(config)), **arrays)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def read(path, format_name, keys, what):
    """The arrays `keys` and the parsed config of a file that save() wrote with `format_name`.

    Returns (config: dict, arrays: dict name -> ndarray). ValueError (naming `path` and `what`, e.g.
    "fastnn MLPClassifier") when the file is missing, not a zip archive, truncated, of another format,
    lacks a member, holds object arrays, or declares arrays larger than the bytes it holds.
    """
    try:
        with zipfile.ZipFile(os.fspath(path)) as archive:
            members = {info.filename: info for info in archive.infolist()}
            format_found = _read_member(archive, members, "format")
            if format_found.dtype.kind not in "US" or format_found.shape != ():
                raise ValueError("its format member is not a string")
            if str(format_found) != format_name:
                raise _WrongFormat(f"{path} has format {str(format_found)[:100]!r}, expected {format_name!r}")
            config_text = _read_member(archive, members, "config")
            if config_text.dtype.kind not in "US" or config_text.shape != () or len(str(config_text)) > MAX_CONFIG_CHARS:
                raise ValueError("its config member is not a JSON string")
            arrays = {key: _read_member(archive, members, key) for key in keys}
    except _WrongFormat as exc:
        raise ValueError(str(exc)) from None
    except Exception as exc:  # BadZipFile, EOFError, KeyError, zlib.error, OSError...: all mean "not a model file"
        raise ValueError(f"{path} is not a saved {what} ({type(exc).__name__}: {exc})") from None
    try:
        config = json.loads(str(config_text))
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{path} is not a valid saved {what}: its config is not JSON ({exc})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} is not a valid saved {what}: its config is not a JSON object")
    return config, arrays


def archive_size(archive):
    """The size in bytes of the file an open ZipFile reads."""
    handle = archive.fp
    position = handle.tell()
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(position)
    return size


class _WrongFormat(Exception):
    pass


def _read_member(archive, members, key):
    """The array stored as `key`.npy, after checking that its header's shape fits the member's size."""
    info = members.get(f"{key}.npy")
    if info is None:
        raise KeyError(f"no member {key!r}")
    if info.file_size > MAX_MEMBER_BYTES:
        raise ValueError(f"member {key!r} is {info.file_size} bytes, more than a model file holds")
    # The sizes in the zip directory are claims too: a stored member must fit in the file, and a
    # compressed one may not expand more than deflate can (about 1000:1).
    if info.header_offset + info.compress_size > archive_size(archive):
        raise ValueError(f"member {key!r} extends past the end of the file (truncated?)")
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise ValueError(f"member {key!r} has inconsistent sizes")
    if info.file_size > 1100 * info.compress_size + 1024:
        raise ValueError(f"member {key!r} claims to expand {info.compress_size} bytes to {info.file_size}")
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"member {key!r} has .npy version {version}")
        if dtype.hasobject:
            raise ValueError(f"member {key!r} holds Python objects, which fastnn does not unpickle")
        declared = math.prod(shape) * dtype.itemsize
        if declared > info.file_size:
            raise ValueError(f"member {key!r} declares {declared} bytes of data but holds {info.file_size}")
        f.seek(0)
        return np.lib.format.read_array(f, allow_pickle=False)
