"""The public API at the package top (issue 26): one name per stage, imported on first use, and what the
notebook uses."""

import json
import re
import subprocess
import sys

from conftest import REPO

import affect_keras


def test_import_affect_keras_loads_no_keras_or_tensorflow():
    probe = (
        "import sys, affect_keras; print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'PIL', 'pandas') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_every_public_name_is_the_stage_it_names():
    from affect_keras.data.prepare import PrepareConfig, prepare
    from affect_keras.deploy.analyse import predict
    from affect_keras.deploy.video import predict_video
    from affect_keras.evaluation.report import EvaluateConfig, evaluate
    from affect_keras.models.classifier import ExpressionClassifier, from_preset
    from affect_keras.models.export import export
    from affect_keras.models.loading import load
    from affect_keras.training.config import TrainConfig
    from affect_keras.training.run import train

    assert (
        affect_keras.prepare,
        affect_keras.PrepareConfig,
        affect_keras.train,
        affect_keras.TrainConfig,
        affect_keras.evaluate,
        affect_keras.EvaluateConfig,
        affect_keras.export,
        affect_keras.predict,
        affect_keras.from_preset,
    ) == (prepare, PrepareConfig, train, TrainConfig, evaluate, EvaluateConfig, export, predict, from_preset)
    assert (affect_keras.ExpressionClassifier, affect_keras.load_model, affect_keras.predict_video) == (
        ExpressionClassifier,
        load,
        predict_video,
    )
    assert set(affect_keras.__all__) <= set(dir(affect_keras))
    for name in affect_keras.__all__:  # the API reference is made of these docstrings (not dataclass stubs)
        doc = getattr(affect_keras, name).__doc__ or ""
        assert doc and not doc.startswith(f"{name}("), name
    try:
        affect_keras.no_such_stage
    except AttributeError as error:
        assert "no_such_stage" in str(error)
    else:
        raise AssertionError("an unknown name resolved")


def test_the_notebook_uses_the_public_api_only():
    notebook = json.loads((REPO / "notebooks" / "quickstart.ipynb").read_text())
    code = "\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code")
    assert not re.search(r"from affect_keras[.\w]* import|import affect_keras\.", code)
    used = set(re.findall(r"affect_keras\.(\w+)", code))
    assert used and used <= set(affect_keras.__all__), used - set(affect_keras.__all__)


def test_predict_gives_each_faces_probabilities(tmp_path):
    import numpy as np
    from PIL import Image

    photo = REPO.parent / "shared" / "data" / "muxspace_subset" / "happiness" / "Aaron_Sorkin_0002.jpg"
    if not photo.is_file():
        import pytest

        pytest.skip("muxspace_subset not beside the repo")
    faces = affect_keras.predict(photo)
    assert len(faces) == 1 and len(faces[0]["box"]) == 4
    probabilities = faces[0]["probabilities"]
    assert abs(sum(probabilities.values()) - 1) < 1e-4 and max(probabilities, key=probabilities.get) == "Happy"
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    assert affect_keras.predict(rgb)[0]["box"] == faces[0]["box"]  # an array or a path, the same
    # the model load_model returned (issue 46, item 17: it was refused), and each face's landmarks and answer
    assert affect_keras.predict(photo, model=affect_keras.load_model("ferplus_resnet18_48")) == faces
    assert faces[0]["expression"] == "Happy" and len(faces[0]["landmarks"]) == 6


def test_no_stage_of_the_api_writes_into_a_users_folder_or_over_a_users_file(tiny_run, tmp_path):
    """Issue 36, the safety rule for the Python API: every stage that writes refuses a folder of someone
    else's files (or a file where its folder goes) before any work, and leaves it as it was."""
    import pytest

    from affect_keras.options import OptionError

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    (tmp_path / "file.txt").write_text("my file")
    run, data = tiny_run / "run", tiny_run / "data"
    stages = {
        "prepare": lambda out: affect_keras.prepare(affect_keras.PrepareConfig(source="sample", out=out, count=20)),
        "train": lambda out: affect_keras.train(
            affect_keras.TrainConfig(data=str(data), run_dir=str(out), weights="none", image_size=32)
        ),
        "evaluate": lambda out: affect_keras.evaluate(
            affect_keras.EvaluateConfig(str(run), str(data), split="val", out=str(out))
        ),
        "export": lambda out: affect_keras.export(run, ["keras"], out),
        "save_preset": lambda out: affect_keras.save_preset(run, out),
    }
    for stage, write in stages.items():
        for target in (mine, tmp_path / "file.txt"):
            with pytest.raises((OptionError, ValueError)) as error:
                write(target)
            assert "\n" not in str(error.value), stage
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"] and (mine / "notes.txt").read_text() == "my notes"
    assert (tmp_path / "file.txt").read_text() == "my file"
