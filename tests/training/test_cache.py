"""The feature cache: a frozen backbone runs once per split, the head trains on stored features, and the run
directory ends with the same full model an uncached run writes."""

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import BLOCK_TENSORFLOW, REPO, build_model

from affect_keras.cli.train import main
from affect_keras.data.loader import EpochOrder, FaceBatches
from affect_keras.data.table import read_summary
from affect_keras.models.build import classifier_of
from affect_keras.training import cache


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, small_sample):
    """A classifier as an earlier run leaves it (random weights: the numbers need not be good)."""
    folder = tmp_path_factory.mktemp("earlier_run")
    keras.utils.set_random_seed(0)
    model = build_model("resnet18", 8, 32, weights=None, augment="none", stem="small")
    classifier_of(model).save(folder / "best.keras")
    return folder / "best.keras"


def args(data, backbone, run, *extra):
    return [
        "--data",
        str(data),
        "--backbone",
        "resnet18",
        "--weights",
        str(backbone),
        "--image-size",
        "32",
        "--epochs",
        "3",
        "--batch-size",
        "16",
        "--augment",
        "none",
        "--run-dir",
        str(run),
        "--seed",
        "1",
        "--cache-dir",
        str(run.parent / "cache"),
        *extra,
    ]


@pytest.fixture
def counted(monkeypatch):
    calls = []
    original = cache.extract_features

    def counting(extractor, data, block, **kwargs):
        calls.append(data.split)
        return original(extractor, data, block, **kwargs)

    monkeypatch.setattr(cache, "extract_features", counting)
    return calls


@pytest.mark.slow
def test_cached_and_uncached_runs_agree_and_keep_the_full_model(small_sample, pretrained, tmp_path, counted):
    assert main(args(small_sample, pretrained, tmp_path / "cached")) == 0
    assert counted == ["train", "val"]
    assert main(args(small_sample, pretrained, tmp_path / "plain", "--cache-views", "0")) == 0
    assert counted == ["train", "val"]  # the uncached run builds no cache
    cached = pd.read_csv(tmp_path / "cached/history.csv")
    plain = pd.read_csv(tmp_path / "plain/history.csv")
    assert abs(cached["val_accuracy"].iloc[-1] - plain["val_accuracy"].iloc[-1]) <= 0.01
    np.testing.assert_allclose(cached["loss"], plain["loss"], rtol=1e-3)
    assert yaml.safe_load((tmp_path / "cached/config.yaml").read_text())["cache_views"] == 1

    # best.keras and last.keras are the full model: raw uint8 images in, and the same answers as the head
    # gives on the stored features
    names = read_summary(small_sample)["class_names"]
    val = FaceBatches(small_sample, "val", names, 32, 64)
    images = np.stack([val.image(i) for i in range(len(val.files))])
    features = np.load(next((tmp_path / "cache").glob("*/val.npy")))[0]
    for name in ("last.keras", "best.keras"):
        full = keras.saving.load_model(tmp_path / "cached" / name)
        assert full.input.dtype == "uint8"
    full = keras.saving.load_model(tmp_path / "cached/last.keras")
    _, head = cache.split_model(full)
    np.testing.assert_allclose(full.predict(images, verbose=0), head.predict(features, verbose=0), atol=1e-4)


