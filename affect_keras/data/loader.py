"""The Python input path: a split's batches as a `keras.utils.PyDataset`, so one input path serves every
backend and needs no TensorFlow (the JAX machines have none).

A thin server over the split's parts, each readable alone:

* `data.table.SplitTable`: the files and, per image, every head's targets (FER+ votes as soft targets);
* `data.sampler.EpochSampler`: each epoch's rows, a function of (seed, epoch) alone, class-balanced when
  asked, the last batch cut to a multiple of the replicas;
* `data.mixing.Mixer`: MixUp / CutMix drawn per (seed, epoch, batch);
* `DecodedImages` (here): the chosen files decoded on a few threads, kept in memory when the split fits.

`data.tfdata` serves the same parts through tf.data. `EpochOrder` tells the sampler which epoch starts.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from affect_keras.data.images import ImageError, load_rgb
from affect_keras.data.mixing import Mixer
from affect_keras.data.sampler import EpochSampler
from affect_keras.data.table import SplitTable
from affect_keras.tasks import EXPRESSION

CACHE_LIMIT_BYTES = 2 << 30  # decoded images are kept in memory when the split fits (FER+ at 48 px: 0.2 GB)


class DecodedImages:
    """The files of a split as (size, size, 3) uint8, decoded on `threads` threads (PIL releases Python's
    lock while it decodes) and kept in memory after the first decode when `keep` and they fit
    `CACHE_LIMIT_BYTES`."""

    def __init__(self, files, size: int, threads: int = 2, keep: bool = True):
        self.files, self.size, self.threads = list(files), size, threads
        self._pool = None
        self._kept = None
        if keep and len(self.files) * size * size * 3 <= CACHE_LIMIT_BYTES:
            self._kept = np.zeros((len(self.files), size, size, 3), np.uint8)
            self._done = np.zeros(len(self.files), bool)

    def __getitem__(self, i: int) -> np.ndarray:
        if self._kept is not None and self._done[i]:
            return self._kept[i]
        pixels = load_image(self.files[i], self.size)
        if self._kept is not None:
            self._kept[i] = pixels
            self._done[i] = True
        return pixels

    def take(self, chosen) -> np.ndarray:
        """(len(chosen), size, size, 3): the images `chosen`, in that order."""
        if self.threads <= 1 or len(chosen) < 2:
            return np.stack([self[i] for i in chosen])
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="DecodedImages")
        return np.stack(list(self._pool.map(self.__getitem__, chosen)))


class FaceBatches(keras.utils.PyDataset):
    """Batches of one prepared split, (uint8 images, targets[, sample weights]) as `fit` reads them.

    Args:
        data_dir: the `--out` folder of prepare_dataset.py.
        split: "train", "val", "test", "val_balanced", ...
        class_names: the model's class order (summary.json's `class_names`).
        image_size: side the images are resized to when they are not already that size.
        batch_size, shuffle, seed, sampling, multiple_of: the epoch's order (`data.sampler.EpochSampler`).
        targets, task, class_weights: what each image is trained towards (`data.table.SplitTable.read`).
        mix, mix_alpha: MixUp or CutMix (`data.mixing.Mixer`).
        workers: threads that decode a batch's images (batches themselves are served in order, one at a
            time; `fit` on TensorFlow prefetches them).
        keep_decoded: keep decoded images in memory when the split fits (False: decode every epoch, on
            either input path).

    Examples:
        >>> faces = FaceBatches("data/fer48", "train", names, 48, 64, shuffle=True, seed=1)
        >>> images, targets = faces[0]
    """

    def __init__(
        self,
        data_dir,
        split: str,
        class_names,
        image_size: int,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        targets: str = "majority",
        sampling: str = "none",
        mix: str = "none",
        mix_alpha: float = 0.2,
        workers: int = 2,
        task: str = "expression",
        class_weights: dict[int, float] | None = None,
        multiple_of: int = 1,
        keep_decoded: bool = True,
    ):
        # keras's own worker threads (PyDataset(workers > 1)) fetch ahead through its OrderedEnqueuer,
        # whose stream is not aligned to epochs on JAX: the batch the trainer peeks at to build the model is
        # consumed, and the next epoch's batches are fetched before `EpochOrder` has set the epoch, so an
        # epoch trained on the previous one's order, shifted by a batch (measured: a cached and an uncached
        # JAX run diverged from the first epoch; tests/training/test_cache.py). Batches are therefore served one at
        # a time, in order, and each batch's images are decoded on `workers` threads of `DecodedImages`.
        super().__init__(workers=1, use_multiprocessing=False)
        self.image_size, self.batch_size = image_size, batch_size
        self.table = SplitTable.read(
            data_dir, split, class_names, targets=targets, task=task, class_weights=class_weights
        )
        self.sampler = EpochSampler(
            self.table.labels,
            len(self.table.class_names),
            batch_size,
            shuffle=shuffle,
            seed=seed,
            sampling=sampling,
            multiple_of=multiple_of,
        )
        self.mixer = Mixer(mix, mix_alpha, seed)
        self.keep_decoded = keep_decoded  # the tf.data server follows it too
        self.decoded = DecodedImages(self.table.files, image_size, workers, keep_decoded)

    def __len__(self) -> int:
        return len(self.sampler)

    def __getitem__(self, index: int):
        epoch, chosen = self.sampler.batch(index)
        images, columns = self.decoded.take(chosen), self.table.rows(chosen)
        if self.mixer.active:  # the expression classifier alone (TrainConfig refuses mixing otherwise)
            images, columns[EXPRESSION] = self.mixer(epoch, index, images, columns[EXPRESSION])
        return self.table.arrange(images, columns)

    def repeat(self, times: int) -> None:
        """List every image `times` over, with its targets (benchmarks that need more rows than a split
        has); nothing is kept decoded, so every row is decoded."""
        self.table = self.table.repeated(times)
        self.sampler = replace(self.sampler, labels=self.table.labels)
        self.keep_decoded = False
        self.decoded = DecodedImages(self.table.files, self.image_size, self.decoded.threads, keep=False)

    # what its readers (the trainer, the cache, evaluation, tests) ask of a split, read from its parts
    epoch = property(
        lambda self: self.sampler.epoch,
        lambda self, epoch: setattr(self.sampler, "epoch", epoch),
        doc="The epoch being served (`EpochOrder` sets it).",
    )
    multiple_of = property(
        lambda self: self.sampler.multiple_of, lambda self, n: setattr(self.sampler, "multiple_of", n)
    )
    root = property(lambda self: self.table.root)
    split = property(lambda self: self.table.split)
    files = property(lambda self: self.table.files)
    labels = property(lambda self: self.table.labels)
    columns = property(lambda self: self.table.columns)
    targets = property(lambda self: self.table.targets)
    epoch_size = property(lambda self: self.sampler.epoch_size)
    left_out = property(lambda self: self.sampler.left_out)

    def order(self, epoch: int) -> np.ndarray:
        return self.sampler.order(epoch)

    def image(self, i: int) -> np.ndarray:
        return self.decoded[i]


class EpochOrder(keras.callbacks.Callback):
    """Tells a `FaceBatches` (its sampler) which epoch starts, including the first epoch after a restore."""

    def __init__(self, dataset: FaceBatches):
        super().__init__()
        self.dataset = dataset

    def on_epoch_begin(self, epoch, logs=None):
        self.dataset.epoch = epoch


def load_image(path: str, size: int) -> np.ndarray:
    """A prepared face as (size, size, 3) uint8; raises ImageError naming the file and what is wrong with it
    (a prepared folder damaged after prepare_dataset.py wrote it)."""
    try:
        image = load_rgb(Path(path), upright=False)  # prepare wrote it upright, without EXIF
    except ImageError as error:
        raise ImageError(f"{path}: {error}; prepare the dataset again") from None
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)
