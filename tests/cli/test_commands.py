"""What every command does alike: an output it cannot write is one line naming the flag, --help and
argument errors start no deep-learning framework, and TensorFlow's start-up lines stay out of the way."""

import os

import pytest
from conftest import REPO, one_line_error

from affect_keras.cli.export import main as export_main
from affect_keras.cli.predict import main as predict_main
from affect_keras.cli.prepare import main as prepare_main
from affect_keras.cli.train import main as train_main


def test_every_command_refuses_an_output_it_cannot_write_in_one_line(tiny_run, capsys):
    """Issue 36, case 22: a read-only or impossible output location failed with OSError after the work, in
    every command. /proc takes no new files, also for root (who runs the tests here)."""
    from affect_keras.cli.calibrate import main as calibrate_main
    from affect_keras.cli.evaluate import main as evaluate_main

    run, data = str(tiny_run / "run"), str(tiny_run / "data")
    face = str(next((tiny_run / "data" / "test").rglob("*.jpg")))
    commands = {
        "--out": lambda: prepare_main(["--source", "sample", "--count", "20", "--out", "/proc/affect/data"]),
        "--run-dir": lambda: train_main(
            [
                "--data",
                data,
                "--backbone",
                "resnet18",
                "--weights",
                "none",
                "--image-size",
                "32",
                "--run-dir",
                "/proc/affect/run",
            ]
        ),
        "--out ": lambda: evaluate_main([run, "--data", data, "--split", "val", "--out", "/proc/affect/report"]),
        " --out": lambda: export_main([run, "--format", "keras", "--out", "/proc/affect/export"]),
        "--csv": lambda: predict_main([face, "--no-detect", "--model", run, "--csv", "/proc/faces.csv"]),
        "--out  ": lambda: calibrate_main([run + "/best.keras", "--data", data, "--out", "/proc/calibrated.keras"]),
    }
    for flag, command in commands.items():
        with pytest.raises(SystemExit) as stop:
            command()
        message = one_line_error(capsys)
        assert stop.value.code != 0 and flag.strip() in message and "cannot be written" in message, message


def _no_writing_under(monkeypatch, folder):
    """What a read-only folder does to a user (root, who runs the tests here, could write anyway)."""
    import pathlib

    real = pathlib.Path.mkdir

    def mkdir(self, *args, **kwargs):
        if str(self).startswith(str(folder)):
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)


HEAVY = ("tensorflow", "keras", "jax", "torch")


def test_a_read_only_out_is_one_line_naming_the_flag(tiny_run, tmp_path, monkeypatch, capsys):
    """Case 9: a read-only --out gave a 16-line PermissionError traceback (prepare and evaluate)."""
    from affect_keras.cli.evaluate import main as evaluate_main

    locked = tmp_path / "locked"
    _no_writing_under(monkeypatch, locked)
    with pytest.raises(SystemExit) as exit_:
        prepare_main(["--source", "sample", "--count", "40", "--size", "32", "--out", str(locked / "data")])
    assert exit_.value.code == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("prepare_dataset.py: error: --out") and "cannot be written" in error and "\n" not in error
    with pytest.raises(SystemExit) as exit_:
        evaluate_main(
            [str(tiny_run / "run"), "--data", str(tiny_run / "data"), "--split", "val", "--out", str(locked / "report")]
        )
    assert exit_.value.code != 0
    error = capsys.readouterr().err.strip()
    assert error.startswith("evaluate.py: error: argument --out") and "cannot be written" in error and "\n" not in error


