"""Class weights, schedules, and train.py on a small prepared sample."""

import os
import signal
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from affect_keras.cli.train import main  # noqa: E402
from affect_keras.models.build import classifier_of  # noqa: E402
from conftest import build_model  # noqa: E402
from affect_keras.training import class_weights as cw  # noqa: E402
from affect_keras.training.optim import learning_rate  # noqa: E402
from conftest import REPO  # noqa: E402


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


@pytest.fixture
def small_data(small_sample):
    return small_sample


def test_two_phase_run_writes_its_run_directory(small_data, tmp_path, capsys):
    source = build_model("resnet18", 8, 32, weights=None, augment="none", stem="small")
    pretrained = tmp_path / "earlier.keras"
    classifier_of(source).save(pretrained)
    run = tmp_path / "run"
    args = [
        "--data",
        str(small_data),
        "--backbone",
        "resnet18",
        "--weights",
        str(pretrained),
        "--image-size",
        "64",
        "--epochs",
        "1",
        "--finetune-epochs",
        "1",
        "--unfreeze",
        "stage4",
        "--batch-size",
        "32",
        "--run-dir",
        str(run),
        "--optimizer",
        "sgd",
        "--schedule",
        "cosine",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "Happy" in printed and "weight" in printed  # class weights printed at the start
    for name in ("config.yaml", "history.csv", "curves.png", "best.keras", "last.keras", "README.md"):
        assert (run / name).is_file(), name
    for name in ("class_names.json", "backbone.json", "backbone.weights.h5"):  # the classifier says it all
        assert not (run / name).exists(), name
    history = pd.read_csv(run / "history.csv")
    assert list(history["epoch"]) == [0, 1] and {"val_accuracy", "top2"} <= set(history.columns)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert (config["optimizer"], config["finetune_epochs"], config["image_size"]) == ("sgd", 1, 64)
    assert config["stem"] == "small"  # the saved backbone's, although 64 px alone would not say so
    assert classifier_of(__import__("keras").saving.load_model(run / "last.keras")).stem == "small"
    assert config["version"] == "0.2.0"


def test_phase_two_after_training_from_scratch_is_refused(small_data, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "--data",
                str(small_data),
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


def train_command(data, run, epochs):
    return [
        sys.executable,
        "train.py",
        "--data",
        str(data),
        "--backbone",
        "resnet18",
        "--weights",
        "none",
        "--image-size",
        "32",
        "--epochs",
        str(epochs),
        "--batch-size",
        "16",
        "--augment",
        "light",
        "--run-dir",
        str(run),
        "--schedule",
        "cosine",
        "--mix",
        "mixup",
        "--no-calibrate",  # what is compared is the training; calibration after it is tested elsewhere
    ]


def final_weights(run):
    import keras

    return keras.saving.load_model(run / "last.keras").get_weights()


@pytest.mark.slow
def test_a_killed_run_resumes_and_ends_where_an_uninterrupted_run_does(small_data, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(train_command(small_data, whole, 4), cwd=REPO, env=env, check=True, capture_output=True)
    process = subprocess.Popen(
        train_command(small_data, killed, 4), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    history = killed / "history.csv"
    while process.poll() is None and not (history.is_file() and len(pd.read_csv(history)) >= 2):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (killed / "last.keras").exists()
    subprocess.run(train_command(small_data, killed, 4), cwd=REPO, env=env, check=True, capture_output=True)
    for a, b in zip(final_weights(whole), final_weights(killed)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    resumed, uninterrupted = pd.read_csv(history), pd.read_csv(whole / "history.csv")
    assert list(resumed["epoch"]) == [0, 1, 2, 3]  # one row per epoch despite the restart
    np.testing.assert_allclose(resumed["val_loss"], uninterrupted["val_loss"], rtol=1e-4)


def test_another_run_in_the_same_directory_is_refused(small_data, tmp_path, capsys):
    run = tmp_path / "run"
    (run).mkdir()
    (run / "config.yaml").write_text("backbone: vgg16\nversion: 0.2.0\n")
    (run / "history.csv").write_text("epoch,loss\n0,1.0\n")  # it finished an epoch: a run to protect
    with pytest.raises(SystemExit) as exit_:
        main(["--data", str(small_data), "--run-dir", str(run), "--weights", "none"])
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


def test_infinite_class_weights_and_a_diverging_loss_stop_the_run(small_sample, tmp_path, capsys):
    """Case 11: class weights of .inf or 1e400 were accepted, and a loss that became NaN trained on to
    the end with exit status 0."""
    from conftest import one_line_error

    weights = tmp_path / "weights.yaml"
    weights.write_text(
        "\n".join(
            f"{name}: {'.inf' if name == 'Happy' else '1e400' if name == 'Sad' else 1}"
            for name in ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt")
        )
    )
    with pytest.raises(cw.OptionError, match="every weight must be a finite number"):
        cw.class_weights(
            str(weights), {}, ["Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt"]
        )
    flags = [
        "--data",
        str(small_sample),
        "--backbone",
        "resnet18",
        "--weights",
        "none",
        "--image-size",
        "32",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--run-dir",
        str(tmp_path / "run"),
        "--dense=",
        "--no-head-batch-norm",
        "--augment",
        "none",
        "--no-calibrate",
    ]
    with pytest.raises(SystemExit) as stop:
        main([*flags, "--lr", "1e30"])
    assert stop.value.code == 1 and "the training loss became nan" in one_line_error(capsys)
    assert not (tmp_path / "run" / "last.keras").exists()  # not saved as if it had finished


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


def test_a_moved_run_continues_where_it_lies(tiny_run, tmp_path, capsys):
    """Case 29: a run folder moved elsewhere was refused for "other settings (run_dir)", and the advised
    --config trained the original folder."""
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(tiny_run / "run", moved)
    original = (tiny_run / "run" / "history.csv").read_bytes()
    assert main(["--config", str(moved / "config.yaml"), "--run-dir", str(moved)]) == 0
    assert (tiny_run / "run" / "history.csv").read_bytes() == original
    assert yaml.safe_load((moved / "config.yaml").read_text())["run_dir"] == str(moved)
