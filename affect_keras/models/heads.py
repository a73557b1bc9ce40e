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
    from affect_keras.tasks import EXPRESSION
    return task_heads(features, num_classes, config, (EXPRESSION,))


def task_heads(features, num_classes: int, config: HeadConfig, heads: tuple[str, ...], class_names=None):
    """The outputs of a task's heads (`affect_keras.tasks`) on the backbone's feature map: the class
    probabilities alone for the expression classifier, else {head name: tensor}. The pooling and hidden
    layers are shared by every head; every output is float32. `class_names`: the classes in output order
    (the polarity head groups them). Each head's layers come from HEAD_LAYERS; a head may change how another one turns its
    logits into probabilities (the polarity head makes the expression output p(polarity) x p(class))."""
    import keras

    from affect_keras.tasks import EXPRESSION

    x = _hidden(features, config)
    regularizer = keras.regularizers.L2(config.l2) if config.l2 else None
    outputs, finish = {}, {}
    # registry order, which is the order the layers were always created in (a checkpoint's weights are
    # matched to layers by that order); then each output that another head changes is finished
    for head in sorted(heads, key=list(HEAD_LAYERS).index):
        HEAD_LAYERS[head](x, num_classes, regularizer, class_names, outputs, finish)
    for name, make in finish.items():
        outputs[name] = make(outputs[name])
    if tuple(heads) == (EXPRESSION,):
        return outputs[EXPRESSION]
    return {name: outputs[name] for name in heads}


def _va_layers(x, num_classes, regularizer, class_names, outputs, finish):
    import keras
    # zeros: tanh starts in its linear range (from-scratch features are large, and a random kernel would
    # start it saturated, where it passes no gradient)
    outputs["va"] = keras.layers.Dense(2, activation="tanh", kernel_initializer="zeros",
                                       kernel_regularizer=regularizer, dtype="float32", name="va")(x)


def _polarity_layers(x, num_classes, regularizer, class_names, outputs, finish):
    import keras

    from affect_keras.labels import polarity_of
    from affect_keras.models.hierarchical import HierarchicalProbabilities
    if class_names is None:
        raise ValueError("the polarity head needs the class names (build_model's class_names)")
    groups = polarity_of(class_names)
    polarity = keras.layers.Dense(3, activation="softmax", kernel_regularizer=regularizer, dtype="float32",
                                  name="polarity")(x)
    outputs["polarity"] = polarity
    if "expression" in outputs:  # the expression head's logits: p(polarity) x p(class within it)
        finish["expression"] = lambda logits: HierarchicalProbabilities(
            list(groups), dtype="float32", name="probabilities")([polarity, logits])


def _expression_layers(x, num_classes, regularizer, class_names, outputs, finish):
    import keras
    outputs["expression"] = keras.layers.Dense(num_classes, kernel_regularizer=regularizer, name="logits")(x)
    finish["expression"] = keras.layers.Activation("softmax", dtype="float32", name="probabilities")


# the layer registry of the heads (`affect_keras.tasks.HEADS`): name -> builder of
# (features, classes, regularizer, class names, outputs so far, output finishers), in build order
HEAD_LAYERS = {"va": _va_layers, "expression": _expression_layers, "polarity": _polarity_layers}


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
