"""Assemble the model as two nested keras models, as keras-hub separates Backbone and Task:

- the *core* (named "core"), the inference model: raw uint8 image -> backbone preprocessing -> backbone ->
  head. Export, evaluation and predict take it as it is.
- the *training model*, which wraps the core: uint8 image -> augmentation (training only) -> the core. It
  is what fit trains and the checkpoints hold; the core's layers and weights are shared, not copied.

Because preprocessing lives inside the core, a saved or exported model takes raw images.

Runs made before this split (their config.yaml has no `layout`) hold one chain with the augmentation
block inside: `layout="chain"` builds that, so they continue with the same command, and `core_of` finds
the inference layers in either.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras

from affect_keras.models import LAYOUTS
from affect_keras.models.augment import augmentation
from affect_keras.models.backbones import build_backbone, get_backbone
import affect_keras.models.hierarchical  # noqa: F401  registers the layer hierarchical models are saved with
from affect_keras.models.heads import HeadConfig, task_heads
from affect_keras.models.migrate import BACKBONE_INFO, run_info
from affect_keras.models.preprocessing import DESCRIPTION, BackbonePreprocessing, Description, ToImage
from affect_keras.options import OptionError
from affect_keras.tasks import get_task

BACKBONE_LAYER = "backbone"
CORE = "core"


def build_model(backbone: str, num_classes: int, image_size: int, weights: str | None = "imagenet",
                augment: str = "light", head_config: HeadConfig = HeadConfig(), seed: int | None = None,
                stem: str | None = None, checkpoint: str | None = None, layout: str = "core",
                task: str = "expression", class_names=None, description: dict | None = None) -> keras.Model:
    """The training model of a task over `num_classes` expressions (its inference model: `core_of`).

    Args:
        backbone: a name from `affect_keras.models.backbones.BACKBONES`.
        image_size: side of the square uint8 input.
        weights: "imagenet", None (train from scratch), or the path of backbone weights saved by an
            earlier run (`backbone.weights.h5`). With pretrained weights the backbone is frozen:
            `trainable=False` and called with `training=False`, so BatchNorm statistics never move.
        augment: preset of `affect_keras.models.augment`.
        stem: the backbone's stem (ResNet18/34: "imagenet" or "small"); None: the backbone's default, or
            for saved backbone weights the stem they were trained with (`saved_backbone`).
        checkpoint: which ImageNet checkpoint (ResNet18/34: a timm tag); None: the default.
        layout: "core" (a core model wrapped by the training model) or "chain" (one model, as runs made
            before the split were built).
        task: a name from `affect_keras.tasks.TASKS`: which named heads the model has.
        class_names: the classes in output order; heads that group them need them (the hierarchical
            task's polarity head).
        description: what the model is, for its consumers (`preprocessing.Description`): carried in its
            config by an identity layer on its first output.
    """
    spec = get_backbone(backbone)
    shape = (image_size, image_size, 3)
    pretrained = weights is not None
    if pretrained and weights != "imagenet":
        saved = saved_backbone(Path(weights))
        if saved.get("backbone", spec.name) != spec.name:
            raise OptionError("weights", f"{weights} holds a {saved['backbone']} backbone, not {spec.name}")
        if stem and saved.get("stem") and stem != saved["stem"]:
            raise OptionError("stem", f"{stem}: the backbone in --weights {weights} has the {saved['stem']} stem")
        # files without a recorded stem come from runs that chose it by size
        stem = stem or saved.get("stem") or spec.default_stem(None, image_size)
    net = build_backbone(spec.name, shape, "imagenet" if weights == "imagenet" else None, stem, checkpoint,
                         backbone_padding(weights))
    if pretrained and weights != "imagenet":
        load_backbone_weights(net, Path(weights))
    net.name = BACKBONE_LAYER
    net.trainable = not pretrained

    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    block = augmentation(augment, seed)

    def inference(x):  # float 0-255 images -> probabilities
        x = BackbonePreprocessing(spec.preprocessing, name="preprocessing")(x)
        x = net(x, training=False) if pretrained else net(x)
        outputs = task_heads(x, num_classes, head_config, get_task(task).heads, class_names)
        if description is None:
            return outputs
        if isinstance(outputs, dict):
            first = next(iter(outputs))
            return {**outputs, first: Description(description, name=DESCRIPTION)(outputs[first])}
        return Description(description, name=DESCRIPTION)(outputs)

    inputs = keras.Input(shape, dtype="uint8", name="image")
    if layout == "chain":
        x = keras.layers.Rescaling(1.0, name="to_float")(inputs)
        return keras.Model(inputs, inference(block(x) if block is not None else x), name=f"affect_{spec.name}")
    core_input = keras.Input(shape, dtype="uint8", name="image")
    core = keras.Model(core_input, inference(keras.layers.Rescaling(1.0, name="to_float")(core_input)), name=CORE)
    x = inputs
    if block is not None:
        x = ToImage(name="to_image")(block(keras.layers.Rescaling(1.0, name="to_float")(x)))
    return keras.Model(inputs, core(x), name=f"affect_{spec.name}")


def core_of(model: keras.Model) -> keras.Model:
    """The inference model inside a training model; a chain-layout model (or a core) is returned as it is."""
    return model.get_layer(CORE) if any(layer.name == CORE for layer in model.layers) else model


def load_backbone_weights(net: keras.Model, path: Path) -> None:
    if not path.is_file():
        raise OptionError("weights", f"{path}: no such file (expected backbone.weights.h5 from a run directory)")
    try:
        net.load_weights(path)
    except OSError:  # h5py: "file signature not found"
        raise OptionError("weights", f"{path} is not a keras weights file (HDF5); expected the "
                                     f"backbone.weights.h5 of a run directory") from None
    except (ValueError, KeyError) as error:
        # keras's message lists every layer and weight array (30 KB for a ResNet): its first line says it
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise OptionError("weights", f"{path} does not fit backbone {net.name} (another backbone or stem?): "
                                     f"{first}") from None


def saved_backbone(path: Path) -> dict:
    """What is known of the backbone saved at `path` (backbone, stem, padding, image size, the weights it
    started from), as `migrate.run_info` reads its run directory (older runs included)."""
    info = run_info(Path(path).parent, class_names=False)
    return {key: info[key] for key in ("backbone", "stem", "padding", "image_size", "weights") if key in info}


def backbone_padding(weights: str | None) -> str:
    """ResNet18/34's padding for `weights`: a saved backbone's own (`migrate.run_info`), else torch's."""
    if weights in (None, "none", "imagenet"):
        return "torch"
    return run_info(Path(weights).parent, class_names=False)["padding"]


def save_backbone(model: keras.Model, run: Path, info: dict, padding: str = "torch") -> Path:
    """Write the backbone's weights and `backbone.json` (`info` plus its padding) into the run directory."""
    path = Path(run) / "backbone.weights.h5"
    backbone_of(model).save_weights(path)
    (Path(run) / BACKBONE_INFO).write_text(json.dumps({**info, "padding": padding}, indent=1))
    return path


def backbone_of(model: keras.Model) -> keras.Model:
    return core_of(model).get_layer(BACKBONE_LAYER)


def unfreeze(model: keras.Model, top: int | list[str]) -> list[str]:
    """Make the top of the backbone trainable for fine-tuning; every BatchNormalization stays frozen.

    Args:
        top: the number of top layers that hold weights, or names (prefixes) of blocks such as
            "block5" (VGG16) or "stage4" (ResNet18).

    Returns the names of the layers made trainable. The model must be compiled again afterwards.
    """
    net = backbone_of(model)
    net.trainable = True
    weighted = [layer for layer in net.layers if layer.weights]
    if isinstance(top, int):
        chosen = {layer.name for layer in weighted[max(0, len(weighted) - top):]} if top > 0 else set()
    else:
        chosen = {layer.name for layer in weighted if any(layer.name.startswith(p) for p in top)}
        if not chosen:
            raise OptionError("unfreeze", f"{','.join(top)} names no layer of {net.name}")
    for layer in net.layers:
        layer.trainable = layer.name in chosen and not isinstance(layer, keras.layers.BatchNormalization)
    return [layer.name for layer in net.layers if layer.trainable and layer.weights]
