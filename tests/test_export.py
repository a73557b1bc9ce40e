"""Every export format reloads in its own runtime and matches the trained model within 1e-4, every
output of it under its head's name (an expression classifier and an expression + V/A model)."""

import json
import sys

import keras
import numpy as np
import pytest

from affect_keras.cli.export import main as export_main
from affect_keras.litert import tflite_interpreter
from affect_keras.deploy.inference import load_run
from affect_keras.deploy.predictor import named_outputs

tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run / "run"


@pytest.fixture(scope="module", params=["expression", "multitask"])
def case(request, run, multitask_run):
    """(run, export folder, expected outputs {head: array}) for a single- and a multi-output model."""
    chosen = run if request.param == "expression" else multitask_run
    assert export_main([str(chosen), "--format", "saved_model", "keras", "tflite", "onnx"]) == 0
    model, _ = load_run(chosen)
    return chosen, chosen / "export", named_outputs(model.predict(IMAGES, verbose=0))


IMAGES = np.random.default_rng(0).integers(0, 256, size=(5, 32, 32, 3), dtype=np.uint8)


def assert_outputs_match(result: dict, expected: dict, rows: int = len(IMAGES)):
    assert sorted(result) == sorted(expected)  # every output, under its head's name
    for name in expected:
        np.testing.assert_allclose(np.asarray(result[name]), expected[name][:rows], atol=1e-4)


def test_the_inference_model_has_no_augmentation(run):
    model, names = load_run(run)
    assert "augmentation" not in [layer.name for layer in model.layers]
    assert "augmentation" in [layer.name for layer in keras.saving.load_model(run / "best.keras").layers]
    assert model.input.dtype == "uint8" and len(names) == 8


def test_saved_model_round_trip(case):
    _, exported, expected = case
    loaded = tf.saved_model.load(str(exported / "saved_model"))
    for batch in (IMAGES, IMAGES[:1]):  # any batch size
        result = named_outputs(keras.tree.map_structure(lambda t: t.numpy(), loaded.serve(tf.constant(batch))))
        assert_outputs_match(result, expected, len(batch))
    names = (exported / "saved_model" / "assets" / "class_names.txt").read_text().splitlines()
    assert names == json.loads((exported / "class_names.json").read_text())


def test_keras_round_trip_in_safe_mode(case):
    _, exported, expected = case
    model = keras.saving.load_model(exported / "model.keras", safe_mode=True)
    assert_outputs_match(named_outputs(model.predict(IMAGES, verbose=0)), expected)


def test_tflite_round_trip(case):
    _, exported, expected = case
    interpreter = tflite_interpreter(exported / "model.tflite")
    assert type(interpreter).__module__.startswith("ai_edge_litert")  # LiteRT, installed with the dev extra
    runner = interpreter.get_signature_runner(next(iter(interpreter.get_signature_list())))
    (name, source), = runner.get_input_details().items()
    assert source["dtype"] == np.uint8
    assert_outputs_match(runner(**{name: IMAGES}), expected)


def test_without_litert_the_tflite_file_runs_in_tensorflows_interpreter(case, monkeypatch):
    _, exported, expected = case
    for module in ("ai_edge_litert", "ai_edge_litert.interpreter"):  # as if it were not installed
        monkeypatch.setitem(sys.modules, module, None)
    interpreter = tflite_interpreter(exported / "model.tflite")
    assert type(interpreter).__module__.startswith("tensorflow")
    runner = interpreter.get_signature_runner(next(iter(interpreter.get_signature_list())))
    (name, _), = runner.get_input_details().items()
    assert_outputs_match(runner(**{name: IMAGES}), expected)


def test_onnx_round_trip(case):
    ort = pytest.importorskip("onnxruntime")
    _, exported, expected = case
    session = ort.InferenceSession(str(exported / "model.onnx"))
    values = session.run(None, {session.get_inputs()[0].name: IMAGES})
    assert_outputs_match(dict(zip([o.name for o in session.get_outputs()], values)), expected)


def test_unknown_format_is_a_one_line_error(run, capsys):
    with pytest.raises(SystemExit):
        export_main([str(run), "--format", "pickle"])
    assert "argument --format: invalid choice: 'pickle'" in capsys.readouterr().err
