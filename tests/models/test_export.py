"""Every export format reloads in its own runtime and matches the trained model within 1e-4, every
output of it under its head's name (an expression classifier and an expression + V/A model); and the one
loader reads each of them with the class names and size of its metadata."""

import json
import sys

import keras
import numpy as np
import pytest
from conftest import one_line_error

from affect_keras.cli.export import main as export_main
from affect_keras.litert import tflite_interpreter
from affect_keras.models.classifier import ExpressionClassifier
from affect_keras.models.loading import KINDS, ModelFileError, kind_of, load, named_outputs
from affect_keras import __version__

tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run / "run"


@pytest.fixture(scope="module", params=["expression", "multitask"])
def case(request, run, multitask_run):
    """(run, export folder, expected outputs {head: array}) for a single- and a multi-output model."""
    chosen = run if request.param == "expression" else multitask_run
    assert export_main([str(chosen), "--format", "saved_model", "keras", "tflite", "onnx"]) == 0
    model = load(chosen)
    return chosen, chosen / "export", model.outputs(IMAGES)


IMAGES = np.random.default_rng(0).integers(0, 256, size=(5, 32, 32, 3), dtype=np.uint8)


def assert_outputs_match(result: dict, expected: dict, rows: int = len(IMAGES)):
    assert sorted(result) == sorted(expected)  # every output, under its head's name
    for name in expected:
        np.testing.assert_allclose(np.asarray(result[name]), expected[name][:rows], atol=1e-4)


def test_a_runs_checkpoint_is_the_classifier_without_augmentation(run):
    model = keras.saving.load_model(run / "best.keras", safe_mode=True)
    assert type(model) is ExpressionClassifier
    assert "augmentation" not in [layer.name for layer in model.layers]
    assert model.input.dtype == "uint8" and len(model.class_names) == 8


@pytest.mark.slow
def test_the_one_loader_reads_every_kind_with_its_description(case):
    """Run, .keras, SavedModel, .tflite and .onnx: the same outputs, class names, size and framing."""
    chosen, exported, expected = case
    reference = load(chosen)
    paths = {
        "run": chosen,
        "keras": exported / "model.keras",
        "saved_model": exported / "saved_model",
        "tflite": exported / "model.tflite",
        "onnx": exported / "model.onnx",
    }
    for kind, path in paths.items():
        assert kind_of(path) == kind
        loaded = load(path, trust_saved_model=kind == "saved_model")  # a SavedModel is a program
        assert (loaded.class_names, loaded.image_size, loaded.heads, loaded.framing) == (
            reference.class_names,
            reference.image_size,
            reference.heads,
            reference.framing,
        ), kind
        assert (loaded.classifier is not None) == KINDS[kind].keras
        assert_outputs_match(loaded.outputs(IMAGES), expected)
    (exported / "metadata.json").rename(exported / "moved.json")
    try:
        with pytest.raises(ModelFileError, match="no metadata.json beside it"):
            load(exported / "model.tflite")
    finally:
        (exported / "moved.json").rename(exported / "metadata.json")


def test_saved_model_round_trip(case):
    _, exported, expected = case
    loaded = tf.saved_model.load(str(exported / "saved_model"))
    for batch in (IMAGES, IMAGES[:1]):  # any batch size
        result = named_outputs(keras.tree.map_structure(lambda t: t.numpy(), loaded.serve(tf.constant(batch))))
        assert_outputs_match(result, expected, len(batch))
    described = json.loads((exported / "saved_model" / "assets" / "metadata.json").read_text())
    assert described == json.loads((exported / "metadata.json").read_text()) and described["version"] == __version__


def test_keras_round_trip_in_safe_mode(case):
    _, exported, expected = case
    model = keras.saving.load_model(exported / "model.keras", safe_mode=True)
    assert_outputs_match(named_outputs(model.predict(IMAGES, verbose=0)), expected)


