"""The polarity-first classifier's output layer: expression probabilities from a polarity head and
per-polarity expression logits."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from affect_keras.labels import AFFECTNET_CODES, SCHEMES

POLARITIES = SCHEMES["polarity3"].class_names  # Positive, Neutral, Negative


def polarity_of(class_names) -> list[int]:
    """Each class's polarity index under the polarity3 scheme; ValueError for a class it has no polarity
    for (None / Uncertain / NonFace)."""
    code_of = {name: code for code, name in AFFECTNET_CODES.items()}
    scheme, out = SCHEMES["polarity3"], []
    if set(class_names) <= set(POLARITIES):
        raise ValueError(f"--task hierarchical: the data is already labelled by polarity ({', '.join(class_names)});"
                         f" the hierarchical task predicts expressions within polarities, so it needs data "
                         f"prepared with expression labels (e.g. --labels affectnet8), or train --task "
                         f"expression on this data")
    for name in class_names:
        polarity = scheme.class_of(code_of.get(name, -1))
        if polarity is None:
            raise ValueError(f"--task hierarchical: class {name} has no polarity (polarity3 groups "
                             f"{', '.join(AFFECTNET_CODES[c] for c in sorted(scheme.code_to_class))})")
        out.append(POLARITIES.index(polarity))
    return out


def polarity_matrix(groups) -> np.ndarray:
    """(classes, 3) one-hot: which polarity each class belongs to (class targets @ it = polarity targets)."""
    return np.eye(len(POLARITIES), dtype="float32")[np.asarray(groups, int)]


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
            out = out + ops.where(member, within, 0.0) * polarity[:, g:g + 1]
        return out

    def compute_output_shape(self, input_shapes):
        return input_shapes[1]

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}
