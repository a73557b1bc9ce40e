"""Presets: a trained model as a directory that describes itself (keras-hub's `from_preset` contract).

A preset directory holds::

    config.json         the `ExpressionClassifier`'s keras config (keras.saving.serialize_keras_object)
    model.weights.h5    its weights (float16 where `metadata.json` says so: half the size)
    metadata.json       what a consumer needs, readable without keras: the format version and the
                        affect-keras version that wrote it, class names and label scheme, input size,
                        preprocessing, backbone and stem, task and heads, the face framing it was trained
                        on; for a preset made from a run, the training data and its terms, the command
                        and commit, measured metrics
    README.md           the model card
    model.tflite        optional, the runtime files: the same model for LiteRT (`model.int8.tflite`: its
    model.onnx          int8 variant) and ONNX Runtime, which predict runs without keras (`RUNTIME_FILES`)
    sha256.json         the sha256 of each file above; a file that differs is refused

Presets that ship with the package live in `affect_keras/presets/<name>/` (package data, so a pip install
has them too); `ExpressionClassifier.from_preset` takes such a name or any preset directory, and
`ExpressionClassifier.save_to_preset` writes one. `save_preset` (in `affect_keras.deploy.presets`) makes
one from a run directory, with its training record and evaluations.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from affect_keras.options import before_first_release

SHIPPED = Path(__file__).resolve().parents[1] / "presets"  # the package data folder
DEFAULT_PRESET = "ferplus_resnet18_48"  # what predict.py uses without --model
CONFIG, WEIGHTS, METADATA, CARD, CHECKSUMS = (
    "config.json",
    "model.weights.h5",
    "metadata.json",
    "README.md",
    "sha256.json",
)
# the files a preset may carry for the runtime without keras: engine (`models.loading.ENGINES`) -> file
RUNTIME_FILES = {"litert": "model.tflite", "litert-int8": "model.int8.tflite", "onnx": "model.onnx"}
# 2: written by affect-keras 0.2.0 on (an ExpressionClassifier); 1: before any release, refused
FORMAT_VERSION = 2
DTYPES = ("float16", "float32")


class PresetError(ValueError):
    """A preset that is missing, damaged or tampered with; the message names the file."""


def shipped_presets() -> dict[str, Path]:
    """The presets inside the package: name -> directory."""
    if not SHIPPED.is_dir():
        return {}
    return {path.name: path for path in sorted(SHIPPED.iterdir()) if (path / METADATA).is_file()}


def preset_path(name_or_dir: str | Path) -> Path | None:
    """The directory of a shipped preset's name or of a preset directory; None when it is neither. A bare
    name (a string without a folder in it) of a shipped preset means the shipped preset, also where a
    folder of that name lies in the current directory: that one is `./name`."""
    shipped = shipped_presets()
    if (
        isinstance(name_or_dir, str)
        and name_or_dir in shipped
        and not any(separator in name_or_dir for separator in {"/", os.sep})
    ):
        return shipped[name_or_dir]
    path = Path(name_or_dir)
    if (path / METADATA).is_file() and (path / CHECKSUMS).is_file():
        return path
    return shipped.get(str(name_or_dir))


def is_preset(name_or_dir: str | Path) -> bool:
    return preset_path(name_or_dir) is not None


def resolve(name_or_dir: str | Path) -> Path:
    path = preset_path(name_or_dir)
    if path is None:
        names = ", ".join(shipped_presets()) or "none"
        raise PresetError(
            f"preset {name_or_dir}: not a preset directory (no {METADATA} and {CHECKSUMS}) nor "
            f"a shipped preset (shipped: {names})"
        )
    return path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: Path, error=None) -> dict:
    """A JSON object file; `error` (default PresetError) naming the file when it is not one."""
    error = error or PresetError
    try:
        value = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise error(f"{path} is not valid JSON (damaged, or not written by affect-keras)") from None
    except OSError as failure:
        raise error(f"{path} cannot be read ({failure.strerror or failure})") from None
    if not isinstance(value, dict):
        raise error(f"{path} does not hold a JSON object")
    return value


def verify(path: Path, files: tuple[str, ...] = (CONFIG, WEIGHTS, METADATA, CARD), sums: dict | None = None) -> dict:
    """Check `files` (default: the keras model's) against sha256.json (`sums`: its contents, already read);
    returns the metadata. Raises PresetError naming the file."""
    sums = read_json(path / CHECKSUMS) if sums is None else sums
    for name in dict.fromkeys((METADATA, *files)):
        if (path / name).is_symlink() and not (path / name).resolve().is_relative_to(Path(path).resolve()):
            raise PresetError(f"preset {path}: {name} is a link out of the preset's folder; refusing to load it")
        if name not in sums:
            raise PresetError(f"preset {path}: {CHECKSUMS} has no entry for {name}")
        if not (path / name).is_file():
            raise PresetError(f"preset {path}: {name} is missing")
        if not isinstance(sums[name], str) or sha256(path / name) != sums[name]:
            raise PresetError(
                f"preset {path}: {path / name} does not match its sha256 in {CHECKSUMS} "
                f"(damaged or changed); refusing to load it"
            )
    metadata = read_json(path / METADATA)
    version = metadata.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise PresetError(
            f"preset {path}: {METADATA} has format_version {str(version)[:40]!r}, not a whole "
            f"number; the file is damaged or was not written by affect-keras"
        )
    if version > FORMAT_VERSION:
        raise PresetError(
            f"preset {path}: format version {version} is newer than this affect-keras reads "
            f"({FORMAT_VERSION}); upgrade affect-keras"
        )
    if version < FORMAT_VERSION:
        raise PresetError(
            before_first_release(
                f"preset {path} was written",
                "re-create it with this version: save_preset(RUN, OUT) from a run trained again with train.py",
                f" (format {version})",
            )
        )
    return metadata


def runtime_files(name_or_dir: str | Path) -> dict[str, str]:
    """{engine: file name} of the runtime files the preset lists in sha256.json (checked when loaded)."""
    sums = read_json(resolve(name_or_dir) / CHECKSUMS)
    return {engine: name for engine, name in RUNTIME_FILES.items() if name in sums}


def load_metadata(name_or_dir: str | Path) -> dict:
    """A preset's verified metadata.json (no keras)."""
    return verify(resolve(name_or_dir))


def describe(model) -> dict:
    """What a consumer of the classifier needs, as JSON (a preset's and an export's metadata.json)."""
    return {
        "version": model.version,
        "task": model.task,
        "heads": list(model.heads),
        "class_names": list(model.class_names),
        "label_scheme": model.label_scheme,
        "image_size": model.image_size,
        "input": "uint8 RGB faces, (n, size, size, 3); preprocessing is inside the model",
        "backbone": model.backbone_name,
        "preprocessing": model.preprocessing,
        "stem": model.stem,
        "framing": model.framing,
        "temperature": model.temperature,
    }


def write_preset(model, out: str | Path, dtype: str = "float16", metadata: dict | None = None, card: str = "") -> Path:
    """`ExpressionClassifier.save_to_preset`: the preset files in `out`, which must be new or empty."""
    import keras

    if dtype not in DTYPES:
        raise PresetError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PresetError(f"preset {out}: the folder is not empty (or is a file); choose a new one")
    out.mkdir(parents=True, exist_ok=True)
    full = {
        "format_version": FORMAT_VERSION,
        "name": out.name,
        **describe(model),
        "weights_dtype": dtype,
        **(metadata or {}),
    }
    (out / CONFIG).write_text(json.dumps(keras.saving.serialize_keras_object(model), indent=1))
    _write_weights(model, out / WEIGHTS, dtype)
    (out / METADATA).write_text(json.dumps(full, indent=1))
    (out / CARD).write_text(
        card
        or f"# Preset {out.name}\n\n{model.backbone_name}, classes "
        f"{', '.join(model.class_names)}, {model.image_size} px.\n"
    )
    (out / CHECKSUMS).write_text(
        json.dumps({name: sha256(out / name) for name in (CONFIG, WEIGHTS, METADATA, CARD)}, indent=1)
    )
    return out


def _write_weights(model, path: Path, dtype: str) -> None:
    """keras's weights file, with every float32 array stored as `dtype` (keras casts back on loading)."""
    import tempfile

    import h5py
    import numpy as np

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
