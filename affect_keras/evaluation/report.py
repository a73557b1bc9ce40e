"""Evaluate a trained model on a prepared split: report.json, pictures, a printed table."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import yaml

from affect_keras.atomic import refuse_foreign_folder, writable_folder
from affect_keras.data.loader import FaceBatches
from affect_keras.data.table import read_summary
from affect_keras.evaluation.model_card import _interval, write_model_card
from affect_keras.models import loading
from affect_keras.options import OptionError
from affect_keras.tasks import VA
from affect_keras.heads import HEADS
from affect_keras.evaluation.config import EvaluateConfig  # (affect_keras.EvaluateConfig)
from affect_keras.evaluation.sections import SECTIONS

CONFIG_NAME = "evaluate_config.yaml"  # the resolved settings, in every folder evaluate.py writes
# the overall scores evaluate.py prints, in order (the calibration scores from the report's `calibration`)
PRINTED = ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "top2_accuracy", "kappa", "auc_ovr")
PRINTED += ("ece", "nll", "brier")


def default_out(config: EvaluateConfig) -> Path:
    """Where a report goes without --out: `<run>/evaluation-<split>/` for a run on the data it trained
    on, `<run>/evaluation-<data folder>-<split>/` on other data; for an exported model (beside it) and a
    preset (here: its folder may be inside the installed package), `evaluation-<model>-<data folder>-<split>/`
    (`-tta` added with --tta flip). A folder that holds another model's or another data folder's report
    (two data folders of one name) is never reused: the name gets `-2`, `-3`, ..."""
    kind, model = loading.identify(config.model) or (None, Path(config.model))
    suffix = f"{config.split}{'-tta' if config.tta == 'flip' else ''}"
    data_name = Path(config.data).resolve().name
    if kind is loading.KINDS["preset"]:
        base = Path(f"evaluation-{model.name}-{data_name}-{suffix}")
    elif kind is loading.KINDS["run"]:
        trained_on = (yaml.safe_load((model / "config.yaml").read_text()) or {}).get("data")
        # the run's own data keeps evaluation-<split>/ (what --compare reads); other data its own folder
        same = trained_on and Path(trained_on).resolve() == Path(config.data).resolve()
        base = model / (f"evaluation-{suffix}" if same else f"evaluation-{data_name}-{suffix}")
    else:  # an exported model: beside it, named by it
        base = model.parent / f"evaluation-{model.stem}-{data_name}-{suffix}"
    # beside a run or an export the folder's name says the model; in the current folder (a preset) it may not
    keys = ("model", "data") if kind is loading.KINDS["preset"] else ("data",)
    candidate, k = base, 1
    while not _same_evaluation(candidate, config, keys):
        k += 1
        candidate = base.with_name(f"{base.name}-{k}")
    return candidate


def _same_evaluation(folder: Path, config: EvaluateConfig, keys: tuple[str, ...]) -> bool:
    """Whether `folder` is free for this evaluation: new, or holding a report whose `keys` ("model",
    "data": the paths) are this one's (a repeat of the same command)."""
    if not (folder / CONFIG_NAME).is_file():
        return not folder.exists() or not any(folder.iterdir())
    try:
        recorded = yaml.safe_load((folder / CONFIG_NAME).read_text()) or {}
        return all(Path(str(recorded.get(key))).resolve() == Path(getattr(config, key)).resolve() for key in keys)
    except (OSError, yaml.YAMLError, AttributeError):
        return False


