"""The metrics the seed studies and the AffectNet paper report, from labels and class probabilities.

Everything except top-2 F1 and the skew-normalised (class-balanced resample) scores is scikit-learn's.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn import metrics as skm

from affect_keras.options import OptionError


def top_k_hit(labels: np.ndarray, probabilities: np.ndarray, k: int) -> np.ndarray:
    """Whether each true label is among the k most probable classes."""
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return (top == labels[:, None]).any(axis=1)


def top2_predictions(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """AffectNet paper, Table 7: a prediction counts as correct when the true class is among the two most
    probable; otherwise it is the most probable class."""
    return np.where(top_k_hit(labels, probabilities, 2), labels, probabilities.argmax(axis=1))


def summary_scores(labels: np.ndarray, probabilities: np.ndarray, num_classes: int) -> dict:
    """Accuracy, balanced accuracy, macro / weighted F1, Cohen's kappa, top-2 accuracy, one-vs-rest AUC.

    Macro averages run over the classes present in `labels`: a class the split has no image of (CK+ has
    no Neutral under affectnet8) has no F1 to average, and counting it as 0 would understate the rest.
    """
    predicted = probabilities.argmax(axis=1)
    classes = list(range(num_classes))
    present = [int(c) for c in np.unique(labels)]
    return {
        "accuracy": float(skm.accuracy_score(labels, predicted)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(labels, predicted)),
        "macro_f1": float(skm.f1_score(labels, predicted, labels=present, average="macro", zero_division=0)),
        "weighted_f1": float(skm.f1_score(labels, predicted, labels=classes, average="weighted", zero_division=0)),
        "kappa": float(skm.cohen_kappa_score(labels, predicted, labels=classes)),
        "top2_accuracy": float(top_k_hit(labels, probabilities, 2).mean()),
        "auc_ovr": _auc(labels, probabilities),
    }


def _auc(labels: np.ndarray, probabilities: np.ndarray) -> float | None:
    """Macro one-vs-rest AUC over the classes present (None when fewer than two are present)."""
    present = np.unique(labels)
    if len(present) < 2:
        return None
    scores = [skm.roc_auc_score(labels == c, probabilities[:, c]) for c in present]
    return float(np.mean(scores))


def per_class(labels: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str]) -> dict:
    """Per class: precision, recall, F1, support, and top-1 / top-2 F1 (Table 7 of the AffectNet paper)."""
    classes = list(range(len(class_names)))
    predicted = probabilities.argmax(axis=1)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        labels, predicted, labels=classes, zero_division=0
    )
    top2_f1 = skm.f1_score(
        labels, top2_predictions(labels, probabilities), labels=classes, average=None, zero_division=0
    )
    return {
        name: {
            "precision": float(precision[k]),
            "recall": float(recall[k]),
            "f1": float(f1[k]),
            "support": int(support[k]),
            "top1_f1": float(f1[k]),
            "top2_f1": float(top2_f1[k]),
        }
        for k, name in enumerate(class_names)
    }


SKEW_METRICS = ("accuracy", "macro_f1", "top2_accuracy", "kappa")


def skew_normalized(
    labels: np.ndarray, probabilities: np.ndarray, num_classes: int, repeats: int = 10, seed: int = 0
) -> dict:
    """Scores on class-balanced resamples: every present class down-sampled (without replacement) to the
    smallest class's size, `repeats` times; mean and standard deviation per metric (AffectNet paper's
    skew-normalised evaluation)."""
    present, counts = np.unique(labels, return_counts=True)
    size = int(counts.min())
    rng = np.random.default_rng(seed)
    runs, f1s = [], []
    for _ in range(repeats):
        chosen = np.concatenate([rng.choice(np.flatnonzero(labels == c), size, replace=False) for c in present])
        scores = summary_scores(labels[chosen], probabilities[chosen], num_classes)
        runs.append([scores[m] for m in SKEW_METRICS])
        top1 = skm.f1_score(
            labels[chosen], probabilities[chosen].argmax(1), labels=present, average=None, zero_division=0
        )
        top2 = skm.f1_score(
            labels[chosen],
            top2_predictions(labels[chosen], probabilities[chosen]),
            labels=present,
            average=None,
            zero_division=0,
        )
        f1s.append([top1, top2])
    runs, f1s = np.array(runs), np.array(f1s)  # f1s: (repeats, top-1 / top-2, present classes)
    return {
        "per_class_size": size,
        "repeats": repeats,
        **{m: {"mean": float(runs[:, k].mean()), "std": float(runs[:, k].std())} for k, m in enumerate(SKEW_METRICS)},
        # per present class (by index): top-1 and top-2 F1 on the balanced resamples, mean over repeats
        "per_class": {
            int(c): {"top1_f1": float(f1s[:, 0, j].mean()), "top2_f1": float(f1s[:, 1, j].mean())}
            for j, c in enumerate(present)
        },
    }


def drop_class(labels: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str], name: str):
    """Score an N-class model on N-1 classes: remove the class's images and its output, renormalise
    (how HSEmotion reports AffectNet-7 from 8-class models).

    Returns (mask of the images kept, their labels renumbered, their probabilities, the class names left).
    """
    if name not in class_names:
        raise OptionError("drop_class", f"{name}: not one of the model's classes {', '.join(class_names)}")
    k = list(class_names).index(name)
    keep = labels != k
    kept = np.delete(probabilities[keep], k, axis=1)
    kept = kept / kept.sum(axis=1, keepdims=True)
    renumbered = np.where(labels[keep] > k, labels[keep] - 1, labels[keep])
    return keep, renumbered, kept, [n for n in class_names if n != name]
