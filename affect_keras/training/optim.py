"""Optimisers and learning-rate schedules: two registries (name -> builder), the CLI's choices.

Nothing here imports keras until a builder runs, so `train.py --help` lists the names without starting
TensorFlow.
"""

from __future__ import annotations

from affect_keras.options import build


def _adam(rate, weight_decay=0.0):
    import keras

    return keras.optimizers.Adam(rate, weight_decay=weight_decay or None)


def _sgd(rate, momentum=0.9, nesterov=False, weight_decay=0.0):
    import keras

    return keras.optimizers.SGD(rate, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay or None)


def _constant(lr):
    return lr  # "plateau" too: ReduceLROnPlateau (a callback) lowers it


def _step(lr, step_every=1000, step_factor=0.9):
    import keras

    return keras.optimizers.schedules.ExponentialDecay(lr, step_every, step_factor, staircase=True)


def _cosine(lr, total_steps, warmup_steps=0):
    import keras

    if warmup_steps:
        return keras.optimizers.schedules.CosineDecay(
            0.0, max(1, total_steps - warmup_steps), warmup_target=lr, warmup_steps=warmup_steps
        )
    return keras.optimizers.schedules.CosineDecay(lr, max(1, total_steps))


# each builder takes only its own settings (options.build hands it those it declares)
OPTIMIZERS = {"adam": _adam, "sgd": _sgd}
SCHEDULES = {"constant": _constant, "step": _step, "cosine": _cosine, "plateau": _constant}


def learning_rate(schedule: str, lr: float, **settings):
    """A keras schedule (or a float for "constant" and "plateau": the latter is driven by a callback).

    `settings`, each used by the schedule that takes it: "step" multiplies by `step_factor` every
    `step_every` steps (the AffectNet paper used x0.9); "cosine" decays to 0 over `total_steps` after a
    linear warm-up of `warmup_steps`.
    """
    return build(SCHEDULES, schedule, "schedule", lr, **settings)


def optimizer(name: str, rate, **settings):
    """A keras optimiser; `rate` is a float or a schedule. `settings` (momentum, nesterov, weight_decay:
    decoupled, 0 for none), each used by the optimiser that takes it."""
    return build(OPTIMIZERS, name, "optimizer", rate, **settings)
