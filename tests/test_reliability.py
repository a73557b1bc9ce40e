"""Reliability cases found by trying the tools as a new user would: each failed before its fix."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from affect_keras.cli.prepare import main as prepare_main  # noqa: E402
from affect_keras.cli.train import main as train_main  # noqa: E402
from affect_keras.data.records import Skipped  # noqa: E402
from affect_keras.data.sources import affectnet  # noqa: E402
from conftest import REPO  # noqa: E402

LINEAR = ["--dense=", "--dropout", "0", "--no-head-batch-norm", "--l2", "0"]


def test_prepare_never_deletes_a_folder_it_did_not_write(tmp_path, capsys):
    """Case 1: --out holding the user's own train/ and test/ was emptied without a word."""
    out = tmp_path / "mine"
    (out / "train" / "Happy").mkdir(parents=True)
    (out / "train" / "Happy" / "my_face.jpg").write_bytes(b"user data")
    (out / "test").mkdir()
    (out / "test" / "notes.txt").write_text("user notes")
    with pytest.raises(SystemExit) as exit_:
        prepare_main(["--source", "sample", "--count", "40", "--size", "32", "--out", str(out)])
    assert exit_.value.code != 0
    error = capsys.readouterr().err
    assert f"--out {out} is not empty and was not written by prepare_dataset.py" in error and "\n" not in error.strip()
    assert (out / "train" / "Happy" / "my_face.jpg").read_bytes() == b"user data"
    assert (out / "test" / "notes.txt").read_text() == "user notes"
    # its own output is still re-run in place
    fresh = tmp_path / "fresh"
    assert prepare_main(["--source", "sample", "--count", "40", "--size", "32", "--out", str(fresh)]) == 0
    assert prepare_main(["--source", "sample", "--count", "40", "--size", "32", "--out", str(fresh)]) == 0


