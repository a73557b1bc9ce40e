"""A run's model for inference: the core of its training model (the layers without augmentation), and its
class names."""

from __future__ import annotations

from pathlib import Path

import keras

from affect_keras.models.build import core_of
from affect_keras.models.migrate import run_info
from affect_keras.names import CLASS_NAMES
from affect_keras.models.preprocessing import description_of
from affect_keras.models.presets import from_preset, is_preset
from affect_keras.tasks import EXPRESSION


def run_checkpoint(run: Path) -> Path:
    for name in ("best.keras", "last.keras"):
        if (run / name).is_file():
            return run / name
    raise ValueError(f"model {run}: no best.keras or last.keras (not a finished run directory)")


def class_names_of(run: Path) -> list[str]:
    """The run's class order: class_names.json, written by train.py (older runs: `migrate.run_info`)."""
    names = run_info(Path(run)).get("class_names")
    if names is None:
        raise ValueError(f"model {run}: no {CLASS_NAMES} and no config.yaml (not a run directory)")
    return names


def inference_model(model: keras.Model) -> keras.Model:
    """The core of a training model, as it is. A chain-layout model (runs made before the core / training
    split) is re-wired with the same layers (shared weights) without its augmentation block: it is a
    chain at its top level, so every layer but "augmentation" is applied in order to a fresh uint8 input."""
    core = core_of(model)
    if core is not model:
        return core
    inputs = keras.Input(model.input_shape[1:], dtype="uint8", name="image")
    x = inputs
    for layer in model.layers[1:]:
        if layer.name != "augmentation":
            x = layer(x)
    return keras.Model(inputs, x, name=model.name)


def load_run(run: Path | str) -> tuple[keras.Model, list[str]]:
    """(inference model, class names) of a run directory, or of a preset (a shipped preset's name or a
    preset directory: `affect_keras.models.presets`)."""
    if is_preset(run):
        model, metadata = from_preset(run)
        return model, metadata["class_names"]
    run = Path(run)
    # compile=False: inference needs neither the loss nor the optimiser (a cached run's checkpoint holds
    # the full model's unused one, which keras would warn about)
    model = inference_model(keras.saving.load_model(run_checkpoint(run), compile=False))
    described = description_of(model)  # the model's own description; runs before it: their files
    names = described["class_names"] if described else class_names_of(run)
    output = model.output.get(EXPRESSION) if isinstance(model.output, dict) else model.output
    shape = None if output is None else output.shape
    if shape is not None and shape[-1] != len(names):
        raise ValueError(f"model {run}: {shape[-1]} expression outputs but {len(names)} class names")
    return model, names
