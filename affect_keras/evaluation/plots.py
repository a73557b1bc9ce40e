"""The report's pictures: confusion matrices, per-class F1, the most confident mistakes, predicted against
true valence / arousal, and a run's training curves."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def plot_confusion(matrix: np.ndarray, class_names: Sequence[str], png: Path, title: str) -> Path:
    """Counts and row-normalised (recall) matrices side by side, values written in the cells."""
    n = len(class_names)
    side = max(4.5, 0.6 * n + 2)
    figure, axes = plt.subplots(1, 2, figsize=(2 * side + 1, side), constrained_layout=True)
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros_like(matrix, dtype=float), where=rows > 0)
    for axis, values, name, fmt in ((axes[0], matrix, "counts", "d"), (axes[1], normalised, "row-normalised", ".2f")):
        image = axis.imshow(values, cmap="Blues", vmin=0)
        figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
        axis.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true", title=f"{title} ({name})")
        axis.set_xticklabels(class_names, rotation=45, ha="right")
        axis.set_yticklabels(class_names)
        threshold = values.max() / 2 if values.max() else 1
        for i in range(n):
            for j in range(n):
                axis.text(
                    j,
                    i,
                    format(values[i, j], fmt),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if values[i, j] > threshold else "black",
                )
    figure.savefig(png, dpi=110)
    plt.close(figure)
    return png


def plot_f1(per_class: dict, png: Path) -> Path:
    """Top-1 and top-2 F1 per class as grouped bars."""
    names = list(per_class)
    x = np.arange(len(names))
    figure, axis = plt.subplots(figsize=(max(6, 0.8 * len(names) + 2), 4), constrained_layout=True)
    for offset, key in ((-0.2, "top1_f1"), (0.2, "top2_f1")):
        values = [per_class[n][key] for n in names]
        bars = axis.bar(x + offset, values, width=0.4, label=key.replace("_", " "))
        axis.bar_label(bars, fmt="%.2f", fontsize=7)
    axis.set(xticks=x, ylim=(0, 1.25), ylabel="F1", title="F1 per class")
    axis.set_xticklabels(names, rotation=30, ha="right")
    axis.legend(loc="upper right", ncol=2)
    axis.grid(axis="y", alpha=0.3)
    figure.savefig(png, dpi=110)
    plt.close(figure)
    return png


def plot_mistakes(
    labels: np.ndarray,
    probabilities: np.ndarray,
    class_names: Sequence[str],
    image: Callable[[int], np.ndarray],
    png: Path,
    count: int = 16,
) -> Path | None:
    """The `count` wrong predictions made with the highest confidence, as a captioned grid."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    if not len(wrong):
        return None
    worst = wrong[np.argsort(-probabilities[wrong, predicted[wrong]])][:count]
    columns = min(4, len(worst))
    rows = int(np.ceil(len(worst) / columns))
    figure, axes = plt.subplots(
        rows, columns, figsize=(2.6 * columns, 2.9 * rows), squeeze=False, constrained_layout=True
    )
    for axis in axes.flat:
        axis.axis("off")
    for axis, i in zip(axes.flat, worst):
        axis.imshow(image(i))
        axis.set_title(
            f"true {class_names[labels[i]]}\npredicted {class_names[predicted[i]]} "
            f"{probabilities[i, predicted[i]]:.2f}",
            fontsize=8,
        )
    figure.suptitle("Most confident mistakes")
    figure.savefig(png, dpi=110)
    plt.close(figure)
    return png


def plot_va_scatter(
    truth: np.ndarray, predicted: np.ndarray, labels: np.ndarray, class_names: Sequence[str], png: Path
) -> Path | None:
    """Predicted against true valence and arousal, one panel each, points coloured by expression, on the
    faces that have the dimension; None when no face has either."""
    have = ~np.isnan(truth)
    if not have.any():
        return None
    figure, axes = plt.subplots(1, 2, figsize=(11, 5), constrained_layout=True)
    colours = plt.get_cmap("tab10")
    for k, (axis, dimension) in enumerate(zip(axes, ("valence", "arousal"))):
        for c, name in enumerate(class_names):
            chosen = have[:, k] & (labels == c)
            if chosen.any():
                axis.scatter(truth[chosen, k], predicted[chosen, k], s=8, alpha=0.6, color=colours(c % 10), label=name)
        axis.plot([-1, 1], [-1, 1], color="grey", linewidth=1)
        axis.set(
            xlim=(-1.05, 1.05),
            ylim=(-1.05, 1.05),
            xlabel=f"true {dimension}",
            ylabel=f"predicted {dimension}",
            title=f"{dimension} ({int(have[:, k].sum())} faces)",
        )
        axis.grid(alpha=0.3)
    axes[1].legend(fontsize=8, markerscale=2)
    figure.savefig(png, dpi=110)
    plt.close(figure)
    return png