@pytest.mark.slow
def test_on_jax_without_tensorflow_cached_and_uncached_runs_agree(small_sample, pretrained, tmp_path):
    """The cache is keras and numpy only: on JAX, with TensorFlow unimportable, the head trains on stored
    features (several steps per call, as on TensorFlow) to what the uncached run learns."""
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    printed = {}
    for name, extra in (("cached", []), ("plain", ["--cache-views", "0"])):
        done = subprocess.run(
            [sys.executable, "-c", BLOCK_TENSORFLOW, *args(small_sample, pretrained, tmp_path / name, *extra)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        printed[name] = done.stdout
    assert "Feature cache: train, 1 view(s)" in printed["cached"] and "Feature cache" not in printed["plain"]
    cached = pd.read_csv(tmp_path / "cached/history.csv")
    plain = pd.read_csv(tmp_path / "plain/history.csv")
    assert len(cached) == len(plain) == 3
    np.testing.assert_allclose(cached["loss"], plain["loss"], rtol=1e-3)
    assert abs(cached["val_accuracy"].iloc[-1] - plain["val_accuracy"].iloc[-1]) <= 0.01


@pytest.mark.slow
def test_another_head_reuses_the_cache_without_running_the_backbone(
    small_sample, pretrained, tmp_path, counted, capsys
):
    assert main(args(small_sample, pretrained, tmp_path / "a")) == 0
    assert counted == ["train", "val"]
    assert (
        main(
            args(
                small_sample,
                pretrained,
                tmp_path / "b",
                "--dense",
                "64",
                "--optimizer",
                "sgd",
                "--class-weights",
                "none",
                "--schedule",
                "cosine",
            )
        )
        == 0
    )
    assert counted == ["train", "val"]  # nothing extracted again
    assert capsys.readouterr().out.count("Feature cache: reusing") == 2
    # another image size, pooling or backbone file is another cache
    assert main(args(small_sample, pretrained, tmp_path / "c", "--pooling", "max")) == 0
    assert counted == ["train", "val"] * 2


@pytest.mark.slow
def test_augmented_views_cycle_by_epoch(small_sample, pretrained, tmp_path, counted):
    assert (
        main(
            args(
                small_sample, pretrained, tmp_path / "run", "--augment", "basic", "--cache-views", "3", "--epochs", "1"
            )
        )
        == 0
    )
    train = np.load(next((tmp_path / "cache").glob("*/train.npy")), mmap_mode="r")
    assert train.shape[0] == 3 and not np.allclose(train[0], train[1])
    names = read_summary(small_sample)["class_names"]
    faces = FaceBatches(small_sample, "train", names, 32, 16, shuffle=True, seed=1)
    batches = cache.CachedBatches(faces, train)
    order = EpochOrder(faces)
    seen = {}
    for epoch in (0, 1, 3):
        order.on_epoch_begin(epoch)
        x, y = batches[0]
        seen[epoch] = (x, faces.order(epoch)[:16])
        np.testing.assert_array_equal(x, train[epoch % 3][faces.order(epoch)[:16]])
        np.testing.assert_array_equal(y, faces.targets[faces.order(epoch)[:16]])
    assert not np.array_equal(seen[0][1], seen[3][1])  # a new order every epoch, view 0 again at epoch 3


def test_cache_refuses_what_it_cannot_do(small_sample, pretrained, tmp_path, capsys):
    for extra, message in (
        (["--weights", "none", "--cache-views", "2"], "needs a frozen backbone"),
        (["--mix", "mixup", "--cache-views", "2"], "cannot be used with --mix"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main(args(small_sample, pretrained, tmp_path / "run", *extra))
        assert exit_.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["zeroed", "empty", "truncated"])
def test_a_damaged_cache_file_is_rebuilt_saying_so(small_sample, pretrained, tmp_path, counted, capsys, damage):
    """Issue 24, cases 7, 10 and 22: a zeroed features file trained silently (val accuracy 0.13), an empty
    one stopped with EOFError, a truncated one with a message naming no file. Each is now rebuilt, the log
    naming the file and why, and the run learns what an undamaged run learns."""
    assert main(args(small_sample, pretrained, tmp_path / "first")) == 0
    stored = next((tmp_path / "cache").rglob("train.npy"))
    size = stored.stat().st_size
    if damage == "zeroed":
        features = np.load(stored, mmap_mode="r+")
        features[:] = 0
        features.flush()
        del features
    else:
        with open(stored, "r+b") as file:
            file.truncate(0 if damage == "empty" else size // 2)
    capsys.readouterr()
    counted.clear()
    assert main(args(small_sample, pretrained, tmp_path / "second")) == 0
    printed = capsys.readouterr().out
    assert f"Feature cache: {stored}" in printed and "rebuilding it" in printed
    assert counted == ["train"]  # the damaged split only
    first = pd.read_csv(tmp_path / "first/history.csv")
    second = pd.read_csv(tmp_path / "second/history.csv")
    np.testing.assert_allclose(second["loss"], first["loss"], rtol=1e-4)


def test_an_unwritable_cache_folder_is_one_line_naming_cache_dir(small_sample, pretrained, tmp_path, capsys):
    if os.geteuid() == 0:  # root writes anywhere: stand in for a read-only shared dataset with a file
        blocked = tmp_path / "cache"
        blocked.write_text("not a folder")
        import affect_keras.training.cache as module

        original = Path.mkdir

        def refuse(self, *a, **k):
            if str(self).startswith(str(blocked)):
                raise PermissionError(13, "Permission denied", str(self))
            return original(self, *a, **k)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(module.Path, "mkdir", refuse)
            with pytest.raises(SystemExit) as stop:
                main(args(small_sample, pretrained, tmp_path / "run"))
    else:
        (tmp_path / "cache").mkdir()
        (tmp_path / "cache").chmod(0o500)
        with pytest.raises(SystemExit) as stop:
            main(args(small_sample, pretrained, tmp_path / "run"))
    message = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code != 0 and len(message) == 1 and "--cache-dir" in message[0] and "permission" in message[0]


@pytest.mark.slow
def test_data_prepared_again_with_other_pixels_gets_a_new_cache(pretrained, tmp_path, capsys):
    """Issue 24, case 4: the same --out prepared again with --margin 0.5 has byte-identical manifests and
    other pixels; main reused the stale features ("Feature cache: reusing")."""
    from affect_keras.data.prepare import PrepareConfig, prepare

    data = tmp_path / "data"
    prepare(PrepareConfig(source="sample", out=data, count=120, size=32))
    assert main(args(data, pretrained, tmp_path / "first", "--epochs", "1")) == 0
    manifest = (data / "train.csv").read_bytes()
    prepare(PrepareConfig(source="sample", out=data, count=120, size=32, margin=0.5))
    assert (data / "train.csv").read_bytes() == manifest
    capsys.readouterr()
    assert main(args(data, pretrained, tmp_path / "second", "--epochs", "1")) == 0
    printed = capsys.readouterr().out
    assert "Feature cache: reusing" not in printed and "Feature cache: train" in printed


def test_a_replaced_image_changes_the_fingerprint_the_cache_is_keyed_on(tmp_path):
    """Issue 36, case 8: 37 prepared images overwritten with another photo, then a frozen-backbone run:
    "Feature cache: reusing". The key now holds each image's version."""
    from affect_keras.data.fingerprint import split_fingerprint
    from affect_keras.data.prepare import PrepareConfig, prepare

    data = tmp_path / "data"
    prepare(PrepareConfig(source="sample", out=data, count=60, size=32))
    before = split_fingerprint(data, "train")
    assert split_fingerprint(data, "train") == before  # the same files: the same key
    images = sorted((data / "train").rglob("*.jpg"))
    images[0].write_bytes(images[1].read_bytes())  # another photo under the same name
    assert split_fingerprint(data, "train") != before


def test_a_cache_file_with_rows_swapped_is_rebuilt(tmp_path):
    """Case 14: the check of a stored features file compared a sum and an absolute sum: two rows swapped
    passed as valid."""
    import json

    features = np.random.default_rng(0).normal(size=(1, 6, 4)).astype("float32")
    path = tmp_path / "train.npy"
    np.save(path, features)
    (tmp_path / "train.check.json").write_text(json.dumps({"shape": list(features.shape), **cache._sums(features)}))
    stored, problem = cache._checked(path, features.shape)
    assert stored is not None and problem == ""
    cache._verified.clear()
    np.save(path, features[:, [1, 0, 2, 3, 4, 5]])
    stored, problem = cache._checked(path, features.shape)
    assert stored is None and "does not hold what was stored" in problem
