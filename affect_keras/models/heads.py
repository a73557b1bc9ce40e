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
    from affect_keras.models.tasks import EXPRESSION
    return task_heads(features, num_classes, config, (EXPRESSION,))


def task_heads(features, num_classes: int, config: HeadConfig, heads: tuple[str, ...], polarity_of=()):
    """The outputs of a task's heads (`affect_keras.models.tasks`) on the backbone's feature map: the class
    probabilities alone for the expression classifier, else {head name: tensor}. The pooling and hidden
    layers are shared by every head; every output is float32. `polarity_of`: each class's polarity index
    (hierarchical)."""
    import keras

    from affect_keras.models.tasks import EXPRESSION, POLARITY, VA

    layers = keras.layers
    x = _hidden(features, config)
    regularizer = keras.regularizers.L2(config.l2) if config.l2 else None
    outputs = {}
    if VA in heads:
        # zeros: tanh starts in its linear range (from-scratch features are large, and a random kernel
        # would start it saturated, where it passes no gradient)
        outputs[VA] = layers.Dense(2, activation="tanh", kernel_initializer="zeros", kernel_regularizer=regularizer,
                                   dtype="float32", name="va")(x)
    if EXPRESSION in heads:
        logits = layers.Dense(num_classes, kernel_regularizer=regularizer, name="logits")(x)
        if POLARITY in heads:
            from affect_keras.models.hierarchical import HierarchicalProbabilities
            outputs[POLARITY] = layers.Dense(3, activation="softmax", kernel_regularizer=regularizer,
                                             dtype="float32", name="polarity")(x)
            outputs[EXPRESSION] = HierarchicalProbabilities(list(polarity_of), dtype="float32",
                                                            name="probabilities")([outputs[POLARITY], logits])
        else:
            outputs[EXPRESSION] = layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    if tuple(heads) == (EXPRESSION,):
        return outputs[EXPRESSION]
    return {name: outputs[name] for name in heads}


def _hidden(features, config: HeadConfig):
    """Pooling, then the hidden dense layers (each with dropout before and batch norm after), then the
    dropout before the output layers."""
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
    return x
