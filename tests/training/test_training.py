"""Class weights, schedules, and train.py on a small prepared sample."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import os

import numpy as np
import pytest
from conftest import (
    build_model,
    one_line_error,
    tiny_flags,
    user_files,
)

from affect_keras.cli.train import main
from affect_keras.models.build import classifier_of
from affect_keras.training import class_weights as cw
from affect_keras.training.optim import learning_rate


def test_inverse_frequency_weights_follow_the_formula():
    weights = cw.inverse_frequency([100, 50, 25, 0])
    raw = np.array([1 / 100, 1 / 50, 1 / 25])
    np.testing.assert_allclose(weights[:3], raw / raw.mean())
    assert weights[3] == 0 and weights[:3].mean() == pytest.approx(1.0)


def test_effective_number_weights_follow_the_formula():
    beta = 0.999
    weights = cw.effective_number([1000, 10], beta)
    raw = np.array([(1 - beta) / (1 - beta**1000), (1 - beta) / (1 - beta**10)])
    np.testing.assert_allclose(weights, raw / raw.mean())


def test_class_weights_cover_every_class_and_files_are_checked(tmp_path):
    names = ["Neutral", "Happy", "Sad"]
    assert cw.class_weights("auto", {"Neutral": 10, "Happy": 30, "Sad": 60}, names).keys() == {0, 1, 2}
    assert cw.class_weights("none", {}, names) is None
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("Neutral: 1\nHappy: 2\nSad: 3\n")
    bad.write_text("Neutral: 1\nJoy: 2\n")
    assert cw.class_weights(str(good), {}, names) == {0: 1.0, 1: 2.0, 2: 3.0}
    with pytest.raises(ValueError, match=r"missing classes \['Happy', 'Sad'\], unknown classes \['Joy'\]"):
        cw.class_weights(str(bad), {}, names)


def test_step_schedule_multiplies_every_n_steps():
    schedule = learning_rate("step", 0.1, total_steps=100, step_every=10, step_factor=0.9)
    assert float(schedule(9)) == pytest.approx(0.1) and float(schedule(25)) == pytest.approx(0.1 * 0.81)
    cosine = learning_rate("cosine", 0.1, total_steps=100, warmup_steps=10)
    assert float(cosine(5)) == pytest.approx(0.05) and float(cosine(100)) == pytest.approx(0.0, abs=1e-6)


def test_bad_flag_is_one_line_naming_it(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path), "--optimizer", "rmsprop"])
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "argument --optimizer: invalid choice: 'rmsprop'" in error
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path), "--dropout", "1.5"])
    assert "argument --dropout must be in [0, 1)" in capsys.readouterr().err


def test_phase_two_after_training_from_scratch_is_refused(small_sample, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "--data",
                str(small_sample),
                "--weights",
                "none",
                "--finetune-epochs",
                "2",
                "--run-dir",
                str(tmp_path / "run"),
            ]
        )
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert "argument --finetune-epochs fine-tunes the top of a pretrained backbone" in error
    assert not (tmp_path / "run").exists()


def test_another_run_in_the_same_directory_is_refused(small_sample, tmp_path, capsys):
    run = tmp_path / "run"
    (run).mkdir()
    (run / "config.yaml").write_text("backbone: vgg16\nversion: 0.2.0\n")
    (run / "history.csv").write_text("epoch,loss\n0,1.0\n")  # it finished an epoch: a run to protect
    with pytest.raises(SystemExit) as exit_:
        main(["--data", str(small_sample), "--run-dir", str(run), "--weights", "none"])
    assert exit_.value.code == 1
    assert f"--run-dir {run} holds a run with other settings" in capsys.readouterr().err


def test_logit_adjusted_loss_matches_the_hand_computed_value_and_round_trips():
    import keras

    from affect_keras.training.logit_adjustment import LogitAdjustedCrossentropy
    from affect_keras.training.losses import training_loss

    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], "float32")
    y = np.array([[0, 1, 0], [0, 0, 1]], "float32")
    counts, tau = [60, 30, 10], 1.0
    shifted = np.log(p) + tau * np.log(np.array(counts) / 100)
    q = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    expected = -np.log(q[[0, 1], [1, 2]]).mean()
    loss = training_loss("logit-adjusted", counts, tau=tau)
    assert float(loss(y, p)) == pytest.approx(expected, rel=1e-5)
    # the rare class's loss grows relative to plain cross-entropy: the model must push its logit harder
    assert expected > -np.log(p[[0, 1], [1, 2]]).mean()
    clone = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(clone, LogitAdjustedCrossentropy) and float(clone(y, p)) == pytest.approx(expected, rel=1e-5)
    focal = training_loss("focal", counts, gamma=2.0)
    assert float(focal(y, p)) < float(training_loss("crossentropy", counts)(y, p))  # focal discounts


# ---- issue 36: runs that go wrong say so ----


def test_ctrl_c_in_train_is_one_line_saying_how_to_continue(monkeypatch, tmp_path, capsys):
    """Case 26: Ctrl-C in train.py printed a full traceback."""
    from affect_keras.training import run

    def interrupted(config, verbose="auto"):
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "train", interrupted)
    with pytest.raises(SystemExit) as stop:
        main(["--data", str(tmp_path), "--weights", "none", "--run-dir", str(tmp_path / "run")])
    from conftest import one_line_error

    assert stop.value.code == 130 and "the same command continues the run" in one_line_error(capsys)


def test_unfreeze_beyond_the_backbone_is_refused_before_phase_one(small_sample, tmp_path, capsys):
    """Case 33: --unfreeze 999 was accepted (the whole backbone, silently)."""
    from affect_keras.models.build import unfreeze
    from affect_keras.options import OptionError

    model = build_model("resnet18", 8, 32, weights=None, stem="small")
    with pytest.raises(OptionError, match="999: the .* backbone has .* layers with weights"):
        unfreeze(model, 999)
    pretrained = tmp_path / "pretrained.keras"
    classifier_of(model).save(pretrained)
    with pytest.raises(SystemExit) as stop:
        main(
            [
                "--data",
                str(small_sample),
                "--backbone",
                "resnet18",
                "--weights",
                str(pretrained),
                "--image-size",
                "32",
                "--epochs",
                "1",
                "--finetune-epochs",
                "1",
                "--unfreeze",
                "999",
                "--run-dir",
                str(tmp_path / "r"),
            ]
        )
    assert stop.value.code != 0 and "--unfreeze 999" in capsys.readouterr().err
    assert not (tmp_path / "r" / "history.csv").exists()  # before any epoch


def test_head_steps_per_call_divide_the_epoch():
    """Case 33: the cached phase's progress bar showed "32/5" and a negative ETA (32 steps a call in an
    epoch of 5)."""
    from affect_keras.training.run import steps_per_execution

    assert [steps_per_execution(n) for n in (1, 5, 32, 90, 96, 1000)] == [1, 5, 32, 30, 32, 25]


def test_class_weights_file_with_a_word_names_the_file_and_class(small_sample, tmp_path, capsys):
    weights = tmp_path / "weights.yaml"
    names = ["Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt"]
    weights.write_text("".join(f"{n}: {'high' if n == 'Happy' else 1}\n" for n in names))
    with pytest.raises(SystemExit) as stop:
        main(
            [
                *tiny_flags(small_sample),
                "--epochs",
                "1",
                "--class-weights",
                str(weights),
                "--run-dir",
                str(tmp_path / "run"),
            ]
        )
    message = one_line_error(capsys)
    assert stop.value.code != 0 and str(weights) in message and "Happy" in message and "'high'" in message


def test_train_and_study_never_write_into_a_users_folder(small_sample, tmp_path, capsys, monkeypatch):
    from affect_keras.cli.study import main as study_main

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("my notes")  # train.py writes a model card of this name
    before = user_files(mine)
    common = [
        *tiny_flags(small_sample),
        "--epochs",
        "1",
    ]
    with pytest.raises(SystemExit) as stop:
        main(common + ["--run-dir", str(mine)])
    assert stop.value.code != 0 and "--run-dir" in one_line_error(capsys)
    with pytest.raises(SystemExit) as stop:
        study_main(common + ["--out", str(mine), "--strategies", "imbalanced"])
    assert stop.value.code != 0 and "--out" in one_line_error(capsys)
    assert user_files(mine) == before


def test_a_misspelt_monitor_is_refused_before_training(small_sample, tmp_path, capsys):
    """Case 6: --monitor val_acuracy trained to the end and never wrote best.keras."""
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "--data",
                str(small_sample),
                "--weights",
                "none",
                "--monitor",
                "val_acuracy",
                "--run-dir",
                str(tmp_path / "run"),
            ]
        )
    assert exit_.value.code == 2
    assert (
        "argument --monitor must be auto or one of the metrics a --task expression run logs: loss, "
        "accuracy, top2, val_loss, val_accuracy, val_top2" in capsys.readouterr().err
    )
    assert not (tmp_path / "run").exists()
