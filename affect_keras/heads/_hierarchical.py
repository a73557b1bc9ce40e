"""The polarity-first classifier's output layer: expression probabilities from a polarity head and
per-polarity expression logits."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="affect_keras")
class HierarchicalProbabilities(keras.layers.Layer):
    """[polarity probabilities (b, 3), class logits (b, C)] -> class probabilities (b, C):
    p(class) = p(polarity of class) * softmax of the logits within that polarity's classes.

    Args:
        groups: the polarity index of each class.
    """

    def __init__(self, groups, **kwargs):
        super().__init__(**kwargs)
        self.groups = [int(g) for g in groups]

    def call(self, inputs):
        polarity, logits = inputs
        logits = ops.cast(logits, "float32")
        polarity = ops.cast(polarity, "float32")
        groups = ops.convert_to_tensor(self.groups, "int32")
        out = ops.zeros_like(logits)
        for g in sorted(set(self.groups)):
            member = ops.equal(groups, g)
            within = ops.softmax(ops.where(member, logits, ops.full_like(logits, -1e9)), axis=-1)
            out = out + ops.where(member, within, 0.0) * polarity[:, g : g + 1]
        return out

    def compute_output_shape(self, input_shapes):
        return input_shapes[1]

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}
