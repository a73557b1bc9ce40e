"""The settings of one preparation, their checks, and which earlier images they allow to reuse."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from affect_keras.data.faces import CROPS, DEFAULT_DETECTOR, DEFAULT_FRAMING, DETECTORS
from affect_keras.data.sources import SOURCES
from affect_keras.labels import get_scheme
from affect_keras.options import OptionError, check

SAMPLINGS = ("none", "down", "up")
NO_FACE_CHOICES = ("skip", "whole")  # --detect and a photo without a face: a counted skip, or the whole photo
CONFIG_FILE = "prepare_config.yaml"


@dataclass
class PrepareConfig:
    """Settings of one preparation; the CLI builds it, `prepare()` runs it.

    `root` may be None for the sample, which is then generated inside `out`.
    """

    source: str
    out: Path
    root: Path | None = None
    labels: str = "affectnet8"
    size: int = 256
    margin: float = 0.0
    val_fraction: float = 0.1
    test_fraction: float = 0.0
    seed: int = 0
    balance_eval: int = 0
    train_sampling: str = "none"
    sampling_target: int = 0
    class_map: dict[str, str] = field(default_factory=dict)
    group_pattern: str = ""
    folds: int = 0
    fold: int = 0
    count: int = 1000
    workers: int = 0
    io_threads: int = 8
    reduced_decode: bool = True
    detect: bool = False
    detector: str = DEFAULT_DETECTOR
    crop: str = DEFAULT_FRAMING.crop
    align: bool = DEFAULT_FRAMING.align
    no_face: str = "skip"

    def validate(self) -> None:
        """ValueError naming the option, for every value out of its range."""
        checks = [
            (self.source in SOURCES, "source", f"must be one of {', '.join(SOURCES)}"),
            (self.size >= 8, "size", "must be at least 8 pixels"),
            (0 <= self.margin <= 1, "margin", "must be in [0, 1]"),
            (0 <= self.val_fraction < 1, "val-fraction", "must be in [0, 1)"),
            (0 <= self.test_fraction < 1, "test-fraction", "must be in [0, 1)"),
            (self.val_fraction + self.test_fraction < 1, "test-fraction", "val + test fractions must be < 1"),
            (self.balance_eval >= 0, "balance-eval", "must be >= 0"),
            (self.train_sampling in SAMPLINGS, "train-sampling", f"must be one of {', '.join(SAMPLINGS)}"),
            (self.sampling_target >= 0, "sampling-target", "must be >= 0"),
            (self.count >= 1, "count", "must be >= 1"),
            (self.workers >= 0, "workers", "must be >= 0"),
            (self.io_threads >= 1, "io-threads", "must be >= 1"),
            (self.folds == 0 or self.folds >= 2, "folds", "must be 0 (no cross-validation) or >= 2"),
            (self.folds == 0 or 0 <= self.fold < self.folds, "fold", f"must be in 0..{self.folds - 1}"),
            (compiles(self.group_pattern), "group-pattern", "is not a valid regular expression"),
            (self.root is not None or self.source == "sample", "root", f"is required for --source {self.source}"),
            (not self.detect or self.source == "folders", "detect",
             "is for --source folders (the other sources give each face's box)"),
            (self.detector in DETECTORS, "detector", f"must be one of {', '.join(DETECTORS)}"),
            (self.crop in CROPS, "crop", f"must be one of {', '.join(CROPS)}"),
            (self.no_face in NO_FACE_CHOICES, "no-face", f"must be one of {', '.join(NO_FACE_CHOICES)}"),
        ]
        check(checks)
        get_scheme(self.labels)
        if self.root is not None and self.source != "sample":
            root, out = Path(self.root).resolve(), Path(self.out).resolve()
            if not root.is_dir():
                raise OptionError("root", f"{self.root} is not a directory")
            if root.is_relative_to(out) or out.is_relative_to(root):
                raise OptionError("out", f"{self.out} must lie outside --root {self.root} (and not contain it)")

    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1

    def to_dict(self) -> dict:
        values = asdict(self)
        values["out"], values["root"] = str(self.out), None if self.root is None else str(self.root)
        return values


def same_images(old: dict, new: dict) -> bool:
    """Whether finished images of an earlier run can be reused: everything that shapes pixels, names
    or selection must match (the worker count does not)."""
    old, new = {**ADDED_LATER, **dict(old or {})}, dict(new)  # a record older than a setting had its default
    for key in ("workers", "io_threads"):  # how fast, not what
        old.pop(key, None), new.pop(key, None)
    if not new.get("detect"):  # the face-finding settings shape nothing without --detect
        for key in DETECTION:
            old.pop(key, None), new.pop(key, None)
    return old == new


DETECTION = ("detector", "crop", "align", "no_face")
# settings added after the first release, with the value that reproduces what was prepared before them
# (a folder prepared before reduced decoding existed continues with full decoding: see `prepare`)
ADDED_LATER = {"detect": False, **{key: getattr(PrepareConfig, key) for key in DETECTION}, "reduced_decode": False}


def compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
        return True
    except re.error:
        return False



def framing_of(data_dir: Path) -> dict | None:
    """How the faces of a prepared dataset were cut (a `data.faces.Framing` as a dict), for predict.py to
    cut a photo's faces the same way; None where the record does not say (whole photos of a folder tree)."""
    import yaml
    path = Path(data_dir) / CONFIG_FILE
    if not path.is_file():
        return None
    record = {**ADDED_LATER, **(yaml.safe_load(path.read_text()) or {})}
    margin = float(record.get("margin", 0.0))
    if record["detect"]:
        return {"crop": record["crop"], "margin": margin, "align": bool(record["align"])}
    if record.get("source") in ("affectnet", "sample"):  # a dataset's own face boxes, widened, not levelled
        return {"crop": "box", "margin": margin, "align": False}
    if record.get("source") == "ferplus":  # FER2013's 48 px faces, not levelled: BlazeFace's box cut as it is
        return {"crop": "box", "margin": 0.0, "align": False}  # suits them best (docs/deployment.md)
    return None
