"""The run directory's README.md: what the model is, how it was trained, how well it does, what not to use
it for. Written by train.py and brought up to date by evaluate.py."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from affect_keras.tasks import EXPRESSION, get_task
from affect_keras.heads import HEADS
from affect_keras.models.loading import classifier_config, run_checkpoint

LIMITS = """\
## Intended use and limits

For research on facial-expression recognition: comparing backbones, losses and imbalance strategies on
datasets such as AffectNet and FER+. Expressions are labelled by annotators from a single face image;
the model predicts those labels, not what a person feels. Its accuracy drops for faces unlike its
training data (pose, occlusion, lighting, age, skin tone, image quality), and the classes it saw least
(see the training counts) are the least reliable. It must not be used to make decisions about people
(hiring, policing, health, education, surveillance). A model trained on the built-in synthetic sample
has learned cartoon faces only.
"""


def _interval(interval) -> str:  # a 95 % interval as the card and the printed report show it
    return f"[{interval[0]:.4f}, {interval[1]:.4f}]" if interval else ""


def _class_names(run: Path, data: Path) -> list[str]:
    """The class order of the run's classifier, as its checkpoint records it (read without keras); before
    the first checkpoint, its data's."""
    try:
        return classifier_config(run_checkpoint(run))["class_names"]
    except ValueError:
        return json.loads((data / "summary.json").read_text())["class_names"]


