"""The seeds' image experiments (../shared/SEEDS.md section 5), on fastnn's estimators.

- translation_rotation_experiment: an MLP 784-128-10, a 2-layer CNN (64 kernels of 7x7, 2x2 max-pooling, a
  linear head) and a 3-layer CNN (the same plus a 64 -> 128 conv of 2x2 and another max-pool), each tested
  in-domain, on the test images translated up by 4 pixels and rotated by 90, 180 and 270 degrees.
- depth, activation, conv_layers and channels experiments: variations of the CIFAR-10 tutorial CNN (conv
  3 -> 6 5x5, pool, conv 6 -> 16 5x5, pool, linear 120, 84, 10; SGD lr 0.001 momentum 0.9, batch 4). The
  input channels are the data's: 1 on MNIST and Fashion-MNIST, where the tutorial's 3 cannot apply.
- learning_rate_experiment: the sigmoid MLP 784-300-10 at batch 100, three initialisations per learning rate.

Each takes a fastnn.datasets.Dataset of images (X_* of shape (n, C, H, W); fastnn.images.load_image_dataset)
and returns plain data (JSON-able dicts and lists); fastnn.plots draws them, `fastnn experiment ...` writes both.
Every run is seeded: the same arguments give the same numbers on one backend.
"""
from dataclasses import dataclass

import numpy as np

from ._config import get_backend
from .images import rotate_images, shift_images


@dataclass
class ImageTraining:
    """How every network of one experiment is trained (the defaults: the translation experiment's)."""

    optimizer: str = "sgd"
    learning_rate: float = 0.01
    momentum: float = 0.9
    batch_size: int = 64
    epochs: int = 5
    dtype: str = "float32"
    backend: str = None
    random_state: int = 0
    verbose: bool = False

    def to_dict(self):
        """JSON-able values, with the backend that runs (the default's name when None)."""
        return {**vars(self), "backend": self.backend or get_backend()}

    def estimator_params(self):
        return {"optimizer": self.optimizer, "learning_rate": self.learning_rate, "momentum": self.momentum,
                "batch_size": self.batch_size, "epochs": self.epochs, "dtype": self.dtype, "backend": self.backend,
                "random_state": self.random_state, "verbose": self.verbose}


# The PyTorch CIFAR-10 tutorial's recipe (training a classifier, "Define a Loss function and optimizer").
TUTORIAL_TRAINING = {"optimizer": "sgd", "learning_rate": 0.001, "momentum": 0.9, "batch_size": 4}
# The tutorial's conv layers as (out_channels, kernel, padding); a third layer of 3x3 with padding 1 is
# what fits after two 5x5 convs and pools on 28x28 (4x4 left) and on 32x32 (5x5 left).
TUTORIAL_CONVS = ((6, 5, 0), (16, 5, 0), (32, 3, 1))
DOUBLED_CONVS = ((12, 3, 1), (32, 3, 1))
TUTORIAL_HIDDEN = (120, 84)
DEPTH_HIDDEN = (120, 84, 64, 32)  # a net of d linear layers has hidden sizes DEPTH_HIDDEN[:d - 1]
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid")
TEST_SETS = ("in-domain", "shift-up", "rot90", "rot180", "rot270")


# ---------------------------------------------------------------------------- building and fitting
def mlp(hidden, training, activation="relu"):
    """An MLPClassifier with hidden layers `hidden`, trained by `training`."""
    from .models import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=tuple(hidden), activation=activation, **training.estimator_params())


def cnn(convs, training, *, hidden=(), activation="relu", pool=2):
    """A CNN2DClassifier: per (out_channels, kernel, padding) of convs a conv (stride 1), the activation and
    a pool x pool max-pool; then linear layers of sizes `hidden` (with the activation) and the output layer."""
    from .models import CNN2DClassifier

    channels, kernels, paddings = (tuple(int(conv[i]) for conv in convs) for i in range(3))
    return CNN2DClassifier(channels=channels, kernel_sizes=kernels, strides=(1,) * len(convs), paddings=paddings,
                           pool=pool, hidden_layer_sizes=tuple(hidden), activation=activation,
                           **training.estimator_params())


def describe_cnn(convs, hidden, image_shape, pool=2):
    """'conv 1->64 7x7, pool 2, linear 7744->10' style text of a CNN's layers on images of image_shape (C, H, W)."""
    parts, (c, h, w) = [], image_shape
    for out, k, pad in convs:
        h, w = (h + 2 * pad - k + 1) // pool, (w + 2 * pad - k + 1) // pool
        parts.append(f"conv {c}->{out} {k}x{k}" + (f" pad {pad}" if pad else "") + f", pool {pool}")
        c = out
    sizes = [c * h * w, *hidden]
    return ", ".join(parts + [f"linear {' -> '.join(map(str, sizes))} -> classes"])


