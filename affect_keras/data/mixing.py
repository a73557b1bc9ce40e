"""MixUp and CutMix on a batch of uint8 images and their target distributions: a registry of the two
(`MIXERS`, name -> function) and `Mixer`, which draws each batch's mixing from (seed, epoch, batch) so that
every input path, and a run resumed after a kill, mixes the same way. No keras, no TensorFlow."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from affect_keras.options import OptionError


def mixup(images: np.ndarray, targets: np.ndarray, alpha: float, rng: np.random.Generator):
    """Zhang et al. 2018: each image blended with another of the batch, targets in the same ratio."""
    ratio = rng.beta(alpha, alpha, size=len(images)).astype("float32")
    partner = rng.permutation(len(images))
    mixed = ratio[:, None, None, None] * images + (1 - ratio[:, None, None, None]) * images[partner]
    targets = ratio[:, None] * targets + (1 - ratio[:, None]) * targets[partner]
    return np.round(mixed).astype(np.uint8), targets


def cutmix(images: np.ndarray, targets: np.ndarray, alpha: float, rng: np.random.Generator):
    """Yun et al. 2019: a box of another image pasted in; targets weighted by the pasted area."""
    source, images = images, images.copy()
    height, width = images.shape[1:3]
    partner = rng.permutation(len(images))
    kept = np.empty(len(images), "float32")
    for k, ratio in enumerate(rng.beta(alpha, alpha, size=len(images))):
        h, w = int(height * math.sqrt(1 - ratio)), int(width * math.sqrt(1 - ratio))
        y, x = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
        images[k, y : y + h, x : x + w] = source[partner[k], y : y + h, x : x + w]
        kept[k] = 1 - h * w / (height * width)
    return images, kept[:, None] * targets + (1 - kept[:, None]) * targets[partner]


MIXERS = {"mixup": mixup, "cutmix": cutmix}  # --mix's choices, with "none"


@dataclass(frozen=True)
class Mixer:
    """Mixes the expression targets' batches (a task with other heads is refused by TrainConfig).

    Args:
        kind: "none" or a name of `MIXERS`.
        alpha: mixing ratios are drawn from Beta(alpha, alpha).
        seed: with the epoch and the batch's index, fixes each batch's draw.
    """

    kind: str = "none"
    alpha: float = 0.2
    seed: int = 0

    def __post_init__(self):
        if self.kind != "none" and self.kind not in MIXERS:
            raise OptionError("mix", f"must be none or one of {', '.join(MIXERS)}, not {self.kind!r}")

    @property
    def active(self) -> bool:
        return self.kind != "none"

    def __call__(self, epoch: int, index: int, images: np.ndarray, targets: np.ndarray):
        """Batch `index` of `epoch` mixed; (images, float32 targets)."""
        if not self.active:
            return images, targets
        rng = np.random.default_rng([self.seed, int(epoch), int(index), 1])
        images, targets = MIXERS[self.kind](images, targets, self.alpha, rng)
        return images, targets.astype(np.float32)