def test_tflite_round_trip(case):
    _, exported, expected = case
    interpreter = tflite_interpreter(exported / "model.tflite")
    assert type(interpreter).__module__.startswith("ai_edge_litert")  # LiteRT, installed with the dev extra
    runner = interpreter.get_signature_runner(next(iter(interpreter.get_signature_list())))
    ((name, source),) = runner.get_input_details().items()
    assert source["dtype"] == np.uint8
    assert_outputs_match(runner(**{name: IMAGES}), expected)


def test_without_litert_the_tflite_file_runs_in_tensorflows_interpreter(case, monkeypatch):
    _, exported, expected = case
    for module in ("ai_edge_litert", "ai_edge_litert.interpreter"):  # as if it were not installed
        monkeypatch.setitem(sys.modules, module, None)
    interpreter = tflite_interpreter(exported / "model.tflite")
    assert type(interpreter).__module__.startswith("tensorflow")
    runner = interpreter.get_signature_runner(next(iter(interpreter.get_signature_list())))
    ((name, _),) = runner.get_input_details().items()
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


@pytest.mark.slow
def test_a_preset_gets_runtime_files_that_run_without_keras(tiny_run, tmp_path):
    """add_runtime_files: model.tflite and model.onnx that give the keras model's probabilities, an int8
    variant kept only within a point of its accuracy, every file in sha256.json and a changed one refused;
    a preset that carries them runs in LiteRT by default."""
    from affect_keras.deploy.presets import add_runtime_files, save_preset
    from affect_keras.models.loading import engine_for
    from affect_keras.models.presets import runtime_files

    preset = save_preset(tiny_run / "run", tmp_path / "preset")
    assert engine_for(preset) == "keras"  # nothing to run without keras yet
    record = add_runtime_files(preset, tiny_run / "data", calibration=20, onnx=True)
    carried = runtime_files(preset)
    assert {"litert", "onnx"} <= set(carried)
    assert (
        ("litert-int8" in carried)
        == record["litert-int8"]["kept"]
        == (record["keras"]["accuracy"] - record["litert-int8"]["accuracy"] <= 0.01)
    )
    assert record["litert"]["weights"] == ("float16" if "litert-float16-refused" not in record else "float32")
    expected = load(preset, engine="keras").outputs(IMAGES)["expression"]
    for engine in ("litert", "onnx"):
        loaded = load(preset, engine=engine)
        assert loaded.classifier is None and loaded.kind == "preset"
        np.testing.assert_allclose(loaded.outputs(IMAGES)["expression"], expected, atol=1e-3)
    assert engine_for(preset) == "litert"
    with open(preset / "model.tflite", "r+b") as stream:  # one byte changed
        stream.seek(-1, 2)
        last = stream.read(1)
        stream.seek(-1, 2)
        stream.write(bytes([last[0] ^ 1]))
    with pytest.raises(ModelFileError, match="model.tflite does not match its sha256"):
        load(preset, engine="litert")
    with pytest.raises(ModelFileError, match="--engine|engine"):
        load(tiny_run / "run", engine="litert")


def test_the_default_export_folders_keep_a_users_files(run, tmp_path, monkeypatch):
    """Issue 36, case 6: export's default folders (export-NAME/, RUN/export/) replaced a user's model.keras:
    the check that guards --out was skipped there."""
    import shutil

    from affect_keras.models.export import export
    from affect_keras.options import OptionError

    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("backup", "logs", "export", "evaluation-*"))
    (copy / "export").mkdir()
    (copy / "export" / "model.keras").write_text("my own model")
    with pytest.raises(OptionError, match="not written by export.py"):
        export(copy, ["keras"])
    monkeypatch.chdir(tmp_path)
    shutil.copy(copy / "best.keras", tmp_path / "mine.keras")
    (tmp_path / "export-mine").mkdir()
    (tmp_path / "export-mine" / "class_names.json").write_text("[]")
    with pytest.raises(OptionError, match="not written by export.py"):
        export(tmp_path / "mine.keras", ["keras"])
    assert (copy / "export" / "model.keras").read_text() == "my own model"
    assert (tmp_path / "export-mine" / "class_names.json").read_text() == "[]"


