"""The valence / arousal head: two values in [-1, 1]."""

from __future__ import annotations

import numpy as np

from affect_keras.heads.base import Head, register
from affect_keras.tasks import VA, VA_DIMENSIONS


@register
class VAHead(Head):
    name = VA
    loss = "affect_keras>ConcordanceLoss"  # training.va's, by its registered name
    needs = "valence / arousal (only AffectNet and the built-in sample have them)"
    build_order = 0  # built first: the order every multitask checkpoint has

    def card(self, class_names):
        return f"`{VA}`: valence and arousal, each in [-1, 1]"

    def targets(self, manifest, expression, class_names):
        import pandas as pd

        return np.stack(
            [
                pd.to_numeric(manifest[d], errors="coerce").to_numpy("float32")
                if d in manifest
                else np.full(len(manifest), np.nan, "float32")
                for d in VA_DIMENSIONS
            ],
            axis=1,
        ).reshape(len(manifest), 2)

    def build(self, features, class_names, regularizer, outputs, finish):
        import keras

        # zeros: tanh starts in its linear range (from-scratch features are large, and a random kernel would
        # start it saturated, where it passes no gradient)
        outputs[self.name] = keras.layers.Dense(
            2, activation="tanh", kernel_initializer="zeros", kernel_regularizer=regularizer, dtype="float32", name=VA
        )(features)

    def metrics(self):
        import keras

        # training.va's Concordance, by its registered name (registered whenever keras is loaded)
        return [
            keras.metrics.get({"class_name": "affect_keras>Concordance", "config": {"column": k}})
            for k in range(len(VA_DIMENSIONS))
        ]

    def columns(self, table, values, class_names):
        for k, dimension in enumerate(VA_DIMENSIONS):
            table[dimension] = values[:, k]
