"""Load any trained or exported model as one thing that maps uint8 face crops to probabilities."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from affect_keras.deploy.inference import CLASS_NAMES, load_run


@dataclass
class Predictor:
    predict: Callable[[np.ndarray], np.ndarray]  # (n, size, size, 3) uint8 -> (n, classes) probabilities
    class_names: list[str]
    size: int


def load_predictor(path: Path) -> Predictor:
    """A run directory, an exported .keras file, or an exported SavedModel directory."""
    path = Path(path)
    if (path / "config.yaml").is_file():
        model, names = load_run(path)
        return Predictor(lambda x: model.predict(x, verbose=0), names, model.input_shape[1])
    if path.suffix == ".keras" and path.is_file():
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
        return Predictor(lambda x: model.predict(x, verbose=0), _sidecar_names(path.parent), model.input_shape[1])
    if (path / "saved_model.pb").is_file():
        import tensorflow as tf
        loaded = tf.saved_model.load(str(path))
        names = (path / "assets" / "class_names.txt").read_text().splitlines()
        size = int(loaded.serve.concrete_functions[0].structured_input_signature[0][0].shape[1])
        return Predictor(lambda x: loaded.serve(tf.constant(x)).numpy(), names, size)
    raise ValueError(f"--model {path}: expected a run directory, an exported .keras file or a SavedModel folder")


def mirror_averaged(predict: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """Test-time augmentation: each face's probabilities averaged with its mirror image's.

    Expressions read the same mirrored (the flip augmentation in training assumes it too), so this
    costs one more forward pass and makes the prediction independent of which way the face was cropped.
    """
    return lambda images: (predict(images) + predict(np.ascontiguousarray(images[:, :, ::-1]))) / 2


def _sidecar_names(folder: Path) -> list[str]:
    if not (folder / CLASS_NAMES).is_file():
        raise ValueError(f"--model: no {CLASS_NAMES} beside the model in {folder} (export.py writes it)")
    return json.loads((folder / CLASS_NAMES).read_text())
