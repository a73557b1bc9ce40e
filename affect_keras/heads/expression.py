"""The expression head: class probabilities over the model's class names."""

from __future__ import annotations

from affect_keras.heads import EXPRESSION, Head, register


@register
class ExpressionHead(Head):
    name = EXPRESSION
    metric_names = ("accuracy", "top2")
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

    def loss(self, config=None, counts=None):
        import keras

        from affect_keras.training.losses import training_loss

        if config is None:
            return keras.losses.CategoricalCrossentropy()
        return training_loss(config.loss, counts, config.label_smoothing, config.logit_tau, config.focal_gamma)

    def metrics(self):
        import keras

        return ["accuracy", keras.metrics.TopKCategoricalAccuracy(2, name="top2")]

    def report(self, report, pictures, probabilities, *, labels, names, files, size, out, run, config, **scored):
        from sklearn.metrics import confusion_matrix

        from affect_keras.calibration import calibration_scores
        from affect_keras.evaluation import metrics
        from affect_keras.evaluation.intervals import expression_intervals
        from affect_keras.evaluation.plots import expression_pictures
        from affect_keras.evaluation.report import faces_digest

        if config.drop_class:
            keep, labels, probabilities, names = metrics.drop_class(labels, probabilities, names, config.drop_class)
            files = files[keep]
        report.update(
            {
                "images": int(len(labels)),
                "class_names": list(names),
                "dropped_class": config.drop_class or None,
                # classes with no image in the split: left out of macro averages and balanced resampling
                "absent_classes": [n for k, n in enumerate(names) if not (labels == k).any()],
                **metrics.summary_scores(labels, probabilities, len(names)),
                "per_class": metrics.per_class(labels, probabilities, names),
                "confusion_matrix": confusion_matrix(
                    labels, probabilities.argmax(1), labels=range(len(names))
                ).tolist(),
                "skew_normalized": metrics.skew_normalized(
                    labels, probabilities, len(names), config.repeats, config.seed
                ),
            }
        )
        skew = report["skew_normalized"]
        skew["per_class"] = {names[k]: scores for k, scores in skew["per_class"].items()}
        report["calibration"] = calibration_scores(labels, probabilities)
        if config.bootstrap:
            report["intervals"] = expression_intervals(labels, probabilities, names, config.bootstrap, config.seed)
        # what a paired comparison with another model on the same faces needs (evaluate.py --compare)
        report["faces"] = {
            "files": faces_digest(files),
            "labels": labels.tolist(),
            "predicted": probabilities.argmax(1).tolist(),
        }
        pictures.update(expression_pictures(report, labels, probabilities, files, size, out, run))

    def columns(self, table, probabilities, class_names):
        table["predicted"] = [class_names[k] for k in probabilities.argmax(1)]
        table["confidence"] = probabilities.max(1)
        for k, name in enumerate(class_names):
            table[f"p_{name}"] = probabilities[:, k]
