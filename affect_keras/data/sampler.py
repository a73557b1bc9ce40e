"""Which rows of a split each batch of an epoch takes: a function of (seed, epoch) alone.

So a run resumed by `BackupAndRestore` sees the batches an uninterrupted run would, and both input paths
(`data.loader`, `data.tfdata`) serve the same batches. `loader.EpochOrder` sets `epoch` as each epoch
starts, including the first epoch after a restore. No keras, no TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(eq=False)  # arrays inside: compared by identity
class EpochSampler:
    """Each epoch's order of a split's rows, cut into batches.

    Args:
        labels: (images,) class index of each row (`SplitTable.labels`).
        classes: the number of classes (a class may be absent from the split).
        batch_size: rows per batch (the global batch under `--distribute`).
        shuffle: a new order every epoch, drawn from (seed, epoch); otherwise manifest order.
        seed: with the epoch, fixes every draw.
        sampling: "none"; "oversample" draws each epoch's rows with probability 1 / (count of their class),
            so classes are equally frequent in expectation and the epoch keeps the split's length;
            "upsample" takes every row once and repeats the rows of the smaller classes up to the largest
            class's count; "undersample" draws every class down to the smallest class's count (a new draw
            every epoch). Classes absent from the split are left out of both.
        multiple_of: the number of replicas: `--distribute` splits every batch evenly over them, so the last
            batch of an epoch is cut to a multiple of it (`left_out` says how many rows that skips).
        epoch: the epoch being served.
    """

    labels: np.ndarray
    classes: int
    batch_size: int
    shuffle: bool = False
    seed: int = 0
    sampling: str = "none"
    multiple_of: int = 1
    epoch: int = 0
    _drawn: tuple = field(default=(None, None), init=False, repr=False)  # (epoch, its order), drawn once

    @property
    def epoch_size(self) -> int:
        """Rows per epoch: the split's, or what upsampling / undersampling makes of it."""
        if self.sampling not in ("upsample", "undersample"):
            return len(self.labels)
        present = np.bincount(self.labels)
        present = present[present > 0]
        return len(present) * int(present.max() if self.sampling == "upsample" else present.min())

    def __len__(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(self.epoch_size, self.batch_size)
        return full + (rest >= self.multiple_of)

    @property
    def left_out(self) -> int:
        """Rows per epoch the last batch leaves out to stay a multiple of `multiple_of`."""
        return (self.epoch_size % self.batch_size) % self.multiple_of

    @property
    def kept(self) -> int:
        """Rows per epoch that are served."""
        return self.epoch_size - self.left_out

    def order(self, epoch: int) -> np.ndarray:
        """The row indices of `epoch`, in batch order (before the last batch is cut)."""
        n = len(self.labels)
        rng = np.random.default_rng([self.seed, epoch])
        if self.sampling == "oversample":
            counts = np.bincount(self.labels, minlength=self.classes)
            p = 1.0 / counts[self.labels]
            return rng.choice(n, size=n, p=p / p.sum())
        if self.sampling in ("upsample", "undersample"):
            members = [np.flatnonzero(self.labels == c) for c in np.unique(self.labels)]
            share = self.epoch_size // max(len(members), 1)
            drawn = [draw_without_replacement(rng, m, share) for m in members]
            return rng.permutation(np.concatenate(drawn)) if drawn else np.arange(0)
        return rng.permutation(n) if self.shuffle else np.arange(n)

    def batch(self, index: int) -> tuple[int, np.ndarray]:
        """(epoch, row indices) of batch `index` of the current epoch."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        epoch, order = self._drawn
        if epoch != self.epoch:
            epoch, order = self.epoch, self.order(self.epoch)
            self._drawn = (epoch, order)  # one tuple assignment, so worker threads never see a mixed pair
        chosen = order[index * self.batch_size : (index + 1) * self.batch_size]
        return epoch, chosen[: len(chosen) - len(chosen) % self.multiple_of]


def draw_without_replacement(rng: np.random.Generator, members: np.ndarray, size: int) -> np.ndarray:
    """`size` of `members`: whole shuffled copies while they fit, then a draw without replacement."""
    whole, rest = divmod(size, len(members))
    return np.concatenate([*(rng.permutation(members) for _ in range(whole)), rng.choice(members, rest, replace=False)])