def evaluate(config: EvaluateConfig, outputs: dict[str, np.ndarray] | None = None) -> dict:
    """Predict the split, score it, write report.json, the pictures and the resolved settings.

    Args:
        config: what to score on which data; `config.out` is filled in when it was empty.
        outputs: the model's outputs computed already ({head: array}, one row per image of the split in
            manifest order; the study reads them off cached backbone features): the model is then loaded
            for its class names and image size only.

    Returns:
        The report: `accuracy`, `balanced_accuracy`, `macro_f1`, `weighted_f1`, `top2_accuracy`, `kappa`,
        `auc_ovr` (expressions), `intervals` (their 95 % bootstrap intervals), `skew_normalized` (mean and
        std over class-balanced resamples), `per_class`, `confusion_matrix`, `calibration` (ece, nll,
        brier), and `va` for a valence / arousal model.

    Examples:
        The run `affect_keras.train` wrote:

        >>> import affect_keras
        >>> report = affect_keras.evaluate(affect_keras.EvaluateConfig(model="models/s32", data="data/s32",
        ...                                                             split="val"))
        >>> low, high = report["intervals"]["macro_f1"]  # 95 % bootstrap interval
        >>> low <= report["macro_f1"] <= high
        True
    """
    config.validate()
    if config.out:  # a folder of the user's: its files are not evaluate's to replace
        refuse_foreign_folder(Path(config.out), CONFIG_NAME, "out", "evaluate.py")
    config.out = config.out or str(default_out(config))
    out = writable_folder(Path(config.out), "out")  # before the model loads and the split is predicted
    path = Path(config.model)
    # the scores of the model itself (a SavedModel only when the user trusts it: it is a program)
    predictor = loading.load(config.model, engine="keras", trust_saved_model=config.trust_saved_model)
    names = predictor.class_names
    data_names = read_summary(Path(config.data))["class_names"]
    # with --drop-class, data prepared without that class (AffectNet-7 for an 8-class model) fits too
    if data_names != names and data_names != [n for n in names if n != config.drop_class]:
        raise OptionError(
            "data",
            f"{config.data}: classes {', '.join(data_names)} are not the model's "
            f"{', '.join(names)}" + (f" (nor without {config.drop_class})" if config.drop_class else ""),
        )
    size = predictor.image_size
    data = FaceBatches(config.data, config.split, names, size, config.batch_size, task="va")
    if not len(data):
        raise OptionError("split", f"{config.split}: no images in {config.data}")
    if outputs is None:
        predict = mirror_averaged(predictor.outputs) if config.tta == "flip" else predictor.outputs
        batches = [predict(images) for images, _ in data]
        outputs = {name: np.concatenate([b[name] for b in batches]) for name in batches[0]}
    elif config.tta != "none" or any(len(values) != len(data.files) for values in outputs.values()):
        raise ValueError(
            f"outputs given for {len(data.files)} images of --split {config.split} must hold one "
            f"row each and come without --tta"
        )
    labels, truth_va = data.labels, data.columns[VA]
    files = np.array(data.files)
    (out / CONFIG_NAME).write_text(yaml.safe_dump(asdict(config), sort_keys=False))
    if config.save_predictions:
        write_predictions(out / "predictions.csv", files, labels, outputs, names)
    report = {
        "model": str(path),
        "data": str(config.data),
        "split": config.split,
        "tta": config.tta,
        "outputs": list(outputs),
        "images": int(len(labels)),
        # the model's calibration when scored: a later calibrate.py changes its ECE / NLL / Brier (the model card says)
        "temperature": float(getattr(predictor.classifier, "temperature", 1.0)),
    }
    pictures = {}
    scored = dict(
        labels=labels, names=names, files=files, size=size, out=out, run=path, config=config, truth_va=truth_va
    )
    for head in outputs:  # each head's section of the report (polarity has none)
        if head in SECTIONS:
            SECTIONS[head](report, pictures, outputs[head], **scored)
    # a picture that could not be drawn (no face with valence / arousal) is left out, not named "None"
    report["pictures"] = {key: str(value) for key, value in pictures.items() if value is not None}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    if (path / "config.yaml").is_file():  # a run directory: its model card gains this evaluation
        write_model_card(path)
    return report


