"""Export a trained classifier: SavedModel, .keras, TFLite, ONNX. Every format takes uint8 images (any
batch size, the trained resolution). The `.keras` file is the `ExpressionClassifier` itself, which
describes itself; the others return the model's outputs keyed by head name (`expression`: class
probabilities; `va`, `polarity` where the model has them) and are described by `metadata.json` beside
them (and, in the SavedModel, in its assets): class names, input size, heads, framing, the affect-keras
version. keras and TensorFlow are imported when an export runs, not with the module (the CLI lists
FORMATS without them)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from affect_keras.options import OptionError

MARKER = "export.json"  # what export.py wrote a folder from; a folder without it is not export's to fill
FILES = {"saved_model": "saved_model", "keras": "model.keras", "tflite": "model.tflite", "onnx": "model.onnx"}


def default_out(model: str | Path) -> Path:
    """`<run>/export/` for a run directory, else `export-<name>/` here (a preset's folder may be inside
    the installed package)."""
    from affect_keras.models.loading import kind_of
    from affect_keras.models.presets import preset_path

    kind = kind_of(model)
    if kind == "run":
        return Path(model) / "export"
    return Path(f"export-{preset_path(model).name if kind == 'preset' else Path(model).stem}")


def export(run: str | Path, formats: list[str], out: Path | None = None) -> dict[str, Path]:
    """Write the chosen formats into `out` (default: `default_out`); returns format -> path. `run`: a run
    directory, a preset (a shipped name or a folder) or a `.keras` file."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise OptionError("format", f"{','.join(unknown)}: choose from {', '.join(FORMATS)}")
    from affect_keras.models.loading import METADATA, load_classifier
    from affect_keras.models.presets import describe

    own = default_out(run)
    out = Path(out) if out else own
    if out.resolve() != own.resolve() and out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise OptionError("out", f"{out} holds files export.py did not write; choose an empty or new folder")
    classifier = load_classifier(run)  # after the checks: loading is the slow part
    metadata = {**describe(classifier), "exported_from": str(run), "formats": list(formats)}
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(json.dumps({"model": str(run), "formats": list(formats)}))
    (out / METADATA).write_text(json.dumps(metadata, indent=1))
    model = with_named_outputs(classifier)
    wanted = set(formats)
    if wanted & {fmt for fmt, (_, needs) in FORMATS.items() if needs}:
        wanted.add("saved_model")  # TFLite and ONNX are converted from the SavedModel
    for fmt, (write, _) in FORMATS.items():  # registry order: the SavedModel before its conversions
        if fmt in wanted:
            write(classifier if fmt == "keras" else model, metadata, out)
    return {fmt: out / FILES[fmt] for fmt in FORMATS if fmt in formats}


def with_named_outputs(model):
    """The model with its outputs keyed by head name, so every format names them (`expression`, `va`,
    `polarity`); a single-output classifier would otherwise export an anonymous `output_0`. Same layers."""
    import keras

    from affect_keras.heads import EXPRESSION
    if isinstance(model.output, dict):
        return model
    return keras.Model(model.input, {EXPRESSION: model.output}, name=model.name)


def _saved_model(model, metadata: dict, out: Path) -> None:
    import tensorflow as tf

    from affect_keras.models.loading import METADATA

    path = out / FILES["saved_model"]
    model.export(str(path), format="tf_saved_model", verbose=False,
                 input_signature=[tf.TensorSpec((None, *model.input_shape[1:]), tf.uint8, name="image")])
    (path / "assets").mkdir(exist_ok=True)
    (path / "assets" / METADATA).write_text(json.dumps(metadata, indent=1))


def _keras(model, metadata: dict, out: Path) -> None:
    model.save(out / FILES["keras"])


def _tflite(model, metadata: dict, out: Path) -> None:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(out / FILES["saved_model"]))
    (out / FILES["tflite"]).write_bytes(converter.convert())


def _onnx(model, metadata: dict, out: Path) -> None:
    saved_model, path = out / FILES["saved_model"], out / FILES["onnx"]
    if importlib.util.find_spec("tf2onnx") is None:
        raise RuntimeError("--format onnx needs tf2onnx: pip install -e '.[onnx]'")
    result = subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(saved_model),
                             "--signature_def", "serve", "--output", str(path), "--opset", "17"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"--format onnx: tf2onnx failed: {result.stderr.strip().splitlines()[-1]}")


# the export registry: --format name -> (writer of (model, metadata, folder), converts the SavedModel?)
FORMATS = {"saved_model": (_saved_model, False), "keras": (_keras, False), "tflite": (_tflite, True),
           "onnx": (_onnx, True)}
