"""The classifier and its assembly: preprocessing per backbone, frozen backbones, fine-tuning, starting from a
trained classifier's backbone, the classifier's own description and saving."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import os

import keras
import numpy as np
import pytest
from conftest import (
    build_model,
)

from affect_keras.models.augment import AUGMENTATIONS, augmentation
from affect_keras.models.backbones import BACKBONES
from affect_keras.models.build import backbone_of, classifier_of, unfreeze
from affect_keras.models.classifier import ExpressionClassifier
from affect_keras.models.preprocessing import MODES, BackbonePreprocessing
from affect_keras import __version__

SIZE = 32
IMAGES = np.random.default_rng(0).integers(0, 256, size=(16, SIZE, SIZE, 3), dtype=np.uint8)
LABELS = keras.utils.to_categorical(np.arange(16) % 4, 4)


def to_backbone(model):
    """The tensor the backbone receives, for raw images."""
    core = classifier_of(model)
    return keras.Model(core.input, core.get_layer("preprocessing").output).predict(IMAGES, verbose=0)


@pytest.mark.parametrize("preset", [p for p in AUGMENTATIONS if p != "none"])
def test_augmentation_changes_images_in_training_only(preset):
    block, images = augmentation(preset, seed=0), IMAGES.astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(block(images, training=False)), images)
    changed = keras.ops.convert_to_numpy(block(images, training=True))
    assert changed.shape == images.shape and not np.allclose(changed, images)


def test_efficientnet_receives_0_to_255_and_rescales_inside():
    model = build_model("efficientnetb3", 4, SIZE, weights=None, augment="none")
    np.testing.assert_allclose(to_backbone(model), IMAGES.astype("float32"))
    assert any(isinstance(layer, keras.layers.Rescaling) for layer in backbone_of(model).layers)


def test_vgg16_gets_caffe_preprocessing():
    model = build_model("vgg16", 4, SIZE, weights=None, augment="none")
    expected = keras.applications.vgg16.preprocess_input(IMAGES.astype("float32"))
    np.testing.assert_allclose(to_backbone(model), expected, atol=1e-4)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_preprocessing_mode_matches_keras_applications(mode):
    """Each registered mode against keras.applications' own preprocess_input for that convention."""
    images = IMAGES.astype("float32")
    reference = {
        "caffe": lambda x: keras.applications.imagenet_utils.preprocess_input(x, mode="caffe"),
        "tf": lambda x: keras.applications.imagenet_utils.preprocess_input(x, mode="tf"),
        "torch": lambda x: keras.applications.imagenet_utils.preprocess_input(x, mode="torch"),
        "raw": lambda x: x,
    }[mode]
    ours = keras.ops.convert_to_numpy(BackbonePreprocessing(mode)(images))
    np.testing.assert_allclose(ours, reference(images.copy()), atol=1e-4)
    with pytest.raises(ValueError, match="must be one of caffe, tf, torch, raw"):
        BackbonePreprocessing("inception")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_backbone_maps_raw_uint8_to_probabilities(name):
    model = build_model(name, 4, SIZE, weights=None, augment="light")
    assert model.input.dtype == "uint8"
    probabilities = model.predict(IMAGES[:2], verbose=0)
    assert probabilities.shape == (2, 4) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_output_is_float32_under_mixed_precision():
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        model = build_model("resnet18", 4, SIZE, weights=None, augment="none")
        assert backbone_of(model).get_layer("stem_conv").compute_dtype == "float16"
        assert model.output.dtype == "float32"
        assert model.predict(IMAGES[:2], verbose=0).dtype == np.float32
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


@pytest.fixture
def saved_backbone(tmp_path):
    """A trained classifier's .keras file: what --weights PATH starts a backbone from."""
    model = build_model("resnet18", 4, SIZE, weights=None, augment="none", stem="small")
    path = tmp_path / "source.keras"
    classifier_of(model).save(path)
    return model, path


