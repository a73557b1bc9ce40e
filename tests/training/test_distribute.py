"""--distribute on the CPU: MirroredStrategy over two logical CPU devices computes what one device computes;
what cannot run says why. (JAX's DataParallel over two host devices: test_learning.py, where the JAX run
learns the sample and reaches the one-device weights.) Each run is a fresh interpreter: devices are
configured before TensorFlow starts."""

import os
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import BLOCK_TENSORFLOW, LINEAR_HEAD, REPO

pytestmark = pytest.mark.slow  # several short trainings, each in its own interpreter

TWO_CPUS = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from affect_keras.cli.train import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def frozen(small_sample, tmp_path_factory):
    """Training options for a linear head on a frozen (random) ResNet18, the backbone run every step (no
    cache), so the distributed step has a backbone to spread."""
    from conftest import build_model

    from affect_keras.models.build import classifier_of

    folder = tmp_path_factory.mktemp("frozen")
    path = folder / "source.keras"
    classifier_of(build_model("resnet18", 8, 32, weights=None, augment="none", stem="small")).save(path)
    return [
        "--data",
        str(small_sample),
        "--backbone",
        "resnet18",
        "--weights",
        str(path),
        "--image-size",
        "32",
        "--augment",
        "none",
        *LINEAR_HEAD,
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--cache-views",
        "0",
        "--class-weights",
        "none",
    ]


def run(args, env=None, script=TWO_CPUS):
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
        timeout=600,
    )


@pytest.fixture(scope="module")
def one_device(frozen, small_sample, tmp_path_factory):
    """The one-device run the distributed runs must reproduce: (its global batch, its run directory). The
    batch leaves no training image to the even cut over two replicas."""
    train = len(pd.read_csv(small_sample / "train.csv"))
    batch = next(b for b in range(32, 8, -2) if train % b % 2 == 0)
    folder = tmp_path_factory.mktemp("distribute") / "one"
    result = run([*frozen, "--batch-size", str(batch), "--run-dir", str(folder)])
    assert result.returncode == 0, result.stderr[-2000:]
    return batch, folder


def logits_kernel(run_dir):
    import affect_keras  # noqa: F401 (registers the classifier's layers)

    model = keras.saving.load_model(run_dir / "last.keras", compile=False)
    return keras.ops.convert_to_numpy(model.get_layer("logits").kernel)


def assert_same_training(run_dir, one_dir):
    """The same steps as the one-device run (each global batch split over two replicas, the gradients
    summed): per-epoch training loss and accuracy, and the trained weights. Validation is not compared:
    an odd split loses one image to the even cut, and a random frozen backbone's validation loss swings
    with a single image."""
    a, b = (pd.read_csv(folder / "history.csv") for folder in (one_dir, run_dir))
    assert len(b) == len(a) == 2
    for column in ("loss", "accuracy"):
        assert b[column].to_numpy() == pytest.approx(a[column].to_numpy(), rel=1e-4, abs=1e-5)
    np.testing.assert_allclose(logits_kernel(run_dir), logits_kernel(one_dir), atol=1e-5)


@pytest.mark.slow
def test_mirrored_over_two_cpu_devices_tracks_one_device(frozen, one_device, small_sample, tmp_path):
    batch, one_dir = one_device
    two = run([*frozen, "--batch-size", str(batch), "--distribute", "mirrored", "--run-dir", str(tmp_path)])
    assert two.returncode == 0, two.stderr[-2000:]
    assert f"2 replicas, global batch {batch} ({batch // 2} per replica)" in two.stdout
    assert "last train batch" not in two.stdout
    cut = len(pd.read_csv(small_sample / "val.csv")) % batch % 2
    assert ("leaving out 1 image(s)" in two.stdout) == bool(cut)
    assert_same_training(tmp_path, one_dir)


@pytest.mark.slow
def test_jax_data_parallel_over_two_cpu_devices_reaches_the_one_device_weights(frozen, one_device, tmp_path):
    """keras.distribution.DataParallel on JAX (TensorFlow unimportable), two host devices against one: the
    same steps, the same trained weights within the mirrored test's tolerance."""
    pytest.importorskip("jax")
    batch, _ = one_device
    env = {"KERAS_BACKEND": "jax"}
    one = run([*frozen, "--batch-size", str(batch), "--run-dir", str(tmp_path / "one")], env, BLOCK_TENSORFLOW)
    assert one.returncode == 0, one.stderr[-2000:]
    two = run(
        [*frozen, "--batch-size", str(batch), "--distribute", "mirrored", "--run-dir", str(tmp_path / "two")],
        {**env, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
        BLOCK_TENSORFLOW,
    )
    assert two.returncode == 0, two.stderr[-2000:]
    assert f"2 replicas, global batch {batch}" in two.stdout
    assert_same_training(tmp_path / "two", tmp_path / "one")


@pytest.mark.slow
@pytest.mark.parametrize(
    "flags, message",
    [
        (["--distribute", "mirrored", "--batch-size", "33"], "--batch-size 33 is the global batch and must divide"),
    ],
)
def test_what_cannot_run_says_why_in_one_line(frozen, tmp_path, flags, message):
    result = run([*frozen, *flags, "--run-dir", str(tmp_path / "refused")])
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
