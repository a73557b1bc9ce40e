"""Make a preset (see `affect_keras.models.presets`) from a trained run directory."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from affect_keras.models.presets import CARD, DTYPES, PresetError


def save_preset(
    run: Path,
    out: Path,
    dtype: str = "float16",
    data_terms: str = "",
    command: str = "",
    commit: str = "",
    framing: dict | None = None,
    notes: str = "",
) -> Path:
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
        The run `affect_keras.train` wrote:

        >>> import affect_keras
        >>> affect_keras.save_preset("models/s32", "presets/s32", data_terms="synthetic sample (no licence needed)")
        PosixPath('presets/s32')
        >>> affect_keras.from_preset("presets/s32").image_size
        32
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
    extra = {
        "training": {
            "data": str(data),
            "data_terms": data_terms,
            "counts": summary.get("counts", {}),
            "command": command or f"python train.py --config {run / 'config.yaml'}",
            "commit": commit or _head_commit(),
            "config": config,
        },
        "metrics": _reports(run),
    }
    card = _card({"name": out.name, **describe(model), "weights_dtype": dtype, **extra}, run, notes)
    return model.save_to_preset(out, dtype=dtype, metadata=extra, card=card)


def add_runtime_files(
    preset: str | Path,
    data: str | Path,
    calibration: int = 300,
    int8_max_loss: float = 0.01,
    onnx: bool = False,
) -> dict:
    """Give a preset folder its runtime files, which predict runs without keras (LiteRT, and ONNX Runtime
    where asked), checked on the faces of a prepared folder's val split against the keras model:

    - `model.tflite`: float16 weights where no probability of those faces moves by more than 1e-3, else
      float32;
    - `model.int8.tflite`: weights and activations in int8, quantised on `calibration` faces of the train
      split, kept only where it loses at most `int8_max_loss` of accuracy;
    - `model.onnx` (with `onnx`): float32. The shipped presets leave it out: LiteRT runs on every platform
      the package claims, and with it the wheel would pass the package index's 100 MB limit
      (benchmarks/preset_files.py measured the options).

    What was measured goes into metadata.json (`runtime`), every file into sha256.json.

    Args:
        preset: a preset folder (written by `save_preset`); its files are replaced, no other.
        data: a prepared folder (train and val splits) with the preset's classes.
        calibration: train faces the int8 variant is quantised on.
        int8_max_loss: the most accuracy (a fraction) the int8 variant may lose.
        onnx: also write `model.onnx`; without it, one the folder has is removed.

    Returns the `runtime` record.

    Examples:
        >>> add_runtime_files("affect_keras/presets/ferplus_resnet18_48", "data/fer48")
    """
    import numpy as np

    from affect_keras.models.classifier import ExpressionClassifier
    from affect_keras.models.export import with_named_outputs, write_onnx, write_tflite
    from affect_keras.models.loading import open_onnx, open_tflite
    from affect_keras.models.presets import CHECKSUMS, METADATA, RUNTIME_FILES, resolve, sha256, verify

    folder = resolve(preset)
    metadata = verify(folder)
    classifier = ExpressionClassifier.from_preset(folder)
    model = with_named_outputs(classifier)
    faces, labels = _split_faces(Path(data), "val", classifier.image_size, classifier.class_names)
    rng = np.random.default_rng(0)
    train, _ = _split_faces(Path(data), "train", classifier.image_size, classifier.class_names)
    chosen = train[rng.choice(len(train), min(calibration, len(train)), replace=False)]

    def probabilities(outputs) -> np.ndarray:
        return np.concatenate([outputs(faces[k : k + 64])["expression"] for k in range(0, len(faces), 64)])

    reference = probabilities(model.predict_on_batch)
    accuracy = lambda p: round(float((p.argmax(1) == labels).mean()), 4)  # noqa: E731
    record = {
        "checked_on": {"data": str(data), "split": "val", "faces": len(faces)},
        "keras": {"accuracy": accuracy(reference)},
    }
    (folder / RUNTIME_FILES["onnx"]).unlink(missing_ok=True)  # written again below where asked
    for engine, weights in (("litert", "float16"), ("litert", "float32"), ("onnx", "float32"), ("litert-int8", "int8")):
        if engine == "onnx" and not onnx:
            continue
        path = folder / RUNTIME_FILES[engine]
        if engine == "litert" and weights == "float32" and record.get("litert", {}).get("weights") == "float16":
            continue
        if engine == "onnx":
            write_onnx(model, path)
        else:
            write_tflite(model, path, weights, (chosen[k : k + 1] for k in range(len(chosen))))
        got = probabilities((open_onnx if engine == "onnx" else open_tflite)(path, metadata).outputs)
        row = {
            "file": path.name,
            "weights": weights,
            "bytes": path.stat().st_size,
            "max_difference": float(np.abs(got - reference).max()),
            "accuracy": accuracy(got),
        }
        if engine == "litert" and weights == "float16" and row["max_difference"] > 1e-3:
            record["litert-float16-refused"] = row  # it moves a probability too far: float32 next
            continue
        if engine == "litert-int8":
            row["kept"] = record["keras"]["accuracy"] - row["accuracy"] <= int8_max_loss
            if not row["kept"]:
                path.unlink()
        record[engine] = row
    metadata["runtime"] = record
    (folder / METADATA).write_text(json.dumps(metadata, indent=1))
    sums = json.loads((folder / CHECKSUMS).read_text())
    sums = {name: digest for name, digest in sums.items() if name not in RUNTIME_FILES.values()}
    sums |= {name: sha256(folder / name) for name in (METADATA, *RUNTIME_FILES.values()) if (folder / name).is_file()}
    (folder / CHECKSUMS).write_text(json.dumps(sums, indent=1))
    return record


def _split_faces(data: Path, split: str, size: int, class_names: list[str]):
    """(faces, label indices) of a prepared folder's split, as (n, size, size, 3) uint8."""
    import csv

    import numpy as np
    from PIL import Image

    with open(data / f"{split}.csv", newline="") as stream:
        rows = [row for row in csv.DictReader(stream) if row["label"] in class_names]
    faces = np.stack([np.asarray(Image.open(data / row["file"]).convert("RGB").resize((size, size))) for row in rows])
    return faces, np.array([class_names.index(row["label"]) for row in rows])


