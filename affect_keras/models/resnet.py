"""ResNet18 / ResNet34 (He et al. 2016, basic blocks) in keras core layers; keras.applications has none.

The layout and padding are torchvision's and timm's (symmetric zero padding before every strided
convolution and the stem's max-pool), so their ImageNet checkpoints load onto it unchanged
(`affect_keras.models.timm_weights`). Blocks are named `stage{s}_block{b}` so fine-tuning can unfreeze
them by name.

Two stems:

* `imagenet`: 7x7 stride-2 convolution and 3x3 stride-2 max-pool, as pretrained; a 224 px input ends in
  a 7x7 feature map;
* `small`: a 3x3 stride-1 convolution without max-pooling, for faces of 64 pixels or less trained from
  scratch (FER+ is 48x48): at 32 px the last feature map stays 4x4 instead of 1x1.
"""

from __future__ import annotations

import keras

LAYERS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}
WIDTHS = (64, 128, 256, 512)
STEMS = ("imagenet", "small")


def _conv_bn(x, filters, kernel, stride, name, activation=True):
    if stride > 1 and kernel > 1:  # keras "same" would pad only the far side
        x = keras.layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    x = keras.layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        padding=padding,
        use_bias=False,
        kernel_initializer="he_normal",
        name=f"{name}_conv",
    )(x)
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


def ResNet(depth: str = "resnet18", input_shape=(224, 224, 3), stem: str = "imagenet") -> keras.Model:
    """A ResNet without its classifier: image (already preprocessed) -> last feature map.

    Args:
        depth: "resnet18" or "resnet34".
        input_shape: (height, width, channels).
        stem: "imagenet" (7x7/2 + max-pool, needed for pretrained weights) or "small" (3x3/1).

    Examples:
        >>> ResNet("resnet18", (48, 48, 3), stem="small").output.shape  # (None, 6, 6, 512)
    """
    if depth not in LAYERS:
        raise ValueError(f"unknown ResNet depth {depth!r}; choose one of {', '.join(LAYERS)}")
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; choose one of {', '.join(STEMS)}")
    inputs = keras.Input(input_shape)
    if stem == "small":
        x = _conv_bn(inputs, 64, 3, 1, "stem")
    else:
        x = _conv_bn(inputs, 64, 7, 2, "stem")
        # zero padding equals torch's -inf here: the input is post-ReLU
        x = keras.layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
        x = keras.layers.MaxPooling2D(3, strides=2, padding="valid", name="stem_pool")(x)
    for stage, (blocks, width) in enumerate(zip(LAYERS[depth], WIDTHS), start=1):
        for block in range(1, blocks + 1):
            stride = 2 if block == 1 and stage > 1 else 1
            x = _basic_block(x, width, stride, f"stage{stage}_block{block}")
    return keras.Model(inputs, x, name=depth)
