"""The polarity head (the `hierarchical` task): positive / neutral / negative first; with an expression
head beside it, the expression output becomes p(polarity) x p(class within that polarity)."""

from __future__ import annotations

from affect_keras.heads.base import Head, register
from affect_keras.labels import SCHEMES, polarity_matrix, polarity_of
from affect_keras.tasks import EXPRESSION, POLARITY


@register
class PolarityHead(Head):
    name = POLARITY
    loss = "CategoricalCrossentropy"
    build_order = 2

    def card(self, class_names):
        return (
            "`polarity`: probabilities of Positive, Neutral, Negative (the expression output is "
            "p(polarity) x p(class within it))"
        )

    def targets(self, manifest, expression, class_names):
        return expression @ polarity_matrix(polarity_of(class_names))

    def build(self, features, class_names, regularizer, outputs, finish):
        import keras

        from affect_keras.heads._hierarchical import HierarchicalProbabilities

        groups = polarity_of(class_names)
        polarity = keras.layers.Dense(
            3, activation="softmax", kernel_regularizer=regularizer, dtype="float32", name=POLARITY
        )(features)
        outputs[self.name] = polarity
        if EXPRESSION in outputs:  # the expression head's logits: p(polarity) x p(class within it)
            finish[EXPRESSION] = lambda logits: HierarchicalProbabilities(
                list(groups), dtype="float32", name="probabilities"
            )([polarity, logits])

    def metrics(self):
        return ["accuracy"]

    def columns(self, table, values, class_names):
        for k, name in enumerate(SCHEMES["polarity3"].class_names):
            table[f"p_{name}"] = values[:, k]