def _flat(X):
    return X.reshape(len(X), -1)


def fit_variant(name, classifier, data, *, flat=False, description=""):
    """Fit classifier on data's training images (flattened for an MLP), validating on data.X_val.

    Returns (row, fitted classifier): row = {name, description, n_parameters, test_accuracy, fit_time
    (training seconds), history: per-epoch loss, train_accuracy, val_accuracy, time}.
    """
    shape = _flat if flat else (lambda X: X)
    has_val = len(data.X_val) > 0
    classifier.fit(shape(data.X_train), data.y_train, *((shape(data.X_val), data.y_val) if has_val else ()))
    keys = ("epoch", "loss", "train_accuracy", "val_accuracy", "time")
    history = {key: list(classifier.history_[key]) for key in keys if key in classifier.history_}
    row = {"name": name, "description": description, "n_parameters": int(classifier.model_.n_parameters),
           "test_accuracy": float(classifier.score(shape(data.X_test), data.y_test)),
           "fit_time": float(history["time"][-1]) if history.get("time") else None, "history": history}
    return row, classifier


def _check_images(data):
    if data.X_train.ndim != 4:
        raise ValueError(f"the image experiments take images of shape (n, C, H, W); X_train has shape "
                         f"{data.X_train.shape} (use fastnn.images.as_images or load_image_dataset)")
    return tuple(int(d) for d in data.X_train.shape[1:])


def _result(experiment, data, training, rows, **extra):
    image_shape = _check_images(data)
    return {"experiment": experiment, "dataset": data.name, "image_shape": list(image_shape),
            "sizes": {"train": len(data.X_train), "validation": len(data.X_val), "test": len(data.X_test)},
            "training": training.to_dict(), **extra, "rows": rows}


# ---------------------------------------------------------------------------- translation and rotation
def shifted_and_rotated(X, shift=4):
    """{test set: images}: in-domain, translated up by `shift` pixels (zero fill), rotated 90, 180, 270 degrees
    counter-clockwise. X (n, C, H, W) with H == W (rotations keep the shape)."""
    return {"in-domain": X, "shift-up": shift_images(X, shift, "up"), "rot90": rotate_images(X, 1),
            "rot180": rotate_images(X, 2), "rot270": rotate_images(X, 3)}


def translation_rotation_experiment(data, training=None, *, mlp_hidden=(128,), channels=(64, 128), kernels=(7, 2),
                                    shift=4):
    """Train the seed's MLP, 2-layer CNN and 3-layer CNN; score each on the shifted and rotated test sets.

    mlp_hidden: the MLP's hidden sizes (784-128-10: 101,770 parameters on 28x28); channels, kernels: the
    CNNs' convs (the 2-layer CNN uses the first: 64 of 7x7 then a 2x2 max-pool and a linear head, 80,650
    parameters on 28x28; the 3-layer CNN both). Returns _result's dict whose rows carry
    accuracy: {test set: accuracy} and whose test_sets names the columns (TEST_SETS).
    """
    training = training or ImageTraining()
    image_shape = _check_images(data)
    if image_shape[1] != image_shape[2]:
        raise ValueError(f"the rotated test sets need square images, got {image_shape[1]}x{image_shape[2]}")
    convs = [(c, k, 0) for c, k in zip(channels, kernels)]
    n_inputs = int(np.prod(image_shape))
    mlp_layers = " -> ".join(map(str, (n_inputs, *mlp_hidden)))
    variants = [("MLP", mlp(mlp_hidden, training), True, f"linear {mlp_layers} -> classes"),
                ("2-layer CNN", cnn(convs[:1], training), False, describe_cnn(convs[:1], (), image_shape)),
                ("3-layer CNN", cnn(convs[:2], training), False, describe_cnn(convs[:2], (), image_shape))]
    test_sets = shifted_and_rotated(data.X_test, shift)
    rows = []
    for name, classifier, flat, description in variants:
        row, fitted = fit_variant(name, classifier, data, flat=flat, description=description)
        row["accuracy"] = {key: float(fitted.score(_flat(X) if flat else X, data.y_test))
                           for key, X in test_sets.items()}
        rows.append(row)
    return _result("translation-rotation", data, training, rows, shift=int(shift), test_sets=list(TEST_SETS))


# ---------------------------------------------------------------------------- the tutorial CNN's variations
def tutorial_training(training=None):
    """ImageTraining with the CIFAR-10 tutorial's optimizer, learning rate, momentum and batch size."""
    return training or ImageTraining(**TUTORIAL_TRAINING)


def _variants_experiment(experiment, data, training, variants, **extra):
    """Fit each (name, convs, hidden, activation) of variants as a CNN; rows in that order."""
    training = tutorial_training(training)
    image_shape = _check_images(data)
    rows = []
    for name, convs, hidden, activation in variants:
        row, _ = fit_variant(name, cnn(convs, training, hidden=hidden, activation=activation), data,
                             description=describe_cnn(convs, hidden, image_shape))
        row["activation"] = activation
        rows.append(row)
    return _result(experiment, data, training, rows, input_channels=image_shape[0], **extra)


