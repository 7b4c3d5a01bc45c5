"""Plots of training runs and of the seed's experiments (matplotlib, written to files; no screen needed)."""
import numpy as np


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("plots need matplotlib: pip install 'fastnn[plot]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def training_curves(history, path, title=""):
    """Training loss (left) and train / validation / test accuracy (right) per epoch; best epoch marked."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = history["epoch"]
    left.plot(epochs, history["loss"], marker=".", label="training loss")
    if history.get("val_loss"):
        left.plot(epochs, history["val_loss"], marker=".", label="validation loss")
    left.set_xlabel("epoch")
    left.set_ylabel("cross-entropy")
    left.legend()
    for key, label in (("train_accuracy", "training"), ("val_accuracy", "validation"), ("test_accuracy", "test")):
        if history.get(key):
            right.plot(epochs, history[key], marker=".", label=label)
    if history.get("val_accuracy") and history.get("best_epoch"):
        right.axvline(history["best_epoch"], color="gray", linestyle="--", label=f"best epoch ({history['best_epoch']})")
    right.set_xlabel("epoch")
    right.set_ylabel("accuracy")
    right.legend()
    fig.suptitle(title)
    return _save(fig, path)


def batch_size_plots(rows, accuracy_path, updates_path, title=""):
    """Two plots over the batch size: test accuracy and the wall time of fit; epochs and updates to the best model."""
    plt = _pyplot()
    sizes = [row["batch_size"] for row in rows]
    fig, left = plt.subplots(figsize=(6, 4))
    left.semilogx(sizes, [row["test_accuracy"] for row in rows], marker="o", color="C0")
    left.set_xlabel("batch size")
    left.set_ylabel("test accuracy", color="C0")
    right = left.twinx()
    right.semilogx(sizes, [row.get("wall_time", row["fit_time"]) for row in rows], marker="s", color="C1")
    right.set_ylabel("wall time of fit (s)", color="C1")
    left.set_title(f"{title}test accuracy and time")
    _save(fig, accuracy_path)

    fig, left = plt.subplots(figsize=(6, 4))
    left.loglog(sizes, [row["updates_to_best"] for row in rows], marker="o", color="C0")
    left.set_xlabel("batch size")
    left.set_ylabel("gradient updates to the best model", color="C0")
    right = left.twinx()
    right.semilogx(sizes, [row["best_epoch"] for row in rows], marker="s", color="C1")
    right.set_ylabel("epochs to the best model", color="C1")
    left.set_title(f"{title}updates and epochs to the best model")
    return accuracy_path, _save(fig, updates_path)


def momentum_curves(losses, path, title=""):
    """Training loss per epoch, one curve per momentum alpha."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for alpha, loss in sorted(losses.items()):
        ax.plot(range(1, len(loss) + 1), loss, marker=".", label=f"alpha = {alpha:g}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title(f"{title}SGD with momentum")
    return _save(fig, path)


def early_stopping_curves(result, path, title=""):
    """Training, validation and test accuracy per epoch, with the early-stopping point marked."""
    plt = _pyplot()
    history = result["history"]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (("train_accuracy", "training"), ("val_accuracy", "validation"), ("test_accuracy", "test")):
        ax.plot(history["epoch"], history[key], marker=".", label=label)
    ax.axvline(result["best_epoch"], color="gray", linestyle="--",
               label=f"best validation epoch ({result['best_epoch']})")
    if result["stop_epoch"] is not None:
        ax.axvline(result["stop_epoch"], color="red", linestyle=":",
                   label=f"early stop, patience {result['patience']} (epoch {result['stop_epoch']})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.legend()
    ax.set_title(f"{title}early stopping")
    return _save(fig, path)


def seed_accuracies(result, path, title=""):
    """Final test accuracy of each seed's run (fastnn, and torch when present), their means dashed."""
    plt = _pyplot()
    rows = result["rows"]
    seeds = [row["seed"] for row in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label, marker, color in (("test_accuracy", "fastnn", "o", "C0"),
                                      ("torch_test_accuracy", "PyTorch", "s", "C1")):
        if key in rows[0]:
            values = [row[key] for row in rows]
            ax.plot(seeds, values, marker, color=color, label=f"{label} (mean {np.mean(values):.3f})")
            ax.axhline(np.mean(values), color=color, linestyle="--", linewidth=1)
    ax.set_xlabel("seed")
    ax.set_ylabel("final test accuracy")
    ax.set_xticks(seeds)
    ax.legend()
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def mistakes_per_epoch(mistakes, path, title=""):
    """Bar chart of a (kernel) perceptron's training mistakes in each epoch, integer epoch ticks."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = np.arange(1, len(mistakes) + 1)
    ax.bar(epochs, mistakes, color="C0")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mistakes on the training set")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


# ---------------------------------------------------------------------------- the image experiments
TEST_SET_LABELS = {"in-domain": "in-domain", "shift-up": "translated up", "rot90": "rotated 90°",
                   "rot180": "rotated 180°", "rot270": "rotated 270°"}


def _integer_ticks():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def translation_rotation_bars(result, path, title=""):
    """Grouped bar chart: test accuracy of each model (one colour) on each test set (one group)."""
    plt = _pyplot()
    rows, test_sets = result["rows"], result["test_sets"]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    width = 0.8 / len(rows)
    positions = np.arange(len(test_sets))
    for i, row in enumerate(rows):
        values = [row["accuracy"][key] for key in test_sets]
        bars = ax.bar(positions + (i - (len(rows) - 1) / 2) * width, values, width,
                      label=f"{row['name']} ({row['n_parameters']:,} parameters)")
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=7, padding=1)
    labels = [TEST_SET_LABELS.get(key, key) for key in test_sets]
    labels = [f"{label} {result['shift']} px" if key == "shift-up" else label for key, label in zip(test_sets, labels)]
    ax.set_xticks(positions, labels)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.08)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def variant_comparison(result, path, title=""):
    """Left: test accuracy of each variant (bars, parameter counts below); right: training loss per epoch."""
    plt = _pyplot()
    rows = result["rows"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    values = [row["test_accuracy"] for row in rows]
    bars = left.bar(range(len(rows)), values, color=[f"C{i}" for i in range(len(rows))])
    left.bar_label(bars, labels=[f"{v:.3f}" for v in values], fontsize=8, padding=1)
    left.set_xticks(range(len(rows)), [f"{row['name']}\n{row['n_parameters']:,} params" for row in rows], fontsize=8)
    left.set_ylabel("test accuracy")
    left.set_ylim(0, 1.05)
    for i, row in enumerate(rows):
        loss = row["history"]["loss"]
        right.plot(range(1, len(loss) + 1), loss, marker=".", color=f"C{i}", label=row["name"])
    right.set_xlabel("epoch")
    right.xaxis.set_major_locator(_integer_ticks())
    right.set_ylabel("training loss (mean over the epoch)")
    right.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def learning_rate_curves(result, path, title=""):
    """Mean training loss per epoch over the seeds, one curve per learning rate, the seeds' range shaded."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, row in enumerate(result["rows"]):
        losses = np.asarray(row["loss"], dtype=float)
        epochs = np.arange(1, losses.shape[1] + 1)
        ax.plot(epochs, row["mean_loss"], marker=".", color=f"C{i}",
                label=f"lr {row['learning_rate']:g} (test acc {row['mean_test_accuracy']:.3f})")
        if len(losses) > 1:
            ax.fill_between(epochs, losses.min(axis=0), losses.max(axis=0), color=f"C{i}", alpha=0.2)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(_integer_ticks())
    ax.set_ylabel(f"training loss, mean of {len(result['rows'][0]['loss'])} initialisations")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    return _save(fig, path)
