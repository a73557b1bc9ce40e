"""The benchmark at a tiny size: every figure present and positive (no timing is asserted here)."""

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO


@pytest.mark.slow
def test_bench_measures_every_path(tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [
            sys.executable,
            "benchmarks/bench.py",
            "--size",
            "32",
            "--images",
            "64",
            "--batch-size",
            "16",
            "--backbones",  # one: every backbone takes the same path through the benchmark
            "resnet18",
            "--compare-backbone",
            "resnet18",
            "--head-epochs",
            "2",
            "--head-rows",
            "256",
            "--decode-rows",
            "128",
            "--out",
            str(out),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert set(results["input images/s"]) == {
        "FaceBatches",
        "FaceBatches, first pass",
        "tf.data",
        "tf.data / FaceBatches",
    }
    assert results["tf.data epoch, first batch after (ms)"] > 0
    assert set(results["backbones"]) == {"resnet18"}
    for figures in results["backbones"].values():
        assert set(figures) == {
            "frozen epoch, uncached",
            "cache build (once)",
            "head epoch, cached",
            "cached / uncached",
        }
        assert all(value > 0 for value in figures.values())
    step = results["training step"]
    assert step["backbone"] == "resnet18" and step["project / plain"] > 0
    assert step["project (tf.data)"] > 0 and step["project (pydataset)"] > 0
    files = results["frozen epoch from files"]
    assert files["tf.data"] > 0 and files["pydataset"] > 0 and files["tf.data / pydataset"] > 0
    assert {"SavedModel", "TFLite"} <= set(results["predict images/s"])
    assert all(value > 0 for value in results["predict images/s"].values())
    assert "Frozen backbone, images/s" in done.stdout and "cached head epoch" in done.stdout
