"""Make a preset (see `affect_keras.models.presets`) from a trained run directory."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from affect_keras.models.presets import CARD, DTYPES, PresetError


def save_preset(run: Path, out: Path, dtype: str = "float16", data_terms: str = "", command: str = "",
                commit: str = "", framing: dict | None = None, notes: str = "") -> Path:
    """Write the run's classifier as a preset directory `out` (which must not hold files already), with
    its training record and evaluations (`ExpressionClassifier.save_to_preset` writes the files).

    Args:
        run: a run directory written by train.py (its best.keras and config.yaml).
        out: the preset directory to create.
        dtype: "float16" (half the size; probabilities move by about 1e-3) or "float32".
        data_terms: the licence or terms of the training data, for the model card and metadata.
        command: the exact training command (default: `train.py --config <run>/config.yaml`).
        commit: the project commit the run trained on (default: this checkout's HEAD, if any).
        framing: how predict.py should cut faces for this model (a `data.faces.Framing` as a dict, e.g.
            {"crop": "box", "margin": 0.0, "align": False}); default: what the model records of its
            training data, else the toolkit's default framing.
        notes: free text for the model card (how it was trained, on what machine).

    Returns `out`. Its metrics are the run's evaluation reports (`evaluate.py RUN --data D --split S`).

    Examples:
        >>> save_preset(Path("models/fer_r18_48"), Path("presets/my_fer"), data_terms="FER+ labels: MIT")
    """
    from affect_keras.data.faces import DEFAULT_FRAMING
    from affect_keras.models.loading import load_classifier
    from affect_keras.models.presets import describe

    if dtype not in DTYPES:
        raise PresetError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    run, out = Path(run), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PresetError(f"preset {out}: the folder is not empty (or is a file); choose a new one")
    model = load_classifier(run)
    model.framing = framing or model.framing or DEFAULT_FRAMING.to_dict()
    config = yaml.safe_load((run / "config.yaml").read_text())
    data = Path(config["data"])
    summary = json.loads((data / "summary.json").read_text()) if (data / "summary.json").is_file() else {}
    extra = {"training": {"data": str(data), "data_terms": data_terms, "counts": summary.get("counts", {}),
                          "command": command or f"python train.py --config {run / 'config.yaml'}",
                          "commit": commit or _head_commit(), "config": config},
             "metrics": _reports(run)}
    card = _card({"name": out.name, **describe(model), "weights_dtype": dtype, **extra}, run, notes)
    return model.save_to_preset(out, dtype=dtype, metadata=extra, card=card)


def _reports(run: Path) -> dict:
    """{dataset-and-split folder: headline scores} of the run's evaluation reports."""
    scores = {}
    for report in sorted(run.glob("evaluation-*/report.json")):
        values = json.loads(report.read_text())
        keep = ("data", "split", "images", "accuracy", "macro_f1", "balanced_accuracy", "weighted_f1", "top2_accuracy")
        scores[report.parent.name] = {key: values[key] for key in keep if key in values}
        if "per_class" in values:
            scores[report.parent.name]["recall"] = {name: row.get("recall") for name, row in
                                                    values["per_class"].items() if isinstance(row, dict)}
    return scores


def _head_commit() -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent)
        return done.stdout.strip() if done.returncode == 0 else ""
    except OSError:
        return ""


def _card(metadata: dict, run: Path, notes: str) -> str:
    training = metadata["training"]
    lines = [f"# Preset {metadata['name']}", "",
             f"{metadata['backbone']} ({metadata['stem']} stem), task {metadata['task']}, "
             f"{len(metadata['class_names'])} classes ({', '.join(metadata['class_names'])}), "
             f"{metadata['image_size']} px uint8 RGB input, weights stored as {metadata['weights_dtype']}.", "",
             f"- Training data: `{training['data']}`; terms: {training['data_terms'] or 'not given'}",
             f"- Command: `{training['command']}`",
             f"- Commit: {training['commit'] or 'unknown'}",
             f"- Face framing: {json.dumps(metadata['framing'])}", ""]
    if notes:
        lines += [notes, ""]
    if metadata["metrics"]:
        lines += ["| evaluation | images | accuracy | macro-F1 |", "| --- | --- | --- | --- |"]
        lines += [f"| {name} | {m.get('images', '')} | {m.get('accuracy', 0):.4f} | {m.get('macro_f1', 0):.4f} |"
                  for name, m in metadata["metrics"].items()]
        lines.append("")
    if (run / CARD).is_file():  # the run's own model card (training counts, curves, limits)
        lines += ["## The run's model card", "", (run / CARD).read_text()]
    return "\n".join(lines)
