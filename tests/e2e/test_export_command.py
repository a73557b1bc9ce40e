"""export.py and calibrate.py on the shipped preset: each into a folder of its own.

End to end, so marked slow: `make quick` leaves them out."""

import json

import numpy as np
import pytest
from conftest import loads_with_keras_alone  # noqa: E402

from affect_keras.calibration import scaled
from affect_keras.deploy.presets import save_preset
from affect_keras.models.classifier import ExpressionClassifier
from affect_keras.models.presets import (
    DEFAULT_PRESET,
    load_metadata,
)


def test_calibrate_py_fits_a_preset_into_a_new_folder(tiny_run, tmp_path, capsys):
    from affect_keras.cli.calibrate import main as calibrate_main
    from affect_keras.models.classifier import ExpressionClassifier
    from affect_keras.models.presets import load_metadata

    preset = save_preset(tiny_run / "run", tmp_path / "preset", dtype="float32")
    before = ExpressionClassifier.from_preset(preset).with_temperature(1.0)
    out = ["--out", str(tmp_path / "calibrated")]
    assert calibrate_main([str(preset), "--data", str(tiny_run / "data"), *out, "--force"]) == 0  # 15 faces
    printed = capsys.readouterr().out
    assert "Temperature" in printed and "ECE" in printed
    metadata = load_metadata(tmp_path / "calibrated")
    calibrated = ExpressionClassifier.from_preset(tmp_path / "calibrated")
    assert calibrated.temperature == pytest.approx(metadata["calibration"]["temperature"]) == metadata["temperature"]
    faces = np.random.default_rng(2).integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    relative = calibrated.temperature / before.temperature
    np.testing.assert_allclose(
        calibrated.predict(faces, verbose=0), scaled(before.predict(faces, verbose=0), relative), atol=1e-4
    )
    with pytest.raises(SystemExit):  # a preset needs --out
        calibrate_main([str(preset), "--data", str(tiny_run / "data")])
    assert "--out is required" in capsys.readouterr().err


from_preset = ExpressionClassifier.from_preset


def test_export_takes_a_preset_by_name_into_its_own_folder(tmp_path, monkeypatch):
    """export.py NAME: the preset's classifier as .keras, described by metadata.json too, in export-<preset>/
    here; the exported file loads with keras alone and gives the preset's probabilities."""
    from affect_keras.cli.export import main as export_main

    monkeypatch.chdir(tmp_path)
    assert export_main([DEFAULT_PRESET, "--format", "keras"]) == 0
    folder = tmp_path / f"export-{DEFAULT_PRESET}"
    meta = load_metadata(DEFAULT_PRESET)
    assert json.loads((folder / "metadata.json").read_text())["class_names"] == meta["class_names"]
    faces = np.random.default_rng(0).integers(0, 256, size=(3, 48, 48, 3), dtype=np.uint8)
    model = from_preset(DEFAULT_PRESET)
    got = loads_with_keras_alone(folder / "model.keras", faces, tmp_path)
    np.testing.assert_allclose(got["expression"], model.predict(faces, verbose=0), atol=1e-5)
