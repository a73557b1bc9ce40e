"""Prepared class folders -> batches of uint8 images and one-hot labels for fit/evaluate.

TensorFlow lives here (tf.data), not in the models: the model casts and preprocesses itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras


def read_summary(data_dir: Path) -> dict:
    """What prepare_dataset.py wrote: class order, per-split counts."""
    path = Path(data_dir) / "summary.json"
    if not path.is_file():
        raise ValueError(f"--data {data_dir}: no summary.json; prepare it with prepare_dataset.py first")
    return json.loads(path.read_text())


def image_dataset(data_dir: Path, split: str, class_names, image_size: int, batch_size: int,
                  shuffle: bool, seed: int):
    """Batches of (uint8 images, one-hot labels) from `data_dir/split`, or None if the split is empty."""
    import tensorflow as tf

    folder = Path(data_dir) / split
    if not folder.is_dir() or not any(folder.rglob("*.jpg")):
        return None
    dataset = keras.utils.image_dataset_from_directory(
        folder, labels="inferred", label_mode="categorical", class_names=list(class_names),
        image_size=(image_size, image_size), batch_size=batch_size, shuffle=shuffle, seed=seed,
        verbose=False)
    to_uint8 = lambda images, labels: (tf.cast(tf.clip_by_value(tf.round(images), 0, 255), tf.uint8), labels)  # noqa: E731
    return dataset.map(to_uint8, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
