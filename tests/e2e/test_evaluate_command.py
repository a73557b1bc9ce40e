"""evaluate.py on runs, exports and the shipped preset: the report, its folder and what it never replaces.

End to end, so marked slow: `make quick` leaves them out."""

import json
import os

import numpy as np
import pytest
from conftest import (
    FERPLUS,  # noqa: E402
    one_line_error,
    user_files,
)

from affect_keras.cli.evaluate import main
from affect_keras.data.loader import FaceBatches
from affect_keras.data.prepare import PrepareConfig, prepare
from affect_keras.models.presets import (
    DEFAULT_PRESET,
    load_metadata,
)


def test_calibrate_refuses_a_small_split_and_a_calibrated_run_is_scored_again(tiny_run, tmp_path, capsys):
    """Issue 46, item 7: the tiny run's validation split has 15 faces, so train.py's calibration is refused
    (it fitted 20.0, the edge of the search, before) and calibrate.py says why, on one line, writing nothing;
    with --force it calibrates (in a fresh process at last: item 12). A run evaluated before its calibration
    has its model card say so until it is scored again; evaluate.py adds ECE / NLL / Brier, the reliability
    diagram and 95 % intervals to the report, the printed table and the model card."""
    import shutil

    import keras

    from affect_keras.cli.calibrate import main as calibrate_main

    assert not (tiny_run / "run" / "calibration.json").exists()
    run, data = tmp_path / "run", tiny_run / "data"
    shutil.copytree(tiny_run / "run", run)
    scored = ["--data", str(data), "--split", "test", "--repeats", "2", "--bootstrap", "200"]
    assert main([str(run), *scored]) == 0
    with pytest.raises(SystemExit) as stop:
        calibrate_main([str(run), "--data", str(data)])
    error = capsys.readouterr().err
    assert stop.value.code == 1 and len(error.strip().splitlines()) == 1
    assert "--split val of" in error and "15 faces, fewer than the 30" in error, error
    assert not (run / "calibration.json").exists()
    assert calibrate_main([str(run), "--data", str(data), "--force"]) == 0
    record = json.loads((run / "calibration.json").read_text())
    assert keras.saving.load_model(run / "best.keras").temperature == pytest.approx(record["temperature"])
    assert record["split"] == "val" and record["after"]["nll"] <= record["before"]["nll"] + 1e-9
    card = (run / "README.md").read_text()
    assert "Scored before the calibration now in the model" in card and "1.000 when scored" in card
    assert main([str(run), *scored]) == 0
    report = json.loads((run / "evaluation-test" / "report.json").read_text())
    assert report["temperature"] == pytest.approx(record["temperature"])
    assert {"ece", "nll", "brier", "bins"} <= set(report["calibration"])
    assert report["intervals"]["resamples"] == 200
    assert report["intervals"]["accuracy"][0] <= report["accuracy"] <= report["intervals"]["accuracy"][1]
    assert os.path.getsize(report["pictures"]["reliability"]) > 10_000
    card = (run / "README.md").read_text()
    assert "95 % interval (bootstrap)" in card and f"temperature {record['temperature']:.3f}" in card
    assert "Scored before the calibration" not in card


@pytest.fixture
def trained_run(tiny_run):
    return tiny_run


def test_evaluate_writes_report_pictures_and_predictions(trained_run, capsys):
    run, data = trained_run / "run", trained_run / "data"
    assert main([str(run), "--data", str(data), "--split", "test", "--save-predictions", "--repeats", "3"]) == 0
    out = run / "evaluation-test"
    report = json.loads((out / "report.json").read_text())
    for key in (
        "accuracy",
        "balanced_accuracy",
        "macro_f1",
        "weighted_f1",
        "top2_accuracy",
        "kappa",
        "per_class",
        "confusion_matrix",
        "class_names",
        "skew_normalized",
        "model",
        "data",
        "split",
    ):
        assert key in report, key
    matrix = np.array(report["confusion_matrix"])
    assert matrix.sum() == report["images"] == sum(v["support"] for v in report["per_class"].values())
    assert np.trace(matrix) / matrix.sum() == pytest.approx(report["accuracy"])
    for name in ("confusion_matrix.png", "per_class_f1.png", "curves.png", "predictions.csv", "evaluate_config.yaml"):
        assert (out / name).stat().st_size > 0, name
    card = (run / "README.md").read_text()  # the model card now carries this evaluation
    assert "Split `test`" in card and "| accuracy |" in card and "Intended use and limits" in card
    assert "Classes, in output order: Neutral, Happy" in card and "Backbone `resnet18`" in card
    printed = capsys.readouterr().out
    assert "balanced (" in printed and "top2_f1" in printed and str(out / "confusion_matrix.png") in printed

    assert (
        main(
            [
                str(run),
                "--data",
                str(data),
                "--split",
                "test",
                "--drop-class",
                "Contempt",
                "--out",
                str(trained_run / "seven"),
            ]
        )
        == 0
    )
    seven = json.loads((trained_run / "seven" / "report.json").read_text())
    assert len(seven["class_names"]) == 7 and "Contempt" not in seven["per_class"]

    assert main(["--compare", str(run), str(run), "--split", "test", "--out", str(trained_run / "cmp")]) == 0
    table = (trained_run / "cmp" / "comparison.md").read_text()
    assert table.count("resnet18") == 2 and "weighted loss (auto)" in table
    # the second run against the first on the same faces (here: itself): no difference, inside the noise
    assert "(reference)" in table and "+0.0000 [+0.0000, +0.0000]" in table and "| both" in table