def write_model_card(run: Path) -> Path:
    run = Path(run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    data = Path(config["data"])
    record = data / "prepare_config.yaml"
    prepared = yaml.safe_load(record.read_text()) if record.is_file() else {}
    summary = json.loads((data / "summary.json").read_text()) if (data / "summary.json").is_file() else {}
    names = _class_names(run, data)
    task = get_task(config.get("task", "expression"))
    lines = [
        f"# {run.name}: {config['backbone']}, {task.description.replace(' (default)', '')}",
        "",
        "## Outputs",
        "",
        *(f"- {HEADS[head].card(names)}" for head in task.heads),
        "",
        "## Data and labels",
        "",
        f"- Data: `{data}` (source `{prepared.get('source', '?')}`, label scheme "
        f"`{prepared.get('labels', '?')}`, faces at {prepared.get('size', '?')} px)",
        f"- Classes, in output order: {', '.join(names)}",
    ]
    counts = summary.get("counts", {}).get("train")
    if counts:
        lines.append("- Training images per class: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    weights = config["weights"]
    lines += [
        "",
        "## Model and training",
        "",
        f"- Backbone `{config['backbone']}`, weights `{weights}`"
        + (f" (checkpoint `{config['imagenet_checkpoint']}`)" if config.get("imagenet_checkpoint") else "")
        + (f", {config['stem']} stem" if config.get("stem") not in (None, "auto") else "")
        + (" (frozen in phase 1)" if weights != "none" else " (trained from scratch)")
        + f", input {config['image_size'] or 'backbone default'} px uint8, preprocessing inside the model",
        f"- Head: {config['pooling']} pooling, dense {config['dense'] or 'none'}, dropout {config['dropout']}",
        f"- {config['optimizer']} lr {config['lr']} ({config['schedule']}), {config['epochs']} epochs"
        + (
            f" + {config['finetune_epochs']} fine-tuning at {config['finetune_lr']}"
            if config["finetune_epochs"]
            else ""
        ),
        f"- Imbalance: class weights `{config['class_weights']}`, sampling `{config['sampling']}`; "
        f"targets `{config['targets']}`, augmentation `{config['augment']}`, mix `{config['mix']}`",
        f"- Re-run: `python train.py --config {run / 'config.yaml'}`",
    ]
    if (run / "calibration.json").is_file():
        record = json.loads((run / "calibration.json").read_text())
        lines.append(
            f"- Calibrated: temperature {record['temperature']:.3f} fitted on the `{record['split']}` split "
            f"({record['images']} faces): ECE {record['before']['ece']:.4f} -> {record['after']['ece']:.4f}, "
            f"NLL {record['before']['nll']:.4f} -> {record['after']['nll']:.4f}"
        )
    if (run / "history.csv").is_file():
        history = pd.read_csv(run / "history.csv")
        accuracy = next((c for c in ("val_accuracy", f"val_{EXPRESSION}_accuracy") if c in history), None)
        if accuracy:
            best = history.loc[history[accuracy].idxmax()]
            lines.append(
                f"- Best validation accuracy {best[accuracy]:.4f} at epoch {int(best['epoch']) + 1} of {len(history)}"
            )
    lines += ["", "## Evaluation", ""]
    reports = sorted(run.glob("evaluation-*/report.json"))
    if not reports:
        lines.append(f"Not evaluated yet: `python evaluate.py {run} --data {data} --split test`.")
    calibrated = run / "calibration.json"
    now = json.loads(calibrated.read_text())["temperature"] if calibrated.is_file() else 1.0
    for path in reports:
        report = json.loads(path.read_text())
        tta = ", each face averaged with its mirror image" if report.get("tta") == "flip" else ""
        lines += [f"Split `{report['split']}` of `{report.get('data', '?')}`, {report['images']} images{tta}:", ""]
        # a report of 0.2.0 does not say its temperature: one older than the calibration was made before it
        then = report.get("temperature")
        if (then is None and calibrated.is_file() and calibrated.stat().st_mtime > path.stat().st_mtime) or (
            then is not None and abs(then - now) > 1e-6 * now
        ):
            lines += [
                f"*Scored before the calibration now in the model (temperature {now:.3f}"
                + (f", {then:.3f} when scored" if then is not None else "")
                + "): its ECE, NLL and Brier are the earlier model's; the classes and their scores are unchanged. "
                f"`python evaluate.py {run} --data {report.get('data', data)} --split {report['split']}` "
                "scores it again.*",
                "",
            ]
        if "skew_normalized" in report:
            skew, intervals = report["skew_normalized"], report.get("intervals", {})
            lines += ["| metric | as is | 95 % interval (bootstrap) | class-balanced |", "| --- | --- | --- | --- |"]
            for metric in ("accuracy", "balanced_accuracy", "macro_f1", "top2_accuracy", "kappa"):
                balanced = f"{skew[metric]['mean']:.4f} ± {skew[metric]['std']:.4f}" if metric in skew else ""
                lines.append(f"| {metric} | {report[metric]:.4f} | {_interval(intervals.get(metric))} | {balanced} |")
            if "calibration" in report:
                calibration = report["calibration"]
                lines.append(f"| ECE (15 bins) | {calibration['ece']:.4f} | {_interval(intervals.get('ece'))} | |")
                lines.append(f"| NLL / Brier | {calibration['nll']:.4f} / {calibration['brier']:.4f} | | |")
            lines.append("")
            if intervals.get("per_class"):
                lines += ["| class | F1 | 95 % interval | recall | 95 % interval |", "| --- | --- | --- | --- | --- |"]
                for name, scores in report["per_class"].items():
                    bounds = intervals["per_class"].get(name) or {}
                    lines.append(
                        f"| {name} | {scores['f1']:.4f} | {_interval(bounds.get('f1'))} | "
                        f"{scores['recall']:.4f} | {_interval(bounds.get('recall'))} |"
                    )
                lines.append("")
        if "va" in report:
            lines += ["| dimension | faces | RMSE | CCC | SAGR |", "| --- | --- | --- | --- | --- |"]
            for dimension, scores in report["va"].items():
                if "ccc" in scores:
                    lines.append(
                        f"| {dimension} | {scores['count']} | {scores['rmse']:.4f} | {scores['ccc']:.4f} "
                        f"{_interval(scores.get('ccc_interval'))} | {scores['sagr']:.4f} |"
                    )
            lines.append("")
    path = run / "README.md"
    path.write_text("\n".join(lines) + "\n\n" + LIMITS)
    return path
