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
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from affect_keras import __version__
from affect_keras.atomic import refuse_foreign_folder, writable_folder
from affect_keras.options import OptionError, check_fields, setting, version_check

MARKER = "export.json"  # what export.py wrote a folder from; a folder without it is not export's to fill
FILES = {"saved_model": "saved_model", "keras": "model.keras", "tflite": "model.tflite", "onnx": "model.onnx"}


def default_out(model: str | Path) -> Path:
    """`<run>/export/` for a run directory, else `export-<name>/` here (a preset's folder may be inside
    the installed package)."""
    from affect_keras.models.loading import KINDS, identify

    kind, place = identify(model) or (None, Path(model))
    if kind is KINDS["run"]:
        return place / "export"
    return Path(f"export-{place.name if kind is KINDS['preset'] else place.stem}")


def export(run: str | Path, formats: list[str], out: Path | None = None) -> dict[str, Path]:
    """Write the chosen formats into a folder with `metadata.json` (class names, image size, framing) and
    `export.json` (these settings).

    Args:
        run: a run directory, a preset (a shipped name or a folder) or a `.keras` file.
        formats: one or more of `FORMATS` (saved_model, keras, tflite, onnx).
        out: the folder (default: `default_out`, `<run>/export/` for a run); a folder of other files is
            refused.

    Returns:
        {format: path of its file or folder}.

    Examples:
        The run `affect_keras.train` wrote, for LiteRT: predict runs it without keras:

        >>> import affect_keras
        >>> affect_keras.export("models/s32", ["tflite"])
        {'tflite': PosixPath('models/s32/export/model.tflite')}
    """
    formats = [formats] if isinstance(formats, str) else list(formats)
    unknown = [str(fmt)[:40] for fmt in formats if fmt not in FORMATS]
    if unknown or not formats:
        raise OptionError("format", f"{', '.join(unknown) or 'none given'}: choose one or more of {', '.join(FORMATS)}")
    from affect_keras.models.loading import METADATA, load_classifier
    from affect_keras.models.presets import describe

    out = Path(out) if out else default_out(run)
    # the default folders too: a user's model.keras there is not export's to replace
    refuse_foreign_folder(out, MARKER, "out", "export.py")
    writable_folder(out, "out")
    classifier = load_classifier(run)  # after the checks: loading is the slow part
    metadata = {**describe(classifier), "exported_from": str(run), "formats": list(formats)}
    # the resolved settings (ExportConfig's), which also mark the folder as export's
    settings = asdict(ExportConfig(run=str(run), format=list(formats), out=str(out)))
    model = with_named_outputs(classifier)
    building = _building(out)
    try:
        for fmt, write in FORMATS.items():
            if fmt in formats:
                write(classifier if fmt == "keras" else model, metadata, building)
        (building / METADATA).write_text(json.dumps(metadata, indent=1))  # the description last
        (building / MARKER).write_text(json.dumps({**settings, "model": str(run), "formats": list(formats)}, indent=1))
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    _swap_in(building, out)
    return {fmt: out / FILES[fmt] for fmt in FORMATS if fmt in formats}


def _building(out: Path) -> Path:
    """An empty folder beside `out` that an export is written into before it replaces `out` whole (one of an
    export killed before, its process gone, is removed first)."""
    from affect_keras.atomic import remove_stale

    for kind in ("partial", "old"):
        remove_stale(out.parent, f".{out.name}.{kind}-")
    building = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir()
    return building


def _swap_in(building: Path, out: Path) -> None:
    """`building` in the place of `out`: the previous export's files all go (a format no longer exported
    with them), a user's other files there move into the new folder. Between the two renames `out` is
    missing for an instant, never a mix of two exports."""
    from affect_keras.atomic import LOCK, OWNER
    from affect_keras.models.loading import METADATA

    previous = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        os.replace(out, previous)
    os.replace(building, out)
    if previous.exists():
        ours = {*FILES.values(), MARKER, METADATA, LOCK, OWNER}
        for entry in previous.iterdir():
            if entry.name not in ours and not (out / entry.name).exists():
                os.replace(entry, out / entry.name)
        shutil.rmtree(previous, ignore_errors=True)


