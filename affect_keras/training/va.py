"""Valence / arousal losses, `mse` and `ccc` (1 - concordance correlation; `--va-loss` picks one through
`training.losses.VA_LOSSES`), and the epoch-level CCC metric a run logs per dimension.

Targets are (batch, 2) in [-1, 1], NaN where a face has no valence / arousal (AffectNet's -2, FER+, class
folders). Those entries are masked out: they add nothing to the loss or its gradient, and a batch with
none left contributes exactly 0 (never NaN). Masking is per entry, so a face with valence but no arousal
still teaches valence.

Both return per-sample values whose batch mean (keras's default reduction) is the masked loss, so
sample weights and keras's reduction work as for any loss.
"""

from __future__ import annotations

import keras
from keras import ops

from affect_keras.tasks import VA_DIMENSIONS


def _masked(y_true, y_pred):
    """(targets with NaN replaced by 0, predictions, mask of the entries that have a target)."""
    y_true = ops.cast(y_true, y_pred.dtype)
    mask = ops.cast(ops.logical_not(ops.isnan(y_true)), y_pred.dtype)
    return ops.where(mask > 0, y_true, ops.zeros_like(y_true)), y_pred, mask


@keras.saving.register_keras_serializable(package="affect_keras")
class MaskedMeanSquaredError(keras.losses.Loss):
    """Mean squared error over the entries that have a target: sum(mask * err^2) / count(mask)."""

    def __init__(self, name="va_mse", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        y_true, y_pred, mask = _masked(y_true, y_pred)
        per_sample = ops.sum(mask * ops.square(y_pred - y_true), axis=-1)
        batch = ops.cast(ops.shape(y_pred)[0], y_pred.dtype)
        return per_sample * batch / ops.maximum(ops.sum(mask), 1.0)


def concordance(y_true, y_pred, mask):
    """Lin's concordance correlation per column over the masked entries (population moments):
    2 cov / (var_t + var_p + (mean_t - mean_p)^2); 0 for a column with fewer than two entries."""
    count = ops.sum(mask, axis=0)
    n = ops.maximum(count, 1.0)
    mean_t, mean_p = ops.sum(mask * y_true, axis=0) / n, ops.sum(mask * y_pred, axis=0) / n
    dt, dp = mask * (y_true - mean_t), mask * (y_pred - mean_p)
    cov = ops.sum(dt * dp, axis=0) / n
    var_t, var_p = ops.sum(dt * dt, axis=0) / n, ops.sum(dp * dp, axis=0) / n
    ccc = 2.0 * cov / ops.maximum(var_t + var_p + ops.square(mean_t - mean_p), 1e-12)
    return ccc, count


@keras.saving.register_keras_serializable(package="affect_keras")
class ConcordanceLoss(keras.losses.Loss):
    """1 - CCC, averaged over the dimensions that have at least two targets in the batch (CCC is a batch
    statistic: larger batches estimate it better); 0 when none has."""

    def __init__(self, name="va_ccc", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        y_true, y_pred, mask = _masked(y_true, y_pred)
        ccc, count = concordance(y_true, y_pred, mask)
        usable = ops.cast(count >= 2, y_pred.dtype)
        loss = ops.sum(usable * (1.0 - ccc)) / ops.maximum(ops.sum(usable), 1.0)
        return ops.ones_like(y_pred[:, 0]) * loss  # the same value per sample: the batch mean is the loss


@keras.saving.register_keras_serializable(package="affect_keras")
class Concordance(keras.metrics.Metric):
    """Lin's CCC of one column (0 valence, 1 arousal) over every target seen since the last reset (the
    whole epoch, not a mean of per-batch values), NaN targets left out."""

    def __init__(self, column: int, name: str | None = None, **kwargs):
        super().__init__(name=name or f"{VA_DIMENSIONS[column]}_ccc", **kwargs)
        self.column = column
        self.sums = self.add_variable(shape=(6,), initializer="zeros", name="sums")  # n, t, p, tt, pp, tp

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred, mask = _masked(y_true, ops.cast(y_pred, "float32"))
        t, p, m = y_true[:, self.column], y_pred[:, self.column], mask[:, self.column]
        self.sums.assign_add(
            ops.stack(
                [ops.sum(m), ops.sum(m * t), ops.sum(m * p), ops.sum(m * t * t), ops.sum(m * p * p), ops.sum(m * t * p)]
            )
        )

    def result(self):
        n, st, sp, stt, spp, stp = [self.sums[k] for k in range(6)]
        n = ops.maximum(n, 1.0)
        mt, mp = st / n, sp / n
        cov, vt, vp = stp / n - mt * mp, stt / n - mt * mt, spp / n - mp * mp
        return 2.0 * cov / ops.maximum(vt + vp + ops.square(mt - mp), 1e-12)

    def reset_state(self):
        self.sums.assign(ops.zeros((6,)))

    def get_config(self):
        return {**super().get_config(), "column": self.column}
