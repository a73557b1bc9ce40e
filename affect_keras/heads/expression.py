"""The expression head: class probabilities over the model's class names."""

from __future__ import annotations

from affect_keras.heads.base import Head, register
from affect_keras.tasks import EXPRESSION


@register
class ExpressionHead(Head):
    name = EXPRESSION
    loss = "CategoricalCrossentropy"
    build_order = 1

    def card(self, class_names):
        return f"`{EXPRESSION}`: probabilities of the {len(class_names)} classes, in the order below"

    def targets(self, manifest, expression, class_names):
        return expression

    def build(self, features, class_names, regularizer, outputs, finish):
        import keras

        outputs[self.name] = keras.layers.Dense(len(class_names), kernel_regularizer=regularizer, name="logits")(
            features
        )
        finish.setdefault(self.name, keras.layers.Activation("softmax", dtype="float32", name="probabilities"))

    def metrics(self):
        import keras

        return ["accuracy", keras.metrics.TopKCategoricalAccuracy(2, name="top2")]

    def columns(self, table, probabilities, class_names):
        table["predicted"] = [class_names[k] for k in probabilities.argmax(1)]
        table["confidence"] = probabilities.max(1)
        for k, name in enumerate(class_names):
            table[f"p_{name}"] = probabilities[:, k]
