"""Each head's section of the evaluation report, one function per head found by the head's name
(`SECTIONS`): its scores into `report`, its pictures into `pictures`. A head without one (polarity: scored
through the expression output it shapes) adds nothing."""

from __future__ import annotations

import hashlib

from sklearn.metrics import confusion_matrix

from affect_keras.calibration import calibration_scores
from affect_keras.evaluation import metrics
from affect_keras.evaluation.intervals import ccc_intervals, expression_intervals
from affect_keras.evaluation.plots import expression_pictures, plot_va_scatter
from affect_keras.evaluation.va_metrics import va_scores
from affect_keras.tasks import EXPRESSION, VA, VA_DIMENSIONS


def expression_section(report, pictures, probabilities, *, labels, names, files, size, out, run, config, **scored):
    """The classes' scores, intervals, calibration, confusion matrix and what a paired comparison needs."""
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
            "confusion_matrix": confusion_matrix(labels, probabilities.argmax(1), labels=range(len(names))).tolist(),
            "skew_normalized": metrics.skew_normalized(labels, probabilities, len(names), config.repeats, config.seed),
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


def va_section(report, pictures, predicted, *, labels, names, out, truth_va, config, **scored):
    """On the faces that have valence / arousal, with the count."""
    report["va"] = va_scores(truth_va, predicted)
    if config.bootstrap:
        for dimension, interval in ccc_intervals(
            truth_va, predicted, VA_DIMENSIONS, config.bootstrap, config.seed
        ).items():
            report["va"][dimension]["ccc_interval"] = interval
    pictures["va_scatter"] = plot_va_scatter(truth_va, predicted, labels, names, out / "va_scatter.png")


def faces_digest(files) -> str:
    """A short digest of the faces a report scored, in order: two reports with the same one scored the
    same faces (a paired comparison is possible)."""
    return hashlib.sha256("\n".join(map(str, files)).encode()).hexdigest()[:16]


SECTIONS = {EXPRESSION: expression_section, VA: va_section}  # head name -> its report section