def test_an_exported_model_scores_like_its_run(trained_run, tmp_path):
    from affect_keras.cli.export import main as export

    run, data = trained_run / "run", trained_run / "data"
    assert export([str(run), "--format", "saved_model", "keras", "--out", str(tmp_path / "export")]) == 0
    scores = []
    for model in (run, tmp_path / "export" / "saved_model", tmp_path / "export" / "model.keras"):
        assert (
            main(
                [
                    str(model),
                    "--data",
                    str(data),
                    "--split",
                    "val",
                    "--out",
                    str(tmp_path / model.name),
                    "--trust-saved-model",
                ]
            )
            == 0
        )
        scores.append(json.loads((tmp_path / model.name / "report.json").read_text()))
    for report in scores[1:]:
        assert report["accuracy"] == pytest.approx(scores[0]["accuracy"])
        assert report["confusion_matrix"] == scores[0]["confusion_matrix"]


def test_tta_flip_scores_each_face_averaged_with_its_mirror(trained_run):
    from affect_keras.evaluation.report import mirror_averaged
    from affect_keras.models.loading import load

    run, data = trained_run / "run", trained_run / "data"
    predictor = load(run)
    faces, _ = FaceBatches(data, "val", predictor.class_names, predictor.image_size, 8)[0]
    mirrored = faces[:, :, ::-1]
    assert not np.allclose(predictor.predict(faces), predictor.predict(mirrored), atol=1e-4)
    averaged = mirror_averaged(predictor.outputs)
    np.testing.assert_allclose(averaged(faces)["expression"], averaged(mirrored)["expression"], atol=1e-5)

    assert main([str(run), "--data", str(data), "--split", "val", "--tta", "flip", "--repeats", "2"]) == 0
    report = json.loads((run / "evaluation-val-tta" / "report.json").read_text())
    assert report["tta"] == "flip" and np.array(report["confusion_matrix"]).sum() == report["images"]
    assert "averaged with its mirror image" in (run / "README.md").read_text()


def test_reports_of_other_models_or_data_never_replace_each_other(trained_run, tmp_path):
    """Case 5: a preset evaluated on two datasets wrote one folder; an exported model always wrote
    export/evaluation-test/; two data folders of one name (a/s48b, b/s48b) collided."""
    import shutil

    from affect_keras.evaluation.report import EvaluateConfig, default_out, evaluate

    run, data = tmp_path / "run", trained_run / "data"
    shutil.copytree(trained_run / "run", run, ignore=shutil.ignore_patterns("backup", "logs", "evaluation-*"))
    for parent in ("a", "b"):
        shutil.copytree(data, tmp_path / parent / "same", ignore=shutil.ignore_patterns("train*", "feature_cache"))
    assert default_out(EvaluateConfig("ferplus_resnet18_48", str(tmp_path / "a" / "same"))) != default_out(
        EvaluateConfig("ferplus_resnet18_48", str(data))
    )
    first = evaluate(EvaluateConfig(str(run), str(tmp_path / "a" / "same"), split="val", bootstrap=0))
    second = evaluate(EvaluateConfig(str(run), str(tmp_path / "b" / "same"), split="val", bootstrap=0))
    again = evaluate(EvaluateConfig(str(run), str(tmp_path / "a" / "same"), split="val", bootstrap=0))
    assert first["data"] != second["data"]
    folders = {
        json.loads((run / name / "report.json").read_text())["data"]: name
        for name in ("evaluation-same-val", "evaluation-same-val-2")
    }
    assert set(folders) == {str(tmp_path / "a" / "same"), str(tmp_path / "b" / "same")}
    assert again["data"] == first["data"] and not (run / "evaluation-same-val-3").exists()
    exported = tmp_path / "export" / "model.keras"
    exported.parent.mkdir()
    shutil.copy(run / "best.keras", exported)
    assert (
        default_out(EvaluateConfig(str(exported), str(data), split="test"))
        == exported.parent / "evaluation-model-data-test"
    )