@pytest.mark.parametrize(
    "command, argv",
    [
        ("prepare", ["--help"]),
        ("train", ["--help"]),
        ("evaluate", ["--help"]),
        ("export", ["--help"]),
        ("predict", ["--help"]),
        ("calibrate", ["--help"]),
        ("serve", ["--help"]),
        ("train", ["--data", "d", "--lr", "-1"]),  # a bad value: refused before anything heavy starts
        ("train", ["--data", "d", "--backbone", "vgg61"]),
        ("evaluate", ["run", "--data", "d", "--repeats", "0"]),
        ("serve", ["--port", "70000"]),
    ],
)
def test_help_and_argument_errors_start_no_deep_learning_framework(command, argv, tmp_path):
    """Case 12: `--help` and a mistyped flag answer at once, without importing TensorFlow or keras."""
    import subprocess
    import sys

    code = (
        f"import sys\nfrom affect_keras.cli.{command} import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit as e:\n    code = e.code\n"
        f"print('EXIT', code)\nprint('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert "HEAVY []" in done.stdout, done.stdout + done.stderr[-2000:]
    assert ("EXIT 0" if argv == ["--help"] else "EXIT 2") in done.stdout
    if argv != ["--help"]:
        assert len(done.stderr.strip().splitlines()) == 1 and "error: argument --" in done.stderr


@pytest.mark.slow
def test_tensorflow_start_up_info_lines_are_kept_out_of_the_way():
    """A fresh process as the training commands start: their check that keras is installed, then keras.
    Also issue 46, item 12: that check used up the one-shot hook that registers the package's classes, so
    `calibrate.py RUN` could not load any run ("Could not locate class 'ExpressionClassifier'")."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    code = (
        "import affect_keras, os\nfrom affect_keras.cli.common import require_training_install\n"
        "require_training_install('calibrate.py')\nimport tensorflow as tf, keras\n"
        "print(os.environ['TF_CPP_MIN_LOG_LEVEL'])\ntf.constant(1) + 1\n"
        "print(keras.saving.get_registered_object('affect_keras>ExpressionClassifier').__name__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**env, "PYTHONPATH": str(REPO)}
    )
    assert done.returncode == 0 and done.stdout.split() == ["1", "ExpressionClassifier"]  # INFO off
    # the CPU-instructions notice goes; TF 2.21 prints its oneDNN notice before reading the level, so that
    # one stays (TF_ENABLE_ONEDNN_OPTS=0 would silence it by turning oneDNN's kernels off)
    assert "cpu_feature_guard" not in done.stderr


def test_names_too_long_huge_numbers_and_a_closed_pipe_end_on_one_line(tiny_run, tmp_path, capsys):
    """Issue 46, item 16: names over 255 bytes (--model, --csv, an input) gave OSError tracebacks, as did
    `--camera 99999999999999999999` (OverflowError) and `evaluate --bootstrap 1000000000` (253 GiB, asked for
    after the model's work); `predict.py ... | head -1` ended in BrokenPipeError."""
    import subprocess
    import sys

    from affect_keras.cli.evaluate import main as evaluate_main

    run, face, long = str(tiny_run / "run"), str(next((tiny_run / "data" / "test").rglob("*.jpg"))), "a" * 300
    cases = {
        "--model": [face, "--no-detect", "--model", str(tmp_path / long)],
        "--csv": [face, "--no-detect", "--model", run, "--csv", str(tmp_path / f"{long}.csv")],
        "": [str(tmp_path / f"{long}.jpg"), "--no-detect", "--model", run],
        "--camera": ["--camera", "99999999999999999999"],
    }
    for flag, argv in cases.items():
        with pytest.raises(SystemExit) as stop:
            predict_main(argv)
        message = one_line_error(capsys)
        assert stop.value.code == 2 and message.startswith("predict.py: error: "), message
        assert f"argument {flag}" in message if flag else "a file name longer than the file system allows" in message
    with pytest.raises(SystemExit) as stop:
        evaluate_main([run, "--data", str(tiny_run / "data"), "--bootstrap", "1000000000"])
    assert stop.value.code == 2 and "--bootstrap must be in 0..100,000" in one_line_error(capsys)
    reading = subprocess.Popen(
        [sys.executable, str(REPO / "predict.py"), face, "--no-detect", "--model", run, "--engine", "keras"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    reading.stdout.close()  # the reader has gone before a line was written, as `| head -0` does
    assert reading.wait(timeout=120) == 141
    assert "Traceback" not in reading.stderr.read()
