"""Training curves from a run's history.csv."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


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