@pytest.mark.slow
def test_weights_path_round_trip(saved_backbone):
    source, path = saved_backbone
    reused = build_model("resnet18", 7, SIZE, weights=str(path), augment="none")
    assert classifier_of(reused).stem == "small"  # the source's own stem
    for a, b in zip(backbone_of(source).weights, backbone_of(reused).weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="holds a resnet18 backbone, not resnet34"):
        build_model("resnet34", 4, SIZE, weights=str(path), stem="small")
    with pytest.raises(ValueError, match="has the small stem"):
        build_model("resnet18", 4, SIZE, weights=str(path), stem="imagenet")


def snapshot(layer):
    return [w.numpy().copy() for w in layer.weights]


def train_one_epoch(model):
    model.compile(keras.optimizers.Adam(1e-2), "categorical_crossentropy")
    model.fit(IMAGES, LABELS, epochs=1, batch_size=8, verbose=0)


@pytest.mark.slow
def test_frozen_backbone_weights_and_batchnorm_statistics_do_not_move(saved_backbone):
    _, path = saved_backbone
    model = build_model("resnet18", 4, SIZE, weights=str(path), augment="light", dense=(16,))
    backbone, head = backbone_of(model), classifier_of(model).get_layer("logits")
    before, head_before = snapshot(backbone), snapshot(head)
    assert not backbone.trainable_weights
    train_one_epoch(model)
    for a, b in zip(before, snapshot(backbone)):  # moving means and variances included
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(head_before, snapshot(head)))


@pytest.mark.slow
def test_finetuning_changes_only_the_unfrozen_layers(saved_backbone):
    _, path = saved_backbone
    model = build_model("resnet18", 4, SIZE, weights=str(path), augment="none")
    trainable = unfreeze(model, ["stage4"])
    assert trainable and all(name.startswith("stage4") and "_bn" not in name for name in trainable)
    backbone = backbone_of(model)
    before = {layer.name: snapshot(layer) for layer in backbone.layers if layer.weights}
    train_one_epoch(model)
    for layer in backbone.layers:
        if not layer.weights:
            continue
        changed = any(not np.array_equal(a, b) for a, b in zip(before[layer.name], snapshot(layer)))
        assert changed == (layer.name in trainable), layer.name
    weighted = [layer for layer in backbone.layers if layer.weights]
    assert unfreeze(model, 3) == [
        layer.name for layer in weighted[-3:] if not isinstance(layer, keras.layers.BatchNormalization)
    ]
    everything = unfreeze(model, len(weighted))  # all of it, BatchNorm still frozen
    assert everything == [layer.name for layer in weighted if not isinstance(layer, keras.layers.BatchNormalization)]
    with pytest.raises(ValueError, match="10000: the .* backbone has"):  # more than it has: a mistake, said
        unfreeze(model, 10_000)
    with pytest.raises(ValueError, match="names no layer"):
        unfreeze(model, ["block9"])