def test_reports_on_two_datasets_are_kept_apart(tiny_run, small_sample, capsys):
    """Issue 24, case 3: evaluating on B replaced A's evaluation-test/ and the model card's table."""

    run = tiny_run / "run"
    assert main([str(run), "--data", str(tiny_run / "data"), "--split", "test", "--repeats", "1"]) == 0
    assert main([str(run), "--data", str(small_sample), "--split", "test", "--repeats", "1"]) == 0
    own = (run / "evaluation-test" / "report.json").read_text()
    other = (run / f"evaluation-{small_sample.name}-test" / "report.json").read_text()
    assert str(tiny_run / "data") in own and str(small_sample) in other
    card = (run / "README.md").read_text()
    assert f"Split `test` of `{tiny_run / 'data'}`" in card and f"Split `test` of `{small_sample}`" in card


def test_evaluate_and_compare_never_write_into_a_users_folder(tiny_run, tmp_path, capsys):

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.json").write_text('{"mine": true}')
    (mine / "comparison.csv").write_text("my,own\n1,2\n")
    before = user_files(mine)
    for argv in (
        [str(tiny_run / "run"), "--data", str(tiny_run / "data"), "--split", "val", "--out", str(mine)],
        ["--compare", str(tiny_run / "run"), "--split", "val", "--out", str(mine)],
    ):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        message = one_line_error(capsys)
        assert stop.value.code != 0 and "--out" in message and "not written by" in message, argv
    assert user_files(mine) == before
    fresh = tmp_path / "fresh"
    for _ in range(2):  # its own folder it writes again
        assert (
            main([str(tiny_run / "run"), "--data", str(tiny_run / "data"), "--split", "val", "--out", str(fresh)]) == 0
        )
    capsys.readouterr()


def test_drop_class_scores_an_8_class_model_on_affectnet7_data(tiny_run, tmp_path):
    """Case 11: `--drop-class Contempt` was refused on 7-class data, the README's AffectNet-7 use."""
    import json

    seven = tmp_path / "seven"
    prepare(PrepareConfig(source="sample", out=seven, count=200, size=32, labels="affectnet7"))
    assert "Contempt" not in json.loads((seven / "summary.json").read_text())["class_names"]
    out = tmp_path / "report"
    assert (
        main(
            [
                str(tiny_run / "run"),
                "--data",
                str(seven),
                "--split",
                "val",
                "--drop-class",
                "Contempt",
                "--out",
                str(out),
                "--repeats",
                "2",
            ]
        )
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    assert report["dropped_class"] == "Contempt" and len(report["class_names"]) == 7
    assert sum(v["support"] for v in report["per_class"].values()) == report["images"] > 0
    with pytest.raises(SystemExit):  # without --drop-class the class lists still have to match
        main([str(tiny_run / "run"), "--data", str(seven), "--split", "val", "--out", str(out)])


needs_ferplus = pytest.mark.skipif(not (FERPLUS / "FER2013Valid").is_dir(), reason="FER+ not beside the repo")


@needs_ferplus
@pytest.mark.slow
def test_the_shipped_preset_reproduces_its_fer_validation_scores(tmp_path):
    """The README's command, from the preset: FER+ validation prepared at 48 px, then evaluate.py NAME."""
    from affect_keras.data.prepare import PrepareConfig, prepare

    root = tmp_path / "ferplus"  # the validation part alone: only it is scored (28,709 training faces less)
    root.mkdir()
    (root / "FER2013Valid").symlink_to(FERPLUS / "FER2013Valid")
    prepare(PrepareConfig(source="ferplus", root=root, out=tmp_path / "fer48", size=48))
    out = tmp_path / "report"
    assert (
        main([DEFAULT_PRESET, "--data", str(tmp_path / "fer48"), "--split", "val", "--out", str(out), "--repeats", "1"])
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    recorded = load_metadata(DEFAULT_PRESET)["metrics"]["evaluation-val"]
    assert report["images"] == recorded["images"] == 3191
    assert abs(report["accuracy"] - recorded["accuracy"]) < 1e-3 and report["accuracy"] >= 0.86
    assert abs(report["macro_f1"] - recorded["macro_f1"]) < 1e-3 and report["macro_f1"] >= 0.75
