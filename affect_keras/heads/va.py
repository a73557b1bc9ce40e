"""The valence / arousal head: two values in [-1, 1]."""

from __future__ import annotations

from affect_keras.heads import VA, VA_DIMENSIONS, Head, register


@register
class VAHead(Head):
    name = VA
    metric_names = tuple(f"{d}_ccc" for d in VA_DIMENSIONS)
    needs = "valence / arousal (only AffectNet and the built-in sample have them)"
    build_order = 0  # built first: the order every multitask checkpoint has

    def card(self, class_names):
        return f"`{VA}`: valence and arousal, each in [-1, 1]"

    def targets(self, manifest, expression, class_names):
        import numpy as np
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

    def loss(self, config=None, counts=None):
        from affect_keras.training.losses import VA_LOSSES

        return VA_LOSSES[config.va_loss if config is not None else "ccc"]()

    def metrics(self):
        from affect_keras.training.va import Concordance

        return [Concordance(k) for k in range(len(VA_DIMENSIONS))]

    def weight(self, config=None):
        return 1.0 if config is None else config.va_weight

    def report(self, report, pictures, predicted, *, labels, names, out, truth_va, **scored):
        """On the faces that have valence / arousal, with the count."""
        from affect_keras.evaluation.intervals import ccc_intervals
        from affect_keras.evaluation.plots import plot_va_scatter
        from affect_keras.evaluation.va_metrics import va_scores

        report["va"] = va_scores(truth_va, predicted)
        if scored["config"].bootstrap:
            for dimension, interval in ccc_intervals(
                truth_va, predicted, VA_DIMENSIONS, scored["config"].bootstrap, scored["config"].seed
            ).items():
                report["va"][dimension]["ccc_interval"] = interval
        pictures["va_scatter"] = plot_va_scatter(truth_va, predicted, labels, names, out / "va_scatter.png")

    def columns(self, table, values, class_names):
        for k, dimension in enumerate(VA_DIMENSIONS):
            table[dimension] = values[:, k]
