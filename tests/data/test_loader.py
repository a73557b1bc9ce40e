"""The manifest-driven input path: order, oversampling, vote targets, MixUp/CutMix."""

import json

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from affect_keras.data.loader import FaceBatches
from affect_keras.data.mixing import cutmix, mixup

NAMES = ["Neutral", "Happy", "Sad"]


@pytest.fixture
def data(tmp_path):
    """A prepared-looking folder: 30 train images (20 Neutral, 8 Happy, 2 Sad) with FER+ vote columns."""
    rows = []
    labels = ["Neutral"] * 20 + ["Happy"] * 8 + ["Sad"] * 2
    for k, label in enumerate(labels):
        path = tmp_path / "train" / label / f"{k}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8, 3), k, np.uint8)).save(path)  # pixel value = manifest row
        votes = {f"vote_{n}": 0 for n in NAMES} | {
            f"vote_{label}": 6,
            "vote_Sad" if label != "Sad" else "vote_Neutral": 2,
        }
        rows.append({"file": f"train/{label}/{k}.png", "label": label, **votes})
    pd.DataFrame(rows).to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "summary.json").write_text(json.dumps({"class_names": NAMES}))
    return tmp_path


def rows_of(batches, epoch):
    batches.epoch = epoch
    return np.concatenate([images[:, 0, 0, 0] for images, _ in (batches[i] for i in range(len(batches)))])


def test_each_epoch_is_a_new_permutation_fixed_by_seed_and_epoch(data):
    batches = FaceBatches(data, "train", NAMES, 8, 4, shuffle=True, seed=3)
    first, second = rows_of(batches, 0), rows_of(batches, 1)
    assert sorted(first) == list(range(30)) and sorted(second) == list(range(30))
    assert list(first) != list(second)
    again = FaceBatches(data, "train", NAMES, 8, 4, shuffle=True, seed=3)
    np.testing.assert_array_equal(rows_of(again, 1), second)  # what a resumed run sees in epoch 1
    assert list(rows_of(FaceBatches(data, "train", NAMES, 8, 4), 5)) == list(range(30))  # no shuffle


