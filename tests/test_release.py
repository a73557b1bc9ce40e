"""What a release wrote loads in every later commit: the run, export, preset and prepared folder that each
release wrote (tests/fixtures/release-X.Y.Z, made by tests/fixtures/make_release_fixture.py with that
release's code) give the outputs that release computed, through keras's own loader, the one loader and
predict.py, and the prepared folder continues with the same command, reusing every image."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

FIXTURES = Path(__file__).parent / "fixtures"
RELEASES = sorted(path.name.removeprefix("release-") for path in FIXTURES.glob("release-*"))
ARTIFACTS = {"run": ("run", 1e-5), "tflite": ("export/model.tflite", 1e-4), "preset": ("preset", 1e-5)}


def fixture(release: str) -> tuple[Path, dict]:
    """The folder of what `release` wrote, and what it computed (expected.npz)."""
    folder = FIXTURES / f"release-{release}"
    return folder, np.load(folder / "expected.npz")


def test_every_release_has_a_fixture():
    import affect_keras

    assert RELEASES[:2] == ["0.2.0", "0.3.0"] and affect_keras.__version__ in RELEASES


@pytest.mark.slow
@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("kind", sorted(ARTIFACTS))
def test_each_artifact_of_a_release_gives_what_it_computed(kind, release):
    from affect_keras.models.loading import kind_of, load

    folder, expected = fixture(release)
    path, tolerance = ARTIFACTS[kind]
    assert kind_of(folder / path) == kind
    model = load(folder / path)
    assert model.image_size == 32 and len(model.class_names) == 8 and model.heads == ("expression",)
    np.testing.assert_allclose(model.predict(expected["faces"]), expected[kind], atol=tolerance)


@pytest.mark.slow
@pytest.mark.parametrize("release", RELEASES)
def test_a_releases_checkpoint_is_an_expression_classifier_for_keras_alone(release, tmp_path):
    from conftest import loads_with_keras_alone

    folder, expected = fixture(release)
    got = loads_with_keras_alone(folder / "run" / "best.keras", expected["faces"], tmp_path)
    np.testing.assert_allclose(got["expression"], expected["run"], atol=1e-5)


@pytest.mark.parametrize("release", RELEASES)
def test_predict_py_reads_every_artifact_of_a_release(release, tmp_path, capsys):
    from affect_keras.cli.predict import main as predict_main

    folder, expected = fixture(release)
    face = tmp_path / "face.png"
    Image.fromarray(expected["faces"][0]).save(face)
    printed = set()
    for path, _ in ARTIFACTS.values():
        capsys.readouterr()
        assert predict_main([str(face), "--no-detect", "--model", str(folder / path)]) == 0
        printed.add(capsys.readouterr().out.splitlines()[-1].split(": ", 1)[1].split()[0])
    assert len(printed) == 1  # the same most probable class from each


@pytest.mark.slow
@pytest.mark.parametrize("release", RELEASES)
def test_a_releases_prepared_folder_is_read_and_continues_with_the_same_images(release, tmp_path, monkeypatch):
    """evaluate.py reads it (the release's run on its test split); prepare with its own record as --config
    continues it (the generated sample made again) and leaves every image byte for byte as it was."""
    from affect_keras.cli.evaluate import main as evaluate_main
    from affect_keras.cli.prepare import main as prepare_main

    folder = fixture(release)[0]
    shutil.copytree(folder / "data", tmp_path / "data")
    shutil.copytree(folder / "run", tmp_path / "run")  # evaluate writes the run's model card
    monkeypatch.chdir(tmp_path)
    recorded = yaml.safe_load((folder / "data" / "prepare_config.yaml").read_text())
    assert recorded["version"] == release
    before = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "data").rglob("*.jpg")}
    assert (
        evaluate_main([str(tmp_path / "run"), "--data", "data", "--split", "test", "--out", "report", "--repeats", "1"])
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
