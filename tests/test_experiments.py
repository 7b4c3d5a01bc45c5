"""`fastnn train mlp` and `fastnn experiment ...`: they run offline on digits and write JSON and plots."""
import json
import re

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

import fastnn  # noqa: E402
from fastnn import datasets, experiments  # noqa: E402
from fastnn.__main__ import main  # noqa: E402

QUICK = ["--quiet", "--hidden", "32"]


@pytest.fixture(scope="module")
def digits():
    return datasets.load_dataset("digits")


def test_train_mlp_writes_the_seed_result_file_and_plot(tmp_path, capsys):
    assert main(["train", "mlp", "--epochs", "3", "--batch-size", "5", "--learning-rate", "0.01", "--check-gradient",
                 "--check-entries", "3", "--check-magnitude", "--out", str(tmp_path), *QUICK]) == 0
    out = capsys.readouterr().out
    assert "Check the gradient of W[0, 0]" not in out  # a corner pixel of digits: its gradient is exactly 0
    assert re.search(r"Check the gradient of W\[\d+, \d+\] in the L1 layer from backpropagation: -?0\.\d*[1-9]", out)
    assert "gradient check passed: " in out
    assert "L1 norm of the first layer's gradient, batch of 50:" in out
    result = json.loads((tmp_path / "MLP_lr0.01_b5.json").read_text())
    history = result["history"]
    assert history["epoch"] == [1, 2, 3] and len(history["test_accuracy"]) == 3
    assert result["settings"]["batch_size"] == 5 and result["dataset"] == "digits"
    assert result["settings"]["backend"] == fastnn.get_backend()  # the backend that ran, not null
    assert 0.5 < result["test_accuracy"] <= 1.0
    assert (tmp_path / "MLP_lr0.01_b5.png").stat().st_size > 10_000


@pytest.mark.parametrize("activation", ["leaky_relu", "tanh"])
def test_train_mlp_takes_every_activation_the_estimator_does(activation, tmp_path):
    assert main(["train", "mlp", "--epochs", "2", "--activation", activation, "--no-plot", "--out", str(tmp_path),
                 *QUICK]) == 0
    result = json.loads((tmp_path / "MLP_lr0.01_b5.json").read_text())
    assert result["settings"]["activation"] == activation and 0.5 < result["test_accuracy"] <= 1.0


def test_batch_size_experiment(tmp_path, capsys):
    assert main(["experiment", "batch-size", "--batch-sizes", "5", "500", "--epochs", "4", "--patience", "2",
                 "--out", str(tmp_path), *QUICK]) == 0
    rows = json.loads((tmp_path / "batch-size.json").read_text())["rows"]
    assert [row["batch_size"] for row in rows] == [5, 500]
    n_train = 1077  # digits: 1797 images, 25% test, 20% of the rest for validation
    for row in rows:
        assert 1 <= row["best_epoch"] <= row["epochs_run"] <= 4
        assert row["updates_to_best"] == row["best_epoch"] * -(-n_train // row["batch_size"])
    assert (tmp_path / "batch-size-accuracy.png").exists() and (tmp_path / "batch-size-updates.png").exists()
    assert "updates to best" in capsys.readouterr().out


def test_momentum_experiment(tmp_path):
    assert main(["experiment", "momentum", "--momenta", "0", "0.9", "--epochs", "3", "--out", str(tmp_path),
                 *QUICK]) == 0
    losses = json.loads((tmp_path / "momentum.json").read_text())["loss"]
    assert sorted(losses) == ["0.0", "0.9"] and all(len(curve) == 3 for curve in losses.values())
    assert losses["0.9"][-1] < losses["0.0"][-1]  # momentum trains faster at this learning rate
    assert (tmp_path / "momentum.png").exists()


def test_early_stopping_marks_where_patience_stops(digits):
    settings = experiments.MLPSettings(hidden=(32,), epochs=12, learning_rate=0.05)
    result = experiments.early_stopping_experiment(digits, settings, patience=2)
    val = result["history"]["val_accuracy"]
    assert len(val) == 12 and len(result["history"]["test_accuracy"]) == 12
    best, stop = result["best_epoch"], result["stop_epoch"]
    if stop is None:
        assert max(val) == val[best - 1]
    else:
        assert stop - best == 2 and max(val[:stop]) == val[best - 1] > max(val[best:stop])
    assert result["test_accuracy_at_best"] == result["history"]["test_accuracy"][best - 1]


def test_early_stopping_command(tmp_path):
    assert main(["experiment", "early-stopping", "--epochs", "4", "--stop-patience", "1", "--out", str(tmp_path),
                 *QUICK]) == 0
    result = json.loads((tmp_path / "early-stopping.json").read_text())
    assert result["patience"] == 1 and len(result["history"]["epoch"]) == 4
    assert (tmp_path / "early-stopping.png").exists()


def test_training_runs_are_reproducible(digits):
    settings = experiments.MLPSettings(hidden=(16,), epochs=2)
    first, second = (experiments.train_mlp(digits, settings) for _ in range(2))
    np.testing.assert_array_equal(first["model"].params, second["model"].params)
    assert first["history"]["loss"] == second["history"]["loss"]


def test_missing_fashion_mnist_is_explained_in_command_line_words(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path / "empty"))  # never the real home directory
    assert main(["train", "mlp", "--dataset", "fashion-mnist", "--out", str(tmp_path), *QUICK]) == 2
    err = capsys.readouterr().err
    assert "Fashion-MNIST: " in err and "Pass --data-dir the directory" in err and "or --download to fetch" in err
    assert "path=" not in err and "download=True" not in err
    assert main(["train", "mlp", "--dataset", "digits", "--data-dir", str(tmp_path), *QUICK]) == 2
    assert "--data-dir and --download apply to --dataset cifar10 or fashion-mnist only" in capsys.readouterr().err
