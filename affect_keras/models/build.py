"""Assemble the model: raw uint8 image -> augmentation -> backbone preprocessing -> backbone -> head.

Because preprocessing lives inside the model, a saved or exported model takes raw images.
"""

from __future__ import annotations

from pathlib import Path

import keras

from affect_keras.models.augment import augmentation
from affect_keras.models.backbones import build_backbone, get_backbone
from affect_keras.models.heads import HeadConfig, head
from affect_keras.models.preprocessing import BackbonePreprocessing

BACKBONE_LAYER = "backbone"


def build_model(backbone: str, num_classes: int, image_size: int, weights: str | None = "imagenet",
                augment: str = "light", head_config: HeadConfig = HeadConfig(), seed: int | None = None
                ) -> keras.Model:
    """The classifier for `num_classes` expressions.

    Args:
        backbone: a name from `affect_keras.models.backbones.BACKBONES`.
        image_size: side of the square uint8 input.
        weights: "imagenet", None (train from scratch), or the path of backbone weights saved by an
            earlier run (`backbone.weights.h5`). With pretrained weights the backbone is frozen:
            `trainable=False` and called with `training=False`, so BatchNorm statistics never move.
        augment: preset of `affect_keras.models.augment`.
    """
    spec = get_backbone(backbone)
    shape = (image_size, image_size, 3)
    pretrained = weights is not None
    net = build_backbone(spec.name, shape, "imagenet" if weights == "imagenet" else None)
    if pretrained and weights != "imagenet":
        load_backbone_weights(net, Path(weights))
    net.name = BACKBONE_LAYER
    net.trainable = not pretrained

    inputs = keras.Input(shape, dtype="uint8", name="image")
    x = keras.layers.Rescaling(1.0, name="to_float")(inputs)
    block = augmentation(augment, seed)
    if block is not None:
        x = block(x)
    x = BackbonePreprocessing(spec.preprocessing, name="preprocessing")(x)
    x = net(x, training=False) if pretrained else net(x)
    return keras.Model(inputs, head(x, num_classes, head_config), name=f"affect_{spec.name}")


def load_backbone_weights(net: keras.Model, path: Path) -> None:
    if not path.is_file():
        raise ValueError(f"--weights {path}: no such file (expected backbone.weights.h5 from a run directory)")
    try:
        net.load_weights(path)
    except (ValueError, KeyError) as error:
        raise ValueError(f"--weights {path} does not fit backbone {net.name}: {error}") from None


def backbone_of(model: keras.Model) -> keras.Model:
    return model.get_layer(BACKBONE_LAYER)


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
            raise ValueError(f"--unfreeze {','.join(top)} names no layer of {net.name}")
    for layer in net.layers:
        layer.trainable = layer.name in chosen and not isinstance(layer, keras.layers.BatchNormalization)
    return [layer.name for layer in net.layers if layer.trainable and layer.weights]
