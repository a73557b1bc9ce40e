"""history.csv with exactly one row per epoch.

keras's CSVLogger appends, so an epoch that ran again after a restore appears twice; this logger
replaces the rows of the epochs it logs instead.
"""

from __future__ import annotations

from pathlib import Path

import keras
import pandas as pd

from affect_keras.atomic import write_text


class HistoryCSV(keras.callbacks.Callback):
    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)

    def on_epoch_end(self, epoch, logs=None):
        row = pd.DataFrame([{"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}}])
        if self.path.is_file():
            earlier = pd.read_csv(self.path)
            row = pd.concat([earlier[earlier["epoch"] < epoch], row], ignore_index=True)
        write_text(self.path, row.to_csv(index=False))


def best_so_far(path: Path, monitor: str, mode: str) -> float | None:
    """The best value of `monitor` in an existing history.csv: where a resumed run's checkpointing starts."""
    if not Path(path).is_file():
        return None
    values = pd.read_csv(path).get(monitor)
    if values is None or values.dropna().empty:
        return None
    return float(values.max() if mode == "max" else values.min())