def test_imagenet_weights_offline_say_which_file_to_place(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://example: None -- name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    monkeypatch.setattr("keras.src.applications.vgg16.file_utils.get_file", offline)
    with pytest.raises(RuntimeError, match=f"place vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 in {tmp_path}"):
        build_model("vgg16", 4, SIZE, weights="imagenet")
    with pytest.raises(RuntimeError, match=f"place resnet18.a1_in1k.safetensors in {tmp_path}"):
        build_model("resnet18", 4, SIZE, weights="imagenet")


@pytest.mark.slow
def test_the_training_model_wraps_the_classifier_and_shares_its_weights(tmp_path):
    """keras-hub's Task: the classifier (uint8 image -> probabilities) has no augmentation and is the
    training model's own layer, so training the wrapper trains the classifier."""
    model = build_model("resnet18", 4, SIZE, weights=None, augment="light", dense=())
    core = classifier_of(model)
    assert core is not model and isinstance(core, ExpressionClassifier) and core.input.dtype == "uint8"
    assert "augmentation" in [layer.name for layer in model.layers]
    assert "augmentation" not in [layer.name for layer in core.layers]
    np.testing.assert_array_equal(model.predict(IMAGES, verbose=0), core.predict(IMAGES, verbose=0))
    before = keras.ops.convert_to_numpy(core.get_layer("logits").kernel).copy()
    model.compile("adam", "categorical_crossentropy")
    model.fit(IMAGES, LABELS, epochs=1, verbose=0)
    assert not np.allclose(keras.ops.convert_to_numpy(core.get_layer("logits").kernel), before)
    assert classifier_of(build_model("resnet18", 4, SIZE, augment="none")).__class__ is ExpressionClassifier


@pytest.mark.slow
@pytest.mark.parametrize("task", ["expression", "va", "multitask", "hierarchical"])
def test_the_classifier_describes_itself_and_reloads_as_itself(task, tmp_path):
    """get_config holds every constructor argument; keras.saving.load_model(safe_mode=True) gives back an
    ExpressionClassifier with the same description and outputs, for every task."""
    from affect_keras.tasks import get_task

    names = ["Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt"]
    model = ExpressionClassifier(
        "resnet18",
        names,
        SIZE,
        task=task,
        label_scheme="affectnet8",
        dense=[8],
        framing={"crop": "box", "margin": 0.1, "align": False},
    )
    config = model.get_config()
    import inspect

    arguments = set(inspect.signature(ExpressionClassifier.__init__).parameters) - {"self", "kwargs"}
    assert arguments <= set(config)
    assert config["stem"] == "small" and config["image_size"] == SIZE and config["version"] == __version__
    assert model.heads == get_task(task).heads
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert type(loaded) is ExpressionClassifier and loaded.get_config() == config
    assert loaded.class_names == names and loaded.framing == {"crop": "box", "margin": 0.1, "align": False}
    want, got = model.predict(IMAGES, verbose=0), loaded.predict(IMAGES, verbose=0)
    for key in want if isinstance(want, dict) else {"": 0}:
        a, b = (want[key], got[key]) if key else (want, got)
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.slow
def test_compile_auto_takes_each_heads_loss_and_metrics():
    model = ExpressionClassifier("resnet18", ["A", "B", "C", "D"], SIZE, task="multitask", dense=[])
    model.compile()
    history = model.fit(IMAGES, {"expression": LABELS, "va": np.zeros((16, 2), "float32")}, epochs=1, verbose=0)
    assert {"expression_accuracy", "expression_top2", "va_valence_ccc", "va_arousal_ccc"} <= set(history.history)


def test_augmented_images_reach_the_core_as_images():
    """What the augmentation block hands on is rounded and clipped to uint8, as any real image is."""
    from affect_keras.models.preprocessing import ToImage

    images = np.array([[-3.2, 0.4, 127.5, 254.6, 300.0]], dtype="float32").reshape(1, 1, 5, 1)
    out = keras.ops.convert_to_numpy(ToImage()(images))
    assert out.dtype == np.uint8 and out.ravel().tolist() == [0, 0, 128, 255, 255]


JAX_COMPILES = """
import keras, numpy as np
from affect_keras.models.build import training_model
from affect_keras.models.classifier import ExpressionClassifier
for preset in ("strong",):  # light's geometric layers and RandAugment's; light holds basic's
    classifier = ExpressionClassifier("resnet18", ["A", "B", "C", "D"], 32, stem="small", dense=[])
    model = training_model(classifier, preset, seed=0)
    model.compile("adam", "categorical_crossentropy", jit_compile="auto")
    model.fit(np.zeros((8, 32, 32, 3), "uint8"), keras.utils.to_categorical(np.arange(8) % 4, 4), verbose=0)
    print(preset, model.jit_compile)
"""


@pytest.mark.slow
def test_augmented_models_compile_under_jax():
    """keras's geometric augmentation layers say supports_jit = False (for TensorFlow's XLA), and keras then
    leaves the whole model uncompiled. Under JAX that meant every step ran op by op (the FER+ recipe at
    5-7 s a step, on a GPU too): under JAX the strong preset's model (every geometric layer, RandAugment) is
    compiled and trains."""
    pytest.importorskip("jax")
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", JAX_COMPILES], capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": "jax"}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["strong", "True"]
