"""Each output head's loss, metric objects and loss weight in training: a registry under the names of
`affect_keras.tasks.HEADS`. Call sites loop over a task's heads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from affect_keras.tasks import EXPRESSION, POLARITY, VA, VA_DIMENSIONS
from affect_keras.training.losses import VA_LOSSES, training_loss


@dataclass(frozen=True)
class TrainingHead:
    """loss: (config, training counts per class) -> keras loss; metrics: () -> what compile takes (the
    names `Head.metrics` lists); weight: config -> its weight in the total loss."""
    loss: Callable
    metrics: Callable[[], list]
    weight: Callable


def _expression_loss(config, counts):
    return training_loss(config.loss, counts, config.label_smoothing, config.logit_tau, config.focal_gamma)


def _expression_metrics():
    import keras
    return ["accuracy", keras.metrics.TopKCategoricalAccuracy(2, name="top2")]


def _va_metrics():
    from affect_keras.training.va import Concordance
    return [Concordance(k) for k in range(len(VA_DIMENSIONS))]


def _crossentropy(config, counts):
    import keras
    return keras.losses.CategoricalCrossentropy()


# the hierarchical model's expression output is trained with the expression loss too
TRAINING_HEADS = {
    EXPRESSION: TrainingHead(_expression_loss, _expression_metrics, lambda config: 1.0),
    VA: TrainingHead(lambda config, counts: VA_LOSSES[config.va_loss](), _va_metrics,
                     lambda config: config.va_weight),
    POLARITY: TrainingHead(_crossentropy, lambda: ["accuracy"], lambda config: 1.0),
}
