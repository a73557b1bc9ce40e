"""A prepared split as a table: its files and, per image, every head's targets (and per-sample weights).

What prepare_dataset.py wrote (`OUT/summary.json`, `OUT/<split>.csv`) read once; the sampler
(`data.sampler`) chooses rows of it, the servers (`data.loader`, `data.tfdata`) decode the chosen files and
hand `fit` the rows' targets arranged as the task's outputs expect. No keras, no TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from affect_keras.options import OptionError
from affect_keras.tasks import EXPRESSION, Task, get_task
from affect_keras.heads import HEADS


@dataclass(frozen=True, eq=False)  # arrays inside: compared by identity
class SplitTable:
    """One split of a prepared dataset: `files[i]` and row `i` of every array in `columns`.

    Args:
        root, split: the prepared folder and the split's name ("train", "val", "test", ...).
        class_names: the model's class order; `labels[i]` indexes it.
        files: absolute paths of the prepared faces, in manifest order.
        labels: (images,) class index of each face.
        columns: {name: (images, ...) float32}: the expression targets always, each other head's targets,
            and "weight" when class weights travel per sample.
        task: the `affect_keras.tasks.Task` whose heads the targets feed.
    """

    root: Path
    split: str
    class_names: tuple[str, ...]
    files: list[str]
    labels: np.ndarray
    columns: dict
    task: Task

    @classmethod
    def read(
        cls,
        data_dir,
        split: str,
        class_names,
        *,
        targets: str = "majority",
        task: str = "expression",
        class_weights: dict[int, float] | None = None,
    ) -> "SplitTable":
        """The table of `split` of the prepared folder `data_dir`.

        Args:
            targets: "majority" (one-hot) or "votes" (the manifest's vote_<Class> columns, normalised).
            task: a name from `affect_keras.tasks.TASKS`: the heads whose targets the table carries.
            class_weights: {class index: weight}, carried as a per-sample "weight" column for tasks with
                several outputs (keras's `class_weight` serves single-output models only).
        """
        root, names, spec = Path(data_dir), tuple(class_names), get_task(task)
        manifest = read_manifest(root, split, names)
        labels = manifest["label"].map({n: k for k, n in enumerate(names)}).to_numpy()
        expression = expression_targets(manifest, labels, names, targets)
        # the expression targets always (labels, sampling and MixUp read them), then each head's own
        columns = {
            head: HEADS[head].targets(manifest, expression, list(names))
            for head in dict.fromkeys((EXPRESSION, *spec.heads))
        }
        if class_weights and spec.dict_outputs:
            table = np.array([class_weights.get(k, 1.0) for k in range(len(names))], "float32")
            columns["weight"] = table[labels]
        return cls(root, split, names, [str(root / f) for f in manifest["file"]], labels, columns, spec)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def targets(self) -> np.ndarray:
        """(images, classes) expression targets: one-hot, or FER+ vote distributions."""
        return self.columns[EXPRESSION]

    def rows(self, chosen) -> dict:
        """Every column at the rows `chosen`."""
        return {name: values[chosen] for name, values in self.columns.items()}

    def arrange(self, inputs, columns: dict):
        """(inputs, targets) or (inputs, targets, sample weights) as fit reads them, from the per-image
        `columns` of a batch (numpy or tf tensors alike)."""
        if self.task.dict_outputs:
            targets = {head: columns[head] for head in self.task.heads}
        else:
            targets = columns[EXPRESSION]
        return (inputs, targets, columns["weight"]) if "weight" in columns else (inputs, targets)

    def repeated(self, times: int) -> "SplitTable":
        """Every row `times` over (benchmarks that need more rows than a split has)."""
        return replace(
            self,
            files=self.files * times,
            labels=np.tile(self.labels, times),
            columns={name: np.concatenate([values] * times) for name, values in self.columns.items()},
        )


def read_summary(data_dir: Path) -> dict:
    """What prepare_dataset.py wrote: class order, per-split counts."""
    path = Path(data_dir) / "summary.json"
    if not path.is_file():
        raise OptionError("data", f"{data_dir}: no summary.json; prepare it with prepare_dataset.py first")
    return json.loads(path.read_text())


def read_manifest(data_dir: Path, split: str, class_names) -> pd.DataFrame:
    path = Path(data_dir) / f"{split}.csv"
    if not path.is_file():
        raise OptionError("data", f"{data_dir}: no {split}.csv manifest; prepare it with prepare_dataset.py")
    manifest = pd.read_csv(path, keep_default_na=False)
    unknown = sorted(set(manifest["label"]) - set(class_names))
    if unknown:
        raise OptionError("data", f"{data_dir}: {split}.csv has labels {unknown} outside summary.json's classes")
    return manifest


def expression_targets(manifest: pd.DataFrame, labels: np.ndarray, class_names, kind: str) -> np.ndarray:
    """(images, classes): one-hot labels ("majority"), or the FER+ votes normalised ("votes"; a face
    without votes keeps its one-hot label)."""
    one_hot = np.eye(len(class_names), dtype="float32")[labels]
    if kind == "majority":
        return one_hot
    columns = [f"vote_{name}" for name in class_names]
    missing = [c for c in columns if c not in manifest]
    if missing:
        raise OptionError(
            "targets",
            f"votes: the manifest has no vote columns ({', '.join(missing)}); "
            f"only FER+ provides votes, use --targets majority",
        )
    votes = manifest[columns].apply(pd.to_numeric, errors="coerce").fillna(0).to_numpy("float32")
    totals = votes.sum(axis=1, keepdims=True)
    return np.where(totals > 0, votes / np.maximum(totals, 1), one_hot)
