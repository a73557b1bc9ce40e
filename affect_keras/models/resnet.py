"""ResNet18 / ResNet34 (He et al. 2016, basic blocks) in keras core layers; keras.applications has none.

Blocks are named `stage{s}_block{b}` so fine-tuning can unfreeze them by name. For small faces
(FER+ is 48x48) `small_input=True` replaces the 7x7/2 stem and max-pool by a 3x3/1 convolution, keeping
the last feature map at 6x6 rather than 2x2.
"""

from __future__ import annotations

import keras

LAYERS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}
WIDTHS = (64, 128, 256, 512)


def _conv_bn(x, filters, kernel, stride, name, activation=True):
    x = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                            kernel_initializer="he_normal", name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x) if activation else x


def _basic_block(x, filters, stride, name):
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, stride, f"{name}_shortcut", activation=False)
    y = _conv_bn(x, filters, 3, stride, f"{name}_1")
    y = _conv_bn(y, filters, 3, 1, f"{name}_2", activation=False)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.Activation("relu", name=f"{name}_out")(y)


def ResNet(depth: str = "resnet18", input_shape=(224, 224, 3), small_input: bool = False) -> keras.Model:
    """A ResNet without its classifier: image (already preprocessed) -> last feature map.

    Args:
        depth: "resnet18" or "resnet34".
        input_shape: (height, width, channels).
        small_input: 3x3 stride-1 stem without max-pooling, for inputs of 64 pixels or less.

    Example:
        >>> ResNet("resnet18", (48, 48, 3), small_input=True).output.shape  # (None, 6, 6, 512)
    """
    inputs = keras.Input(input_shape)
    if small_input:
        x = _conv_bn(inputs, 64, 3, 1, "stem")
    else:
        x = _conv_bn(inputs, 64, 7, 2, "stem")
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for stage, (blocks, width) in enumerate(zip(LAYERS[depth], WIDTHS), start=1):
        for block in range(1, blocks + 1):
            stride = 2 if block == 1 and stage > 1 else 1
            x = _basic_block(x, width, stride, f"stage{stage}_block{block}")
    return keras.Model(inputs, x, name=depth)
