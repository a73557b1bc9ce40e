"""The runtime install: `pip install affect-keras` into a fresh virtual environment gives predict.py on a
photo, a folder and a video without keras, TensorFlow, JAX or torch, with the shipped preset's LiteRT file
and with an exported .tflite; its probabilities are the keras path's within 1e-3; and the commands that
need the training install say so in one line."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import clips

MUXSPACE = REPO.parent / "shared/data/muxspace_subset"
PHOTOS = [
    "happiness/Aaron_Sorkin_0002.jpg",
    "surprise/Anders_Fogh_Rasmussen_0001.jpg",
    "neutral/Ann_Veneman_0006.jpg",
    "sadness/Arnaud_Lagardere_0001.jpg",
]
HEAVY = ("tensorflow", "tensorflow-cpu", "keras", "jax", "jaxlib", "torch", "tf-keras")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (MUXSPACE / "happiness").is_dir(), reason="muxspace_subset not beside the repo"),
]


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    """The python of a fresh virtual environment with `pip install <this checkout>` and nothing else."""
    venv = tmp_path_factory.mktemp("runtime") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", str(REPO)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return python


def run(python, *argv, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KERAS_BACKEND")}
    return subprocess.run(
        [str(python), str(REPO / "predict.py"), *map(str, argv)], capture_output=True, text=True, cwd=cwd, env=env
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A photo, a folder of four photos, and a 40-frame clip of two of them moving."""
    import shutil

    root = tmp_path_factory.mktemp("inputs")
    (root / "folder").mkdir()
    for name in PHOTOS:
        shutil.copy(MUXSPACE / name, root / "folder" / name.replace("/", "_"))
    actors, _ = clips.crossing(MUXSPACE)
    clips.write_clip(root / "clip.mp4", actors[:2], 40)
    return {"photo": MUXSPACE / PHOTOS[0], "folder": root / "folder", "video": root / "clip.mp4"}


def probabilities(csv) -> np.ndarray:
    table = pd.read_csv(csv)
    return table[[c for c in table.columns if c.startswith("p_")]].to_numpy()


@pytest.mark.slow
def test_the_runtime_install_has_no_keras_tensorflow_jax_or_torch(runtime):
    listed = subprocess.run(
        [str(runtime), "-m", "pip", "list", "--format", "freeze"], capture_output=True, text=True
    ).stdout.lower()
    installed = {line.split("==")[0] for line in listed.splitlines()}
    assert "affect-keras" in installed and "ai-edge-litert" in installed and "opencv-python-headless" in installed
    assert not installed & set(HEAVY), installed & set(HEAVY)


@pytest.mark.slow
@pytest.mark.parametrize("what", ["photo", "folder", "video"])
def test_predict_without_keras_gives_the_keras_paths_probabilities(runtime, inputs, what, tmp_path):
    from affect_keras.cli.predict import main

    light, heavy = tmp_path / "litert.csv", tmp_path / "keras.csv"
    done = run(runtime, inputs[what], "--csv", light, "--every", 2, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert main([str(inputs[what]), "--engine", "keras", "--csv", str(heavy), "--every", "2"]) == 0
    a, b = probabilities(light), probabilities(heavy)
    assert a.shape == b.shape and len(a) >= 1
    assert np.abs(a - b).max() <= 1e-3


def test_an_exported_tflite_runs_with_the_metadata_beside_it(runtime, inputs, tmp_path):
    exported = REPO / "tests/fixtures/release-0.2.0/export/model.tflite"
    done = run(runtime, inputs["photo"], "--model", exported, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "face 1 at" in done.stdout and "Neutral" in done.stdout  # a class name from its metadata.json


def test_without_the_training_install_commands_say_what_to_install(runtime, inputs, tmp_path):
    """A training command says what to install in one line; its --help (issue 46, item 17: it failed) says it
    too, with where its options are described, and exits 0."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    install = (
        "needs the training install (keras, pandas, sklearn, matplotlib, a backend (tensorflow or jax) missing): "
        "pip install 'affect-keras[train,cpu]' (or [train,tf] / [train,jax]); predict.py alone runs without it"
    )
    for script, page in (("train.py", "train"), ("prepare_dataset.py", "prepare"), ("export.py", "export")):
        done = subprocess.run(
            [str(runtime), str(REPO / script), "--data", "d"], capture_output=True, text=True, cwd=tmp_path, env=env
        )
        assert done.returncode == 1 and done.stderr.strip().splitlines() == [f"{script}: error: {install}"]
        done = subprocess.run(
            [str(runtime), str(REPO / script), "--help"], capture_output=True, text=True, cwd=tmp_path, env=env
        )
        assert done.returncode == 0 and done.stdout.startswith(f"usage: {script} [options]")
        assert f"{script} {install}." in done.stdout and f"docs/reference/{page}.md" in done.stdout
        assert (REPO / "docs" / "reference" / f"{page}.md").is_file()
    done = run(runtime, inputs["photo"], "--engine", "keras", cwd=tmp_path)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("predict.py: error: --engine keras needs keras")
    done = run(runtime, inputs["video"], "--timeline", tmp_path / "timeline.png", cwd=tmp_path)
    assert done.returncode == 2
    assert "--timeline needs matplotlib, not installed here: pip install matplotlib" in done.stderr
