"""Per-class loss weights from training counts, printed at the start of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import yaml

from affect_keras.options import OptionError, read_yaml

METHODS = ("auto", "effective", "none")


def inverse_frequency(counts: Sequence[int], power: float = 1.0) -> np.ndarray:
    """w_c proportional to n_c ** -power, normalised so that the mean weight over classes is 1.

    power 1 is plain inverse frequency; 0.5 (inverse square root) or 0.25 temper it, trading less
    overall accuracy for the rare classes. A class with no training images gets weight 0 (it cannot
    contribute to the loss anyway), and the mean is taken over the classes that have images.
    """
    return _normalised(np.array([float(n) ** -power if n > 0 else 0.0 for n in counts]))


def effective_number(counts: Sequence[int], beta: float = 0.999) -> np.ndarray:
    """Cui et al. 2019: w_c proportional to (1 - beta) / (1 - beta ** n_c), normalised to mean 1."""
    return _normalised(np.array([(1 - beta) / (1 - beta**n) if n > 0 else 0.0 for n in counts]))


def _normalised(raw: np.ndarray) -> np.ndarray:
    present = raw > 0
    return raw / raw[present].mean() if present.any() else raw


def class_weights(
    method: str, counts: Mapping[str, int], class_names: Sequence[str], power: float = 1.0
) -> dict[int, float] | None:
    """`fit`'s class_weight dict (covering every class) for "auto" (inverse frequency to `power`),
    "effective", "none" or a YAML/JSON file of class name -> weight."""
    n = [counts.get(name, 0) for name in class_names]
    if method == "none":
        return None
    if method == "auto":
        weights = inverse_frequency(n, power)
    elif method == "effective":
        weights = effective_number(n)
    else:
        weights = _from_file(Path(method), class_names)
    return {k: float(w) for k, w in enumerate(weights)}


def _from_file(path: Path, class_names: Sequence[str]) -> np.ndarray:
    if not path.is_file():
        raise OptionError("class_weights", f"{path}: not auto, effective, none or an existing file")
    try:
        values = read_yaml(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise OptionError(
            "class_weights", f"{path}: not a YAML mapping of class: weight ({str(error).splitlines()[0][:120]})"
        ) from None
    if not isinstance(values, dict):
        raise OptionError("class_weights", f"{path}: not a YAML mapping of class: weight")
    missing = [c for c in class_names if c not in values]
    unknown = [c for c in values if c not in class_names]
    if missing or unknown:
        raise OptionError("class_weights", f"{path}: missing classes {missing}, unknown classes {unknown}")
    weights = []
    for name in class_names:
        try:
            weights.append(float(values[name]))
        except (TypeError, ValueError):
            raise OptionError(
                "class_weights", f"{path}: class {name}'s weight {values[name]!r} is not a number"
            ) from None
    if any(not (w > 0 and np.isfinite(w)) for w in weights):
        raise OptionError("class_weights", f"{path}: every weight must be a finite number > 0 (not inf or nan)")
    return np.array(weights)


def describe(weights: dict[int, float] | None, counts: Mapping[str, int], class_names: Sequence[str]) -> str:
    lines = [f"{'class':<12}{'train images':>14}{'weight':>10}"]
    for k, name in enumerate(class_names):
        weight = "1.000" if weights is None else f"{weights[k]:.3f}"
        lines.append(f"{name:<12}{counts.get(name, 0):>14}{weight:>10}")
    return "\n".join(lines)
