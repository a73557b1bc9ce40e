"""The layers between raw images and the backbone, inside the model (so saved models take raw images): the
backbone's own preprocessing, and augmented images back to uint8."""

from __future__ import annotations

import keras
from keras import ops

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)


def _caffe(x):
    """RGB -> BGR, ImageNet mean subtracted (VGG16, ResNet50)."""
    return ops.flip(x, axis=-1) - ops.convert_to_tensor(CAFFE_MEAN_BGR, x.dtype)


def _tf(x):
    """Scaled to [-1, 1] (MobileNetV2)."""
    return x / 127.5 - 1.0


def _torch(x):
    """Scaled to [0, 1], then ImageNet mean/std (timm's ResNets)."""
    mean = ops.convert_to_tensor(TORCH_MEAN, x.dtype)
    std = ops.convert_to_tensor(TORCH_STD, x.dtype)
    return (x / 255.0 - mean) / std


def _raw(x):
    """0-255 unchanged: EfficientNet rescales inside itself, and dividing by 255 first ruins it."""
    return x


# the preprocessing registry: a backbone's `preprocessing` name -> function of float 0-255 RGB images
MODES = {"caffe": _caffe, "tf": _tf, "torch": _torch, "raw": _raw}


@keras.saving.register_keras_serializable(package="affect_keras")
class BackbonePreprocessing(keras.layers.Layer):
    """Maps 0-255 RGB images to what a backbone was trained on.

    Args:
        mode: "caffe" (RGB->BGR, ImageNet mean subtracted: VGG16, ResNet50), "tf" (scaled to [-1, 1]:
            MobileNetV2), "torch" (scaled to [0, 1], ImageNet mean/std), or "raw" (0-255 unchanged:
            EfficientNet rescales inside itself, and dividing by 255 first ruins it).

    Examples:
        >>> BackbonePreprocessing("tf")(keras.ops.full((1, 2, 2, 3), 255.0))[0, 0, 0]  # [1., 1., 1.]
    """

    def __init__(self, mode: str, **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode

    def call(self, images):
        return MODES[self.mode](ops.cast(images, self.compute_dtype))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="affect_keras")
class ToImage(keras.layers.Layer):
    """Augmented float images back to what the core takes, uint8: rounded and clipped to 0-255, as any
    real image is (augmentation's interpolation and brightness leave fractions and overshoot)."""

    def call(self, images):
        return ops.cast(ops.clip(ops.round(images), 0, 255), "uint8")

    def compute_output_spec(self, images):
        return keras.KerasTensor(images.shape, dtype="uint8")
