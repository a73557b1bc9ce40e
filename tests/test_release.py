"""What a release wrote loads in every later commit: the run, export, preset and prepared folder that
affect-keras 0.2.0 wrote (tests/fixtures/release-0.2.0, made by tests/fixtures/make_release_fixture.py) give
the outputs that release computed, through keras's own loader, the one loader and predict.py, and the
prepared folder continues with the same command, reusing every image."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

FIXTURE = Path(__file__).parent / "fixtures" / "release-0.2.0"
EXPECTED = np.load(FIXTURE / "expected.npz")
ARTIFACTS = {"run": ("run", 1e-5), "tflite": ("export/model.tflite", 1e-4), "preset": ("preset", 1e-5)}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(ARTIFACTS))
def test_each_artifact_of_0_2_0_gives_what_0_2_0_computed(kind):
    from affect_keras.models.loading import kind_of, load

    path, tolerance = ARTIFACTS[kind]
    assert kind_of(FIXTURE / path) == kind
    model = load(FIXTURE / path)
    assert model.image_size == 32 and len(model.class_names) == 8 and model.heads == ("expression",)
    np.testing.assert_allclose(model.predict(EXPECTED["faces"]), EXPECTED[kind], atol=tolerance)


@pytest.mark.slow
def test_the_0_2_0_checkpoint_is_an_expression_classifier_for_keras_alone(tmp_path):
    from conftest import loads_with_keras_alone

    got = loads_with_keras_alone(FIXTURE / "run" / "best.keras", EXPECTED["faces"], tmp_path)
    np.testing.assert_allclose(got["expression"], EXPECTED["run"], atol=1e-5)


def test_predict_py_reads_every_0_2_0_artifact(tmp_path, capsys):
    from affect_keras.cli.predict import main as predict_main

    face = tmp_path / "face.png"
    Image.fromarray(EXPECTED["faces"][0]).save(face)
    printed = set()
    for path, _ in ARTIFACTS.values():
        capsys.readouterr()
        assert predict_main([str(face), "--no-detect", "--model", str(FIXTURE / path)]) == 0
        printed.add(capsys.readouterr().out.splitlines()[-1].split(": ", 1)[1].split()[0])
    assert len(printed) == 1  # the same most probable class from each


@pytest.mark.slow
def test_the_0_2_0_prepared_folder_is_read_and_continues_with_the_same_images(tmp_path, monkeypatch, capsys):
    """evaluate.py reads it (the 0.2.0 run on its test split); prepare with its own record as --config
    continues it (the generated sample made again) and leaves every image byte for byte as it was."""
    from affect_keras.cli.evaluate import main as evaluate_main
    from affect_keras.cli.prepare import main as prepare_main

    shutil.copytree(FIXTURE / "data", tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    recorded = yaml.safe_load((FIXTURE / "data" / "prepare_config.yaml").read_text())
    assert recorded["version"] == "0.2.0"
    before = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "data").rglob("*.jpg")}
    assert (
        evaluate_main([str(FIXTURE / "run"), "--data", "data", "--split", "test", "--out", "report", "--repeats", "1"])
        == 0
    )
    report = yaml.safe_load((tmp_path / "report" / "report.json").read_text())
    assert report["images"] == len((tmp_path / "data" / "test.csv").read_text().splitlines()) - 1
    assert prepare_main(["--config", "data/prepare_config.yaml"]) == 0
    after = {
        p.relative_to(tmp_path): p.read_bytes()
        for p in (tmp_path / "data" / "train").parent.rglob("*.jpg")
        if "affectnet_sample" not in p.parts
    }
    assert after == before
