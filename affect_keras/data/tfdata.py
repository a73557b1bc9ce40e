"""The tf.data input path (TensorFlow backend): the batches `FaceBatches` serves, decoded by tf.data.

`FaceBatches` decodes with PIL on two Python threads; here the JPEGs are read, decoded and resized by
tf.data's parallel map outside the Python interpreter lock, batched as uint8 and prefetched while the
model trains. Both servers are built on the same parts, so they give the same batches:

* the rows of each batch come from `sampler.EpochSampler` (shuffle or class-balanced sampling, drawn from
  (seed, epoch) at the start of each epoch: the epoch is set by `EpochOrder`, also after
  `BackupAndRestore`), so a killed run resumes to the same weights;
* the targets (one-hot or FER+ vote distributions, and every other head's) and per-sample weights are the
  `table.SplitTable`'s columns, arranged by its `arrange`;
* MixUp / CutMix run `mixing.Mixer` with the generator of (seed, epoch, batch).

A split whose decoded images fit `CACHE_LIMIT_BYTES` is decoded once (by the same parallel map) and
later epochs gather from memory, as `FaceBatches` does.

Images prepared at the training size are decoded exactly as PIL decodes them (both use libjpeg); when
they must be resized, tf.image's antialiased bilinear resize stands for PIL's and may differ by a grey
level or two.

tf.data's autotuner is off for these pipelines: the decode map runs `DECODE_CALLS` calls at once and the
buffers are fixed. On the 2-core development machine the autotuner left the decode map of about half of
the new iterators running one call at a time, so that an epoch decoded at ~3,000 images/s on one core
instead of ~6,000 on two, and which epochs did so changed from run to run (docs/benchmark.md).

TensorFlow is imported here only: the module is imported when the TensorFlow path is chosen.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from affect_keras.data.loader import CACHE_LIMIT_BYTES, FaceBatches
from affect_keras.data.mixing import Mixer
from affect_keras.data.sampler import EpochSampler
from affect_keras.data.table import SplitTable
from affect_keras.tasks import EXPRESSION

# files read and decoded at once: every core this process may run on busy, and one more call queued per core
# to cover a file read that waits on the disk
DECODE_CALLS = 2 * (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
PREFETCH_BATCHES = 2  # batches made ahead of the one being trained on


def fixed(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset` with tf.data's autotuner off (the module's docstring says why)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


# decode_jpeg's kernel reads the format from the file's first bytes and decodes these itself (as decode_image
# does); prepare writes JPEG only. Files of other formats (BMP, WebP) go through decode_image, chosen per file
# by a tf.cond that costs ~5 % of the decode rate, so it is used only for a split that has such files.
SINGLE_OP_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif")


def single_op(files: list[str]) -> bool:
    """Whether every file is of a format that `decode_jpeg` decodes itself."""
    return all(file.lower().endswith(SINGLE_OP_SUFFIXES) for file in files)


def decode(path: tf.Tensor, size: int, any_format: bool = True) -> tf.Tensor:
    """A prepared face file -> (size, size, 3) uint8; `any_format=False` when `single_op` holds."""
    data = tf.io.read_file(path)
    # PIL's inverse DCT (islow), not TF's default (ifast)
    jpeg = lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")  # noqa: E731
    image = (
        tf.cond(tf.io.is_jpeg(data), jpeg, lambda: tf.io.decode_image(data, channels=3, expand_animations=False))
        if any_format
        else jpeg()
    )
    shape = tf.shape(image)

    def if_resized():
        resized = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
        return tf.cast(tf.round(tf.clip_by_value(resized, 0, 255)), tf.uint8)

    image = tf.cond(tf.logical_and(shape[0] == size, shape[1] == size), lambda: image, if_resized)
    return tf.ensure_shape(image, (size, size, 3))


def decode_all(files: list[str], size: int, batch_size: int = 256) -> np.ndarray:
    """Every file, in order, as one (n, size, size, 3) uint8 array, decoded in parallel."""
    out = np.empty((len(files), size, size, 3), np.uint8)
    any_format = not single_op(files)
    dataset = fixed(
        tf.data.Dataset.from_tensor_slices(files)
        .map(lambda p: decode(p, size, any_format), num_parallel_calls=DECODE_CALLS, deterministic=True)
        .batch(batch_size)
        .prefetch(PREFETCH_BATCHES)
    )
    start = 0
    for images in dataset:
        out[start : start + len(images)] = images.numpy()
        start += len(images)
    return out


def epoch_batches(
    table: SplitTable, sampler: EpochSampler, mixer: Mixer, size: int, images: np.ndarray | None = None
) -> tf.data.Dataset:
    """The batches of `sampler.order(sampler.epoch)`, the epoch read when each epoch's iterator starts
    (after `EpochOrder` set it): (uint8 images, targets) arranged by `table.arrange`.

    `images` holds the whole split decoded, in manifest order; without it each image is decoded from its
    file by the parallel map.
    """
    classes = table.targets.shape[1]
    batch = sampler.batch_size
    files, any_format = tf.constant(table.files), not single_op(table.files)
    columns = {name: tf.constant(values, tf.float32) for name, values in table.columns.items()}

    def gather(chosen):  # per-image targets (and weights) of the chosen images
        return {name: tf.gather(values, chosen) for name, values in columns.items()}

    def draw():
        epoch = sampler.epoch
        return np.int64(epoch), sampler.order(epoch)[: sampler.kept].astype(np.int64)

    def one_epoch(_):
        epoch, order = tf.numpy_function(draw, [], (tf.int64, tf.int64), stateful=True)
        indices = tf.data.Dataset.from_tensor_slices(tf.ensure_shape(order, (sampler.kept,)))
        if images is not None:
            batches = indices.batch(batch).map(
                lambda chosen: (
                    tf.ensure_shape(
                        tf.numpy_function(lambda c: images[c], [chosen], tf.uint8, stateful=False),
                        (None, size, size, 3),
                    ),
                    gather(chosen),
                )
            )
        else:  # the parallel map decodes only; targets are gathered once per batch of indices
            batches = tf.data.Dataset.zip(
                indices.map(
                    lambda i: decode(tf.gather(files, i), size, any_format),
                    num_parallel_calls=DECODE_CALLS,
                    deterministic=True,
                ).batch(batch),
                indices.batch(batch).map(gather),
            )
        if mixer.active:  # the expression classifier alone: mixing blends its targets only

            def mixed(index, batch):
                pixels, targets = batch
                pixels, mixed_targets = (
                    tf.ensure_shape(t, s)
                    for t, s in zip(
                        tf.numpy_function(
                            mixer, [epoch, index, pixels, targets[EXPRESSION]], (tf.uint8, tf.float32), stateful=False
                        ),
                        ((None, size, size, 3), (None, classes)),
                    )
                )
                return pixels, {**targets, EXPRESSION: mixed_targets}

            batches = batches.enumerate().map(mixed)
        return batches.map(table.arrange)

    dataset = tf.data.Dataset.range(1).flat_map(one_epoch)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(sampler)))
    return fixed(dataset.prefetch(PREFETCH_BATCHES))


def image_batches(faces: FaceBatches):
    """The batches `faces` serves, as a tf.data pipeline of (uint8 images, targets) built on its parts
    (table, sampler, mixer): the split decoded once into memory when it fits `CACHE_LIMIT_BYTES` (and
    `faces.keep_decoded`), else decoded from the files every epoch.
    """
    parts, size = (faces.table, faces.sampler, faces.mixer), faces.image_size
    if not faces.keep_decoded or len(faces.table) * size * size * 3 > CACHE_LIMIT_BYTES:
        return epoch_batches(*parts, size)
    return epoch_batches(*parts, size, decode_all(faces.table.files, size))
