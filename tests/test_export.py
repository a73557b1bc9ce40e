"""Every export format reloads in its own runtime and matches the trained model within 1e-4."""

import json

import keras
import numpy as np
import pytest

from affect_keras.cli.export import main as export_main
from affect_keras.deploy.inference import load_run

tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run / "run"


@pytest.fixture(scope="module")
def exported(run):
    assert export_main([str(run), "--format", "saved_model", "keras", "tflite", "onnx"]) == 0
    return run / "export"


IMAGES = np.random.default_rng(0).integers(0, 256, size=(5, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def expected(run):
    model, _ = load_run(run)
    return model.predict(IMAGES, verbose=0)


def test_the_inference_model_has_no_augmentation(run):
    model, names = load_run(run)
    assert "augmentation" not in [layer.name for layer in model.layers]
    assert "augmentation" in [layer.name for layer in keras.saving.load_model(run / "best.keras").layers]
    assert model.input.dtype == "uint8" and len(names) == 8


def test_saved_model_round_trip(exported, expected):
    loaded = tf.saved_model.load(str(exported / "saved_model"))
    for batch in (IMAGES, IMAGES[:1]):  # any batch size
        np.testing.assert_allclose(loaded.serve(tf.constant(batch)).numpy(), expected[:len(batch)], atol=1e-4)
    names = (exported / "saved_model" / "assets" / "class_names.txt").read_text().splitlines()
    assert names == json.loads((exported / "class_names.json").read_text())


def test_keras_round_trip_in_safe_mode(exported, expected):
    model = keras.saving.load_model(exported / "model.keras", safe_mode=True)
    np.testing.assert_allclose(model.predict(IMAGES, verbose=0), expected, atol=1e-4)


def test_tflite_round_trip(exported, expected):
    interpreter = tf.lite.Interpreter(model_path=str(exported / "model.tflite"))
    source = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(source["index"], IMAGES.shape)
    interpreter.allocate_tensors()
    assert source["dtype"] == np.uint8
    interpreter.set_tensor(source["index"], IMAGES)
    interpreter.invoke()
    result = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(result, expected, atol=1e-4)


def test_onnx_round_trip(exported, expected):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(exported / "model.onnx"))
    result = session.run(None, {session.get_inputs()[0].name: IMAGES})[0]
    np.testing.assert_allclose(result, expected, atol=1e-4)


def test_unknown_format_is_a_one_line_error(run, capsys):
    with pytest.raises(SystemExit):
        export_main([str(run), "--format", "pickle"])
    assert "argument --format: invalid choice: 'pickle'" in capsys.readouterr().err
