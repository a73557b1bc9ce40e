"""train.py as users run it: whole runs that resume, continue, refuse and stop.

End to end, so marked slow: `make quick` leaves them out."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import (
    LINEAR_HEAD,
    REPO,
    build_model,
    loads_with_keras_alone,
    one_line_error,
    tiny_flags,
)

from affect_keras.cli.evaluate import main as evaluate_main
from affect_keras.cli.train import main
from affect_keras.data.prepare import PrepareConfig, prepare
from affect_keras.tasks import TASKS
from affect_keras.models.build import backbone_of, classifier_of
from affect_keras.models.classifier import ExpressionClassifier
from affect_keras.models.loading import load_classifier
from affect_keras.models.presets import (
    DEFAULT_PRESET,
)
from affect_keras.training import class_weights as cw
from affect_keras import __version__


def test_the_refusals_advice_works_a_run_continues_from_its_own_config_yaml(small_sample, tmp_path, capsys):
    """A run directory holding other settings is refused with "continue that run with --config
    RUN/config.yaml": that file (lists such as dense and an empty export included) is a valid --config."""
    run = tmp_path / "run"
    command = [
        "--data",
        str(small_sample),
        "--backbone",
        "resnet18",
        "--weights",
        "none",
        "--epochs",
        "1",
        "--dense",
        "16,8",
        "--run-dir",
        str(run),
    ]
    assert main(command) == 0
    with pytest.raises(SystemExit):
        main([*command[:-2], "--dense", "16", "--run-dir", str(run)])
    assert f"--config {run / 'config.yaml'}" in capsys.readouterr().err
    assert main(["--config", str(run / "config.yaml")]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["dense"] == [16, 8]


# expression: every other test; multitask: e2e/test_learning.py trains it to its bar and evaluates it, and
# tests/models/test_export.py reloads its run (the multitask_run fixture) in every format, keras's safe mode too
@pytest.mark.parametrize("task", sorted(set(TASKS) - {"expression", "multitask"}))
def test_every_task_trains_logs_its_monitors_and_evaluates(task, small_sample, tmp_path):
    run = tmp_path / task
    assert (
        main(
            [
                *tiny_flags(small_sample),
                "--epochs",
                "1",
                "--batch-size",
                "32",
                "--task",
                task,
                "--run-dir",
                str(run),
                *LINEAR_HEAD,
            ]
        )
        == 0
    )
    history = pd.read_csv(run / "history.csv")
    assert set(history.columns) - {"epoch"} == set(TASKS[task].monitors())  # what --monitor is checked against
    assert (run / "best.keras").is_file()  # the default monitor exists, so a best checkpoint was written
    # keras's own loader after `import affect_keras` alone: every head as the one loader's classifier gives
    faces = np.random.default_rng(1).integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
    model = load_classifier(run)
    expected = model.predict(faces, verbose=0)
    got = loads_with_keras_alone(run / "best.keras", faces, tmp_path)
    assert set(got) == set(TASKS[task].heads)
    for head in got:
        np.testing.assert_allclose(got[head], np.asarray(expected[head]), atol=1e-5)
    assert evaluate_main([str(run), "--data", str(small_sample), "--split", "val", "--repeats", "2"]) == 0
    report = json.loads((run / "evaluation-val" / "report.json").read_text())
    assert ("va" in report) == (task in ("va", "multitask"))
    assert ("accuracy" in report) == (task != "va")
    if "va" in report:  # on the faces that have valence / arousal (the sample's Uncertain faces have none)
        assert 0 < report["va"]["valence"]["count"] <= report["images"]
        assert os.path.isfile(report["pictures"]["va_scatter"])
        card = (run / "README.md").read_text()  # the model card gains this evaluation, V/A-only runs too
        assert "| dimension | faces | RMSE | CCC | SAGR |" in card and "| valence |" in card


def train_command(data, run, epochs):
    return [
        sys.executable,
        "train.py",
        *tiny_flags(data),
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

    return keras.saving.load_model(run / "last.keras").get_weights()


def test_two_phase_run_writes_its_run_directory(small_sample, tmp_path, capsys):
    source = build_model("resnet18", 8, 32, weights=None, augment="none", stem="small")
    pretrained = tmp_path / "earlier.keras"
    classifier_of(source).save(pretrained)
    run = tmp_path / "run"
    args = [
        "--data",
        str(small_sample),
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
    assert config["version"] == __version__


@pytest.mark.slow
def test_a_killed_run_resumes_and_ends_where_an_uninterrupted_run_does(small_sample, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(train_command(small_sample, whole, 3), cwd=REPO, env=env, check=True, capture_output=True)
    process = subprocess.Popen(
        train_command(small_sample, killed, 3), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    history = killed / "history.csv"
    while process.poll() is None and not (history.is_file() and len(pd.read_csv(history)) >= 1):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (killed / "last.keras").exists()
    subprocess.run(train_command(small_sample, killed, 3), cwd=REPO, env=env, check=True, capture_output=True)
    for a, b in zip(final_weights(whole), final_weights(killed)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    resumed, uninterrupted = pd.read_csv(history), pd.read_csv(whole / "history.csv")
    assert list(resumed["epoch"]) == [0, 1, 2]  # one row per epoch despite the restart
    np.testing.assert_allclose(resumed["val_loss"], uninterrupted["val_loss"], rtol=1e-4)


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
        *tiny_flags(small_sample),
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


def test_continuing_a_run_on_data_prepared_again_is_refused(tmp_path, capsys):
    """Issue 24, case 6: a run's data prepared again with another --seed (other splits), then the same
    command: main continued without a word, validating on images it had trained on."""
    data, run = tmp_path / "data", tmp_path / "run"
    prepare(PrepareConfig(source="sample", out=data, count=80, size=32, seed=0))
    command = [
        *tiny_flags(data),
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--run-dir",
        str(run),
        "--dense=",
        "--no-head-batch-norm",
    ]
    assert main(command) == 0
    assert main(command) == 0  # the same data: the finished run is taken up again without complaint
    prepare(PrepareConfig(source="sample", out=data, count=80, size=32, seed=1))
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(command)
    message = one_line_error(capsys)
    assert stop.value.code != 0 and "changed since" in message and "another --run-dir" in message


def test_a_second_train_on_the_same_run_directory_is_refused_naming_the_first(small_sample, tmp_path, capsys):
    """Issue 24, case 8: two train.py on one --run-dir: main let both write, and one died in h5py."""
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from affect_keras.atomic import lock_folder; "
            f"lock_folder({str(run)!r}, '--run-dir'); print('locked', flush=True); time.sleep(60)",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SystemExit) as stop:
            main(
                [
                    *tiny_flags(small_sample),
                    "--epochs",
                    "1",
                    "--run-dir",
                    str(run),
                ]
            )
        message = one_line_error(capsys)
        assert stop.value.code != 0 and f"in use by process {holder.pid}" in message
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert (
        main(
            [
                *tiny_flags(small_sample),
                "--epochs",
                "1",
                "--run-dir",
                str(run),
                "--dense=",
                "--no-head-batch-norm",
            ]
        )
        == 0
    )


def test_a_run_that_failed_before_its_first_epoch_does_not_block_the_corrected_command(small_sample, tmp_path):
    """Case 7: a failed start (offline ImageNet weights, say) left config.yaml, and the corrected command
    was refused as 'a run with other settings'."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"backbone": "vgg16", "weights": "imagenet"}))
    assert (
        main(
            [
                *tiny_flags(small_sample),
                "--epochs",
                "1",
                "--run-dir",
                str(run),
                *LINEAR_HEAD,
            ]
        )
        == 0
    )
    assert yaml.safe_load((run / "config.yaml").read_text())["backbone"] == "resnet18"


def test_a_run_continues_with_the_same_command_and_one_from_before_0_2_0_is_refused(small_sample, tmp_path, capsys):
    """The same command continues a run (one more epoch); a run directory whose config.yaml was written
    before 0.2.0 (no version, or the pre-release numbering) is refused in one line saying to train it again."""
    run = tmp_path / "run"
    command = [
        *tiny_flags(small_sample),
        "--batch-size",
        "32",
        "--run-dir",
        str(run),
        *LINEAR_HEAD,
    ]
    assert main([*command, "--epochs", "1"]) == 0
    recorded = yaml.safe_load((run / "config.yaml").read_text())
    assert recorded["version"] == __version__
    recorded["epochs"] = 2  # the continuation asks for one more epoch, as a re-run with --epochs 2 would
    (run / "config.yaml").write_text(yaml.safe_dump(recorded, sort_keys=False))
    assert main([*command, "--epochs", "2"]) == 0
    assert len(pd.read_csv(run / "history.csv")) == 2
    older = {**recorded, "version": 2}  # what the unreleased versions wrote
    (run / "config.yaml").write_text(yaml.safe_dump(older, sort_keys=False))
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--epochs", "2"])
    assert exit_.value.code == 1
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "holds a run trained before affect-keras 0.2.0" in error and "--run-dir" in error


def test_weights_that_are_not_a_classifier_or_of_another_backbone_are_one_line(small_sample, tmp_path, capsys):
    bad = tmp_path / "weights.keras"
    bad.write_text("not a keras file")
    common = ["--data", str(small_sample), "--image-size", "32", "--epochs", "1", "--run-dir", str(tmp_path / "r")]
    with pytest.raises(SystemExit) as stop:
        main([*common, "--backbone", "resnet18", "--weights", str(bad)])
    message = one_line_error(capsys)
    assert stop.value.code != 0 and "--weights" in message and "not a keras model file" in message
    # a resnet18 classifier given to resnet34: one short line, no layer lists
    run18 = tmp_path / "r18"
    assert (
        main(
            [
                "--data",
                str(small_sample),
                "--image-size",
                "32",
                "--epochs",
                "1",
                "--backbone",
                "resnet18",
                "--weights",
                "none",
                "--run-dir",
                str(run18),
                "--dense=",
                "--no-head-batch-norm",
            ]
        )
        == 0
    )
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(
            [
                *common[:-1],
                str(tmp_path / "r34"),
                "--backbone",
                "resnet34",
                "--stem",
                "small",
                "--weights",
                str(run18 / "best.keras"),
            ]
        )
    message = one_line_error(capsys)
    assert stop.value.code != 0 and "holds a resnet18 backbone, not resnet34" in message and len(message) < 400


from_preset = ExpressionClassifier.from_preset


def test_train_from_a_preset_backbone_trains_only_the_head(small_sample, tmp_path):
    """--weights NAME: the preset's backbone, frozen, with its own stem; the head learns."""
    run = tmp_path / "run"
    assert (
        main(
            [
                "--data",
                str(small_sample),
                "--backbone",
                "resnet18",
                "--weights",
                DEFAULT_PRESET,
                "--image-size",
                "32",
                "--epochs",
                "1",
                "--batch-size",
                "32",
                "--run-dir",
                str(run),
                *LINEAR_HEAD,
                "--cache-dir",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )
    preset = from_preset(DEFAULT_PRESET)
    trained = load_classifier(run)
    for ours, theirs in zip(backbone_of(trained).weights, backbone_of(preset).weights):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    config = json.loads(json.dumps(__import__("yaml").safe_load((run / "config.yaml").read_text())))
    assert config["stem"] == "small" and config["weights"] == DEFAULT_PRESET and config["image_size"] == 32
    history = pd.read_csv(run / "history.csv")
    assert len(history) == 1 and np.isfinite(history["loss"]).all()
