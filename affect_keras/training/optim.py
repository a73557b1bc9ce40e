"""Optimisers and learning-rate schedules."""

from __future__ import annotations

import keras

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "step", "cosine", "plateau")


def learning_rate(schedule: str, lr: float, total_steps: int, warmup_steps: int = 0,
                  step_every: int = 1000, step_factor: float = 0.9):
    """A keras schedule (or a float for "constant" and "plateau": the latter is driven by a callback).

    "step" multiplies by `step_factor` every `step_every` steps (the AffectNet paper used x0.9);
    "cosine" decays to 0 over `total_steps` after a linear warm-up of `warmup_steps`.
    """
    if schedule in ("constant", "plateau"):
        return lr
    if schedule == "step":
        return keras.optimizers.schedules.ExponentialDecay(lr, step_every, step_factor, staircase=True)
    if schedule == "cosine":
        if warmup_steps:
            return keras.optimizers.schedules.CosineDecay(
                0.0, max(1, total_steps - warmup_steps), warmup_target=lr, warmup_steps=warmup_steps)
        return keras.optimizers.schedules.CosineDecay(lr, max(1, total_steps))
    raise ValueError(f"--schedule must be one of {', '.join(SCHEDULES)}")


def optimizer(name: str, rate, momentum: float = 0.9, nesterov: bool = False,
              weight_decay: float = 0.0) -> keras.optimizers.Optimizer:
    decay = weight_decay or None
    if name == "adam":
        return keras.optimizers.Adam(rate, weight_decay=decay)
    if name == "sgd":
        return keras.optimizers.SGD(rate, momentum=momentum, nesterov=nesterov, weight_decay=decay)
    raise ValueError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}")
