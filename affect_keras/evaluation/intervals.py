"""95 % bootstrap intervals of a report's headline figures, and the paired bootstrap that says whether two
models' difference on the same faces is inside the noise.

A bootstrap resample draws the split's faces with replacement (as many as it has); a figure's interval
is the 2.5th and 97.5th percentile of its value over the resamples (seeded: the same report gives the
same intervals). Figures come from each resample's confusion matrix (numpy's bincount), so 1,000
resamples of 3,191 faces take well under a second.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from affect_keras.calibration import ECE_BINS

LEVEL = 0.95
RESAMPLES = 1000  # the default of --bootstrap


def _percentiles(values: np.ndarray) -> list[float]:
    low, high = np.nanpercentile(values, [50 * (1 - LEVEL), 50 * (1 + LEVEL)], axis=0)
    return [float(low), float(high)]


def _resamples(count: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, count, size=(resamples, count))


def _confusions(labels: np.ndarray, predicted: np.ndarray, classes: int, drawn: np.ndarray) -> np.ndarray:
    """(resamples, true, predicted) counts."""
    cells = labels[drawn] * classes + predicted[drawn]
    return np.stack([np.bincount(row, minlength=classes * classes) for row in cells]).reshape(-1, classes, classes)


def _scores(confusion: np.ndarray, present: np.ndarray) -> dict[str, np.ndarray]:
    """Per resample: accuracy, balanced accuracy and macro-F1 over the classes present in the split (as
    `metrics.summary_scores`), and per class recall and F1."""
    hits = np.diagonal(confusion, axis1=1, axis2=2).astype(np.float64)
    truth, said = confusion.sum(axis=2), confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(truth > 0, hits / truth, np.nan)
        precision = np.where(said > 0, hits / said, 0.0)
        f1 = np.where(
            precision + np.nan_to_num(recall) > 0,
            2 * precision * np.nan_to_num(recall) / (precision + np.nan_to_num(recall)),
            0.0,
        )
    return {
        "accuracy": hits.sum(axis=1) / confusion.sum(axis=(1, 2)),
        "balanced_accuracy": np.nanmean(recall[:, present], axis=1),
        "macro_f1": f1[:, present].mean(axis=1),
        "recall": recall,
        "f1": f1,
    }


def _ece(labels: np.ndarray, probabilities: np.ndarray, drawn: np.ndarray, bins: int = ECE_BINS) -> np.ndarray:
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == labels).astype(np.float64)
    which = np.clip(np.digitize(confidence, np.linspace(0, 1, bins + 1)[1:-1], right=True), 0, bins - 1)
    values = []
    for row in drawn:
        count = np.bincount(which[row], minlength=bins)
        gap = np.bincount(which[row], weights=correct[row] - confidence[row], minlength=bins)
        values.append(np.abs(gap[count > 0]).sum() / len(row))
    return np.array(values)


def expression_intervals(
    labels: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str], resamples: int = RESAMPLES, seed: int = 0
) -> dict:
    """{resamples, level, accuracy, balanced_accuracy, macro_f1, ece: [low, high], per_class: {name:
    {f1, recall}}} for a classifier's probabilities on a split."""
    classes = len(class_names)
    drawn = _resamples(len(labels), resamples, seed)
    scores = _scores(_confusions(labels, probabilities.argmax(axis=1), classes, drawn), np.unique(labels))
    return {
        "resamples": resamples,
        "level": LEVEL,
        **{name: _percentiles(scores[name]) for name in ("accuracy", "balanced_accuracy", "macro_f1")},
        "ece": _percentiles(_ece(labels, probabilities, drawn)),
        "per_class": {
            name: {
                "f1": _percentiles(scores["f1"][:, k]),
                "recall": _percentiles(scores["recall"][:, k]) if (labels == k).any() else None,
            }
            for k, name in enumerate(class_names)
        },
    }


def ccc_intervals(
    truth: np.ndarray, predicted: np.ndarray, dimensions: Sequence[str], resamples: int = RESAMPLES, seed: int = 0
) -> dict:
    """{dimension: [low, high]} of the concordance correlation, on the faces that have a value."""
    out = {}
    for k, name in enumerate(dimensions):
        keep = ~np.isnan(truth[:, k])
        t, p = truth[keep, k].astype(np.float64), predicted[keep, k].astype(np.float64)
        if len(t) < 2:
            continue
        drawn = _resamples(len(t), resamples, seed)
        tt, pp = t[drawn], p[drawn]
        covariance = ((tt - tt.mean(1, keepdims=True)) * (pp - pp.mean(1, keepdims=True))).mean(1)
        ccc = 2 * covariance / (tt.var(1) + pp.var(1) + (tt.mean(1) - pp.mean(1)) ** 2)
        out[name] = _percentiles(ccc)
    return out


def paired_difference(
    labels: np.ndarray, first: np.ndarray, second: np.ndarray, classes: int, resamples: int = RESAMPLES, seed: int = 0
) -> dict:
    """The second model's accuracy and macro-F1 minus the first's on the same faces (their predicted
    classes `first`, `second`), each with its paired-bootstrap interval (both models scored on the same
    resample) and whether 0 is inside it: {metric: {difference, interval, inside_noise}}."""
    drawn = _resamples(len(labels), resamples, seed)
    present = np.unique(labels)
    a = _scores(_confusions(labels, first, classes, drawn), present)
    b = _scores(_confusions(labels, second, classes, drawn), present)
    one = np.arange(len(labels))[None]
    point_a = _scores(_confusions(labels, first, classes, one), present)
    point_b = _scores(_confusions(labels, second, classes, one), present)
    out = {}
    for metric in ("accuracy", "macro_f1"):
        low, high = _percentiles(b[metric] - a[metric])
        out[metric] = {
            "difference": float(point_b[metric][0] - point_a[metric][0]),
            "interval": [low, high],
            "inside_noise": bool(low <= 0 <= high),
        }
    return out
