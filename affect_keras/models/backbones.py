"""Backbone registry: one entry per backbone (builder, default input size, its own preprocessing).

Adding a backbone is adding one `Backbone` to `BACKBONES`. Importing this module imports no keras (so
`train.py --help` lists the backbones without starting TensorFlow); building one does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from affect_keras.models import timm_weights
from affect_keras.options import OptionError

if TYPE_CHECKING:  # annotations only: keras is imported where a backbone is built
    import keras


@dataclass(frozen=True)
class Backbone:
    """How to build one backbone.

    Args:
        name: the `--backbone` value.
        build: (input_shape, weights, stem) -> keras.Model without its classifier; weights is None or an
            ImageNet checkpoint (keras.applications: "imagenet"; ResNet18/34: a timm tag).
        default_size: input side the backbone was designed for.
        preprocessing: `BackbonePreprocessing` mode: what the 0-255 image must become.
        checkpoints: the ImageNet checkpoints `--imagenet-checkpoint` offers, the first the default.
        stems: the stems it can be built with, the first the pretrained one (only ResNet18/34 have two).
    """

    name: str
    build: Callable[[tuple, str | None, str], keras.Model]
    default_size: int
    preprocessing: str
    checkpoints: tuple[str, ...]
    stems: tuple[str, ...] = ("imagenet",)

    def imagenet_file(self, checkpoint: str | None = None) -> str:
        """The file name the checkpoint is cached under in $KERAS_HOME/models."""
        checkpoint = checkpoint or self.checkpoints[0]
        return KERAS_FILES.get(self.name) or timm_weights.checkpoint_file(checkpoint)

    def default_stem(self, weights: str | None, size: int) -> str:
        """ImageNet weights need the ImageNet stem; from scratch, faces of 64 px or less get the small one."""
        return self.stems[-1] if weights is None and size <= 64 else self.stems[0]


def _application(constructor: str):
    def build(shape, weights, stem):
        import keras

        return getattr(keras.applications, constructor)(include_top=False, weights=weights, input_shape=shape)

    return build


def _resnet(depth):
    def build(shape, weights, stem):
        from affect_keras.models.resnet import ResNet

        net = ResNet(depth, shape, stem=stem)
        if weights is not None:
            if stem != "imagenet":
                raise OptionError("stem", f"{stem}: ImageNet weights for {depth} need --stem imagenet")
            timm_weights.load_timm_resnet(net, timm_weights.fetch(weights, keras_models_dir()))
        return net

    return build


# the file names keras.applications caches its ImageNet weights under (it chooses them, not us)
KERAS_FILES = {
    "vgg16": "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "efficientnetb3": "efficientnetb3_notop.h5",
    "resnet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "mobilenetv2": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
}

BACKBONES = {
    b.name: b
    for b in (
        Backbone("vgg16", _application("VGG16"), 224, "caffe", ("imagenet",)),
        Backbone("efficientnetb3", _application("EfficientNetB3"), 300, "raw", ("imagenet",)),
        Backbone("resnet50", _application("ResNet50"), 224, "caffe", ("imagenet",)),
        Backbone("mobilenetv2", _application("MobileNetV2"), 224, "tf", ("imagenet",)),
        Backbone(
            "resnet18",
            _resnet("resnet18"),
            224,
            timm_weights.PREPROCESSING,
            timm_weights.CHECKPOINTS["resnet18"],
            ("imagenet", "small"),
        ),
        Backbone(
            "resnet34",
            _resnet("resnet34"),
            224,
            timm_weights.PREPROCESSING,
            timm_weights.CHECKPOINTS["resnet34"],
            ("imagenet", "small"),
        ),
    )
}


def get_backbone(name: str) -> Backbone:
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}") from None


def keras_models_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def build_backbone(
    name: str, input_shape: tuple, weights: str | None, stem: str | None = None, checkpoint: str | None = None
) -> keras.Model:
    """The backbone with "imagenet" weights (downloaded once into the keras cache) or none.

    Args:
        weights: "imagenet" or None.
        stem: one of the backbone's `stems` (None: `default_stem`).
        checkpoint: one of the backbone's `checkpoints` (None: the default).

    Offline, ImageNet weights load from the keras cache; when they are not there the error names the
    file to place and where.
    """
    backbone = get_backbone(name)
    stem = stem or backbone.default_stem(weights, min(input_shape[:2]))
    if stem not in backbone.stems:
        raise OptionError("stem", f"{stem}: {name} has the stems {', '.join(backbone.stems)}")
    if weights != "imagenet":
        return backbone.build(input_shape, None, stem)
    checkpoint = checkpoint or backbone.checkpoints[0]
    if checkpoint not in backbone.checkpoints:
        raise OptionError("imagenet_checkpoint", f"{checkpoint}: {name} offers {', '.join(backbone.checkpoints)}")
    try:
        return backbone.build(input_shape, checkpoint, stem)
    except RuntimeError:  # ResNet18/34's own explanation, naming their file and its origin
        raise
    except Exception as error:  # keras raises a bare Exception when the download fails
        if not any(word in str(error) for word in ("URL fetch failure", "urlopen", "HTTP", "resolve")):
            raise
        raise RuntimeError(
            f"ImageNet weights for {name} could not be downloaded and are not cached: place "
            f"{backbone.imagenet_file()} in {keras_models_dir()} (or set KERAS_HOME), or use --weights none"
        ) from None