def depth_experiment(data, training=None, depths=(2, 3, 4, 5)):
    """The tutorial CNN with 2 to 5 linear layers (hidden sizes DEPTH_HIDDEN[:depth - 1]; 3 is the tutorial's)."""
    for depth in depths:
        if not 1 <= depth <= len(DEPTH_HIDDEN) + 1:
            raise ValueError(f"depths must lie in 1..{len(DEPTH_HIDDEN) + 1}, got {depth!r}")
    variants = [(f"{depth} linear layers", TUTORIAL_CONVS[:2], DEPTH_HIDDEN[:depth - 1], "relu") for depth in depths]
    return _variants_experiment("depth", data, training, variants, depths=[int(d) for d in depths])


def activation_experiment(data, training=None, activations=ACTIVATIONS):
    """The tutorial CNN with each activation after every conv and hidden linear layer."""
    variants = [(activation, TUTORIAL_CONVS[:2], TUTORIAL_HIDDEN, activation) for activation in activations]
    return _variants_experiment("activation", data, training, variants)


def conv_layers_experiment(data, training=None, n_layers=(1, 2, 3)):
    """The tutorial CNN with 1, 2 (the tutorial's) or 3 conv layers (TUTORIAL_CONVS[:n]), each with a 2x2 pool."""
    for n in n_layers:
        if not 1 <= n <= len(TUTORIAL_CONVS):
            raise ValueError(f"n_layers must lie in 1..{len(TUTORIAL_CONVS)}, got {n!r}")
    variants = [(f"{n} conv layer{'s' if n > 1 else ''}", TUTORIAL_CONVS[:n], TUTORIAL_HIDDEN, "relu")
                for n in n_layers]
    return _variants_experiment("conv-layers", data, training, variants, n_layers=[int(n) for n in n_layers])


def channels_experiment(data, training=None):
    """The tutorial CNN (6 and 16 channels of 5x5) against the doubled one (12 and 32 of 3x3, padding 1)."""
    c = _check_images(data)[0]
    variants = [(f"tutorial {c}->6->16, 5x5", TUTORIAL_CONVS[:2], TUTORIAL_HIDDEN, "relu"),
                (f"doubled {c}->12->32, 3x3 pad 1", DOUBLED_CONVS, TUTORIAL_HIDDEN, "relu")]
    return _variants_experiment("channels", data, training, variants)


# ---------------------------------------------------------------------------- learning rates
def learning_rate_experiment(data, rates=(0.001, 0.01, 0.1, 1.0), training=None, *, seeds=(0, 1, 2), hidden=(300,),
                             activation="sigmoid"):
    """The sigmoid MLP 784-300-10 (plain SGD, batch 100 by default) once per learning rate and seed.

    Each seed draws the initialisation (N(0, 0.1^2), the seed's) and the example orders. Returns _result's
    dict (training's learning_rate and random_state None: they vary) whose rows hold, per rate:
    learning_rate, seeds, loss (per seed: training loss per epoch), mean_loss (over the seeds, per epoch),
    test_accuracy (per seed) and mean_test_accuracy.
    """
    training = training or ImageTraining(momentum=0.0, batch_size=100)
    _check_images(data)
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    rows = []
    for rate in rates:
        runs = []
        for seed in seeds:
            run = ImageTraining(**{**vars(training), "learning_rate": float(rate), "random_state": int(seed)})
            row, _ = fit_variant(f"lr {rate:g}", mlp(hidden, run, activation), data, flat=True)
            runs.append(row)
        losses = [run["history"]["loss"] for run in runs]
        accuracies = [run["test_accuracy"] for run in runs]
        rows.append({"name": f"lr {rate:g}", "learning_rate": float(rate), "seeds": [int(s) for s in seeds],
                     "n_parameters": runs[0]["n_parameters"], "loss": losses,
                     "mean_loss": np.mean(losses, axis=0).tolist(), "test_accuracy": accuracies,
                     "mean_test_accuracy": float(np.mean(accuracies)),
                     "fit_time": float(sum(run["fit_time"] or 0.0 for run in runs))})
    result = _result("learning-rate", data, training, rows, hidden=list(hidden), activation=activation,
                     rates=[float(rate) for rate in rates])
    result["training"].update(learning_rate=None, random_state=None)  # varied: see rates and each row's seeds
    return result


EXPERIMENTS = {
    "translation-rotation": translation_rotation_experiment,
    "depth": depth_experiment,
    "activation": activation_experiment,
    "conv-layers": conv_layers_experiment,
    "channels": channels_experiment,
    "learning-rate": learning_rate_experiment,
}
