"""Optimisers and learning-rate schedules: two registries (name -> builder), the CLI's choices.

Nothing here imports keras until a builder runs, so `train.py --help` lists the names without starting
TensorFlow.
"""

from __future__ import annotations


def _adam(rate, momentum, nesterov, decay):
    import keras
    return keras.optimizers.Adam(rate, weight_decay=decay)


def _sgd(rate, momentum, nesterov, decay):
    import keras
    return keras.optimizers.SGD(rate, momentum=momentum, nesterov=nesterov, weight_decay=decay)


def _constant(lr, total_steps, warmup_steps, step_every, step_factor):
    return lr  # "plateau" too: ReduceLROnPlateau (a callback) lowers it


def _step(lr, total_steps, warmup_steps, step_every, step_factor):
    import keras
    return keras.optimizers.schedules.ExponentialDecay(lr, step_every, step_factor, staircase=True)


def _cosine(lr, total_steps, warmup_steps, step_every, step_factor):
    import keras
    if warmup_steps:
        return keras.optimizers.schedules.CosineDecay(
            0.0, max(1, total_steps - warmup_steps), warmup_target=lr, warmup_steps=warmup_steps)
    return keras.optimizers.schedules.CosineDecay(lr, max(1, total_steps))


OPTIMIZERS = {"adam": _adam, "sgd": _sgd}
SCHEDULES = {"constant": _constant, "step": _step, "cosine": _cosine, "plateau": _constant}


def learning_rate(schedule: str, lr: float, total_steps: int, warmup_steps: int = 0,
                  step_every: int = 1000, step_factor: float = 0.9):
    """A keras schedule (or a float for "constant" and "plateau": the latter is driven by a callback).

    "step" multiplies by `step_factor` every `step_every` steps (the AffectNet paper used x0.9);
    "cosine" decays to 0 over `total_steps` after a linear warm-up of `warmup_steps`.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"--schedule must be one of {', '.join(SCHEDULES)}")
    return SCHEDULES[schedule](lr, total_steps, warmup_steps, step_every, step_factor)


def optimizer(name: str, rate, momentum: float = 0.9, nesterov: bool = False, weight_decay: float = 0.0):
    """A keras optimiser; `rate` is a float or a schedule, `weight_decay` decoupled (0: none)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](rate, momentum, nesterov, weight_decay or None)
