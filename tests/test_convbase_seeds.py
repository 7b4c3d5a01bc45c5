"""The ConvBase seed study (fastnn.experiments.convbase_seeds, `fastnn experiment convbase-seeds`) and its
PyTorch yardstick: the orders, the per-seed rows and summaries, the torch network being the same function
as fastnn's, and the command line's files."""
import json

import numpy as np
import pytest

import fastnn
from fastnn import datasets, experiments, nn
from fastnn.__main__ import main

BACKENDS = fastnn.available_backends()


def small_mnist1d_like(n_train=300, n_test=100, length=40, seed=0):
    """A learnable 10-class problem of (n, 40) signals: a class-dependent bump plus noise."""
    rng = np.random.default_rng(seed)

    def draw(n):
        y = rng.integers(0, 10, n)
        t = np.arange(length)
        X = np.exp(-0.5 * ((t[None, :] - (2 + 3.6 * y[:, None])) / 2.0) ** 2) + 0.3 * rng.standard_normal((n, length))
        return X.astype(np.float32), y.astype(np.int64)

    X_train, y_train = draw(n_train)
    X_test, y_test = draw(n_test)
    empty = np.empty((0, length), np.float32)
    return datasets.Dataset(X_train, y_train, empty, np.empty(0, np.int64), X_test, y_test,
                            class_names=datasets.DIGIT_CLASS_NAMES, name="bumps")


def test_epoch_orders_in_order_or_seeded_permutations():
    in_order = experiments.epoch_orders(7, 3, shuffle=False)
    assert len(in_order) == 3 and all(np.array_equal(order, np.arange(7)) for order in in_order)
    shuffled = experiments.epoch_orders(50, 4, shuffle=True, random_state=3)
    assert all(np.array_equal(np.sort(order), np.arange(50)) for order in shuffled)
    assert not np.array_equal(shuffled[0], shuffled[1])  # a fresh order every epoch
    again = experiments.epoch_orders(50, 4, shuffle=True, random_state=3)
    assert all(np.array_equal(a, b) for a, b in zip(shuffled, again))


def test_convbase_seeds_rows_summary_and_reproducibility():
    data = small_mnist1d_like()
    result = experiments.convbase_seeds(data, [0, 1, 2], epochs=3, batch_size=50)
    rows = result["rows"]
    assert [row["seed"] for row in rows] == [0, 1, 2]
    accuracies = [row["test_accuracy"] for row in rows]
    assert all(0.0 <= a <= 1.0 for a in accuracies) and all(row["fit_time"] > 0 for row in rows)
    assert np.mean(accuracies) > 0.3  # 18 Adam steps on a clean signal: well above chance (0.1)
    summary = result["test_accuracy"]
    assert summary["n"] == 3 and summary["mean"] == pytest.approx(np.mean(accuracies))
    assert summary["min"] == min(accuracies) and summary["max"] == max(accuracies)
    settings = result["settings"]
    assert settings["steps"] == 3 * 6 and settings["shuffle"] is False and settings["backend"] == fastnn.get_backend()
    assert "torch_test_accuracy" not in result
    again = experiments.convbase_seeds(data, [1], epochs=3, batch_size=50)
    assert again["rows"][0]["test_accuracy"] == rows[1]["test_accuracy"]


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "numpy"])
def test_convbase_seeds_same_runs_as_the_reference(backend):
    """float64: the fused epochs of every backend follow the reference's trajectory (same final model)."""
    data = small_mnist1d_like()
    kwargs = dict(epochs=2, batch_size=50, dtype="float64", shuffle=True)
    ours = experiments.convbase_seeds(data, [4], backend=backend, **kwargs)
    reference = experiments.convbase_seeds(data, [4], backend="numpy", **kwargs)
    assert ours["rows"][0]["test_accuracy"] == reference["rows"][0]["test_accuracy"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(seeds=[]), "seeds must hold at least one seed"),
    (dict(epochs=0), "epochs must be a positive integer"),
    (dict(batch_size=2.5), "batch_size must be a positive integer"),
    (dict(learning_rate=0.0), "learning_rate must be positive"),
])
def test_convbase_seeds_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        experiments.convbase_seeds(small_mnist1d_like(), **{"seeds": [0], **kwargs})


