"""--distribute on the CPU: MirroredStrategy over two logical CPU devices computes what one device computes,
JAX's DataParallel over two host devices trains, and what cannot run says why. Each run is a fresh
interpreter: devices are configured before TensorFlow or JAX starts."""

import os
import subprocess
import sys

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
    # validation: the same weights; an odd split loses at most one image to the even cut (said so)
    cut = len(pd.read_csv(small_sample / "val.csv")) % batch % 2
    assert ("leaving out 1 image(s)" in two.stdout) == bool(cut)
    assert b["val_loss"].to_numpy() == pytest.approx(a["val_loss"].to_numpy(), rel=0.1 if cut else 1e-4)


def test_jax_data_parallel_over_two_host_devices_trains(frozen, tmp_path):
    script = "import sys\nfrom affect_keras.cli.train import main\nsys.exit(main(sys.argv[1:]))\n"
    result = run([*frozen, "--distribute", "mirrored", "--run-dir", str(tmp_path / "jax")], script=script,
                 env={"KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--distribute mirrored: 2 replicas" in result.stdout
    history = pd.read_csv(tmp_path / "jax" / "history.csv")
    assert len(history) == 2 and history["loss"].iloc[1] < history["loss"].iloc[0]


@pytest.mark.parametrize("flags, message", [
    (["--distribute", "multiworker"], "keras-team/keras#20585"),
    (["--distribute", "mirrored", "--batch-size", "33"], "--batch-size 33 is the global batch and must divide"),
])
def test_what_cannot_run_says_why_in_one_line(frozen, tmp_path, flags, message):
    result = run([*frozen, *flags, "--run-dir", str(tmp_path / "refused")])
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
