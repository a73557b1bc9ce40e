"""Pretrained backbones offline: timm's ResNet18/34 checkpoints against timm itself, keras.applications'
ImageNet files from the cache, saved backbones with their stem, and EfficientNetB3 learning from scratch.

Nothing here downloads: checkpoints are random weights written in the real formats under the real names.
"""

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import h5py
import keras
import numpy as np
import pytest
import yaml
from conftest import (
    REPO,
    build_model,
)

from affect_keras.models.backbones import BACKBONES, KERAS_FILES, build_backbone
from affect_keras.models.build import backbone_of, classifier_of

LINEAR = dict(dense=(), dropout=0.0, head_batch_norm=False, l2=0.0)
IMAGES = np.random.default_rng(1).integers(0, 256, size=(3, 97, 97, 3), dtype=np.uint8)


def timm_module():
    """timm, imported with torchvision stubbed out: its ResNets use plain torch, but timm's package
    imports torchvision for unrelated layers, and the only torchvision that imports beside this
    machine's CPU torch is a multi-GB CUDA build."""
    pytest.importorskip("torch")
    import importlib.abc
    import importlib.machinery
    from unittest import mock

    class Stub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] == "torchvision":
                return importlib.machinery.ModuleSpec(name, self, is_package=True)

        def create_module(self, spec):
            module = mock.MagicMock(__path__=[], __name__=spec.name, __spec__=spec)
            return module

        def exec_module(self, module):
            pass

    try:
        import torchvision  # noqa: F401  # a working one needs no stub
    except Exception:
        for name in [n for n in sys.modules if n.split(".")[0] == "torchvision"]:
            del sys.modules[name]
        sys.meta_path.insert(0, Stub())
    return pytest.importorskip("timm")


@pytest.fixture(scope="module")
def timm_reference(tmp_path_factory):
    """For resnet18 and resnet34: a timm model with random weights and random BatchNorm statistics saved
    as safetensors under timm's checkpoint name, and its pooled features of IMAGES after timm's own
    preprocessing for the checkpoint."""
    timm = timm_module()
    import torch
    from safetensors.torch import save_file

    home = tmp_path_factory.mktemp("keras_home")
    (home / "models").mkdir()
    features = {}
    torch.manual_seed(0)
    for depth in ("resnet18", "resnet34"):
        tag = BACKBONES[depth].checkpoints[0]
        net = timm.create_model(depth, pretrained=False).eval()
        with torch.no_grad():
            for module in net.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_mean.uniform_(-0.5, 0.5)
                    module.running_var.uniform_(0.5, 2.0)
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.uniform_(-0.2, 0.2)
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, home / "models" / f"{tag}.safetensors")
        config = timm.data.resolve_data_config({}, model=net)
        mean = torch.tensor(config["mean"]).view(1, 3, 1, 1)
        std = torch.tensor(config["std"]).view(1, 3, 1, 1)
        x = (torch.from_numpy(IMAGES).permute(0, 3, 1, 2).float() / 255.0 - mean) / std
        with torch.no_grad():
            features[depth] = net.forward_head(net.forward_features(x), pre_logits=True).numpy()
    return home, features


