"""What `keras.callbacks.BackupAndRestore` leaves out: the state of the model's random generators.

BackupAndRestore saves weights and optimizer state, but not the SeedGenerator states that drive the
augmentation layers and dropout; a resumed run would redraw the augmentations of its first epochs and
drift from an uninterrupted run. This callback records those states at the end of every epoch, keyed by
the epoch that comes next, and puts them back when the run starts that epoch again.

States are stored by variable path, so phase 1 on cached features (which trains the head model, holding
only the head's generators) and phase 2 (the full model) share one record: each takes back what it has.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np

from affect_keras.atomic import write_text


class RandomStateBackup(keras.callbacks.Callback):
    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)
        self._checked = False

    def _generators(self) -> list:
        return [v for v in self.model.variables if "seed_generator_state" in v.path]

    def _saved(self) -> dict:
        return json.loads(self.path.read_text()) if self.path.is_file() else {}

    def on_epoch_begin(self, epoch, logs=None):
        if self._checked:
            return
        self._checked = True
        states = self._saved().get(str(epoch))
        for variable in self._generators():
            if states and variable.path in states:
                variable.assign(np.array(states[variable.path], dtype=variable.dtype))

    def on_epoch_end(self, epoch, logs=None):
        saved = self._saved()
        saved[str(epoch + 1)] = {v.path: keras.ops.convert_to_numpy(v).tolist() for v in self._generators()}
        write_text(self.path, json.dumps(saved))
