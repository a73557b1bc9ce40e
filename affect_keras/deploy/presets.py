"""Make a preset (see `affect_keras.models.presets`) from a trained run directory."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import yaml

from affect_keras.models.presets import (CARD, CHECKSUMS, CONFIG, FORMAT_VERSION, METADATA, WEIGHTS,
                                         PresetError, sha256)

DTYPES = ("float16", "float32")


def save_preset(run: Path, out: Path, dtype: str = "float16", data_terms: str = "", command: str = "",
                commit: str = "", framing: dict | None = None, notes: str = "") -> Path:
    """Write the run's inference model as a preset directory `out` (which must not hold files already).

    Args:
        run: a run directory written by train.py (its best.keras, config.yaml, class_names.json).
        out: the preset directory to create.
        dtype: "float16" (half the size; probabilities move by about 1e-3) or "float32".
        data_terms: the licence or terms of the training data, for the model card and metadata.
        command: the exact training command (default: `train.py --config <run>/config.yaml`).
        commit: the project commit the run trained on (default: this checkout's HEAD, if any).
        framing: how predict.py should cut faces for this model (a `data.faces.Framing` as a dict, e.g.
            {"crop": "tight", "margin": 0.0, "align": False}); default: what the model records of its
            training data (`data.prepare.config.framing_of`), else the toolkit's default framing.
        notes: free text for the model card (how it was trained, on what machine).

    Returns `out`. Its metrics are the run's evaluation reports (`evaluate.py RUN --data D --split S`).

    Examples:
        >>> save_preset(Path("models/fer_r18_48"), Path("presets/my_fer"), data_terms="FER+ labels: MIT")
    """
    from affect_keras.data.faces import DEFAULT_FRAMING
    from affect_keras.deploy.inference import load_run
    from affect_keras.models.backbones import get_backbone
    from affect_keras.models.migrate import run_info
    from affect_keras.models.preprocessing import description_of
    from affect_keras.tasks import get_task

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    run, out = Path(run), Path(out)
    if out.exists() and any(out.iterdir()):
        raise PresetError(f"preset {out}: the folder is not empty; choose a new one")
    model, names = load_run(run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    backbone = run_info(run)  # older runs included
    data = Path(config["data"])
    summary = json.loads((data / "summary.json").read_text()) if (data / "summary.json").is_file() else {}
    task_name = config.get("task", "expression")
    task = get_task(task_name)
    metadata = {
        "format_version": FORMAT_VERSION,
        "name": out.name,
        "task": task_name,
        "heads": list(task.heads),
        "class_names": names,
        "label_scheme": (description_of(model) or {}).get("label_scheme") or summary.get("labels", ""),
        "image_size": int(model.input_shape[1]),
        "input": "uint8 RGB faces, (n, size, size, 3); preprocessing is inside the model",
        "backbone": config["backbone"],
        "preprocessing": get_backbone(config["backbone"]).preprocessing,
        "stem": backbone.get("stem"),
        "padding": backbone["padding"],
        "framing": framing or (description_of(model) or {}).get("framing") or DEFAULT_FRAMING.to_dict(),
        "weights_dtype": dtype,
        "training": {"data": str(data), "data_terms": data_terms, "counts": summary.get("counts", {}),
                     "command": command or f"python train.py --config {run / 'config.yaml'}",
                     "commit": commit or _head_commit(), "config": config},
        "metrics": _reports(run),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG).write_text(json.dumps(_serialize(model), indent=1))
    _write_weights(model, out / WEIGHTS, dtype)
    (out / METADATA).write_text(json.dumps(metadata, indent=1))
    (out / CARD).write_text(_card(metadata, run, notes))
    (out / CHECKSUMS).write_text(json.dumps({name: sha256(out / name) for name in (CONFIG, WEIGHTS, METADATA,
                                                                                   CARD)}, indent=1))
    return out


def _serialize(model) -> dict:
    import keras
    return keras.saving.serialize_keras_object(model)


def _write_weights(model, path: Path, dtype: str) -> None:
    """keras's weights file, with every float32 array stored as `dtype` (keras casts back on loading)."""
    import h5py

    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "full.weights.h5"
        model.save_weights(full)
        with h5py.File(full, "r") as source, h5py.File(path, "w") as target:
            def copy(name, item):
                if isinstance(item, h5py.Dataset):
                    values = item[()]
                    if values.dtype == np.float32:
                        values = values.astype(dtype)
                    target.create_dataset(name, data=values)
                else:
                    target.require_group(name)
                for key, value in item.attrs.items():
                    target[name].attrs[key] = value

            source.visititems(copy)
            for key, value in source.attrs.items():
                target.attrs[key] = value


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
