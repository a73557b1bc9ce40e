"""The classifier head on top of a backbone's feature map."""

from __future__ import annotations

from dataclasses import dataclass


# the pooling registry: --pooling name -> the keras layer that turns the feature map into a vector
POOLINGS = {"avg": "GlobalAveragePooling2D", "max": "GlobalMaxPooling2D", "flatten": "Flatten"}


@dataclass(frozen=True)
class HeadConfig:
    """Args:
        pooling: "avg", "max" or "flatten" over the feature map.
        dense: sizes of the hidden dense layers, in order (empty: straight to the classes).
        dropout: dropout rate before each dense layer.
        batch_norm: batch normalisation after each hidden dense layer.
        l2: L2 penalty on the head's kernels.
    """

    pooling: str = "avg"
    dense: tuple[int, ...] = (256,)
    dropout: float = 0.3
    batch_norm: bool = True
    l2: float = 1e-4


def head(features, num_classes: int, config: HeadConfig):
    """Features -> class probabilities, always float32 (mixed precision computes the rest in half)."""
    import keras

    layers = keras.layers
    x = getattr(layers, POOLINGS[config.pooling])(name="head_pool")(features)
    regularizer = keras.regularizers.L2(config.l2) if config.l2 else None
    for k, units in enumerate(config.dense, start=1):
        if config.dropout:
            x = layers.Dropout(config.dropout, name=f"head_dropout{k}")(x)
        x = layers.Dense(units, use_bias=not config.batch_norm, kernel_regularizer=regularizer,
                         name=f"head_dense{k}")(x)
        if config.batch_norm:
            x = layers.BatchNormalization(name=f"head_bn{k}")(x)
        x = layers.Activation("relu", name=f"head_relu{k}")(x)
    if config.dropout:
        x = layers.Dropout(config.dropout, name="head_dropout_out")(x)
    x = layers.Dense(num_classes, kernel_regularizer=regularizer, name="logits")(x)
    return layers.Activation("softmax", dtype="float32", name="probabilities")(x)
