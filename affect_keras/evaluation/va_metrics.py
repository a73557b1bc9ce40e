"""Valence / arousal metrics as AffectNet and HSEmotion report them: RMSE, MAE, Pearson r, CCC (Lin's
concordance correlation) and SAGR (sign agreement), per dimension, on the faces that have the dimension
(NaN marks a face without), with the count."""

from __future__ import annotations

import numpy as np

DIMENSIONS = ("valence", "arousal")


def ccc(truth: np.ndarray, predicted: np.ndarray) -> float:
    """2 cov / (var_t + var_p + (mean_t - mean_p)^2), population moments."""
    mt, mp = truth.mean(), predicted.mean()
    cov = np.mean((truth - mt) * (predicted - mp))
    return float(2 * cov / (truth.var() + predicted.var() + (mt - mp) ** 2))


def dimension_scores(truth: np.ndarray, predicted: np.ndarray) -> dict:
    """Scores of one dimension over the entries whose truth is not NaN."""
    keep = ~np.isnan(truth)
    t, p = truth[keep].astype("float64"), predicted[keep].astype("float64")
    if len(t) < 2:
        return {"count": int(len(t))}
    error = p - t
    return {
        "count": int(len(t)),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "pearson_r": float(np.corrcoef(t, p)[0, 1]) if t.std() > 0 and p.std() > 0 else float("nan"),
        "ccc": ccc(t, p),
        "sagr": float(np.mean(np.sign(t) == np.sign(p))),
    }


def va_scores(truth: np.ndarray, predicted: np.ndarray) -> dict:
    """{"valence": scores, "arousal": scores} for (n, 2) arrays of truth (NaN: none) and predictions."""
    return {name: dimension_scores(truth[:, k], predicted[:, k]) for k, name in enumerate(DIMENSIONS)}
