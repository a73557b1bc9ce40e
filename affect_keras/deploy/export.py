"""Export a run: SavedModel, .keras, TFLite, ONNX. Every format takes uint8 images (any batch size, the
trained resolution) and returns the model's outputs keyed by head name (`expression`: class probabilities;
`va`, `polarity` where the model has them); class names travel as class_names.json beside the
files and, in the SavedModel, as assets/class_names.txt. keras and TensorFlow are imported when an export
runs, not with the module (the CLI lists FORMATS without them)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from affect_keras.options import OptionError

MARKER = "export.json"  # what export.py wrote a folder from; a folder without it is not export's to fill
FILES = {"saved_model": "saved_model", "keras": "model.keras", "tflite": "model.tflite", "onnx": "model.onnx"}


def export(run: Path, formats: list[str], out: Path | None = None) -> dict[str, Path]:
    """Write the chosen formats into `out` (default `<run>/export/`, for a preset `export-<preset>/` here);
    returns format -> path. `run`: a run directory or a preset (`affect_keras.models.presets`)."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise OptionError("format", f"{','.join(unknown)}: choose from {', '.join(FORMATS)}")
    from affect_keras.deploy.inference import load_run
    from affect_keras.names import CLASS_NAMES

    from affect_keras.models.presets import is_preset, preset_path

    own = Path(f"export-{preset_path(run).name}") if is_preset(run) else Path(run) / "export"
    out = Path(out) if out else own
    if out.resolve() != own.resolve() and out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise OptionError("out", f"{out} holds files export.py did not write; choose an empty or new folder")
    model, names = load_run(run)  # after the checks: loading is the slow part
    model = with_named_outputs(model)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(json.dumps({"model": str(run), "formats": list(formats)}))
    (out / CLASS_NAMES).write_text(json.dumps(names))
    wanted = set(formats)
    if wanted & {fmt for fmt, (_, needs) in FORMATS.items() if needs}:
        wanted.add("saved_model")  # TFLite and ONNX are converted from the SavedModel
    for fmt, (write, _) in FORMATS.items():  # registry order: the SavedModel before its conversions
        if fmt in wanted:
            write(model, names, out)
    return {fmt: out / FILES[fmt] for fmt in FORMATS if fmt in formats}


def with_named_outputs(model):
    """The model with its outputs keyed by head name, so every format names them (`expression`, `va`,
    `polarity`); a single-output classifier would otherwise export an anonymous `output_0`. Same layers."""
    import keras

    from affect_keras.tasks import EXPRESSION
    if isinstance(model.output, dict):
        return model
    return keras.Model(model.input, {EXPRESSION: model.output}, name=model.name)


def _saved_model(model, names: list[str], out: Path) -> None:
    import tensorflow as tf

    path = out / FILES["saved_model"]
    model.export(str(path), format="tf_saved_model", verbose=False,
                 input_signature=[tf.TensorSpec((None, *model.input_shape[1:]), tf.uint8, name="image")])
    (path / "assets").mkdir(exist_ok=True)
    (path / "assets" / "class_names.txt").write_text("\n".join(names) + "\n")


def _keras(model, names: list[str], out: Path) -> None:
    model.save(out / FILES["keras"])


def _tflite(model, names: list[str], out: Path) -> None:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(out / FILES["saved_model"]))
    (out / FILES["tflite"]).write_bytes(converter.convert())


def _onnx(model, names: list[str], out: Path) -> None:
    saved_model, path = out / FILES["saved_model"], out / FILES["onnx"]
    if importlib.util.find_spec("tf2onnx") is None:
        raise RuntimeError("--format onnx needs tf2onnx: pip install -e '.[onnx]'")
    result = subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(saved_model),
                             "--signature_def", "serve", "--output", str(path), "--opset", "17"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"--format onnx: tf2onnx failed: {result.stderr.strip().splitlines()[-1]}")


# the export registry: --format name -> (writer of (model, class names, folder), converts the SavedModel?)
FORMATS = {"saved_model": (_saved_model, False), "keras": (_keras, False), "tflite": (_tflite, True),
           "onnx": (_onnx, True)}