def test_export_takes_one_format_name_and_refuses_none(run, tmp_path):
    """Case 32: export(run, "saved_model") said "format _,a,d,e,l,m,o,s,v"; export(run, []) wrote a folder
    without a model."""
    from affect_keras.models.export import export
    from affect_keras.options import OptionError

    with pytest.raises(OptionError, match="none given: choose one or more of"):
        export(run, [], tmp_path / "none")
    with pytest.raises(OptionError, match="pt: choose one or more of"):
        export(run, ["keras", "pt"], tmp_path / "bad")
    assert not (tmp_path / "none").exists() and not (tmp_path / "bad").exists()
    assert export(run, "keras", tmp_path / "one") == {"keras": tmp_path / "one" / "model.keras"}


def test_export_records_its_resolved_settings(run, tmp_path):
    """Issue 35: export's record held only the model and the formats; export.json now holds ExportConfig's
    fields resolved (the folder written, the version)."""
    assert export_main([str(run), "--format", "keras", "--out", str(tmp_path / "out")]) == 0
    record = json.loads((tmp_path / "out" / "export.json").read_text())
    assert record["run"] == str(run) and record["format"] == ["keras"] and record["out"] == str(tmp_path / "out")
    assert record["version"] == __version__


def test_export_into_a_file_path_is_one_line(tiny_run, tmp_path, capsys):
    target = tmp_path / "some_file.txt"
    target.write_text("mine")
    with pytest.raises(SystemExit) as stop:
        export_main([str(tiny_run / "run"), "--format", "keras", "--out", str(target)])
    assert stop.value.code != 0 and "--out" in one_line_error(capsys)
    assert target.read_text() == "mine"


def test_export_into_a_folder_of_the_users_files_is_refused(tiny_run, tmp_path, capsys):
    """Issue 24, case 2: main replaced a user's model.keras and class_names.json in a folder it had not made."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "model.keras").write_text("my own model")
    (mine / "class_names.json").write_text('["mine"]')
    with pytest.raises(SystemExit) as stop:
        export_main([str(tiny_run / "run"), "--format", "keras", "--out", str(mine)])
    assert stop.value.code != 0 and "not written by export.py" in one_line_error(capsys)
    assert (mine / "model.keras").read_text() == "my own model"
    fresh = tmp_path / "fresh"  # a new folder, then the same export again into it: its own files
    for _ in range(2):
        assert export_main([str(tiny_run / "run"), "--format", "keras", "--out", str(fresh)]) == 0
    assert (fresh / "model.keras").is_file()


def test_a_re_export_replaces_the_whole_folder_or_nothing(run, multitask_run, tmp_path, monkeypatch):
    """Issue 46, item 9: export wrote export.json and metadata.json first and the model files in place, and
    never removed a format it no longer exported; killed midway, a folder held the 7-class metadata beside
    the 8-class model. It now builds the export beside the folder and swaps it in whole: a failed export
    leaves the previous one as it was, a new one leaves no file of the old, a user's note stays."""
    from affect_keras.models import export as exporting

    out = tmp_path / "out"
    exporting.export(run, ["keras"], out)
    (out / "model.tflite").write_bytes(b"an earlier export's tflite")
    (out / "notes.txt").write_text("mine")
    before = {path.name: path.read_bytes() for path in out.iterdir()}

    def dies_midway(model, metadata, folder):
        (folder / "model.keras").write_bytes(b"half")
        raise KeyboardInterrupt  # as a kill would leave it

    monkeypatch.setitem(exporting.FORMATS, "keras", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        exporting.export(multitask_run, ["keras"], out)
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no partial folder left
    monkeypatch.undo()
    exporting.export(multitask_run, ["keras"], out)
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "metadata.json", "model.keras", "notes.txt"]
    heads = tuple(json.loads((out / "metadata.json").read_text())["heads"])
    assert heads == load(out / "model.keras").heads == ("expression", "va")
