"""Load any trained or exported model as one thing that maps uint8 face crops to its named outputs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from affect_keras.deploy.inference import load_run
from affect_keras.names import CLASS_NAMES
from affect_keras.models.preprocessing import description_of
from affect_keras.models.presets import is_preset, load_metadata
from affect_keras.options import OptionError
from affect_keras.tasks import EXPRESSION

Outputs = dict[str, np.ndarray]


@dataclass
class Predictor:
    outputs: Callable[[np.ndarray], Outputs]  # (n, size, size, 3) uint8 -> {head: (n, ...)}
    class_names: list[str]
    size: int
    framing: dict | None = None  # how the model's training faces were cropped, where it records that

    def predict(self, images: np.ndarray) -> np.ndarray:
        """(n, classes) expression probabilities."""
        outputs = self.outputs(images)
        if EXPRESSION not in outputs:
            raise ValueError(f"the model has no expression output (its outputs: {', '.join(outputs)})")
        return outputs[EXPRESSION]


def named_outputs(result) -> Outputs:
    """A model's result as {head: array}: a single output is the expression classifier's."""
    if isinstance(result, dict):
        return {name: np.asarray(value) for name, value in result.items()}
    return {EXPRESSION: np.asarray(result)}


def load_predictor(path: Path) -> Predictor:
    """A run directory, a preset (a shipped preset's name or a preset directory), an exported .keras file,
    or an exported SavedModel directory."""
    if is_preset(path) or (Path(path) / "config.yaml").is_file():
        model, names = load_run(path)
        framing = (load_metadata(path) if is_preset(path) else description_of(model) or {}).get("framing")
        return Predictor(_forward(model), names, model.input_shape[1], framing)
    path = Path(path)
    if path.suffix == ".keras" and path.is_file():
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
        described = description_of(model)  # an export of a run made before the model described itself:
        names = described["class_names"] if described else _sidecar_names(path.parent)  # class_names.json
        return Predictor(_forward(model), names, model.input_shape[1], (described or {}).get("framing"))
    if (path / "saved_model.pb").is_file():
        import tensorflow as tf
        loaded = tf.saved_model.load(str(path))
        names = (path / "assets" / "class_names.txt").read_text().splitlines()
        size = int(loaded.serve.concrete_functions[0].structured_input_signature[0][0].shape[1])
        return Predictor(lambda x: named_outputs(keras.tree.map_structure(
            lambda t: t.numpy(), loaded.serve(tf.constant(x)))), names, size)
    raise OptionError("model", f"{path}: expected a run directory, a preset, an exported .keras file or a SavedModel "
                               f"folder")


def _forward(model: keras.Model) -> Callable[[np.ndarray], Outputs]:
    """The model's outputs of a batch of faces: the few faces of a photo or a video frame in one compiled
    step (`predict_on_batch`: 11 ms for the shipped ResNet18 on this 2-core CPU, where `predict` sets up a
    loop each call, 45 ms, and an eager call takes 38 ms), more faces in `predict`'s batches."""
    def outputs(images: np.ndarray) -> Outputs:
        return named_outputs(model.predict_on_batch(images) if len(images) <= 32
                             else model.predict(images, verbose=0))
    return outputs


def mirror_averaged(outputs: Callable[[np.ndarray], Outputs]) -> Callable[[np.ndarray], Outputs]:
    """Test-time augmentation: each face's outputs averaged with its mirror image's.

    Expressions (and valence / arousal) read the same mirrored (the flip augmentation in training
    assumes it too), so this costs one more forward pass and makes the prediction independent of which
    way the face was cropped.
    """
    def averaged(images):
        plain, mirrored = outputs(images), outputs(np.ascontiguousarray(images[:, :, ::-1]))
        return {name: (plain[name] + mirrored[name]) / 2 for name in plain}
    return averaged


def _sidecar_names(folder: Path) -> list[str]:
    if not (folder / CLASS_NAMES).is_file():
        raise OptionError("model", f": no {CLASS_NAMES} beside the model in {folder} (export.py writes it)")
    return json.loads((folder / CLASS_NAMES).read_text())