def with_named_outputs(model):
    """The model with its outputs keyed by head name, so every format names them (`expression`, `va`,
    `polarity`); a single-output classifier would otherwise export an anonymous `output_0`. Same layers."""
    import keras

    from affect_keras.tasks import EXPRESSION

    if isinstance(model.output, dict):
        return model
    return keras.Model(model.input, {EXPRESSION: model.output}, name=model.name)


def _saved_model(model, metadata: dict, out: Path) -> None:
    from affect_keras.models.loading import METADATA

    path = out / FILES["saved_model"]
    model.export(str(path), format="tf_saved_model", verbose=False, input_signature=_signature(model))
    (path / "assets").mkdir(exist_ok=True)
    (path / "assets" / METADATA).write_text(json.dumps(metadata, indent=1))


def _keras(model, metadata: dict, out: Path) -> None:
    model.save(out / FILES["keras"])


def _signature(model) -> list:
    """uint8 faces of the trained size, any batch size, named `image`: what every exported format takes."""
    import tensorflow as tf

    return [tf.TensorSpec((None, *model.input_shape[1:]), tf.uint8, name="image")]


def _tflite(model, metadata: dict, out: Path) -> None:
    """keras's LiteRT exporter (float32 weights: the model's outputs within 1e-5)."""
    write_tflite(model, out / FILES["tflite"])


def write_tflite(model, path: Path, weights: str = "float32", representative=None) -> Path:
    """A .tflite of `model` (its outputs keyed by head) by keras's LiteRT exporter. `weights`: "float32"
    (the model's outputs within 1e-5), "float16" (half the size), or "int8" (weights and activations,
    quantised on `representative`, an iterable of uint8 face batches)."""
    import tensorflow as tf

    kwargs = {}
    if weights == "float16":
        kwargs = {"optimizations": [tf.lite.Optimize.DEFAULT], "target_spec": {"supported_types": [tf.float16]}}
    elif weights == "int8":
        batches = list(representative)
        kwargs = {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "representative_dataset": lambda: ([batch] for batch in batches),
        }
    elif weights != "float32":
        raise ValueError(f"weights must be float32, float16 or int8, not {weights!r}")
    model.export(str(path), format="litert", input_signature=_signature(model), verbose=False, **kwargs)
    return path


def write_onnx(model, path: Path) -> Path:
    """An .onnx of `model` by keras's ONNX exporter (through tf2onnx on TensorFlow)."""
    if importlib.util.find_spec("tf2onnx") is None:
        raise RuntimeError("ONNX export needs tf2onnx: pip install 'affect-keras[onnx]'")
    model.export(str(path), format="onnx", input_signature=_signature(model), verbose=False)
    return path


def _onnx(model, metadata: dict, out: Path) -> None:
    write_onnx(model, out / FILES["onnx"])


# the export registry: --format name -> writer of (model, metadata, folder)
FORMATS = {"saved_model": _saved_model, "keras": _keras, "tflite": _tflite, "onnx": _onnx}


GROUPS = {"model": ("model", None), "output": ("output", None)}  # export.py --help's topics


@dataclass(kw_only=True)
class ExportConfig:
    """The settings of export.py (its flags are generated from these fields); `export.json` in the export
    folder records them resolved.

    Examples:
        >>> config = ExportConfig(run="models/r18", format=["keras", "tflite"])
        >>> affect_keras.export(config.run, config.format, config.out or None)
    """

    run: str = setting(
        "",
        group="model",
        positional=True,
        help="run directory written by train.py, a preset (a shipped preset's name or a preset folder), or a "
        ".keras file",
    )
    format: list[str] = setting(
        ["saved_model"],
        group="output",
        choices=FORMATS,
        help="one or more formats: a SavedModel (a program: predict runs it only with --trust-saved-model), "
        "keras (the classifier itself), tflite and onnx (run without keras)",
    )
    out: str = setting("", group="output", help="default: <run>/export/ (a preset or .keras file: export-<name>/)")
    version: str = setting(__version__, group="output", cli=False, check=version_check())

    def __post_init__(self):
        check_fields(self)
