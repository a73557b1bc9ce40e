"""--distribute on the CPU: MirroredStrategy over two logical CPU devices, and MultiWorkerMirroredStrategy over
two processes on loopback addresses, and JAX's ModelParallel over two host devices compute what one device
computes; what cannot run says why. (JAX's DataParallel over two host devices: test_learning.py, where the
JAX run learns the sample.) Each run is a fresh interpreter: devices are configured before TensorFlow or JAX
starts."""

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
    from affect_keras.models.build import core_of
    model = keras.saving.load_model(run_dir / "last.keras", compile=False)
    return keras.ops.convert_to_numpy(core_of(model).get_layer("logits").kernel)


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


def test_mirrored_over_two_cpu_devices_tracks_one_device(frozen, one_device, small_sample, tmp_path):
    batch, one_dir = one_device
    two = run([*frozen, "--batch-size", str(batch), "--distribute", "mirrored", "--run-dir", str(tmp_path)])
    assert two.returncode == 0, two.stderr[-2000:]
    assert f"2 replicas, global batch {batch} ({batch // 2} per replica)" in two.stdout
    assert "last train batch" not in two.stdout
    cut = len(pd.read_csv(small_sample / "val.csv")) % batch % 2
    assert ("leaving out 1 image(s)" in two.stdout) == bool(cut)
    assert_same_training(tmp_path, one_dir)


def free_ports(count):
    import socket
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def two_workers(program, args: list[str], tmp_path) -> list[str]:
    """Two workers on loopback addresses (`python *program(index) *args --distribute multiworker`), each
    with its own run directory `tmp_path/worker{index}`; both must succeed. Their stdout."""
    import json
    workers = [f"localhost:{port}" for port in free_ports(2)]
    procs = [subprocess.Popen(
        [sys.executable, *program(index), *args, "--distribute", "multiworker", "--run-dir",
         str(tmp_path / f"worker{index}")], cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
             "TF_CONFIG": json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})})
        for index in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    return [out for out, _ in outs]


def test_two_workers_on_loopback_addresses_train_and_agree(frozen, one_device, tmp_path):
    """MultiWorkerMirroredStrategy over two processes on this machine (TF_CONFIG with loopback addresses),
    the same command on each, each with its own run directory: both finish with the same logs and weights,
    and those are the one-device run's (each global batch is split over the workers)."""
    batch, one_dir = one_device
    outs = two_workers(lambda index: ["train.py"], [*frozen, "--batch-size", str(batch)], tmp_path)
    for out in outs:
        assert f"2 replicas, global batch {batch} ({batch // 2} per replica)" in out
    pd.testing.assert_frame_equal(*(pd.read_csv(tmp_path / f"worker{i}" / "history.csv") for i in range(2)))
    np.testing.assert_array_equal(*(logits_kernel(tmp_path / f"worker{i}") for i in range(2)))
    assert_same_training(tmp_path / "worker0", one_dir)


MODEL_PARALLEL = """
import sys
import affect_keras.training.run as run
from affect_keras.cli.train import main
trained, train = [], run.train
run.train = lambda config: trained.append(train(config)) or trained[-1]  # main imports it when it runs
code = main(sys.argv[1:])
weights = trained[0].weights
sharded = [w for w in weights if not w.value.sharding.is_fully_replicated]
devices = {len(w.value.sharding.device_set) for w in weights}
print(f"sharded {len(sharded)} of {len(weights)} variables over {devices} devices")
sys.exit(code)
"""


def test_model_parallel_on_jax_shards_the_kernels_and_computes_what_one_device_does(frozen, tmp_path):
    """--distribute model-parallel (JAX, keras.distribution.ModelParallel over two host devices): the
    kernels are sharded over both devices, and training gives the one-device run's losses and weights."""
    pytest.importorskip("jax")
    env = {"KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    one = run([*frozen, "--run-dir", str(tmp_path / "one")], env, MODEL_PARALLEL)
    two = run([*frozen, "--distribute", "model-parallel", "--run-dir", str(tmp_path / "two")], env, MODEL_PARALLEL)
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-3000:]
    assert "sharded 0 of" in one.stdout
    sharded = int(two.stdout.split("sharded ")[1].split(" of ")[0])
    assert sharded >= 20 and "over {2} devices" in two.stdout  # ResNet18's convolutions and the head
    a, b = (pd.read_csv(tmp_path / name / "history.csv") for name in ("one", "two"))
    for column in ("loss", "accuracy", "val_loss"):
        assert b[column].to_numpy() == pytest.approx(a[column].to_numpy(), rel=1e-4, abs=1e-5)
    np.testing.assert_allclose(logits_kernel(tmp_path / "two"), logits_kernel(tmp_path / "one"), atol=1e-5)


@pytest.mark.parametrize("flags, message", [
    (["--distribute", "mirrored", "--batch-size", "33"], "--batch-size 33 is the global batch and must divide"),
    (["--distribute", "model-parallel"], "--distribute model-parallel needs the JAX backend"),
])
def test_what_cannot_run_says_why_in_one_line(frozen, tmp_path, flags, message):
    result = run([*frozen, *flags, "--run-dir", str(tmp_path / "refused")])
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr


COUNTED = """
import atexit, os, sys, tempfile
# train here, not in a watched child (training/supervisor.py), so that the counting below sees the decoding
os.environ["AFFECT_KERAS_STARTED_FILE"] = os.path.join(tempfile.mkdtemp(), "started")
import tensorflow as tf
import affect_keras.data.tfdata as tfdata
tfdata.CACHE_LIMIT_BYTES = 0  # decode from the files every epoch, as a split too large for memory is
decoded = [0]
original = tfdata.decode
def counted(path, size, any_format=True):
    def bump(p):
        decoded[0] += 1
        return p
    return original(tf.numpy_function(bump, [path], tf.string, stateful=True), size, any_format)
tfdata.decode = counted
count_file = sys.argv.pop(1)
atexit.register(lambda: open(count_file, "w").write(str(decoded[0])))
from affect_keras.cli.train import main
sys.exit(main(sys.argv[1:]))
"""


def test_two_workers_each_decode_only_their_half_of_a_streamed_split(frozen, one_device, small_sample, tmp_path):
    """Issue 25: a split decoded every epoch, two workers: each reads and decodes only its own part of
    each global batch (counted at the decode), and the weights are the one-device run's."""
    batch, one_dir = one_device
    train, val = (len(pd.read_csv(small_sample / f"{split}.csv")) for split in ("train", "val"))
    two_workers(lambda index: ["-c", COUNTED, str(tmp_path / f"decoded{index}")],
                [*frozen, "--batch-size", str(batch), "--input-pipeline", "tf.data"], tmp_path)
    counts = [int((tmp_path / f"decoded{index}").read_text()) for index in range(2)]
    epochs = 2
    whole = epochs * (train + val - val % 2)  # the last val batch is cut to a multiple of the two replicas
    assert counts[0] == counts[1] == whole // 2, (counts, whole)
    assert_same_training(tmp_path / "worker0", one_dir)