KERAS_SIDE = """
import sys, numpy as np, keras
from affect_keras.models.build import load_pretrained
from affect_keras.models.classifier import ExpressionClassifier
images = np.load(sys.argv[1])
for depth in ("resnet18", "resnet34"):
    core = ExpressionClassifier(depth, ["A", "B", "C", "D"], images.shape[1], stem="imagenet", pretrained=True,
                                dense=[], dropout=0.0, head_batch_norm=False, l2=0.0)
    load_pretrained(core, "imagenet")
    pooled = keras.Model(core.input, core.get_layer("head_pool").output)
    np.save(f"{sys.argv[2]}/{depth}.npy", keras.ops.convert_to_numpy(pooled(images)))
print(keras.backend.backend())
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_timm_resnet_checkpoints_give_timms_features(backend, timm_reference, tmp_path):
    pytest.importorskip(backend)
    home, expected = timm_reference
    np.save(tmp_path / "images.npy", IMAGES)
    env = {**os.environ, "KERAS_BACKEND": backend, "KERAS_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", KERAS_SIDE, str(tmp_path / "images.npy"), str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == backend
    for depth, reference in expected.items():
        ours = np.load(tmp_path / f"{depth}.npy")
        assert ours.shape == reference.shape == (3, 512)
        assert np.abs(reference).mean() > 0.05  # features that are not all zero
        np.testing.assert_allclose(ours, reference, atol=1e-4, rtol=1e-4, err_msg=depth)


def test_resnet_imagenet_offline_without_the_file_names_it(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://huggingface.co/...: None -- name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(RuntimeError) as error:
        build_backbone("resnet18", (64, 64, 3), "imagenet")
    message = str(error.value)
    assert f"place resnet18.a1_in1k.safetensors in {tmp_path / 'models'}" in message
    assert "https://huggingface.co/timm/resnet18.a1_in1k/resolve/main/model.safetensors" in message
    with pytest.raises(RuntimeError, match="resnet34.tv_in1k.safetensors"):
        build_backbone("resnet34", (64, 64, 3), "imagenet", checkpoint="resnet34.tv_in1k")


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path, monkeypatch):
    from safetensors.numpy import save_file

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    save_file({"conv1.weight": np.zeros((64, 3, 7, 7), np.float32)}, tmp_path / "models/resnet18.a1_in1k.safetensors")
    with pytest.raises(ValueError, match="lacks bn1.weight"):
        build_backbone("resnet18", (64, 64, 3), "imagenet")


@pytest.mark.slow
def test_train_resnet18_imagenet_offline_records_checkpoint_and_stem(
    timm_reference, small_sample, tmp_path, monkeypatch
):
    from affect_keras.cli.train import main

    home, _ = timm_reference
    monkeypatch.setenv("KERAS_HOME", str(home))
    run = tmp_path / "run"
    assert (
        main(
            [
                "--data",
                str(small_sample),
                "--backbone",
                "resnet18",
                "--weights",
                "imagenet",
                "--image-size",
                "64",
                "--epochs",
                "1",
                "--augment",
                "none",
                "--run-dir",
                str(run),
            ]
        )
        == 0
    )
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert (config["imagenet_checkpoint"], config["stem"]) == ("resnet18.a1_in1k", "imagenet")
    assert "checkpoint `resnet18.a1_in1k`" in (run / "README.md").read_text()
    # the frozen backbone still holds the checkpoint's stem
    from safetensors.numpy import load_file

    stem = load_file(str(home / "models/resnet18.a1_in1k.safetensors"))["conv1.weight"]
    saved = backbone_of(keras.saving.load_model(run / "last.keras"))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(saved.get_layer("stem_conv").kernel), stem.transpose(2, 3, 1, 0)
    )


def test_a_saved_backbone_reloads_at_any_size_with_its_stem(tmp_path):
    small = build_model("resnet18", 4, 32, weights=None, augment="none", stem="small", **LINEAR)
    path = tmp_path / "small.keras"
    classifier_of(small).save(path)
    bigger = build_model("resnet18", 7, 96, weights=str(path), augment="none", **LINEAR)
    stem = backbone_of(bigger).get_layer("stem_conv")
    assert stem.kernel.shape == (3, 3, 3, 64)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(stem.kernel),
        keras.ops.convert_to_numpy(backbone_of(small).get_layer("stem_conv").kernel),
    )
    with pytest.raises(ValueError, match="has the small stem"):
        build_model("resnet18", 7, 96, weights=str(path), stem="imagenet")
    with pytest.raises(ValueError, match="holds a resnet18 backbone, not resnet34"):
        build_model("resnet34", 7, 96, weights=str(path))


def _legacy_h5(model, path):
    """Weights in the HDF5 layout keras.applications' ImageNet files have (keras 2's save_weights)."""
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, model)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(KERAS_FILES))
def test_keras_applications_imagenet_weights_come_from_the_cache(name, tmp_path, monkeypatch):
    """A file under keras's own name in $KERAS_HOME/models is what the model ends up with. keras checks
    the hash of the real file, which random weights cannot match, so only the download is a double:
    it must be asked for that name in that folder, and hands back the file placed there."""
    from keras.src.utils import file_utils

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    keras.utils.set_random_seed(3)
    reference = build_backbone(name, (32, 32, 3), None)
    _legacy_h5(reference, tmp_path / "models" / KERAS_FILES[name])
    asked = []

    def cached_only(fname, origin=None, cache_subdir="datasets", **kwargs):
        asked.append((fname, cache_subdir))
        path = Path(os.environ["KERAS_HOME"]) / cache_subdir / fname
        if not path.is_file():
            raise Exception(f"URL fetch failure on {origin}: offline")
        return str(path)

    monkeypatch.setattr(file_utils, "get_file", cached_only)
    keras.utils.set_random_seed(4)
    net = build_backbone(name, (32, 32, 3), "imagenet")
    assert asked == [(KERAS_FILES[name], "models")]
    for ours, theirs in zip(net.weights, reference.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs))


def test_keras_get_file_uses_a_cached_file_with_the_right_hash_without_fetching(tmp_path, monkeypatch):
    """What the README tells offline users: the file copied under its name is used, no network needed."""
    from keras.src.utils import file_utils

    (tmp_path / "models").mkdir()
    cached = tmp_path / "models" / KERAS_FILES["vgg16"]
    cached.write_bytes(b"weights")
    digest = file_utils.hash_file(str(cached), "sha256")

    def no_network(*args, **kwargs):
        raise AssertionError("fetched although the file was cached")

    monkeypatch.setattr(file_utils, "urlretrieve", no_network)
    path = keras.utils.get_file(
        KERAS_FILES["vgg16"],
        "https://example.invalid/x.h5",
        file_hash=digest,
        cache_subdir="models",
        cache_dir=str(tmp_path),
    )
    assert Path(path) == cached


STEPS = 150  # one full batch a step


@pytest.mark.slow
@pytest.mark.parametrize("backbone, lr", [("efficientnetb3", 1e-3), ("vgg16", 1e-4)])
def test_a_backbone_from_scratch_memorises_a_batch(small_sample, backbone, lr):
    """Gradients reach the whole network through the model's own input path: uint8 faces, the 0-255 input
    EfficientNet rescales itself (dividing by 255 first would starve it), its stochastic depth, the head;
    VGG16's caffe preprocessing and its 13 convolutions without batch norm (ResNet18 learns the sample
    whole, in tests/e2e/test_learning.py). No augmentation: a random shift every step turns memorising into
    learning, which from scratch takes EfficientNetB3 several hundred steps (62 % after 150 steps with
    `basic`, measured)."""
    from affect_keras.data.loader import FaceBatches
    from affect_keras.data.table import read_summary

    names = read_summary(small_sample)["class_names"]
    batch = FaceBatches(small_sample, "train", names, 32, 32, shuffle=True)[0]
    images, targets = batch[0], batch[1]
    assert images.dtype == np.uint8 and images.shape == (32, 32, 32, 3) and images.max() > 200
    keras.utils.set_random_seed(0)
    model = build_model(backbone, len(names), 32, weights=None, augment="none", **LINEAR)
    model.compile(keras.optimizers.Adam(lr), "categorical_crossentropy", metrics=["accuracy"])
    memorised = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: setattr(model, "stop_training", logs["accuracy"] >= 0.95)
    )
    history = model.fit(images, targets, batch_size=32, epochs=STEPS, verbose=0, callbacks=[memorised])
    accuracy = history.history["accuracy"]
    assert accuracy[-1] >= 0.95, f"{len(accuracy)} steps, accuracy every 10th: {accuracy[::10]}"
