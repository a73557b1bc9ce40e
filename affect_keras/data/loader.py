"""A prepared split's manifest -> batches of (uint8 images, target distributions) for fit/evaluate.

A `keras.utils.PyDataset` over the manifest that prepare_dataset.py wrote (`OUT/<split>.csv`), so one
input path serves every backend and needs no TensorFlow (the JAX machines have none). Reading the
manifest rather than the folders also gives what a folder reader cannot:

* soft targets from the FER+ vote columns (`targets="votes"`);
* class-balanced batches (`sampling="oversample"`);
* an order that is a function of (seed, epoch) alone, so a run resumed by `BackupAndRestore` sees the
  same batches an uninterrupted run would. `EpochOrder` tells the dataset which epoch is starting;
* MixUp / CutMix drawn per (seed, epoch, batch) for the same reason.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from PIL import Image

from affect_keras.data.images import load_rgb
from affect_keras.tasks import EXPRESSION, HEADS, get_task

CACHE_LIMIT_BYTES = 2 << 30  # decoded images are kept in memory when the split fits (FER+ at 48 px: 0.2 GB)


class FaceBatches(keras.utils.PyDataset):
    """Batches of one prepared split.

    Args:
        data_dir: the `--out` folder of prepare_dataset.py.
        split: "train", "val", "test", "val_balanced", ...
        class_names: the model's class order (summary.json's `class_names`).
        image_size: side the images are resized to when they are not already that size.
        shuffle: a new order every epoch, drawn from (seed, epoch).
        targets: "majority" (one-hot) or "votes" (the manifest's vote_<Class> columns, normalised).
        sampling: "oversample" draws each epoch's images with probability 1 / (count of their class),
            so classes are equally frequent in expectation; the epoch keeps the split's length.
            "upsample" takes every image once and repeats the images of the smaller classes up to the
            largest class's count; "undersample" draws every class down to the smallest class's count
            (a new draw every epoch). Classes absent from the split are left out of both.
        mix: "mixup" or "cutmix" with Beta(mix_alpha, mix_alpha) mixing ratios.
        task: a name from `affect_keras.tasks.TASKS`: the heads whose targets a batch carries.
            The expression classifier alone gets the targets array; other tasks get {head: targets}:
            `va` (valence, arousal; NaN where the face has none), `polarity` (the class targets summed
            per polarity).
        workers: threads that decode a batch's images (batches themselves are served in order, one at a
            time; `fit` on TensorFlow prefetches them).
        class_weights: {class index: weight}, carried as per-sample weights (a third batch element) for
            tasks with several outputs, where keras's `class_weight` does not apply.
    """

    def __init__(self, data_dir, split: str, class_names, image_size: int, batch_size: int, *,
                 shuffle: bool = False, seed: int = 0, targets: str = "majority", sampling: str = "none",
                 mix: str = "none", mix_alpha: float = 0.2, workers: int = 2, task: str = "expression",
                 class_weights: dict[int, float] | None = None):
        # keras's own worker threads (PyDataset(workers > 1)) fetch ahead through its OrderedEnqueuer,
        # whose stream is not aligned to epochs on JAX: the batch the trainer peeks at to build the model is
        # consumed, and the next epoch's batches are fetched before `EpochOrder` has set the epoch, so an
        # epoch trained on the previous one's order, shifted by a batch (measured: a cached and an uncached
        # JAX run diverged from the first epoch; tests/test_cache.py). Batches are therefore served one at
        # a time, in order, and each batch's images are decoded on `workers` threads of this object's own.
        super().__init__(workers=1, use_multiprocessing=False)
        self.decode_threads = workers
        self._pool = None
        self.root = Path(data_dir)
        self.split = split
        self.class_names = list(class_names)
        self.image_size = image_size
        self.batch_size = batch_size
        self.shuffle, self.seed, self.sampling = shuffle, seed, sampling
        self.mix, self.mix_alpha = mix, mix_alpha
        self.epoch = 0
        # --distribute splits every batch evenly over the replicas: the last batch of an epoch is cut to a
        # multiple of their number (`left_out` says how many images that skips)
        self.multiple_of = 1
        self._order = (None, None)  # (epoch, its order): drawn once per epoch, not once per batch
        manifest = read_manifest(self.root, split, self.class_names)
        self.files = [str(self.root / f) for f in manifest["file"]]
        self.labels = manifest["label"].map({n: k for k, n in enumerate(self.class_names)}).to_numpy()
        self.task = get_task(task)
        self.columns = self._columns(manifest, _targets(manifest, self.labels, self.class_names, targets),
                                     class_weights)
        self._cache = None
        if len(self.files) * image_size * image_size * 3 <= CACHE_LIMIT_BYTES:
            self._cache = np.zeros((len(self.files), image_size, image_size, 3), np.uint8)
            self._cached = np.zeros(len(self.files), bool)

    @property
    def epoch_size(self) -> int:
        """Images per epoch: the split's, or what upsampling / undersampling makes of it."""
        if self.sampling not in ("upsample", "undersample"):
            return len(self.files)
        present = np.bincount(self.labels)
        present = present[present > 0]
        return len(present) * int(present.max() if self.sampling == "upsample" else present.min())

    def __len__(self) -> int:
        full, rest = divmod(self.epoch_size, self.batch_size)
        return full + (rest >= self.multiple_of)

    @property
    def left_out(self) -> int:
        """Images per epoch the last batch leaves out to stay a multiple of `multiple_of`."""
        return (self.epoch_size % self.batch_size) % self.multiple_of

    def order(self, epoch: int) -> np.ndarray:
        """The image indices of `epoch`, in batch order."""
        n = len(self.files)
        rng = np.random.default_rng([self.seed, epoch])
        if self.sampling == "oversample":
            counts = np.bincount(self.labels, minlength=len(self.class_names))
            p = 1.0 / counts[self.labels]
            return rng.choice(n, size=n, p=p / p.sum())
        if self.sampling in ("upsample", "undersample"):
            members = [np.flatnonzero(self.labels == c) for c in np.unique(self.labels)]
            share = self.epoch_size // max(len(members), 1)
            drawn = [_draw_without_replacement(rng, m, share) for m in members]
            return rng.permutation(np.concatenate(drawn)) if drawn else np.arange(0)
        return rng.permutation(n) if self.shuffle else np.arange(n)

    def batch(self, index: int) -> tuple[int, np.ndarray]:
        """(epoch, image indices) of batch `index` of the current epoch."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        epoch, order = self._order
        if epoch != self.epoch:
            epoch, order = self.epoch, self.order(self.epoch)
            self._order = (epoch, order)  # one tuple assignment, so worker threads never see a mixed pair
        chosen = order[index * self.batch_size:(index + 1) * self.batch_size]
        return epoch, chosen[:len(chosen) - len(chosen) % self.multiple_of]

    def __getitem__(self, index: int):
        epoch, chosen = self.batch(index)
        images = np.stack(self.images(chosen))
        columns = {name: values[chosen] for name, values in self.columns.items()}
        if self.mix != "none":  # the expression classifier alone (TrainConfig refuses mixing otherwise)
            images, columns[EXPRESSION] = self.mixed(epoch, index, images, columns[EXPRESSION])
        return self.arrange(images, columns)

    def repeat(self, times: int) -> None:
        """List every image `times` over, with its targets (benchmarks that need more rows than a split
        has); the in-memory copy of decoded images is dropped, so every row is decoded."""
        self.files = self.files * times
        self.labels = np.tile(self.labels, times)
        self.columns = {name: np.concatenate([values] * times) for name, values in self.columns.items()}
        self._cache = None

    @property
    def targets(self) -> np.ndarray:
        """(images, classes) expression targets: one-hot, or FER+ vote distributions."""
        return self.columns[EXPRESSION]

    def _columns(self, manifest: pd.DataFrame, targets: np.ndarray, class_weights) -> dict[str, np.ndarray]:
        """Per image: the targets of every head, and "weight" when class weights travel per sample."""
        # the expression targets always (labels, sampling and MixUp read them), then each head's own
        columns = {head: HEADS[head].targets(manifest, targets, self.class_names)
                   for head in dict.fromkeys((EXPRESSION, *self.task.heads))}
        if class_weights and self.task.dict_outputs:
            table = np.array([class_weights.get(k, 1.0) for k in range(len(self.class_names))], "float32")
            columns["weight"] = table[self.labels]
        return columns

    def arrange(self, inputs, columns: dict):
        """(inputs, targets) or (inputs, targets, sample weights) as fit reads them, from the per-image
        `columns` of a batch (numpy or tf tensors alike)."""
        if self.task.dict_outputs:
            targets = {head: columns[head] for head in self.task.heads}
        else:
            targets = columns[EXPRESSION]
        return (inputs, targets, columns["weight"]) if "weight" in columns else (inputs, targets)

    def mixed(self, epoch: int, index: int, images: np.ndarray, targets: np.ndarray):
        """Batch `index` of `epoch` after MixUp or CutMix, drawn from (seed, epoch, batch): the same on
        every input path and after a restore."""
        rng = np.random.default_rng([self.seed, int(epoch), int(index), 1])
        images, targets = (mixup if self.mix == "mixup" else cutmix)(images, targets, self.mix_alpha, rng)
        return images, targets.astype(np.float32)

    def images(self, chosen) -> list[np.ndarray]:
        """Images `chosen` of the manifest, decoded on `decode_threads` threads (PIL releases Python's lock
        while it decodes)."""
        if self.decode_threads <= 1 or len(chosen) < 2:
            return [self.image(i) for i in chosen]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.decode_threads, thread_name_prefix="FaceBatches")
        return list(self._pool.map(self.image, chosen))

    def image(self, i: int) -> np.ndarray:
        """Image `i` of the manifest as (size, size, 3) uint8."""
        if self._cache is not None and self._cached[i]:
            return self._cache[i]
        pixels = load_image(self.files[i], self.image_size)
        if self._cache is not None:
            self._cache[i] = pixels
            self._cached[i] = True
        return pixels


def _draw_without_replacement(rng: np.random.Generator, members: np.ndarray, size: int) -> np.ndarray:
    """`size` of `members`: whole shuffled copies while they fit, then a draw without replacement."""
    whole, rest = divmod(size, len(members))
    return np.concatenate([*(rng.permutation(members) for _ in range(whole)),
                           rng.choice(members, rest, replace=False)])


class EpochOrder(keras.callbacks.Callback):
    """Tells a `FaceBatches` which epoch starts, including the first epoch after a restore."""

    def __init__(self, dataset: FaceBatches):
        super().__init__()
        self.dataset = dataset

    def on_epoch_begin(self, epoch, logs=None):
        self.dataset.epoch = epoch


def read_summary(data_dir: Path) -> dict:
    """What prepare_dataset.py wrote: class order, per-split counts."""
    path = Path(data_dir) / "summary.json"
    if not path.is_file():
        raise ValueError(f"--data {data_dir}: no summary.json; prepare it with prepare_dataset.py first")
    return json.loads(path.read_text())


def read_manifest(data_dir: Path, split: str, class_names) -> pd.DataFrame:
    path = Path(data_dir) / f"{split}.csv"
    if not path.is_file():
        raise ValueError(f"--data {data_dir}: no {split}.csv manifest; prepare it with prepare_dataset.py")
    manifest = pd.read_csv(path, keep_default_na=False)
    unknown = sorted(set(manifest["label"]) - set(class_names))
    if unknown:
        raise ValueError(f"--data {data_dir}: {split}.csv has labels {unknown} outside summary.json's classes")
    return manifest


def load_image(path: str, size: int) -> np.ndarray:
    """A prepared face as (size, size, 3) uint8; raises ImageError naming what is wrong with the file."""
    image = load_rgb(Path(path), upright=False)  # prepare wrote it upright, without EXIF
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def _targets(manifest: pd.DataFrame, labels: np.ndarray, class_names: list[str], kind: str) -> np.ndarray:
    one_hot = np.eye(len(class_names), dtype="float32")[labels]
    if kind == "majority":
        return one_hot
    columns = [f"vote_{name}" for name in class_names]
    missing = [c for c in columns if c not in manifest]
    if missing:
        raise ValueError(f"--targets votes: the manifest has no vote columns ({', '.join(missing)}); "
                         f"only FER+ provides votes, use --targets majority")
    votes = manifest[columns].apply(pd.to_numeric, errors="coerce").fillna(0).to_numpy("float32")
    totals = votes.sum(axis=1, keepdims=True)
    return np.where(totals > 0, votes / np.maximum(totals, 1), one_hot)


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
        images[k, y:y + h, x:x + w] = source[partner[k], y:y + h, x:x + w]
        kept[k] = 1 - h * w / (height * width)
    return images, kept[:, None] * targets + (1 - kept[:, None]) * targets[partner]
