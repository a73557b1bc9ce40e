"""Backbone registry: one entry per backbone (builder, default input size, its own preprocessing).

Adding a backbone is adding one `Backbone` to `BACKBONES`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras

from affect_keras.models.resnet import ResNet


@dataclass(frozen=True)
class Backbone:
    """How to build one backbone.

    Args:
        name: the `--backbone` value.
        build: (input_shape, weights) -> keras.Model without its classifier; weights is "imagenet" or None.
        default_size: input side the backbone was designed for.
        preprocessing: `BackbonePreprocessing` mode: what the 0-255 image must become.
        imagenet_file: the file keras caches ImageNet weights under (None: no ImageNet weights exist).
    """

    name: str
    build: Callable[[tuple, str | None], keras.Model]
    default_size: int
    preprocessing: str
    imagenet_file: str | None


def _application(constructor):
    return lambda shape, weights: constructor(include_top=False, weights=weights, input_shape=shape)


def _resnet(depth):
    def build(shape, weights):
        if weights is not None:
            raise ValueError(f"keras has no ImageNet weights for {depth}; use --weights none or a PATH "
                             f"saved by an earlier run")
        return ResNet(depth, shape, small_input=min(shape[:2]) <= 64)
    return build


BACKBONES = {b.name: b for b in (
    Backbone("vgg16", _application(keras.applications.VGG16), 224, "caffe",
             "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    Backbone("efficientnetb3", _application(keras.applications.EfficientNetB3), 300, "raw",
             "efficientnetb3_notop.h5"),
    Backbone("resnet50", _application(keras.applications.ResNet50), 224, "caffe",
             "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    Backbone("mobilenetv2", _application(keras.applications.MobileNetV2), 224, "tf",
             "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"),
    Backbone("resnet18", _resnet("resnet18"), 224, "torch", None),
    Backbone("resnet34", _resnet("resnet34"), 224, "torch", None),
)}


def get_backbone(name: str) -> Backbone:
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}") from None


def keras_models_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def build_backbone(name: str, input_shape: tuple, weights: str | None) -> keras.Model:
    """The backbone with "imagenet" weights (keras's download and cache) or none.

    Offline, ImageNet weights load from the keras cache; when they are not there the error names the
    file to place and where.
    """
    backbone = get_backbone(name)
    if weights != "imagenet":
        return backbone.build(input_shape, None)
    try:  # a backbone without ImageNet weights raises its own explanation, passed on below
        return backbone.build(input_shape, "imagenet")
    except Exception as error:  # keras raises a bare Exception when the download fails
        if not any(word in str(error) for word in ("URL fetch failure", "urlopen", "HTTP", "resolve")):
            raise
        raise RuntimeError(
            f"ImageNet weights for {name} could not be downloaded and are not cached: place "
            f"{backbone.imagenet_file} in {keras_models_dir()} (or set KERAS_HOME), or use --weights none"
        ) from None