def _reports(run: Path) -> dict:
    """{dataset-and-split folder: headline scores} of the run's evaluation reports."""
    scores = {}
    for report in sorted(run.glob("evaluation-*/report.json")):
        values = json.loads(report.read_text())
        keep = ("data", "split", "images", "accuracy", "macro_f1", "balanced_accuracy", "weighted_f1", "top2_accuracy")
        scores[report.parent.name] = {key: values[key] for key in keep if key in values}
        if "per_class" in values:
            scores[report.parent.name]["recall"] = {
                name: row.get("recall") for name, row in values["per_class"].items() if isinstance(row, dict)
            }
    return scores


def _head_commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).resolve().parent
        )
        return done.stdout.strip() if done.returncode == 0 else ""
    except OSError:
        return ""


def _card(metadata: dict, run: Path, notes: str) -> str:
    training = metadata["training"]
    lines = [
        f"# Preset {metadata['name']}",
        "",
        f"{metadata['backbone']} ({metadata['stem']} stem), task {metadata['task']}, "
        f"{len(metadata['class_names'])} classes ({', '.join(metadata['class_names'])}), "
        f"{metadata['image_size']} px uint8 RGB input, weights stored as {metadata['weights_dtype']}.",
        "",
        f"- Training data: `{training['data']}`; terms: {training['data_terms'] or 'not given'}",
        f"- Command: `{training['command']}`",
        f"- Commit: {training['commit'] or 'unknown'}",
        f"- Face framing: {json.dumps(metadata['framing'])}",
        "",
    ]
    if notes:
        lines += [notes, ""]
    if metadata["metrics"]:
        lines += ["| evaluation | images | accuracy | macro-F1 |", "| --- | --- | --- | --- |"]
        lines += [
            f"| {name} | {m.get('images', '')} | {m.get('accuracy', 0):.4f} | {m.get('macro_f1', 0):.4f} |"
            for name, m in metadata["metrics"].items()
        ]
        lines.append("")
    if (run / CARD).is_file():  # the run's own model card (training counts, curves, limits)
        lines += ["## The run's model card", "", (run / CARD).read_text()]
    return "\n".join(lines)
