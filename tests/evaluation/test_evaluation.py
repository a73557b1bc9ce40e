"""Metrics on fixed predictions (hand-computed where scikit-learn has no equivalent), and evaluate.py."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import one_line_error
from PIL import Image
from sklearn import metrics as skm

from affect_keras.cli.evaluate import main
from affect_keras.cli.prepare import main as prepare_main
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


def test_evaluate_errors_name_the_problem(trained_run, capsys):
    with pytest.raises(SystemExit):
        main([str(trained_run / "missing"), "--data", str(trained_run / "data")])
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--compare", str(trained_run / "run"), "--split", "val_balanced"])
    assert "no val_balanced report yet" in capsys.readouterr().err


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


def test_evaluate_and_prepare_check_what_they_are_given_before_the_work(tiny_run, tmp_path, capsys, monkeypatch):
    """Issue 24, case 23: every CLI validates its input before the long work (train, study, export and
    predict have their own tests above and in their files)."""
    import affect_keras.models.loading as loading

    monkeypatch.setattr(loading, "load", lambda *a: pytest.fail("the model was loaded first"))
    with pytest.raises(SystemExit) as stop:
        main([str(tiny_run / "run"), "--data", str(tiny_run / "data"), "--split", "tset"])
    message = one_line_error(capsys)
    assert stop.value.code != 0 and "--split tset" in message and "val" in message
    tree = tmp_path / "tree"
    for folder in ("joy", "sad"):
        (tree / folder).mkdir(parents=True)
        Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tree / folder / "p.png")
    with pytest.raises(SystemExit) as stop:
        prepare_main(
            ["--source", "folders", "--root", str(tree), "--out", str(tmp_path / "out"), "--class-map", "joy=Hapy"]
        )
    message = one_line_error(capsys)
    assert stop.value.code != 0 and "joy" in message
    assert not (tmp_path / "out" / "train").exists()  # no image was written


def test_a_class_absent_from_the_split_is_left_out_of_macro_averages():
    """Case 13: CK+ under affectnet8 has no Neutral; the absent class entered macro-F1 as 0 (0.80 reported
    where the present classes averaged 0.92)."""
    import numpy as np

    from affect_keras.evaluation import metrics

    labels = np.array([1, 1, 1, 2, 2, 2])  # nothing of class 0
    predicted = np.array([1, 1, 0, 2, 2, 2])  # one image wrongly called class 0
    probabilities = np.eye(3)[predicted] * 0.9 + 0.05
    scores = metrics.summary_scores(labels, probabilities, 3)
    f1_1, f1_2 = 2 * 1 * (2 / 3) / (1 + 2 / 3), 1.0  # class 1: precision 1, recall 2/3
    assert scores["macro_f1"] == pytest.approx((f1_1 + f1_2) / 2)
    skew = metrics.skew_normalized(labels, probabilities, 3, repeats=3)
    assert skew["per_class_size"] == 3  # resampled from the two present classes only


def test_the_report_names_the_absent_classes(tiny_run, tmp_path):

    data = tmp_path / "data"
    import shutil

    shutil.copytree(tiny_run / "data", data)
    manifest = pd.read_csv(data / "val.csv")
    manifest[manifest["label"] != "Neutral"].to_csv(data / "val.csv", index=False)
    assert (
        main(
            [
                str(tiny_run / "run"),
                "--data",
                str(data),
                "--split",
                "val",
                "--out",
                str(tmp_path / "report"),
                "--repeats",
                "2",
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert "Neutral" in report["absent_classes"] and report["per_class"]["Neutral"]["support"] == 0


def test_compare_says_why_a_run_has_no_paired_difference():
    """Issue 46, item 17: --compare of runs scored on other faces left their difference cells empty without
    a reason; the `inside noise` cell now says why."""
    from affect_keras.evaluation.compare import _paired

    def report(files, predicted):
        return {"faces": {"files": files, "labels": [0, 1, 1, 0], "predicted": predicted}, "class_names": ["a", "b"]}

    first = report(["w", "x", "y", "z"], [0, 1, 1, 0])
    assert _paired(first, report(["p", "q", "r", "s"], [0, 1, 1, 0]), 100, 0, True)["inside noise"] == (
        "(other faces: no paired difference)"
    )
    assert _paired(first, {"class_names": ["a", "b"]}, 100, 0, True)["inside noise"].startswith("(report lists no")
    assert _paired(first, first, 0, 0, True)["inside noise"] == "(--bootstrap 0)"
    assert _paired(first, first, 0, 0, False)["inside noise"] == "(reference)"
    paired = _paired(first, report(["w", "x", "y", "z"], [0, 1, 0, 0]), 200, 0, True)
    assert paired["accuracy vs first"].startswith("-0.2500") and not paired["inside noise"].startswith("(")
