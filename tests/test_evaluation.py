"""Metrics on fixed predictions (hand-computed where scikit-learn has no equivalent), and evaluate.py."""

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from affect_keras.cli.evaluate import main
from affect_keras.data.loader import FaceBatches
from affect_keras.evaluation import metrics

# 3 classes, 6 images. Rows: probabilities; the true labels below.
PROBS = np.array(
    [
        [0.7, 0.2, 0.1],  # true 0: right
        [0.6, 0.3, 0.1],  # true 0: right
        [0.5, 0.4, 0.1],  # true 1: wrong, 1 is second -> top-2 hit
        [0.6, 0.1, 0.3],  # true 1: wrong, 1 is third -> top-2 miss
        [0.1, 0.2, 0.7],  # true 2: right
        [0.2, 0.5, 0.3],  # true 2: wrong, 2 is second -> top-2 hit
    ]
)
LABELS = np.array([0, 0, 1, 1, 2, 2])
NAMES = ["Neutral", "Happy", "Sad"]


def test_top2_f1_counts_a_true_class_among_the_two_most_probable():
    # top-2 predictions: [0, 0, 1, 0, 2, 2]
    # class 0: tp 2, fp 1 (image 3), fn 0 -> F1 = 2*2 / (2*2 + 1) = 0.8
    # class 1: tp 1, fp 0, fn 1 -> F1 = 2 / 3;  class 2: tp 2, fp 0, fn 0 -> F1 = 1
    table = metrics.per_class(LABELS, PROBS, NAMES)
    assert [table[n]["top2_f1"] for n in NAMES] == pytest.approx([0.8, 2 / 3, 1.0])
    # top-1 predictions [0, 0, 0, 0, 2, 1]: class 0 tp 2 fp 2 -> 2/3; class 1 tp 0 -> 0; class 2 tp 1 fn 1 -> 2/3
    assert [table[n]["top1_f1"] for n in NAMES] == pytest.approx([2 / 3, 0.0, 2 / 3])
    assert [table[n]["support"] for n in NAMES] == [2, 2, 2]


def test_summary_scores_agree_with_scikit_learn():
    scores = metrics.summary_scores(LABELS, PROBS, 3)
    predicted = PROBS.argmax(1)
    assert scores["accuracy"] == pytest.approx(skm.accuracy_score(LABELS, predicted)) == pytest.approx(0.5)
    assert scores["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(LABELS, predicted))
    assert scores["macro_f1"] == pytest.approx(skm.f1_score(LABELS, predicted, average="macro"))
    assert scores["weighted_f1"] == pytest.approx(skm.f1_score(LABELS, predicted, average="weighted"))
    assert scores["kappa"] == pytest.approx(skm.cohen_kappa_score(LABELS, predicted))
    assert scores["top2_accuracy"] == pytest.approx(skm.top_k_accuracy_score(LABELS, PROBS, k=2)) == 5 / 6
    assert scores["auc_ovr"] == pytest.approx(skm.roc_auc_score(LABELS, PROBS, multi_class="ovr"))


def test_skew_normalised_scores_are_those_of_balanced_resamples():
    # class 0: 2 images, both right; class 1: 6 images, all wrong. Every balanced resample holds 2 + 2
    # images, half right: accuracy 0.5 on each repeat, against 2/8 on the set as it is.
    labels = np.array([0, 0] + [1] * 6)
    probs = np.array([[0.9, 0.1]] * 8)
    skew = metrics.skew_normalized(labels, probs, 2, repeats=5)
    assert skew["per_class_size"] == 2 and skew["repeats"] == 5
    assert skew["accuracy"] == {"mean": pytest.approx(0.5), "std": pytest.approx(0.0)}
    assert metrics.summary_scores(labels, probs, 2)["accuracy"] == pytest.approx(0.25)
    # with a mixed class the repeats differ: the spread is reported
    labels = np.array([0, 0, 1, 1, 1, 1])
    probs = np.array([[0.9, 0.1]] * 2 + [[0.9, 0.1], [0.1, 0.9], [0.9, 0.1], [0.1, 0.9]])
    skew = metrics.skew_normalized(labels, probs, 2, repeats=50)
    assert 0.5 < skew["accuracy"]["mean"] < 1.0 and skew["accuracy"]["std"] > 0


def test_dropping_a_class_removes_its_images_and_output():
    keep, labels, probs, names = metrics.drop_class(LABELS, PROBS, NAMES, "Happy")
    assert names == ["Neutral", "Sad"] and keep.tolist() == [True, True, False, False, True, True]
    assert labels.tolist() == [0, 0, 1, 1]
    np.testing.assert_allclose(probs[0], [0.7 / 0.8, 0.1 / 0.8])
    with pytest.raises(ValueError, match="^drop_class Joy"):
        metrics.drop_class(LABELS, PROBS, NAMES, "Joy")


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


def test_evaluate_errors_name_the_problem(trained_run, capsys):
    with pytest.raises(SystemExit):
        main([str(trained_run / "missing"), "--data", str(trained_run / "data")])
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--compare", str(trained_run / "run"), "--split", "val_balanced"])
    assert "no val_balanced report yet" in capsys.readouterr().err


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


def test_skew_normalised_per_class_f1_on_a_balanced_split_is_the_plain_f1():
    """Every class already at the smallest size: each resample is the whole split, so the balanced per-class
    F1 equals the plain one (top-1 and top-2)."""
    labels = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array(
        [[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.8, 0.1], [0.3, 0.4, 0.3], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]
    )
    skew = metrics.skew_normalized(labels, probs, 3, repeats=3)
    plain = metrics.per_class(labels, probs, ["a", "b", "c"])
    for k, name in enumerate("abc"):
        assert skew["per_class"][k]["top1_f1"] == pytest.approx(plain[name]["top1_f1"])
        assert skew["per_class"][k]["top2_f1"] == pytest.approx(plain[name]["top2_f1"])
    assert plain["a"]["top1_f1"] == pytest.approx(2 * 0.5 * 0.5 / 1.0)  # 1 of 2 found, 1 of 2 claims right


def test_evaluate_config_checks_its_fields_when_built():
    """Issue 36, cases 12 and 27: EvaluateConfig(tta="mirror") was accepted and recorded while nothing was
    mirrored; repeats=-1 gave IndexError, batch_size=0 ZeroDivisionError."""
    from affect_keras.evaluation.report import EvaluateConfig
    from affect_keras.options import OptionError

    for settings, option in (
        ({"tta": "mirror"}, "tta"),
        ({"repeats": -1}, "repeats"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"bootstrap": -5}, "bootstrap"),
    ):
        with pytest.raises(OptionError) as error:
            EvaluateConfig(model="m", data="d", **settings)
        assert error.value.option == option


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
