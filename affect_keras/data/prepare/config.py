"""The settings of one preparation, their checks, and which earlier images they allow to reuse."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from affect_keras.data.faces import DEFAULT_DETECTOR, DEFAULT_FRAMING, DETECTORS, framing_setting
from affect_keras.data.sources import SOURCES
from affect_keras.labels import SCHEMES, get_scheme
from affect_keras import __version__
from affect_keras.options import OptionError, before_first_release, check, check_fields, setting, version_check

SPLIT_SAMPLINGS = ("none", "down", "up")
NO_FACE_CHOICES = ("skip", "whole")  # --detect and a photo without a face: a counted skip, or the whole photo
CONFIG_FILE = "prepare_config.yaml"
MAX_SIZE = 2048  # --size at most: a larger output holds nothing a face model uses, and one image of it is tens of MB


GROUPS = {  # the topics of prepare_dataset.py --help, in order: {group: (title, description)}
    "source": ("source", None),
    "output": ("output", None),
    "faces": ("faces in photos (--source folders)", None),
    "labels": ("labels and splits", None),
    "balancing": ("balancing", None),
    "sample": ("built-in sample", None),
    "run": ("run", None),
}


def parse_class_map(text: str) -> dict[str, str]:
    """ "joy=Happy,mad=Anger" -> {"joy": "Happy", "mad": "Anger"}."""
    pairs = [p for p in text.split(",") if p.strip()]
    if any("=" not in p for p in pairs):
        raise ValueError(f"takes FOLDER=CLASS pairs separated by commas, got {text!r}")
    return dict(tuple(s.strip() for s in p.split("=", 1)) for p in pairs)


@dataclass(kw_only=True)
class PrepareConfig:
    """Settings of one preparation: `prepare()` runs it, prepare_dataset.py builds its flags from these
    fields (their help, group, choices and checks are the fields' metadata: `options.setting`), and the
    prepared folder keeps it as `prepare_config.yaml`.

    `root` may be None for the sample, which is then generated inside `out`.

    Examples:
        `photos/` holds a folder of photos per class: photos/Happy/*.jpg, photos/Sad/*.jpg:

        >>> import affect_keras
        >>> config = affect_keras.PrepareConfig(source="folders", root="photos", out="data/photos", size=48)
        >>> summary = affect_keras.prepare(config)
        >>> {name: sum(counts[name] for counts in summary.counts.values()) for name in ("Happy", "Sad")}
        {'Happy': 15, 'Sad': 15}
    """

    source: str = setting("sample", group="source", choices=SOURCES, help="dataset layout under --root")
    root: Path | None = setting(
        None, group="source", help="dataset folder (for sample: where it is generated; default OUT/affectnet_sample)"
    )
    class_map: dict[str, str] = setting(
        {},
        group="source",
        metavar="FOLDER=CLASS,...",
        parse=parse_class_map,
        text=lambda mapping: ",".join(f"{folder}={name}" for folder, name in mapping.items()),
        help="folders source: rename class folders, e.g. joy=Happy,mad=Anger",
    )
    out: Path = setting(group="output", help="where the prepared dataset is written (required)")
    size: int = setting(
        256,
        group="output",
        help="side of the square output images, pixels",
        check=(
            lambda v: 8 <= v <= MAX_SIZE,
            f"must be 8 to {MAX_SIZE} pixels (a face model's input is at most a few hundred)",
        ),
    )
    margin: float = framing_setting("margin", DEFAULT_FRAMING.margin, group="output")
    detect: bool = setting(
        False,
        group="faces",
        help="find the largest face of each photo and frame it (--crop, --margin; --align "
        "levels its eyes) before resizing, as predict.py does",
    )
    detector: str = setting(
        DEFAULT_DETECTOR,
        group="faces",
        choices=DETECTORS,
        help="blazeface: MediaPipe's BlazeFace, short range, with landmarks; blazeface-full: "
        "for small faces far away; haar: OpenCV's cascade, no landmarks (no alignment)",
    )
    crop: str = framing_setting("crop", DEFAULT_FRAMING.crop)
    align: bool = framing_setting("align", DEFAULT_FRAMING.align)
    no_face: str = setting(
        "skip",
        group="faces",
        choices=NO_FACE_CHOICES,
        help="a photo without a face: skip it (counted in skipped.csv), or keep it whole",
    )
    labels: str = setting(
        "affectnet8",
        group="labels",
        choices=SCHEMES,
        help="; ".join(f"{s.name}: {s.description}" for s in SCHEMES.values()),
    )
    val_fraction: float = setting(
        0.1,
        group="labels",
        check=(lambda v: 0 <= v < 1, "must be in [0, 1)"),
        help="stratified share of training carved out as val, where the source has no val",
    )
    test_fraction: float = setting(
        0.0,
        group="labels",
        check=(lambda v: 0 <= v < 1, "must be in [0, 1)"),
        help="stratified share of training carved out as test, where the source has no test",
    )
    group_pattern: str = setting(
        "",
        group="labels",
        metavar="REGEX",
        check=(lambda v: compiles(v), "is not a valid regular expression"),
        help="subject-independent splits: the group (subject) of a file is the first "
        "group of REGEX in its name, e.g. '^(S\\d+)_' for CK+; no group spans two "
        "splits",
    )
    folds: int = setting(
        0,
        group="labels",
        check=(lambda v: v == 0 or v >= 2, "must be 0 (no cross-validation) or >= 2"),
        help="k-fold cross-validation: fold --fold of K becomes test (grouped with --group-pattern)",
    )
    fold: int = setting(0, group="labels", help="which fold is test, 0..K-1")
    seed: int = setting(
        0,
        group="labels",
        help="seed of splits, sampling and the sample",
        check=(lambda v: 0 <= v < 2**32, "must be in 0..2^32-1"),
    )
    balance_eval: int = setting(
        0,
        group="balancing",
        metavar="N",
        check=(lambda v: v >= 0, "must be >= 0"),
        help="also write val_balanced/ and test_balanced/ with N images per class (the "
        "AffectNet paper used 500); 0: no",
    )
    train_sampling: str = setting(
        "none",
        group="balancing",
        choices=SPLIT_SAMPLINGS,
        help="rebalance training: down-sample large classes or up-sample small ones",
    )
    sampling_target: int = setting(
        0,
        group="balancing",
        metavar="N",
        check=(lambda v: v >= 0, "must be >= 0"),
        help="images per class for --train-sampling (0: smallest class for down, largest for up)",
    )
    count: int = setting(
        1000, group="sample", help="synthetic faces to generate", check=(lambda v: v >= 1, "must be >= 1")
    )
    workers: int = setting(
        0, group="run", help=f"processes (0: all {os.cpu_count()} cores)", check=(lambda v: v >= 0, "must be >= 0")
    )
    io_threads: int = setting(
        8,
        group="run",
        check=(lambda v: v >= 1, "must be >= 1"),
        help="reads in flight per process: on a slow or network disk (Google Drive in Colab) "
        "the reads overlap each other and the decoding",
    )
    reduced_decode: bool = setting(
        True,
        group="run",
        negatable=True,
        help="decode a JPEG much larger than --size at 1/2, 1/4 or 1/8 scale (libjpeg's "
        "DCT scaling): several times faster, the output within docs/data.md's stated "
        "tolerance of a full decode",
    )
    # the affect-keras version that prepared the folder (folders from 0.2.0 on continue in every later one)
    version: str = setting(__version__, group="run", cli=False, check=version_check())

    def __post_init__(self):
        check_fields(self)  # types, choices and checks when built, as the CLI checks its flags
        self.out = Path(self.out)
        self.root = None if self.root is None else Path(self.root)

    def validate(self) -> None:
        """OptionError naming the first setting that is wrong: each field's own choices and check, then the
        rules between settings."""
        check_fields(self)
        check(
            [
                (self.val_fraction + self.test_fraction < 1, "test_fraction", "val + test fractions must be < 1"),
                (self.folds == 0 or 0 <= self.fold < self.folds, "fold", f"must be in 0..{self.folds - 1}"),
                (not self.out.exists() or self.out.is_dir(), "out", f"{self.out} is a file; give a folder"),
                (self.root is not None or self.source == "sample", "root", f"is required for --source {self.source}"),
                (
                    not self.detect or self.source == "folders",
                    "detect",
                    "is for --source folders (the other sources give each face's box)",
                ),
            ]
        )
        get_scheme(self.labels)
        from affect_keras.labels import code_of_folder

        for folder, name in self.class_map.items():
            if "/" in folder or "\\" in folder or folder in ("", ".", ".."):
                raise OptionError("class_map", f"{folder}={name}: {folder!r} is not a folder name (one name, no path)")
            if code_of_folder(name) is None:
                raise OptionError(
                    "class_map",
                    f"{folder}={name}: {name!r} is not an expression (a class name such "
                    f"as Happy, a synonym such as joy, or an AffectNet code 0-10)",
                )
        if self.root is not None and self.source != "sample":
            root, out = Path(self.root).resolve(), Path(self.out).resolve()
            if not root.is_dir():
                raise OptionError("root", f"{self.root} is not a directory")
            if root.is_relative_to(out) or out.is_relative_to(root):
                raise OptionError("out", f"{self.out} must lie outside --root {self.root} (and not contain it)")

    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1

    @staticmethod
    def recorded(record: dict, out) -> dict:
        """The prepare_config.yaml of a folder to continue, as written by affect-keras 0.2.0 or later; a
        folder prepared before (no version recorded) is refused, saying how to prepare it again."""
        if not isinstance(record.get("version"), str):
            raise OptionError(
                "out",
                before_first_release(f"{out} was prepared", "prepare into a new --out (or delete this folder first)"),
            )
        return record

    def to_dict(self) -> dict:
        values = asdict(self)
        values["out"], values["root"] = str(self.out), None if self.root is None else str(self.root)
        return values


def same_images(old: dict, new: dict) -> bool:
    """Whether finished images of an earlier run can be reused: everything that shapes pixels, names
    or selection must match (the worker count does not)."""
    old, new = dict(old or {}), dict(new)
    for key in ("workers", "io_threads", "version"):  # how fast, not what; which release wrote it
        old.pop(key, None), new.pop(key, None)
    if not new.get("detect"):  # the face-finding settings shape nothing without --detect
        for key in DETECTION:
            old.pop(key, None), new.pop(key, None)
    return old == new


DETECTION = ("detector", "crop", "align", "no_face")


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
    record = yaml.safe_load(path.read_text()) or {}
    margin = float(record.get("margin", 0.0))
    if record.get("detect"):
        return {"crop": record["crop"], "margin": margin, "align": bool(record["align"])}
    if record.get("source") in ("affectnet", "sample"):  # a dataset's own face boxes, widened, not levelled
        return {"crop": "box", "margin": margin, "align": False}
    if record.get("source") == "ferplus":  # FER2013's 48 px faces, not levelled: BlazeFace's box cut as it is
        return {"crop": "box", "margin": 0.0, "align": False}  # suits them best (docs/deployment.md)
    return None
