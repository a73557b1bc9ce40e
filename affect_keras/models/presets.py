"""Presets: a trained model as a directory that describes itself (keras-hub's `from_preset` contract).

A preset directory holds::

    config.json         the inference model's keras config (keras.saving.serialize_keras_object)
    model.weights.h5    its weights (float16 where `metadata.json` says so: half the size)
    metadata.json       what a consumer needs: class names and label scheme, input size, preprocessing,
                        backbone, stem and padding, task and heads, the face framing it was trained on,
                        the training data and its terms, the command and commit, measured metrics
    README.md           the model card
    sha256.json         the sha256 of each file above; a file that differs is refused

Presets that ship with the package live in `affect_keras/presets/<name>/` (package data, so a pip install
has them too); `from_preset` takes such a name or any preset directory. `save_preset` (in
`affect_keras.deploy.presets`) makes one from a run directory.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

SHIPPED = Path(__file__).resolve().parents[1] / "presets"  # the package data folder
DEFAULT_PRESET = "ferplus_resnet18_48"  # what predict.py uses without --model
CONFIG, WEIGHTS, METADATA, CARD, CHECKSUMS = "config.json", "model.weights.h5", "metadata.json", "README.md", \
    "sha256.json"
FORMAT_VERSION = 1


def cache_root() -> Path:
    """Where derived files go (a preset's backbone for --weights): $AFFECT_KERAS_HOME, else
    ~/.cache/affect_keras."""
    return Path(os.environ.get("AFFECT_KERAS_HOME") or Path.home() / ".cache" / "affect_keras")


class PresetError(ValueError):
    """A preset that is missing, damaged or tampered with; the message names the file."""


def shipped_presets() -> dict[str, Path]:
    """The presets inside the package: name -> directory."""
    if not SHIPPED.is_dir():
        return {}
    return {path.name: path for path in sorted(SHIPPED.iterdir()) if (path / METADATA).is_file()}


def preset_path(name_or_dir: str | Path) -> Path | None:
    """The directory of a shipped preset's name or of a preset directory; None when it is neither."""
    path = Path(name_or_dir)
    if (path / METADATA).is_file() and (path / CHECKSUMS).is_file():
        return path
    return shipped_presets().get(str(name_or_dir))


def is_preset(name_or_dir: str | Path) -> bool:
    return preset_path(name_or_dir) is not None


def _resolve(name_or_dir: str | Path) -> Path:
    path = preset_path(name_or_dir)
    if path is None:
        names = ", ".join(shipped_presets()) or "none"
        raise PresetError(f"preset {name_or_dir}: not a preset directory (no {METADATA} and {CHECKSUMS}) nor "
                          f"a shipped preset (shipped: {names})")
    return path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path) -> dict:
    """Check every file against sha256.json; returns the metadata. Raises PresetError naming the file."""
    sums = json.loads((path / CHECKSUMS).read_text())
    for name in (CONFIG, WEIGHTS, METADATA, CARD):
        if name not in sums:
            raise PresetError(f"preset {path}: {CHECKSUMS} has no entry for {name}")
        if not (path / name).is_file():
            raise PresetError(f"preset {path}: {name} is missing")
        if sha256(path / name) != sums[name]:
            raise PresetError(f"preset {path}: {path / name} does not match its sha256 in {CHECKSUMS} "
                              f"(damaged or changed); refusing to load it")
    metadata = json.loads((path / METADATA).read_text())
    if metadata.get("format_version", 0) > FORMAT_VERSION:
        raise PresetError(f"preset {path}: format version {metadata['format_version']} is newer than this "
                          f"affect-keras reads ({FORMAT_VERSION}); upgrade affect-keras")
    return metadata


def load_metadata(name_or_dir: str | Path) -> dict:
    """A preset's verified metadata.json."""
    return verify(_resolve(name_or_dir))


def from_preset(name_or_dir: str | Path):
    """(inference model, metadata) of a preset: a shipped preset's name or a preset directory.

    The model takes (n, size, size, 3) uint8 faces and returns the task's outputs (expression
    probabilities over `metadata["class_names"]`). Every file is checked against its sha256 first.

    Examples:
        >>> model, meta = from_preset("ferplus_resnet18_48")
        >>> meta["class_names"][model.predict(faces).argmax(-1)[0]]
    """
    path = _resolve(name_or_dir)
    metadata = verify(path)
    return _build(path), metadata


def _build(path: Path):
    """The model of a verified preset directory."""
    import keras

    from affect_keras import _registration

    _registration.register_custom_objects()
    config = json.loads((path / CONFIG).read_text())
    model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    model.load_weights(path / WEIGHTS)  # float16 values are cast to the variables' float32
    return model


def backbone_weights(name_or_dir: str | Path, folder: Path) -> Path:
    """A preset's backbone as `backbone.weights.h5` + `backbone.json` in `folder` (what `--weights PATH`
    takes): its own stem, padding and preprocessing travel in backbone.json. Written once per preset
    version (the folder is named after the weights' sha256)."""
    from affect_keras.models.build import backbone_of
    from affect_keras.models.migrate import BACKBONE_INFO

    path = _resolve(name_or_dir)
    metadata = verify(path)
    digest = json.loads((path / CHECKSUMS).read_text())[WEIGHTS][:16]
    target = Path(folder) / f"{path.name}-{digest}"
    weights = target / "backbone.weights.h5"
    if not weights.is_file():
        model = _build(path)  # verified above
        target.mkdir(parents=True, exist_ok=True)
        backbone_of(model).save_weights(weights)
        info = {key: metadata[key] for key in ("backbone", "stem", "image_size", "padding")}
        (target / BACKBONE_INFO).write_text(json.dumps({**info, "weights": f"preset:{path.name}"}, indent=1))
    return weights