def test_images_are_resized_uint8_and_targets_match_them(data):
    images, targets = FaceBatches(data, "train", NAMES, 16, 30)[0]
    assert images.shape == (30, 16, 16, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(targets.argmax(1), [0] * 20 + [1] * 8 + [2] * 2)


def test_oversampling_balances_classes(data):
    batches = FaceBatches(data, "train", NAMES, 8, 10, sampling="oversample", seed=0)
    labels = np.concatenate([batches.labels[batches.order(epoch)] for epoch in range(200)])
    shares = np.bincount(labels) / len(labels)
    np.testing.assert_allclose(shares, [1 / 3] * 3, atol=0.02)
    assert len(batches.order(0)) == 30


def test_vote_targets_are_the_normalised_votes(data):
    _, targets = FaceBatches(data, "train", NAMES, 8, 30, targets="votes")[0]
    np.testing.assert_allclose(targets[0], [0.75, 0, 0.25])  # Neutral 6, Sad 2
    np.testing.assert_allclose(targets[29], [0.25, 0, 0.75])  # Sad 6, Neutral 2
    (data / "plain.csv").write_text("file,label\ntrain/Sad/28.png,Sad\n")
    with pytest.raises(ValueError, match="^targets votes: the manifest has no vote columns"):
        FaceBatches(data, "plain", NAMES, 8, 4, targets="votes")


def test_manifest_problems_are_clear_errors(data):
    with pytest.raises(ValueError, match="no val.csv manifest"):
        FaceBatches(data, "val", NAMES, 8, 4)
    (data / "odd.csv").write_text("file,label\ntrain/Sad/28.png,Joy\n")
    with pytest.raises(ValueError, match=r"odd.csv has labels \['Joy'\] outside"):
        FaceBatches(data, "odd", NAMES, 8, 4)


def test_mixup_blends_images_and_targets_in_the_same_ratio():
    rng = np.random.default_rng(0)
    images = np.stack([np.full((4, 4, 3), 0, np.uint8), np.full((4, 4, 3), 200, np.uint8)])
    targets = np.eye(2, dtype="float32")
    mixed, mixed_targets = mixup(images, targets, 0.4, rng)
    np.testing.assert_allclose(mixed_targets.sum(1), 1, rtol=1e-6)
    # image 0 is black: its brightness is the share of the white image, which is its target for class 1
    np.testing.assert_allclose(mixed[0, 0, 0, 0] / 200, mixed_targets[0, 1], atol=1 / 200)
    assert mixed.dtype == np.uint8


def test_cutmix_targets_are_the_pasted_area():
    rng = np.random.default_rng(1)
    images = np.stack([np.zeros((20, 20, 3), np.uint8), np.full((20, 20, 3), 255, np.uint8)])
    mixed, mixed_targets = cutmix(images, np.eye(2, dtype="float32"), 1.0, rng)
    for k in range(2):
        white = (mixed[k, :, :, 0] == 255).mean()
        assert mixed_targets[k, 1] == pytest.approx(white, abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("in_memory", [True, False])
@pytest.mark.parametrize(
    "options",
    [
        dict(shuffle=True),
        dict(sampling="oversample", mix="cutmix"),
        dict(shuffle=True, mix="mixup"),
        dict(shuffle=True, task="multitask", class_weights={0: 2.0, 7: 3.0}),
        dict(sampling="oversample", task="hierarchical", targets="majority"),
        dict(shuffle=True, multiple_of=4),
    ],
)
def test_tf_data_gives_the_batches_of_face_batches(small_sample, monkeypatch, in_memory, options):
    """Same seed and epoch, same batches: the order, the sampling, the mixing and the targets are drawn
    the same way, and JPEGs at the prepared size decode to the same pixels (both use libjpeg's islow)."""
    from affect_keras.data import tfdata
    from affect_keras.data.table import read_summary

    if not in_memory:
        monkeypatch.setattr(tfdata, "CACHE_LIMIT_BYTES", 0)  # decoded from the files every epoch
    names = read_summary(small_sample)["class_names"]
    options = dict(options)
    multiple_of = options.pop("multiple_of", 1)  # as --distribute sets it for the replicas
    faces = FaceBatches(small_sample, "train", names, 32, 16, seed=5, **options)
    faces.multiple_of = multiple_of
    assert multiple_of == 1 or faces.left_out > 0  # the last batch is really cut
    dataset = tfdata.image_batches(faces)
    assert dataset.cardinality() == len(faces)
    for epoch in (0, 3):
        faces.epoch = epoch  # what EpochOrder does before each epoch
        served = [keras.tree.map_structure(np.asarray, batch) for batch in dataset]
        expected = [faces[i] for i in range(len(faces))]
        assert len(served) == len(expected) == len(faces)
        assert all(len(batch[0]) % multiple_of == 0 for batch in served)
        for (x, *rest), (ex, *erest) in zip(served, expected):
            assert x.dtype == np.uint8 and x.shape == ex.shape
            np.testing.assert_array_equal(x, ex)
            # targets ({head: targets} for several heads; NaN where a face has no V/A) and sample weights
            keras.tree.assert_same_structure(rest, erest)
            for got, want in zip(keras.tree.flatten(rest), keras.tree.flatten(erest)):
                np.testing.assert_allclose(got, want, atol=1e-6)
    if options.get("class_weights"):
        _, _, weights = expected[0]
        assert set(np.unique(weights)) <= {1.0, 2.0, 3.0} and len(weights) == len(expected[0][0])
    faces.epoch = 1
    first = keras.tree.flatten(keras.tree.map_structure(np.asarray, next(iter(dataset))[1]))[0]
    assert not np.array_equal(first, keras.tree.flatten(expected[0][1])[0])  # a new epoch, a new draw


def test_tf_data_resizes_within_a_grey_level_of_pil(small_sample):
    from affect_keras.data import tfdata
    from affect_keras.data.table import read_summary

    faces = FaceBatches(small_sample, "val", read_summary(small_sample)["class_names"], 24, 8)
    images = np.concatenate([x.numpy() for x, _ in tfdata.image_batches(faces)])
    expected = np.concatenate([faces[i][0] for i in range(len(faces))])
    assert np.abs(images.astype(int) - expected).max() <= 1


@pytest.mark.parametrize("suffixes", [(".jpg", ".png", ".gif"), (".jpg", ".bmp", ".webp")])
def test_tf_data_decodes_each_format_to_the_pixels_pil_gives(tmp_path, suffixes):
    """JPEG, PNG and GIF go through decode_jpeg alone (its kernel reads the format); a split holding any
    other format is decoded file by file by the format's own decoder. Either way, PIL's pixels."""
    from affect_keras.data import tfdata
    from affect_keras.data.loader import load_image

    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 20, 3), np.uint8))
    files = []
    for k, suffix in enumerate(suffixes):
        files.append(str(tmp_path / f"{k}{suffix}"))
        image.save(files[-1], **({"lossless": True} if suffix == ".webp" else {}))
    assert tfdata.single_op(files) == (".bmp" not in suffixes)
    expected = np.stack([load_image(file, 20) for file in files])
    np.testing.assert_array_equal(tfdata.decode_all(files, 20), expected)


@pytest.mark.parametrize("sampling, per_class", [("upsample", 20), ("undersample", 2)])
def test_up_and_down_sampling_draw_every_class_to_the_largest_or_smallest_count(data, sampling, per_class):
    batches = FaceBatches(data, "train", NAMES, 8, 4, sampling=sampling, seed=1)
    assert batches.epoch_size == 3 * per_class and len(batches) == -(-3 * per_class // 4)
    labels = batches.labels
    first, second = batches.order(0), batches.order(1)
    assert list(np.bincount(labels[first], minlength=3)) == [per_class] * 3
    if sampling == "upsample":  # every image at least once; the smaller classes repeated evenly
        assert set(first) == set(range(30))
        assert np.bincount(first, minlength=30).max() - np.bincount(first[labels[first] == 2]).max() <= 0
    else:  # a new subset of the large classes every epoch, without repeats
        assert len(set(first)) == len(first) and set(first) != set(second)