def test_cli_convbase_seeds_bad_setting_exits_2(tmp_path, monkeypatch, capsys):
    pytest.importorskip("mnist1d.data")
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path))
    assert main(["experiment", "convbase-seeds", "--seeds", "0", "--no-plot"]) == 2
    assert "seeds must hold at least one seed" in capsys.readouterr().err


def test_train_cnn_fused_refuses_pooling():
    model = nn.conv1d_net((1, 40), 10, channels=(4,), kernel_sizes=(3,), strides=(1,), paddings=(0,), pool=2)
    with pytest.raises(ValueError, match="no pooling"):
        experiments.train_cnn_fused(model, np.zeros((10, 1, 40), np.float32), np.zeros(10, np.int64), [np.arange(10)])


def test_torch_network_is_the_same_function_and_trains_the_same():
    """The yardstick runs the same algorithm: from the same weights, in the same shuffled order, fastnn's
    fused Adam epochs and PyTorch's loop stay together to float64 rounding over 360 steps (in float32 the
    two part after a few thousand steps, as any two summation orders do)."""
    torch = pytest.importorskip("torch")
    data = small_mnist1d_like()
    X32 = data.X_train.reshape(-1, 1, 40)
    model = nn.conv1d_net((1, 40), 10, random_state=5)
    network = experiments.torch_cnn(torch, model)
    with torch.no_grad():
        torch_logits = network(torch.from_numpy(X32)).numpy()
    np.testing.assert_allclose(torch_logits, model.predict_logits(X32), rtol=1e-4, atol=1e-5)

    X = X32.astype(np.float64)
    model = nn.conv1d_net((1, 40), 10, dtype=np.float64, random_state=5)
    network = experiments.torch_cnn(torch, model, dtype=np.float64)
    orders = experiments.epoch_orders(len(X), 60, shuffle=True, random_state=1)  # 60 epochs of 6 steps
    experiments.train_cnn_fused(model, X, data.y_train, orders, batch_size=50)
    experiments.train_torch_cnn(torch, network, X, data.y_train, orders, batch_size=50)
    with torch.no_grad():
        torch_logits = network(torch.from_numpy(X)).numpy()
    logits = model.predict_logits(X)
    assert np.abs(logits).max() > 5  # it trained
    np.testing.assert_allclose(torch_logits, logits, rtol=1e-9, atol=1e-9)


@pytest.mark.skipif(not hasattr(datasets, "load_mnist1d"), reason="no MNIST-1D loader")
def test_cli_convbase_seeds_writes_json_and_plot(tmp_path, monkeypatch, capsys):
    pytest.importorskip("mnist1d.data")
    pytest.importorskip("matplotlib")
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path / "data"))
    out = tmp_path / "out"
    assert main(["experiment", "convbase-seeds", "--seeds", "2", "--first-seed", "3", "--epochs", "1",
                 "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "batches in the data's order" in printed and "over 2 seeds" in printed
    result = json.loads((out / "convbase-seeds.json").read_text())
    assert result["dataset"] == "mnist1d" and [row["seed"] for row in result["rows"]] == [3, 4]
    assert result["settings"]["steps"] == 40 and result["test_accuracy"]["n"] == 2
    assert all(row["test_accuracy"] > 0.2 for row in result["rows"])  # 40 steps of ConvBase on MNIST-1D
    png = out / "convbase-seeds.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["experiment", "convbase-seeds", "--seeds", "1", "--epochs", "1", "--shuffle", "--no-plot",
                 "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "convbase-seeds-shuffled.json").read_text())["settings"]["shuffle"] is True
