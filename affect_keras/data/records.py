"""What every source yields: one `Record` per usable item, one `Skipped` per item it had to drop."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Union

# The split a source assigns: "train" items are later divided into train and val.
SOURCE_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Record:
    """One labelled face image as a source describes it.

    Args:
        path: the image file (absolute).
        rel: the image path relative to the source root; names the item in manifests and reports.
        code: AffectNet expression code (see `affect_keras.labels`).
        split: the split the source assigns ("train", "val" or "test").
        box: face box (x, y, width, height) in image pixels, or None when the image is the face.
        valence, arousal: in [-1, 1]; NaN where the source has none or marks them not applicable.
        votes: votes per expression code where the source has them (FER+).
    """

    path: Path
    rel: str
    code: int
    split: str
    box: tuple[int, int, int, int] | None = None
    valence: float = math.nan
    arousal: float = math.nan
    votes: Mapping[int, int] | None = None


@dataclass(frozen=True)
class Skipped:
    """An item that cannot be used, with the reason it is reported under."""

    rel: str
    reason: str
    split: str = ""


SourceItem = Union[Record, Skipped]
SourceItems = Iterator[SourceItem]
