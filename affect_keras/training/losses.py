"""Training losses, a registry (name -> builder): the CLI's `--loss` choices.

* `crossentropy`: categorical cross-entropy (with `--label-smoothing`), the default;
* `focal`: keras's categorical focal loss (Lin et al. 2017), which down-weights the easy examples that a
  frequent class supplies in bulk; `--focal-gamma`;
* `logit-adjusted`: Menon et al. 2021, "Long-tail learning via logit adjustment": the cross-entropy of
  the logits shifted by tau * log(class prior). The model learns logits from which the prior has been
  taken out, so its own (unshifted) output is the balanced prediction: nothing changes at inference,
  export or predict. `--logit-tau` (1 in the paper).

Importing this module imports no keras (the CLI lists the names); a builder does.
"""

from __future__ import annotations

from affect_keras.options import build
from affect_keras.tasks import EXPRESSION, POLARITY, VA


def _crossentropy(label_smoothing=0.0):
    import keras

    return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)


def _focal(gamma=2.0, label_smoothing=0.0):
    import keras

    return keras.losses.CategoricalFocalCrossentropy(gamma=gamma, label_smoothing=label_smoothing)


def _logit_adjusted(counts, tau=1.0, label_smoothing=0.0):
    from affect_keras.training.logit_adjustment import LogitAdjustedCrossentropy

    return LogitAdjustedCrossentropy(counts, tau=tau, label_smoothing=label_smoothing)


LOSSES = {"crossentropy": _crossentropy, "focal": _focal, "logit-adjusted": _logit_adjusted}


def _va_ccc():
    from affect_keras.training.va import ConcordanceLoss

    return ConcordanceLoss()


def _va_mse():
    from affect_keras.training.va import MaskedMeanSquaredError

    return MaskedMeanSquaredError()


# the valence / arousal loss registry: --va-loss name -> builder (faces without V/A are masked out)
VA_LOSSES = {"ccc": _va_ccc, "mse": _va_mse}


def training_loss(name: str, counts, label_smoothing: float = 0.0, tau: float = 1.0, gamma: float = 2.0):
    """The keras loss `name` for training classes with `counts` images each (the prior of logit
    adjustment); each loss takes only the settings it declares."""
    return build(LOSSES, name, "loss", counts=counts, label_smoothing=label_smoothing, tau=tau, gamma=gamma)


# each head's training loss, by the head's name (its default, for `compile("auto")`, is the head's own):
HEAD_LOSSES = {  # --loss for the expressions (also the hierarchical model's combined probabilities)
    EXPRESSION: lambda config, counts: training_loss(
        config.loss, counts, config.label_smoothing, config.logit_tau, config.focal_gamma
    ),
    VA: lambda config, counts: VA_LOSSES[config.va_loss](),  # --va-loss
    POLARITY: lambda config, counts: _crossentropy(),
}


def head_weight(head: str, config) -> float:
    """A head's weight in the total loss (--va-weight for V/A, else 1)."""
    return config.va_weight if head == VA else 1.0
