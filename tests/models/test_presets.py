"""Models that describe themselves: plain keras.saving.load_model after `import affect_keras`, presets that
save, load and refuse tampering, the shipped FER+ preset in predict / evaluate / train --weights."""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
from PIL import Image

from affect_keras import __version__
from affect_keras.cli.predict import main as predict_main
from affect_keras.deploy.presets import save_preset
from affect_keras.models.classifier import ExpressionClassifier
from affect_keras.models.loading import load_classifier
from affect_keras.models.presets import (
    DEFAULT_PRESET,
    WEIGHTS,
    PresetError,
    load_metadata,
    shipped_presets,
)

from_preset = ExpressionClassifier.from_preset
from conftest import REPO, loads_with_keras_alone  # noqa: E402

FACES = np.random.default_rng(3).integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)


@pytest.mark.slow
def test_a_run_loads_with_keras_load_model_after_import_affect_keras(tiny_run, tmp_path):
    """best.keras (the classifier) through keras's own loader in a process that imported only affect_keras
    and keras: the same probabilities as the one loader's. (test_tasks.py checks the other tasks' runs the
    same way.)"""
    model = load_classifier(tiny_run / "run")
    expected = model.predict(FACES, verbose=0)
    got = loads_with_keras_alone(tiny_run / "run" / "best.keras", FACES, tmp_path)
    np.testing.assert_allclose(got["expression"], expected, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("dtype, tolerance", [("float32", 1e-4), ("float16", 1e-2)])
def test_a_preset_saves_and_loads_with_its_metadata(tiny_run, tmp_path, dtype, tolerance):
    model = load_classifier(tiny_run / "run")
    names = model.class_names
    preset = save_preset(
        tiny_run / "run",
        tmp_path / "preset",
        dtype=dtype,
        data_terms="synthetic sample",
        commit="abc1234",
        framing={"crop": "box", "margin": 0.1},
    )
    loaded, meta = from_preset(preset), load_metadata(preset)
    assert type(loaded) is ExpressionClassifier and loaded.framing == {"crop": "box", "margin": 0.1}
    np.testing.assert_allclose(loaded.predict(FACES, verbose=0), model.predict(FACES, verbose=0), atol=tolerance)
    assert meta["class_names"] == names and meta["image_size"] == 32 and meta["backbone"] == "resnet18"
    assert meta["stem"] == "small" and meta["preprocessing"] == "torch" and meta["version"] == __version__
    assert meta["format_version"] == 2
    assert meta["weights_dtype"] == dtype and meta["framing"] == {"crop": "box", "margin": 0.1}
    assert meta["training"]["commit"] == "abc1234" and meta["training"]["config"]["epochs"] == 1
    assert meta["heads"] == ["expression"] and meta["label_scheme"] == "affectnet8"
    # the preset's file is a standard keras weights file: float16 arrays where asked, half the size
    import h5py

    with h5py.File(preset / WEIGHTS) as weights:
        dtypes = set()
        weights.visititems(lambda name, item: dtypes.add(item.dtype) if isinstance(item, h5py.Dataset) else None)
    assert dtypes == {np.dtype(dtype)}


def test_a_tampered_preset_file_is_refused_naming_the_file(tiny_run, tmp_path, capsys):
    preset = save_preset(tiny_run / "run", tmp_path / "preset")
    with open(preset / WEIGHTS, "r+b") as weights:  # one byte changed in the middle of the weights
        weights.seek(os.path.getsize(preset / WEIGHTS) // 2)
        byte = weights.read(1)
        weights.seek(-1, 1)
        weights.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(PresetError, match=f"{preset / WEIGHTS} does not match its sha256"):
        from_preset(preset)
    face = tmp_path / "face.png"
    Image.fromarray(FACES[0]).save(face)
    with pytest.raises(SystemExit) as stop:
        predict_main([str(face), "--no-detect", "--model", str(preset)])
    assert stop.value.code != 0
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1 and "model.weights.h5 does not match its sha256" in message


def test_a_preset_folder_that_is_not_empty_is_not_written_into(tiny_run, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(PresetError, match="not empty"):
        save_preset(tiny_run / "run", tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"


def test_the_shipped_preset_is_package_data_under_25_mb_and_verifies():
    """The keras model's files under 25 MB, with the runtime files (the float32 .tflite and its int8 variant:
    no .onnx, which would take the wheel past the package index's 100 MB) under 80 MB; every file matches its
    sha256."""
    from affect_keras.models.presets import CARD, CONFIG, METADATA, WEIGHTS, runtime_files, verify

    presets = shipped_presets()
    assert DEFAULT_PRESET in presets
    for name, path in presets.items():
        assert sum((path / f).stat().st_size for f in (CONFIG, WEIGHTS, METADATA, CARD)) < 25e6, name
        assert sum(f.stat().st_size for f in path.iterdir()) < 80e6, name
        assert set(runtime_files(name)) == {"litert", "litert-int8"}, name
        verify(path, tuple(runtime_files(name).values()))
        meta = load_metadata(name)  # every sha256 checked
        scores = meta["metrics"]["evaluation-val"]
        assert scores["accuracy"] >= 0.86 and scores["macro_f1"] >= 0.75, name
    setup = (REPO / "setup.cfg").read_text()
    assert "presets/*/*" in setup  # installed with the package, not only in a clone


def test_a_run_checkpoint_alone_describes_itself(tiny_run, tmp_path, capsys):
    """Every other file of the run deleted, best.keras alone names the right classes at the right size:
    predict.py PHOTO --model run/best.keras. A run writes no class_names.json, backbone.json or
    backbone.weights.h5."""
    import shutil

    run = tiny_run / "run"
    assert not {"class_names.json", "backbone.json", "backbone.weights.h5"} & {p.name for p in run.iterdir()}
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(run / "best.keras", alone / "best.keras")
    model = load_classifier(alone / "best.keras")
    assert model.class_names == json.loads((tiny_run / "data" / "summary.json").read_text())["class_names"]
    assert model.image_size == 32
    assert (model.backbone_name, model.stem, model.task) == ("resnet18", "small", "expression")
    face = tmp_path / "face.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (90, 70, 3), dtype=np.uint8)).save(face)
    lines = {}
    for model_path in (run, alone / "best.keras"):  # the whole run, and its checkpoint alone
        capsys.readouterr()
        assert predict_main([str(face), "--no-detect", "--model", str(model_path)]) == 0
        lines[model_path] = capsys.readouterr().out.splitlines()[-1]
    assert lines[run] == lines[alone / "best.keras"] and "face 1 at (0, 0, 70, 90)" in lines[run]
    assert lines[run].split(": ")[1].split()[0] in model.class_names


def test_what_was_written_before_0_2_0_is_refused_with_how_to_recreate_it(tiny_run, tmp_path):
    """A pre-release checkpoint (a functional model with the old Description layer), a format-1 preset and an
    export without a version: one line each, naming the file and saying how to re-create it."""
    import shutil
    import zipfile

    from affect_keras.models.loading import ModelFileError, load

    old = tmp_path / "old.keras"
    with zipfile.ZipFile(old, "w") as archive:
        archive.writestr(
            "config.json",
            json.dumps(
                {
                    "module": "keras",
                    "class_name": "Functional",
                    "config": {
                        "layers": [{"class_name": "Description", "registered_name": "affect_keras>Description"}]
                    },
                }
            ),
        )
    with pytest.raises(ModelFileError, match=f"{old} was written before affect-keras 0.2.0; re-create it") as error:
        load(old)
    assert "\n" not in str(error.value)
    foreign = tmp_path / "foreign.keras"  # somebody's own keras model: not ours, not "before 0.2.0"
    with zipfile.ZipFile(foreign, "w") as archive:
        archive.writestr("config.json", json.dumps({"module": "keras", "class_name": "Functional", "config": {}}))
    with pytest.raises(ModelFileError, match="holds a Functional, not an affect-keras ExpressionClassifier"):
        load(foreign)
    preset = tmp_path / "preset"
    shutil.copytree(REPO / "affect_keras" / "presets" / DEFAULT_PRESET, preset)
    meta = json.loads((preset / "metadata.json").read_text())
    (preset / "metadata.json").write_text(json.dumps({**meta, "format_version": 1}))
    sums = json.loads((preset / "sha256.json").read_text())
    from affect_keras.models.presets import sha256

    (preset / "sha256.json").write_text(json.dumps({**sums, "metadata.json": sha256(preset / "metadata.json")}))
    with pytest.raises(ModelFileError, match="was written before affect-keras 0.2.0 .format 1.; re-create it"):
        load(preset)
    export = tmp_path / "export"
    export.mkdir()
    (export / "model.tflite").write_bytes(b"x")
    (export / "metadata.json").write_text(json.dumps({"class_names": ["A"], "image_size": 32}))
    with pytest.raises(ModelFileError, match="was exported before affect-keras 0.2.0"):
        load(export / "model.tflite")


def test_a_preset_file_that_links_out_of_its_folder_is_refused(tmp_path):
    """Issue 46, item 18: a file of a preset that was a link to a file elsewhere passed the sha256 check (the
    sum was its target's). A link out of the folder is refused; one to a file inside it is read."""
    from affect_keras.models.presets import CARD, CHECKSUMS, CONFIG, FORMAT_VERSION, METADATA, sha256, verify

    preset, elsewhere = tmp_path / "preset", tmp_path / "elsewhere"
    preset.mkdir()
    elsewhere.mkdir()
    (preset / METADATA).write_text(json.dumps({"format_version": FORMAT_VERSION}))
    for name in (CONFIG, CARD):
        (preset / name).write_text(name)
    (elsewhere / WEIGHTS).write_text("weights")  # the preset's weights are a link to this file
    (preset / WEIGHTS).symlink_to(elsewhere / WEIGHTS)
    files = (CONFIG, WEIGHTS, METADATA, CARD)
    (preset / CHECKSUMS).write_text(json.dumps({name: sha256(preset / name) for name in files}))
    with pytest.raises(PresetError, match=f"{WEIGHTS} is a link out of the preset's folder"):
        verify(preset)
    (preset / WEIGHTS).unlink()
    (preset / "weights.bin").write_text("weights")
    (preset / WEIGHTS).symlink_to("weights.bin")  # inside the folder: a link is fine
    assert verify(preset) == {"format_version": FORMAT_VERSION}
