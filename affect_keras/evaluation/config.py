"""evaluate.py's settings, declared once (`options.setting`): the command's flags are generated from
them, `EvaluateConfig` checks them when built, and every report folder keeps them resolved
(`evaluate_config.yaml`). Imports nothing heavy: `evaluate.py --help` and a bad flag answer at once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from affect_keras import __version__
from affect_keras.options import check, check_fields, check_split, setting, version_check

TTAS = ("none", "flip")  # test-time augmentation: none, or each face averaged with its mirror image

GROUPS = {  # the topics of evaluate.py --help, in order: {group: (title, description)}
    "model": ("model", None),
    "data": ("data", None),
    "scoring": ("scoring", None),
    "output": ("output", None),
}


# resamples at most: 100,000 bounds an interval's Monte Carlo error far below its width; a billion held
# 253 GiB of resampled indices (asked for after the model's work)
MAX_BOOTSTRAP = 100_000


@dataclass
class EvaluateConfig:
    """What `evaluate` scores: `model` (a run directory, a preset, an exported model) on the `split` of the
    prepared `data`; `out` (default: beside the model, see `report.default_out`), `tta` ("flip": each face
    averaged with its mirror image), `drop_class` (scored without it), `repeats` class-balanced resamples for
    the skew-normalised scores, `bootstrap` resamples for the 95 % intervals of the headline figures (0:
    none), `seed` for both. Each field is checked when the config is built.

    Examples:
        `affect_keras.evaluate` runs it:

        >>> import affect_keras
        >>> scoring = affect_keras.EvaluateConfig(model="models/s32", data="data/s32", split="test", tta="flip")
        >>> scoring.bootstrap, scoring.repeats
        (1000, 10)
    """

    model: str = setting(
        "",
        group="model",
        positional=True,
        help="a run directory (its best.keras), a preset, a .keras file, or a model exported by export.py: "
        "SavedModel folder, .tflite, .onnx",
    )
    data: str = setting("", group="data", help="prepared dataset folder (required unless --compare)")
    split: str = setting("test", group="data", help="train, val, test, val_balanced, test_balanced, ...")
    out: str = setting("", group="output", help="default: <run>/evaluation-<split>/ (with --compare: .)")
    drop_class: str = setting(
        "",
        group="scoring",
        metavar="CLASS",
        help="score without this class: its images and its output removed (e.g. Contempt)",
    )
    repeats: int = setting(
        10,
        group="scoring",
        help="class-balanced resamples for skew-normalised scores",
        check=(lambda v: v >= 1, "must be >= 1"),
    )
    batch_size: int = setting(64, group="data", check=(lambda v: v >= 1, "must be >= 1"), help="images per batch")
    tta: str = setting(
        "none", group="scoring", choices=TTAS, help="flip: average each face's probabilities with its mirror image's"
    )
    save_predictions: bool = setting(False, group="output", help="also write predictions.csv")
    seed: int = setting(
        0, group="scoring", help="seed of the resamples", check=(lambda v: 0 <= v < 2**32, "must be in 0..2^32-1")
    )
    bootstrap: int = setting(
        1000,
        group="scoring",
        metavar="N",
        check=(lambda v: 0 <= v <= MAX_BOOTSTRAP, f"must be in 0..{MAX_BOOTSTRAP:,}"),
        help="bootstrap resamples for the 95 %% interval of each headline figure (0: none); with --compare, of "
        "each run's difference from the first run on the same faces",
    )
    trust_saved_model: bool = setting(
        False,
        group="model",
        help="evaluate a SavedModel: a SavedModel is a program that can read and write files, so it runs only "
        "with this flag (.keras, .tflite and .onnx files are safe to load)",
    )
    compare: list[str] = setting(
        [],
        group="output",
        metavar="RUN",
        help="instead of scoring a model: one table of evaluated runs side by side (uses their --split report)",
    )
    version: str = setting(__version__, group="output", cli=False, check=version_check())

    def __post_init__(self):
        if isinstance(self.compare, (str, os.PathLike)):  # one run
            self.compare = [self.compare]
        check_fields(self)

    def validate(self) -> None:
        """The rules between settings (a model and its data, unless runs are compared), then what needs the
        files, before any model loads: the model is there (a SavedModel only if trusted), the split prepared."""
        check(
            [
                (bool(self.compare) or bool(self.model), "model", "is required (or use --compare)"),
                (bool(self.compare) or bool(self.data), "data", "is required (or use --compare)"),
            ]
        )
        if self.compare:
            return
        from affect_keras.models.loading import check_trusted
        from affect_keras.models.presets import is_preset

        check_trusted(self.model, self.trust_saved_model)  # said before the data is read
        exists = Path(self.model).exists() or is_preset(self.model)
        check(
            [
                (exists, "model", f"{self.model} does not exist (nor is it a shipped preset)"),
                (Path(self.data, "summary.json").is_file(), "data", "has no summary.json (prepare it first)"),
            ]
        )
        check_split(self.data, self.split)