def mirror_averaged(outputs: Callable[[np.ndarray], dict]) -> Callable[[np.ndarray], dict]:
    """Test-time augmentation: each face's outputs averaged with its mirror image's.

    Expressions (and valence / arousal) read the same mirrored (the flip augmentation in training
    assumes it too), so this costs one more forward pass and makes the prediction independent of which
    way the face was cropped.
    """

    def averaged(images):
        plain, mirrored = outputs(images), outputs(np.ascontiguousarray(images[:, :, ::-1]))
        return {name: (plain[name] + mirrored[name]) / 2 for name in plain}

    return averaged


def write_predictions(path: Path, files, labels, outputs: dict, names) -> None:
    """One row per face: its label, and every output's columns (predicted class, confidence and
    probabilities; valence and arousal; polarity probabilities)."""
    table = pd.DataFrame({"file": files, "label": [names[k] for k in labels]})
    for head, values in outputs.items():
        HEADS[head].columns(table, values, names)
    table.to_csv(path, index=False, float_format="%.5f")


def format_va(report: dict) -> str:
    """Valence / arousal scores per dimension, on the faces that have them."""
    table = pd.DataFrame(report["va"]).T.reindex(columns=["count", "rmse", "mae", "pearson_r", "ccc", "sagr"])
    table["count"] = table["count"].astype(int)
    table.insert(5, "ccc interval", [_interval(scores.get("ccc_interval")) for scores in report["va"].values()])
    return "Valence / arousal (faces that have them):\n" + table.to_string(float_format="{:.4f}".format)


def format_report(report: dict) -> str:
    """The report as evaluate.py prints it: overall scores as they are, with their intervals and on
    class-balanced resamples, then per class; then valence / arousal where the model predicts them.

    Args:
        report: what `evaluate` returned (or its report.json, read).

    Returns:
        The text, several lines.

    Examples:
        A report of `affect_keras.evaluate`:

        >>> print(affect_keras.format_report(report))  # doctest: +ELLIPSIS
        models/s32 on data/s32 [val], ... images
        ...macro_f1...
    """
    if "skew_normalized" not in report:  # a valence / arousal model
        return "\n\n".join(
            [f"{report['model']} on {report['data']} [{report['split']}], {report['images']} images", format_va(report)]
        )
    skew = report["skew_normalized"]
    intervals = report.get("intervals", {})
    calibration = report.get("calibration", {})
    rows = []
    for m in PRINTED:
        value = report.get(m, calibration.get(m))
        balanced = f"{skew[m]['mean']:.4f} ± {skew[m]['std']:.4f}" if m in skew else ""
        rows.append([m, value, _interval(intervals.get(m)), balanced])
    level = f"{intervals.get('level', 0.95):.0%} interval" + (
        f" ({intervals['resamples']} bootstrap)" if intervals else ""
    )
    overall = pd.DataFrame(
        rows, columns=["metric", "unbalanced", level, f"balanced ({skew['per_class_size']}/class x {skew['repeats']})"]
    )
    classes = pd.DataFrame(report["per_class"]).T[["precision", "recall", "f1", "top2_f1", "support"]]
    classes["support"] = classes["support"].astype(int)
    if intervals:
        for metric in ("recall", "f1"):
            classes.insert(
                list(classes.columns).index(metric) + 1,
                f"{metric} interval",
                [_interval((intervals["per_class"].get(name) or {}).get(metric)) for name in classes.index],
            )
    head = (
        f"{report['model']} on {report['data']} [{report['split']}], {report['images']} images"
        + (f", without {report['dropped_class']}" if report["dropped_class"] else "")
        + (", mirror-averaged (--tta flip)" if report.get("tta") == "flip" else "")
    )
    absent = report.get("absent_classes")
    note = (
        [
            f"No images of {', '.join(absent)} in this split: left out of the macro averages and the "
            f"class-balanced resamples."
        ]
        if absent
        else []
    )
    return "\n\n".join(
        [
            head,
            *note,
            overall.to_string(index=False, float_format="{:.4f}".format),
            classes.to_string(float_format="{:.4f}".format),
            *([format_va(report)] if "va" in report else []),
        ]
    )