def test_a_misspelt_monitor_is_refused_before_training(small_sample, tmp_path, capsys):
    """Case 6: --monitor val_acuracy trained to the end and never wrote best.keras."""
    with pytest.raises(SystemExit) as exit_:
        train_main(
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


def test_a_run_that_failed_before_its_first_epoch_does_not_block_the_corrected_command(small_sample, tmp_path):
    """Case 7: a failed start (offline ImageNet weights, say) left config.yaml, and the corrected command
    was refused as 'a run with other settings'."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"backbone": "vgg16", "weights": "imagenet"}))
    assert (
        train_main(
            [
                "--data",
                str(small_sample),
                "--backbone",
                "resnet18",
                "--weights",
                "none",
                "--image-size",
                "32",
                "--epochs",
                "1",
                "--run-dir",
                str(run),
                *LINEAR,
            ]
        )
        == 0
    )
    assert yaml.safe_load((run / "config.yaml").read_text())["backbone"] == "resnet18"


def test_affectnet_csv_with_a_byte_order_mark(affectnet_original):
    """Case 8: a CSV saved with a UTF-8 BOM had its header counted as a malformed row."""
    lists = affectnet_original / "Manually_Annotated_file_lists" / "training.csv"
    lists.write_bytes(b"\xef\xbb\xbf" + lists.read_bytes())
    items = list(affectnet.read(affectnet_original))
    header = [i for i in items if isinstance(i, Skipped) and "training.csv:1" == i.rel]
    assert not header, header
    assert len([i for i in items if isinstance(i, Skipped)]) == 3  # as without the BOM


def test_a_symbolic_link_out_of_the_root_is_skipped_with_its_reason(tmp_path):
    """Case 4: a link inside --root pointing outside it was followed."""
    from affect_keras.data.sources import folders
    from conftest import face_image

    outside = tmp_path / "private.jpg"
    face_image().save(outside)
    root = tmp_path / "tree"
    (root / "happy").mkdir(parents=True)
    face_image(seed=1).save(root / "happy" / "own.jpg")
    (root / "happy" / "link.jpg").symlink_to(outside)
    items = list(folders.read(root))
    skipped = [i for i in items if isinstance(i, Skipped)]
    assert [(s.rel, s.reason) for s in skipped] == [("happy/link.jpg", "path outside the dataset root (symbolic link)")]
    assert [i.rel for i in items if not isinstance(i, Skipped)] == ["happy/own.jpg"]


@pytest.mark.parametrize("side", [120, 200])  # above PIL's limit (it warns) and above twice it (it raises)
def test_a_decompression_bomb_is_a_counted_skip(side, tmp_path, monkeypatch):
    """Case 5: a 20000 x 20000 PNG crashed prepare and predict; a 12000 x 12000 one printed PIL's warning.
    The limit is scaled down here (PIL's is 89.5 megapixels) so the test needs no GB-sized image."""
    import warnings

    from PIL import Image

    from affect_keras.data.images import ImageError, load_rgb

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    path = tmp_path / "bomb.png"
    Image.new("L", (side, side)).save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and nothing is printed
        with pytest.raises(ImageError, match=r"image too large \(over 10,000 pixels\)"):
            load_rgb(path)


def test_drop_class_scores_an_8_class_model_on_affectnet7_data(tiny_run, tmp_path):
    """Case 11: `--drop-class Contempt` was refused on 7-class data, the README's AffectNet-7 use."""
    import json

    from affect_keras.cli.evaluate import main as evaluate_main
    from affect_keras.data.prepare import PrepareConfig, prepare

    seven = tmp_path / "seven"
    prepare(PrepareConfig(source="sample", out=seven, count=200, size=32, labels="affectnet7"))
    assert "Contempt" not in json.loads((seven / "summary.json").read_text())["class_names"]
    out = tmp_path / "report"
    assert (
        evaluate_main(
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
        evaluate_main([str(tiny_run / "run"), "--data", str(seven), "--split", "val", "--out", str(out)])


def _tree(root, files):
    from PIL import Image

    for name, colour in files.items():
        (root / "happy").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 40), colour).save(root / "happy" / name)


def _mean_rgb(path):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(path)).reshape(-1, 3).mean(axis=0)


def test_a_changed_source_or_a_shifted_name_is_written_again(tmp_path):
    """Case 2: reuse checked only that the output existed, so a changed source image, or new files shifting
    the _2 collision suffixes, left old pixels under the name."""
    root, out = tmp_path / "tree", tmp_path / "out"
    _tree(root, {"a_b.jpg": (255, 0, 0), "other.jpg": (0, 255, 0)})
    command = ["--source", "folders", "--root", str(root), "--out", str(out), "--size", "32", "--val-fraction", "0"]
    assert prepare_main(command) == 0
    assert _mean_rgb(out / "train/Happy/happy_a_b.jpg")[0] > 200  # red
    _tree(root, {"other.jpg": (0, 0, 255)})  # the same name, new pixels (and size or time)
    os.utime(root / "happy/other.jpg", ns=(1, 1))
    assert prepare_main(command) == 0
    assert _mean_rgb(out / "train/Happy/happy_other.jpg")[2] > 200  # blue now, not the old green
    _tree(root, {"a b.jpg": (0, 0, 255)})  # sorts first, takes the name a_b.jpg; the red one becomes a_b_2
    assert prepare_main(command) == 0
    assert _mean_rgb(out / "train/Happy/happy_a_b.jpg")[2] > 200
    assert _mean_rgb(out / "train/Happy/happy_a_b_2.jpg")[0] > 200
    manifest = {row.split(",")[0]: row.split(",")[6] for row in (out / "train.csv").read_text().splitlines()[1:]}
    assert manifest["train/Happy/happy_a_b.jpg"] == "happy/a b.jpg"
    assert prepare_main(command) == 0  # and an unchanged tree reuses everything


def _no_writing_under(monkeypatch, folder):
    """What a read-only folder does to a user (root, who runs the tests here, could write anyway)."""
    import pathlib

    real = pathlib.Path.mkdir

    def mkdir(self, *args, **kwargs):
        if str(self).startswith(str(folder)):
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)


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