def plot_curves(history_csv: Path, png: Path) -> Path:
    """Loss, then each head's accuracy or CCC, per epoch, train vs val, side by side."""
    history = pd.read_csv(history_csv).drop_duplicates("epoch", keep="last")
    epochs = history["epoch"] + 1
    shown = ["loss", *(c for c in history if not c.startswith("val_") and c.endswith(("accuracy", "ccc")))]
    figure, axes = plt.subplots(1, len(shown), figsize=(5 * len(shown), 4), constrained_layout=True, squeeze=False)
    for axis, metric in zip(axes[0], shown):
        axis.plot(epochs, history[metric], marker="o", label="train")
        if f"val_{metric}" in history:
            axis.plot(epochs, history[f"val_{metric}"], marker="o", label="val")
        axis.set(xlabel="epoch", ylabel=metric, title=metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.savefig(png, dpi=110)
    plt.close(figure)
    return png


def expression_pictures(report, labels, probabilities, files, size, out: Path, run: Path) -> dict[str, str]:
    """The expression head's pictures: confusion matrices, per-class F1, the most confident mistakes, and
    the training curves of a run directory."""
    from affect_keras.data.loader import load_image

    names = report["class_names"]
    title = f"{report['split']}, {len(labels)} images"
    pictures = {
        "confusion_matrix": plot_confusion(
            np.array(report["confusion_matrix"]), names, out / "confusion_matrix.png", title
        ),
        "per_class_f1": plot_f1(report["per_class"], out / "per_class_f1.png"),
        "mistakes": plot_mistakes(
            labels, probabilities, names, lambda i: load_image(files[i], size), out / "mistakes.png"
        ),
    }
    if "calibration" in report:
        pictures["reliability"] = plot_reliability(report["calibration"], out / "reliability.png", title)
    if (Path(run) / "history.csv").is_file():
        pictures["curves"] = plot_curves(Path(run) / "history.csv", out / "curves.png")
    return {key: str(value) for key, value in pictures.items() if value is not None}


def plot_reliability(calibration: dict, png: Path, title: str) -> Path:
    """The reliability diagram: accuracy against mean confidence per confidence bin (bars, the gap to the
    diagonal shaded), with the share of faces per bin below, and ECE / NLL / Brier in the title."""
    bins = calibration["bins"]
    centres = [(b["lower"] + b["upper"]) / 2 for b in bins]
    width = bins[0]["upper"] - bins[0]["lower"]
    figure, (axis, counts) = plt.subplots(
        2, 1, figsize=(5.5, 6.5), height_ratios=(3, 1), sharex=True, constrained_layout=True
    )
    filled = [(c, b) for c, b in zip(centres, bins) if b["count"]]
    axis.bar(
        [c for c, _ in filled],
        [b["accuracy"] for _, b in filled],
        width=width * 0.95,
        color="#4c72b0",
        edgecolor="white",
        label="accuracy",
    )
    axis.bar(
        [c for c, _ in filled],
        [b["confidence"] - b["accuracy"] for _, b in filled],
        bottom=[b["accuracy"] for _, b in filled],
        width=width * 0.95,
        color="#dd8452",
        alpha=0.5,
        label="gap to confidence",
    )
    axis.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    axis.set(
        xlim=(0, 1),
        ylim=(0, 1),
        ylabel="accuracy",
        title=f"{title}\nECE {calibration['ece']:.4f}, NLL {calibration['nll']:.4f}, Brier {calibration['brier']:.4f}",
    )
    axis.legend(loc="upper left", fontsize=8)
    total = sum(b["count"] for b in bins) or 1
    counts.bar(centres, [b["count"] / total for b in bins], width=width * 0.95, color="#8c8c8c")
    counts.set(xlabel="confidence (top probability)", ylabel="share of faces")
    figure.savefig(png, dpi=120)
    plt.close(figure)
    return png
