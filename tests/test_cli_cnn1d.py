"""`fastnn train cnn1d`: trains a small 1-D CNN on MNIST-1D offline (generated into a temporary $FASTNN_DATA)
and writes its JSON history and training curves."""
import json
import sys

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")
pytest.importorskip("mnist1d.data")

from fastnn import datasets  # noqa: E402
from fastnn.__main__ import main  # noqa: E402

# Two small conv layers on the NumPy backend: a few tenths of a second per epoch.
SMALL = ["--channels", "4", "4", "--kernel-sizes", "5", "3", "--strides", "2", "2", "--paddings", "1", "1",
         "--backend", "numpy"]
STEM = "CNN1D_lr0.01_b100"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """A $FASTNN_DATA directory with MNIST-1D generated once (~2 s) for this module."""
    root = tmp_path_factory.mktemp("fastnn-data")
    datasets.load_mnist1d(cache_dir=root / datasets.MNIST1D_DIR)
    return root


@pytest.fixture(autouse=True)
def offline_data(data_root, monkeypatch):
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(data_root))


def test_train_cnn1d_writes_history_and_plot(tmp_path, capsys):
    assert main(["train", "cnn1d", "--epochs", "2", *SMALL, "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "X_train (4000, 40), X_val (0, 40), X_test (1000, 40)" in out
    final = [line for line in out.splitlines() if line.startswith("test accuracy:")]
    assert len(final) == 1 and "steps/s" in final[0] and "wall time" in final[0] and "80 steps" in final[0]

    result = json.loads((tmp_path / f"{STEM}.json").read_text())
    history = result["history"]
    assert history["epoch"] == [1, 2] and history["n_updates"] == [40, 80]
    assert len(history["test_accuracy"]) == 2 and history["val_accuracy"] == []
    assert result["test_accuracy"] == history["test_accuracy"][-1]  # no early stopping: the last epoch's model
    assert 0.2 < result["test_accuracy"] <= 1.0  # 10 classes: well above chance after 80 steps
    assert result["dataset"] == "mnist1d" and result["sizes"] == {"train": 4000, "validation": 0, "test": 1000}
    settings = result["settings"]
    assert settings["channels"] == [4, 4] and settings["optimizer"] == "adam" and settings["batch_size"] == 100
    assert result["backend"] == settings["backend"] == "numpy"  # the backend that ran, never null
    assert result["n_updates"] == 80
    assert result["n_parameters"] == (4 * 5 + 4) + (4 * 4 * 3 + 4) + (4 * 10 * 10 + 10)  # lengths 40 -> 19 -> 10
    assert result["fit_time"] > 0 and result["wall_time"] >= result["fit_time"] and result["updates_per_second"] > 0

    png = tmp_path / f"{STEM}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{STEM}.json", f"{STEM}.png"]  # no temporary left


def test_train_cnn1d_validation_patience_pool(tmp_path, capsys):
    assert main(["train", "cnn1d", "--epochs", "3", *SMALL, "--pool", "2", "--validation-size", "0.2",
                 "--patience", "1", "--learning-rate", "0.02", "--batch-size", "50", "--dtype", "float64",
                 "--out", str(tmp_path), "--no-plot"]) == 0
    captured = capsys.readouterr()
    assert "X_train (3200, 40), X_val (800, 40)" in captured.out and "float64" in captured.out
    assert "epoch   1  test acc" in captured.err  # per-epoch lines without --quiet
    result = json.loads((tmp_path / "CNN1D_lr0.02_b50.json").read_text())
    history = result["history"]
    n_epochs = len(history["epoch"])
    assert 1 <= n_epochs <= 3 and len(history["val_accuracy"]) == n_epochs == len(history["test_accuracy"])
    assert history["n_updates"][0] == 64  # 3,200 / 50
    assert result["settings"]["pool"] == 2 and result["settings"]["dtype"] == "float64"
    assert result["sizes"] == {"train": 3200, "validation": 800, "test": 1000}
    # The model kept is the best validation epoch's; its test accuracy was recorded then.
    assert result["test_accuracy"] == history["test_accuracy"][history["best_epoch"] - 1]
    assert not (tmp_path / "CNN1D_lr0.02_b50.png").exists()


def test_train_cnn1d_no_shuffle_takes_the_data_order(tmp_path):
    """--no-shuffle: every epoch visits the signals in the data's order (MNIST-1D's reference loop), so
    the run is that of CNN1DClassifier(shuffle=False) with the same seed."""
    from fastnn.models import CNN1DClassifier

    assert main(["train", "cnn1d", "--epochs", "2", *SMALL, "--no-shuffle", "--seed", "3", "--dtype", "float64",
                 "--out", str(tmp_path), "--no-plot", "--quiet"]) == 0
    result = json.loads((tmp_path / f"{STEM}.json").read_text())
    assert result["settings"]["shuffle"] is False
    data = datasets.load_mnist1d(dtype="float64")
    direct = CNN1DClassifier(channels=(4, 4), kernel_sizes=(5, 3), strides=(2, 2), paddings=(1, 1), epochs=2,
                             shuffle=False, random_state=3, dtype="float64", backend="numpy").fit(data.X_train, data.y_train)
    assert result["test_accuracy"] == direct.score(data.X_test, data.y_test)
    assert result["history"]["loss"] == pytest.approx(direct.history_["loss"], rel=1e-12)


@pytest.mark.parametrize("arguments, message", [
    (["--channels", "4", "4"], "kernel_sizes must have one entry per conv layer"),
    (["--pool", "0"], "pool must be None or a positive integer"),
    (["--validation-size", "4000"], "test_size=4000"),
    (["--channels", "4", "--kernel-sizes", "99", "--strides", "1", "--paddings", "0"], "do not fit this network"),
])
def test_train_cnn1d_bad_settings_exit_2(tmp_path, capsys, arguments, message):
    assert main(["train", "cnn1d", "--epochs", "1", "--backend", "numpy", "--out", str(tmp_path), "--quiet",
                 *arguments]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_train_cnn1d_without_mnist1d(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)  # makes `import mnist1d.data` fail
    assert main(["train", "cnn1d", "--out", str(tmp_path)]) == 2
    assert "fastnn[mnist1d]" in capsys.readouterr().err


def test_train_cnn1d_rejects_a_bad_validation_size(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "cnn1d", "--validation-size", "some"])
    assert exit_info.value.code == 2 and "expected a count or a fraction" in capsys.readouterr().err
