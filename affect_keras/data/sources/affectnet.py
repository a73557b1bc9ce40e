"""AffectNet, both releases.

Original release::

    ROOT/Manually_Annotated_file_lists/training.csv     (with a header row)
    ROOT/Manually_Annotated_file_lists/validation.csv   (shipped without one)
    ROOT/Manually_Annotated_Images/<subDirectory_filePath>

Newer release (faces already cropped)::

    ROOT/train_set/images/<id>.jpg   ROOT/train_set/annotations/<id>_exp.npy, _val.npy, _aro.npy, _lnd.npy
    ROOT/val_set/...

AffectNet's test set was never published, so its validation set becomes our `test` split.
"""

from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path

import numpy as np

from affect_keras.data.images import inside_root
from affect_keras.data.records import Record, Skipped, SourceItems
from affect_keras.labels import AFFECTNET_CODES

COLUMNS = (
    "subDirectory_filePath",
    "face_x",
    "face_y",
    "face_width",
    "face_height",
    "facial_landmarks",
    "expression",
    "valence",
    "arousal",
)
ORIGINAL_LISTS = "Manually_Annotated_file_lists"
ORIGINAL_IMAGES = "Manually_Annotated_Images"
ORIGINAL_FILES = {"train": "training.csv", "test": "validation.csv"}
NEWER_SETS = {"train": "train_set", "test": "val_set"}
NOT_APPLICABLE = -2.0


def detect_release(root: Path) -> str:
    """'original' or 'newer', from what `root` holds; ValueError naming both layouts otherwise."""
    if (root / ORIGINAL_LISTS).is_dir():
        return "original"
    if any((root / name).is_dir() for name in NEWER_SETS.values()):
        return "newer"
    raise ValueError(
        f"{root} holds neither {ORIGINAL_LISTS}/ (original AffectNet release) nor "
        f"train_set/ or val_set/ (newer release)"
    )


def read(root: Path) -> SourceItems:
    """Records of whichever AffectNet release `root` holds."""
    if detect_release(root) == "original":
        yield from read_original(root)
    else:
        yield from read_newer(root)


def affect_value(text) -> float:
    """Valence or arousal; -2 (AffectNet's 'not applicable') becomes NaN. ValueError if out of range."""
    value = float(text)
    if value == NOT_APPLICABLE or math.isnan(value):
        return math.nan
    if not -1.0 <= value <= 1.0:
        raise ValueError(f"valence/arousal {value} outside [-1, 1]")
    return value


def expression_code(text) -> int:
    code = int(float(text))
    if float(text) != code or code not in AFFECTNET_CODES:
        raise ValueError(f"expression code {text} is not 0-10")
    return code


def read_original(root: Path) -> SourceItems:
    for split, filename in ORIGINAL_FILES.items():
        path = root / ORIGINAL_LISTS / filename
        if not path.is_file():
            continue
        with open(path, newline="", encoding="utf-8-sig") as handle:  # a BOM is not part of the header
            rows = csv.reader(handle)
            first = next(rows, None)
            if first is None:
                continue
            start = 2
            if first[0] != COLUMNS[0]:  # header-less (validation.csv as shipped)
                rows, start = itertools.chain([first], rows), 1
            for line, row in enumerate(rows, start=start):
                yield _original_item(root, split, f"{filename}:{line}", row)


def _original_item(root: Path, split: str, where: str, row: list[str]):
    if len(row) != len(COLUMNS):
        return Skipped(where, f"malformed row ({len(row)} columns, expected {len(COLUMNS)})", split)
    rel = row[0].strip()
    try:
        box = tuple(int(float(v)) for v in row[1:5])
        code = expression_code(row[6])
        valence, arousal = affect_value(row[7]), affect_value(row[8])
    except ValueError as error:
        return Skipped(rel or where, f"malformed row ({error})", split)
    path = inside_root(root / ORIGINAL_IMAGES, rel)
    if path is None or not rel:
        return Skipped(rel or where, "path outside the dataset root", split)
    return Record(path, rel, code, split, box, valence, arousal)


def read_newer(root: Path) -> SourceItems:
    for split, folder in NEWER_SETS.items():
        images = root / folder / "images"
        annotations = root / folder / "annotations"
        if not images.is_dir():
            continue
        for image in sorted(images.iterdir()):
            if image.name.startswith("."):
                continue
            rel = f"{folder}/images/{image.name}"
            try:
                code = expression_code(_scalar(annotations / f"{image.stem}_exp.npy"))
                valence = affect_value(_scalar(annotations / f"{image.stem}_val.npy"))
                arousal = affect_value(_scalar(annotations / f"{image.stem}_aro.npy"))
            except FileNotFoundError as error:
                yield Skipped(rel, f"missing annotation {Path(error.filename).name}", split)
                continue
            except (ValueError, OSError) as error:
                yield Skipped(rel, f"malformed annotation ({error})", split)
                continue
            yield Record(image, rel, code, split, None, valence, arousal)


def _scalar(path: Path):
    """The single value stored in one of the newer release's .npy files (saved as a string)."""
    value = np.load(path, allow_pickle=False)
    if value.size != 1:
        raise ValueError(f"{path.name} holds {value.size} values, expected 1")
    return value.reshape(()).item()
