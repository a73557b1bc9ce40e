"""How far to trust a model's probabilities: expected calibration error, negative log-likelihood, Brier
score, reliability bins, and temperature scaling (Guo et al. 2017), from labels and probabilities alone.

Temperature scaling divides the logits by T before the softmax; since softmax(log p) = p, it can be fitted
and applied on the probabilities themselves: p_T = softmax(log p / T). T > 1 softens over-confident
probabilities, T < 1 sharpens; the most probable class never changes. numpy and scipy only: training
(end of a run), evaluation and the calibrate command share it.
"""

from __future__ import annotations

import numpy as np

ECE_BINS = 15  # equal-width confidence bins, as Guo et al. report ECE
TEMPERATURES = (0.05, 20.0)  # the range fit_temperature searches
MIN_FACES = 30  # the fewest faces a temperature is fitted on (fewer say little about a model's confidence)
EPSILON = 1e-12  # the smallest probability taken into a logarithm


def scaled(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T), row by row."""
    logits = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), EPSILON, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def nll(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes."""
    chosen = np.asarray(probabilities, dtype=np.float64)[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(chosen, EPSILON, 1.0)).mean())


def brier(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean over faces of the squared distance between the probabilities and the one-hot truth (summed
    over classes, so 0 is perfect and 2 the worst)."""
    truth = np.eye(probabilities.shape[1])[labels]
    return float(((np.asarray(probabilities, dtype=np.float64) - truth) ** 2).sum(axis=1).mean())


def reliability(labels: np.ndarray, probabilities: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Per equal-width bin of confidence (the top probability): its range, its face count, mean confidence
    and accuracy (None for an empty bin)."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows = []
    for k in range(bins):
        member = which == k
        count = int(member.sum())
        rows.append(
            {
                "lower": float(edges[k]),
                "upper": float(edges[k + 1]),
                "count": count,
                "confidence": float(confidence[member].mean()) if count else None,
                "accuracy": float(correct[member].mean()) if count else None,
            }
        )
    return rows


def ece(labels: np.ndarray, probabilities: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: the face-weighted mean of |accuracy - confidence| over the bins."""
    rows = reliability(labels, probabilities, bins)
    return float(sum(r["count"] * abs(r["accuracy"] - r["confidence"]) for r in rows if r["count"]) / len(labels))


def calibration_scores(labels: np.ndarray, probabilities: np.ndarray, bins: int = ECE_BINS) -> dict:
    """{ece, nll, brier, bins} of the probabilities."""
    return {
        "ece": ece(labels, probabilities, bins),
        "nll": nll(labels, probabilities),
        "brier": brier(labels, probabilities),
        "bins": reliability(labels, probabilities, bins),
    }


def fit_temperature(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of `labels` (searched over log T in
    the log of `TEMPERATURES`, scipy's bounded Brent method)."""
    from scipy.optimize import minimize_scalar

    labels = np.asarray(labels)
    low, high = np.log(TEMPERATURES)
    found = minimize_scalar(
        lambda log_t: nll(labels, scaled(probabilities, float(np.exp(log_t)))),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(found.x))


def at_bound(temperature: float) -> bool:
    """Whether a fitted temperature ended on the edge of the search: the split said little (too few faces,
    or probabilities unrelated to the labels)."""
    return any(abs(np.log(temperature / bound)) < 1e-2 for bound in TEMPERATURES)


def unfit(labels: np.ndarray, temperature: float) -> str | None:
    """Why a temperature fitted on `labels` should not be kept, or None: fewer than `MIN_FACES` faces, faces of
    one class (any confidence in that class looks right), or a fit on the edge of the search (kept, the
    temperatures of later calibrations would multiply into nonsense: 20 x 20 gives every class 1/8)."""
    labels = np.asarray(labels)
    if len(labels) < MIN_FACES:
        return f"{len(labels)} faces, fewer than the {MIN_FACES} a temperature is fitted on"
    if len(np.unique(labels)) < 2:
        return "faces of one class only"
    if at_bound(temperature):
        return (
            f"the fitted temperature {temperature:.3g} is on the edge of the search "
            f"({TEMPERATURES[0]:g}-{TEMPERATURES[1]:g}): the faces say little about the model's confidence"
        )
    return None
