"""Logit-adjusted cross-entropy (Menon et al. 2021, "Long-tail learning via logit adjustment").

The cross-entropy of the logits shifted by tau * log(class prior): the model learns logits from which the
training prior has been taken out, so its own output is the balanced prediction and inference, export and
predict are unchanged. The model's output is softmax probabilities; logits are recovered as their
logarithm (the logits up to a per-example constant, which softmax ignores).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from affect_keras.options import OptionError


@keras.saving.register_keras_serializable(package="affect_keras")
class LogitAdjustedCrossentropy(keras.losses.Loss):
    """Cross-entropy of softmax(log p + tau * log prior) against the targets (one-hot or soft)."""

    def __init__(self, prior, tau: float = 1.0, label_smoothing: float = 0.0, name="logit_adjusted", **kwargs):
        super().__init__(name=name, **kwargs)
        prior = np.asarray(prior, "float64")
        if prior.ndim != 1 or (prior < 0).any() or prior.sum() <= 0:
            raise OptionError("loss", "logit-adjusted needs the training class counts, all >= 0")
        self.prior = (prior / prior.sum()).tolist()
        self.tau, self.label_smoothing = float(tau), float(label_smoothing)
        # a class absent from training gets a tiny prior rather than log(0)
        self._shift = self.tau * np.log(np.maximum(np.asarray(self.prior), 1e-8)).astype("float32")

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        logits = ops.log(ops.clip(y_pred, 1e-7, 1.0)) + ops.convert_to_tensor(self._shift)
        return keras.losses.categorical_crossentropy(
            ops.cast(y_true, "float32"), logits, from_logits=True, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        return {**super().get_config(), "prior": self.prior, "tau": self.tau, "label_smoothing": self.label_smoothing}
