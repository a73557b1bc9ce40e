"""The parts both input paths are built on, each alone: the split's table, the epoch sampler, the mixer,
the decoded images (issue 26). `test_loader.py` checks the servers built on them give the same batches."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from affect_keras.data.loader import DecodedImages
from affect_keras.data.mixing import MIXERS, Mixer
from affect_keras.data.sampler import EpochSampler
from affect_keras.data.table import SplitTable, read_summary

# ---- the table ----------------------------------------------------------------------------------------


def test_the_table_holds_each_heads_targets_row_for_row_with_the_manifest(small_sample):
    names = read_summary(small_sample)["class_names"]
    manifest = pd.read_csv(small_sample / "train.csv")
    table = SplitTable.read(small_sample, "train", names, task="multitask", class_weights={0: 2.0, 3: 5.0})
    assert len(table) == len(manifest) and table.files[7] == str(small_sample / manifest["file"][7])
    assert [names[k] for k in table.labels] == list(manifest["label"])
    np.testing.assert_array_equal(table.targets.argmax(1), table.labels)  # one-hot majority labels
    np.testing.assert_allclose(table.columns["va"][:, 0], manifest["valence"], rtol=1e-6)
    np.testing.assert_array_equal(
        table.columns["weight"], np.where(table.labels == 0, 2.0, np.where(table.labels == 3, 5.0, 1.0))
    )
    # a batch's rows, arranged as a model with several outputs reads them: ({head: targets}, weights)
    chosen = np.array([4, 0, 9])
    inputs, targets, weights = table.arrange("x", table.rows(chosen))
    assert inputs == "x" and set(targets) == {"expression", "va"}
    np.testing.assert_array_equal(targets["expression"], table.targets[chosen])
    np.testing.assert_array_equal(weights, table.columns["weight"][chosen])


def test_a_single_output_table_arranges_plain_targets_and_repeats_whole_rows(small_sample):
    names = read_summary(small_sample)["class_names"]
    table = SplitTable.read(small_sample, "val", names, class_weights={0: 2.0})  # weights go to keras here
    assert set(table.columns) == {"expression"}
    x, y = table.arrange("x", table.rows([1, 2]))
    np.testing.assert_array_equal(y, table.targets[[1, 2]])
    twice = table.repeated(2)
    assert len(twice) == 2 * len(table) and twice.files[len(table)] == table.files[0]
    np.testing.assert_array_equal(twice.targets[len(table) :], table.targets)
    assert len(table) == len(pd.read_csv(small_sample / "val.csv"))  # the original is unchanged


# ---- the sampler --------------------------------------------------------------------------------------

LABELS = np.array([0] * 20 + [1] * 8 + [2] * 2)


def test_an_epochs_order_is_a_function_of_seed_and_epoch_alone():
    a, b = EpochSampler(LABELS, 3, 4, shuffle=True, seed=7), EpochSampler(LABELS, 3, 4, shuffle=True, seed=7)
    b.order(5)  # what was drawn before does not matter
    np.testing.assert_array_equal(a.order(3), b.order(3))
    assert sorted(a.order(3)) == list(range(30)) and list(a.order(3)) != list(a.order(4))
    assert list(EpochSampler(LABELS, 3, 4, shuffle=True, seed=8).order(3)) != list(a.order(3))
    assert list(EpochSampler(LABELS, 3, 4).order(9)) == list(range(30))  # no shuffle: manifest order


def test_batches_follow_the_epoch_set_and_the_last_is_cut_to_a_multiple_of_the_replicas():
    sampler = EpochSampler(LABELS, 3, 8, shuffle=True, seed=1, multiple_of=4)  # 30 = 3 x 8 + 6 -> 4 kept
    assert (len(sampler), sampler.left_out, sampler.kept) == (4, 2, 28)
    sampler.epoch = 2
    served = [sampler.batch(i) for i in range(len(sampler))]
    assert all(epoch == 2 for epoch, _ in served) and [len(rows) for _, rows in served] == [8, 8, 8, 4]
    np.testing.assert_array_equal(np.concatenate([rows for _, rows in served]), sampler.order(2)[:28])
    with pytest.raises(IndexError):
        sampler.batch(4)
    assert len(EpochSampler(LABELS, 3, 8, multiple_of=8)) == 3  # a last batch of 6 cannot hold 8 replicas


def test_class_balanced_sampling_draws_every_class_equally():
    over = EpochSampler(LABELS, 3, 10, sampling="oversample")
    drawn = np.concatenate([LABELS[over.order(e)] for e in range(200)])
    np.testing.assert_allclose(np.bincount(drawn) / len(drawn), [1 / 3] * 3, atol=0.02)
    for sampling, per_class in (("upsample", 20), ("undersample", 2)):
        sampler = EpochSampler(LABELS, 3, 4, sampling=sampling)
        assert sampler.epoch_size == 3 * per_class
        assert list(np.bincount(LABELS[sampler.order(0)], minlength=3)) == [per_class] * 3


# ---- the mixer ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(MIXERS))
def test_a_batch_is_mixed_the_same_way_for_the_same_seed_epoch_and_index(kind):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 12, 12, 3), dtype=np.uint8)
    targets = np.eye(3, dtype="float32")[[0, 1, 2, 0, 1, 2]]
    mixer = Mixer(kind, 0.4, seed=3)
    first, again = mixer(2, 5, images, targets), Mixer(kind, 0.4, seed=3)(2, 5, images, targets)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert first[1].dtype == np.float32 and np.allclose(first[1].sum(1), 1)
    assert not np.array_equal(first[1], targets)  # mixed
    other = mixer(2, 6, images, targets)  # the next batch: another draw
    assert not np.array_equal(other[1], first[1])


def test_no_mixing_passes_the_batch_through_and_an_unknown_kind_is_refused():
    images, targets = np.zeros((2, 4, 4, 3), np.uint8), np.eye(2, dtype="float32")
    assert not Mixer().active
    out = Mixer()(0, 0, images, targets)
    assert out[0] is images and out[1] is targets
    with pytest.raises(ValueError, match="^mix must be none or one of mixup, cutmix"):
        Mixer("blend")


# ---- decoded images -----------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path):
    paths = []
    for k in range(5):
        paths.append(str(tmp_path / f"{k}.png"))
        Image.fromarray(np.full((10, 10, 3), 40 * k, np.uint8)).save(paths[-1])
    return paths


@pytest.mark.parametrize("threads", [1, 3])
def test_decoded_images_come_in_the_order_asked_and_are_kept_once_decoded(files, threads):
    decoded = DecodedImages(files, 6, threads=threads)
    batch = decoded.take([4, 0, 2])
    assert batch.shape == (3, 6, 6, 3) and batch.dtype == np.uint8
    assert list(batch[:, 0, 0, 0]) == [160, 0, 80]  # resized to 6 px, in the order asked
    for path in files:
        open(path, "wb").close()  # emptied: only what was kept can still be served
    assert list(decoded.take([2, 4])[:, 0, 0, 0]) == [80, 160]
    with pytest.raises(Exception, match="1.png"):  # never decoded, so read now: the file's problem named
        decoded[1]


def test_without_keeping_every_read_decodes_the_file_again(files):
    decoded = DecodedImages(files, 10, keep=False)
    assert decoded[3][0, 0, 0] == 120
    Image.fromarray(np.full((10, 10, 3), 7, np.uint8)).save(files[3])
    assert decoded[3][0, 0, 0] == 7


def test_a_split_kept_nowhere_is_streamed_by_tf_data_too(small_sample, monkeypatch):
    """keep_decoded=False (benchmarks, and splits too large for memory) holds for both servers: tf.data
    decodes from the files every epoch instead of decoding the split into memory first."""
    from affect_keras.data import tfdata
    from affect_keras.data.loader import FaceBatches

    names = read_summary(small_sample)["class_names"]
    decoded_at_once = []
    monkeypatch.setattr(tfdata, "decode_all", lambda *args: decoded_at_once.append(args))
    kept = FaceBatches(small_sample, "val", names, 32, 8)
    tfdata.image_batches(kept)
    assert len(decoded_at_once) == 1  # a small split is decoded into memory once
    streamed = FaceBatches(small_sample, "val", names, 32, 8, keep_decoded=False)
    images = np.concatenate([x.numpy() for x, _ in tfdata.image_batches(streamed)])
    assert len(decoded_at_once) == 1 and len(images) == len(streamed.files)
    np.testing.assert_array_equal(images, np.concatenate([streamed[i][0] for i in range(len(streamed))]))