def test_ctrl_c_during_prepare_stops_cleanly_and_the_same_command_resumes(tmp_path):
    """Case 9: Ctrl-C during prepare printed a traceback from every worker."""
    import signal
    import subprocess
    import sys
    import time

    from conftest import REPO

    out = tmp_path / "data"
    command = [
        sys.executable,
        "prepare_dataset.py",
        "--source",
        "sample",
        "--count",
        "6000",
        "--size",
        "128",
        "--out",
        str(out),
        "--workers",
        "2",
    ]
    # a background job (CI's, make's under nohup) starts with SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: give the child the default handler, as a terminal would
    process = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    while process.poll() is None and not list(out.glob("train/*/*.jpg"))[:20][19:]:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "the same command resumes" in stderr
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    import re

    assert done.returncode == 0 and int(re.search(r"(\d+) reused", done.stdout).group(1)) >= 20


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
    import json

    import pandas as pd

    from affect_keras.cli.evaluate import main as evaluate_main

    data = tmp_path / "data"
    import shutil

    shutil.copytree(tiny_run / "data", data)
    manifest = pd.read_csv(data / "val.csv")
    manifest[manifest["label"] != "Neutral"].to_csv(data / "val.csv", index=False)
    assert (
        evaluate_main(
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


def _lab_tree(root):
    """CK+-like: 12 subjects, each with images of several expressions, named by subject."""
    from PIL import Image

    for subject in range(1, 13):
        for k, folder in enumerate(("happy", "sad", "anger", "surprise")):
            for take in range(2):
                (root / folder).mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (40, 40), (20 * subject, 60 * k, 100 * take)).save(
                    root / folder / f"S{subject:03d}_{k:03d}_{take:08d}.png"
                )
    (root / "happy" / "stray.png").write_bytes((root / "happy" / "S001_000_00000000.png").read_bytes())


def _subjects(out, split):
    import pandas as pd

    table = pd.read_csv(out / f"{split}.csv")
    return {name.split("/")[-1][:4] for name in table["source"]}


def test_subject_independent_splits_and_grouped_folds(tmp_path):
    """Case 3: a lab folder tree split with --test-fraction put the same subjects in train and test."""
    root = tmp_path / "ck"
    _lab_tree(root)
    out = tmp_path / "grouped"
    assert (
        prepare_main(
            [
                "--source",
                "folders",
                "--root",
                str(root),
                "--out",
                str(out),
                "--size",
                "32",
                "--group-pattern",
                r"^(S\d+)_",
                "--test-fraction",
                "0.25",
                "--val-fraction",
                "0.2",
            ]
        )
        == 0
    )
    train, val, test = (_subjects(out, s) for s in ("train", "val", "test"))
    assert train and val and test and not (train & test) and not (train & val) and not (val & test)
    import pandas as pd

    skipped = pd.read_csv(out / "skipped.csv")
    assert list(skipped["reason"]) == ["file name does not match --group-pattern"]  # stray.png, counted
    tests = []
    for fold in range(4):
        out = tmp_path / f"fold{fold}"
        assert (
            prepare_main(
                [
                    "--source",
                    "folders",
                    "--root",
                    str(root),
                    "--out",
                    str(out),
                    "--size",
                    "32",
                    "--group-pattern",
                    r"^(S\d+)_",
                    "--folds",
                    "4",
                    "--fold",
                    str(fold),
                ]
            )
            == 0
        )
        assert not (_subjects(out, "test") & (_subjects(out, "train") | _subjects(out, "val")))
        tests.append(_subjects(out, "test"))
    assert sorted(s for t in tests for s in t) == sorted(f"S{k:03d}" for k in range(1, 13))  # each once


def test_a_run_continues_with_the_same_command_and_one_from_before_0_2_0_is_refused(small_sample, tmp_path, capsys):
    """The same command continues a run (one more epoch); a run directory whose config.yaml was written
    before 0.2.0 (no version, or the pre-release numbering) is refused in one line saying to train it again."""
    run = tmp_path / "run"
    command = [
        "--data",
        str(small_sample),
        "--backbone",
        "resnet18",
        "--weights",
        "none",
        "--image-size",
        "32",
        "--batch-size",
        "32",
        "--run-dir",
        str(run),
        *LINEAR,
    ]
    assert train_main([*command, "--epochs", "1"]) == 0
    recorded = yaml.safe_load((run / "config.yaml").read_text())
    assert recorded["version"] == "0.2.0"
    recorded["epochs"] = 2  # the continuation asks for one more epoch, as a re-run with --epochs 2 would
    (run / "config.yaml").write_text(yaml.safe_dump(recorded, sort_keys=False))
    assert train_main([*command, "--epochs", "2"]) == 0
    assert len(pd.read_csv(run / "history.csv")) == 2
    older = {**recorded, "version": 2}  # what the unreleased versions wrote
    (run / "config.yaml").write_text(yaml.safe_dump(older, sort_keys=False))
    with pytest.raises(SystemExit) as exit_:
        train_main([*command, "--epochs", "2"])
    assert exit_.value.code == 1
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "holds a run trained before affect-keras 0.2.0" in error and "--run-dir" in error


HEAVY = ("tensorflow", "keras", "jax", "torch")


@pytest.mark.parametrize(
    "command, argv",
    [
        ("prepare", ["--help"]),
        ("train", ["--help"]),
        ("evaluate", ["--help"]),
        ("export", ["--help"]),
        ("predict", ["--help"]),
        ("calibrate", ["--help"]),
        ("train", ["--data", "d", "--lr", "-1"]),  # a bad value: refused before anything heavy starts
        ("train", ["--data", "d", "--backbone", "vgg61"]),
        ("evaluate", ["run", "--data", "d", "--repeats", "0"]),
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


def test_tensorflow_start_up_info_lines_are_kept_out_of_the_way():
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import affect_keras, os, tensorflow as tf; print(os.environ['TF_CPP_MIN_LOG_LEVEL']); tf.constant(1) + 1",
        ],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0 and done.stdout.strip() == "1"  # INFO off, warnings and errors on
    # the CPU-instructions notice goes; TF 2.21 prints its oneDNN notice before reading the level, so that
    # one stays (TF_ENABLE_ONEDNN_OPTS=0 would silence it by turning oneDNN's kernels off)
    assert "cpu_feature_guard" not in done.stderr


@pytest.mark.parametrize(
    "labels, columns",
    [
        ("affectnet11", {"vote_Happy": 3, "vote_Uncertain": 6, "vote_NonFace": 1}),
        ("affectnet7-merge", {"vote_Happy": 3, "vote_Neutral": 7}),
        ("affectnet8", None),
    ],
)
def test_fer_plus_uncertain_votes_reach_the_manifest_where_the_scheme_has_the_class(tmp_path, labels, columns):
    """The source hands over votes per code; prepare maps them through the label scheme and nothing else:
    under affectnet11 FER+'s `unknown` votes are vote_Uncertain (they were dropped), under
    affectnet7-merge they count as Neutral, and under affectnet8 a face whose majority is Uncertain is left
    out with its reason."""
    from affect_keras.data.prepare import PrepareConfig, prepare
    from conftest import face_image

    folder = tmp_path / "fer" / "FER2013Train"
    folder.mkdir(parents=True)
    face_image(size=(48, 48), mode="L").save(folder / "fer0.png")
    # neutral happiness surprise sadness anger disgust fear contempt unknown NF
    (folder / "label.csv").write_text('fer0.png,"(0, 0, 48, 48)",0,3,0,0,0,0,0,0,6,1\n')
    out = tmp_path / "out"
    prepare(PrepareConfig(source="ferplus", root=tmp_path / "fer", out=out, size=48, labels=labels, test_fraction=0.0))
    manifest = pd.read_csv(out / "train.csv")
    if columns is None:
        assert manifest.empty and "no majority" not in (out / "skipped.csv").read_text()
        assert "Uncertain" in (out / "skipped.csv").read_text()
        return
    row = manifest.iloc[0]
    votes = {c: int(row[c]) for c in manifest.columns if c.startswith("vote_") and row[c]}
    assert votes == columns
