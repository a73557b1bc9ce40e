"""--distribute on the CPU: MirroredStrategy over two logical CPU devices computes what one device computes,
and what cannot run says why (JAX's DataParallel over two host devices: test_learning.py, where the JAX run
learns the sample). Each run is a fresh
interpreter: devices are configured before TensorFlow or JAX starts."""

import os
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest

from conftest import REPO

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
    from affect_keras.models.build import build_model, save_backbone
    folder = tmp_path_factory.mktemp("frozen")
    model = build_model("resnet18", 8, 32, weights=None, augment="none")
    path = save_backbone(model, folder, {"backbone": "resnet18", "stem": "small", "image_size": 32})
    return ["--data", str(small_sample), "--backbone", "resnet18", "--weights", str(path), "--image-size", "32",
            "--augment", "none", "--dense=", "--dropout", "0", "--no-head-batch-norm", "--l2", "0",
            "--epochs", "2", "--batch-size", "32", "--cache-views", "0", "--class-weights", "none"]


def run(args, env=None, script=TWO_CPUS):
    return subprocess.run([sys.executable, "-c", script, *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}, timeout=600)


def test_mirrored_over_two_cpu_devices_tracks_one_device(frozen, small_sample, tmp_path):
    train = len(pd.read_csv(small_sample / "train.csv"))
    batch = next(b for b in range(32, 8, -2) if train % b % 2 == 0)  # no training image cut
    sized = [*frozen, "--batch-size", str(batch)]
    one = run([*sized, "--run-dir", str(tmp_path / "one")])
    two = run([*sized, "--distribute", "mirrored", "--run-dir", str(tmp_path / "two")])
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-2000:]
    assert f"2 replicas, global batch {batch} ({batch // 2} per replica)" in two.stdout
    assert "last train batch" not in two.stdout
    a, b = (pd.read_csv(tmp_path / name / "history.csv") for name in ("one", "two"))
    for column in ("loss", "accuracy"):  # the same steps, their gradients summed over two replicas
        assert b[column].to_numpy() == pytest.approx(a[column].to_numpy(), rel=1e-4, abs=1e-5)
    # the same trained weights (validation is not compared: an odd split loses one image to the even cut,
    # and a random frozen backbone's validation loss swings with a single image)
    cut = len(pd.read_csv(small_sample / "val.csv")) % batch % 2
    assert ("leaving out 1 image(s)" in two.stdout) == bool(cut)
    from affect_keras.models.build import core_of
    kernels = [keras.ops.convert_to_numpy(core_of(keras.saving.load_model(tmp_path / name / "last.keras",
                                                                          compile=False)).get_layer("logits").kernel)
               for name in ("one", "two")]
    np.testing.assert_allclose(kernels[1], kernels[0], atol=1e-5)


@pytest.mark.parametrize("flags, message", [
    (["--distribute", "multiworker"], "keras-team/keras#20585"),
    (["--distribute", "mirrored", "--batch-size", "33"], "--batch-size 33 is the global batch and must divide"),
])
def test_what_cannot_run_says_why_in_one_line(frozen, tmp_path, flags, message):
    result = run([*frozen, *flags, "--run-dir", str(tmp_path / "refused")])
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
