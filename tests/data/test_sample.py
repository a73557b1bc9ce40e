"""The built-in sample: AffectNet's format, deterministic, hard to cheat on, easy to learn."""

import csv
import os

import numpy as np
import pytest
from PIL import Image

from affect_keras.data.prepare import PrepareConfig, prepare
from affect_keras.data.records import Record
from affect_keras.data.sources import affectnet, sample


def test_deterministic_per_seed(tmp_path):
    sample.generate(tmp_path / "a", count=30, seed=3, workers=2)
    sample.generate(tmp_path / "b", count=30, seed=3, workers=1)
    sample.generate(tmp_path / "c", count=30, seed=4, workers=1)

    def files(root):
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    a, b, c = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert a == b
    assert a["Manually_Annotated_file_lists/training.csv"] != c["Manually_Annotated_file_lists/training.csv"]


def test_affectnet_original_format(tmp_path):
    sample.generate(tmp_path, count=50, seed=0)
    lists = tmp_path / "Manually_Annotated_file_lists"
    with open(lists / "training.csv") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == affectnet.COLUMNS
    with open(lists / "validation.csv") as handle:
        validation = list(csv.reader(handle))
    assert len(validation) == 10 and validation[0][0] != "subDirectory_filePath"
    for row in rows[1:] + validation:
        x, y, w, h = map(int, row[1:5])
        with Image.open(tmp_path / "Manually_Annotated_Images" / row[0]) as image:
            assert image.width > w and image.height > h  # the image is larger than the face
            assert 0 <= x and x + w <= image.width + 1 and 0 <= y and y + h <= image.height + 1
        points = [float(v) for v in row[5].split(";") if v]
        assert len(points) == 136
        code, valence = int(row[6]), float(row[7])
        assert (valence == -2) == (code >= 8)
    records = [r for r in affectnet.read(tmp_path) if isinstance(r, Record)]
    assert len(records) == 50


def test_valence_and_arousal_follow_the_class(tmp_path):
    sample.generate(tmp_path, count=400, seed=1)
    records = [r for r in affectnet.read(tmp_path) if isinstance(r, Record) and r.code < 8]
    mean = lambda code, field: np.mean([getattr(r, field) for r in records if r.code == code])  # noqa: E731
    assert mean(1, "valence") > 0.5 and mean(2, "valence") < -0.4 and mean(3, "arousal") > 0.6
    assert mean(2, "arousal") < 0 < mean(6, "arousal")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    prepare(PrepareConfig(source="sample", out=out, count=2500, size=64, seed=0))
    return out


def load_split(out, split, size=None):
    import pandas as pd

    manifest = pd.read_csv(out / f"{split}.csv")
    images = []
    for file in manifest["file"]:
        with Image.open(out / file) as image:
            images.append(np.asarray(image.resize((size, size)) if size else image))
    return np.stack(images), manifest["label_index"].to_numpy()


@pytest.mark.slow
def test_no_single_pixel_or_colour_gives_the_class_away(prepared):
    """Best held-out accuracy of a classifier on one pixel's RGB, or on the mean colour, stays near the
    12.5 % chance level of the balanced test split."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    x_train, y_train = load_split(prepared, "train", size=16)
    x_test, y_test = load_split(prepared, "test", size=16)
    x_train, x_test = x_train.astype(float), x_test.astype(float)
    scores = []
    for i in range(16):
        for j in range(16):
            model = LinearDiscriminantAnalysis().fit(x_train[:, i, j], y_train)
            scores.append(model.score(x_test[:, i, j], y_test))
    colour = LinearDiscriminantAnalysis().fit(x_train.mean(axis=(1, 2)), y_train)
    assert max(scores) < 0.35, max(scores)
    assert colour.score(x_test.mean(axis=(1, 2)), y_test) < 0.3


@pytest.mark.slow
def test_a_small_cnn_learns_it(prepared):
    """>= 90 % test accuracy for a four-layer CNN trained for under a minute on two CPU cores."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    x_train, y_train = load_split(prepared, "train", size=32)
    x_test, y_test = load_split(prepared, "test", size=32)
    keras.utils.set_random_seed(0)
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            layers.Rescaling(1 / 255),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(96, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(128, 3, padding="same", activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(8, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=15, batch_size=32, verbose=0)
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    assert accuracy >= 0.9, accuracy
