"""predict.py on a real photograph, on an image without a face, a non-image, a folder and a video."""

import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import REPO, one_line_error, sideways
from PIL import Image

from affect_keras.cli.predict import main
from affect_keras.data.prepare import PrepareConfig, prepare

skimage_data = pytest.importorskip("skimage.data")
ASTRONAUT_FACE = (160, 40, 290, 190)  # left, top, right, bottom of Eileen Collins' face in the 512x512 photo


def face_box(printed):
    line = next(line for line in printed.splitlines() if line.startswith("face 1 at ("))
    return tuple(int(v) for v in line[len("face 1 at (") : line.index(")")].split(","))


def test_a_face_in_a_photograph_gets_a_box_and_an_expression(tiny_run, photos, tmp_path, capsys):
    annotated = tmp_path / "annotated.png"
    assert main([str(photos / "astronaut.png"), "--model", str(tiny_run / "run"), "--annotate", str(annotated)]) == 0
    printed = capsys.readouterr().out
    x, y, w, h = face_box(printed)
    left, top, right, bottom = ASTRONAUT_FACE
    assert left <= x + w / 2 <= right and top <= y + h / 2 <= bottom and 50 <= w <= 160
    assert any(name in printed.split("face 1 at")[1] for name in ("Happy", "Neutral", "Anger", "Sad"))
    assert Image.open(annotated).size == (512, 512)


def test_no_face_is_said_and_exits_0(tiny_run, photos, capsys):
    assert main([str(photos / "blank.png"), "--model", str(tiny_run / "run")]) == 0
    assert "no face found" in capsys.readouterr().out


def test_a_non_image_is_a_clear_error(tiny_run, tmp_path, capsys):
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    with pytest.raises(SystemExit) as exit_:
        main([str(text), "--model", str(tiny_run / "run")])
    assert exit_.value.code == 1
    assert f"{text} is not an image this can read" in capsys.readouterr().err


def test_a_folder_gives_a_csv_counting_what_it_read(tiny_run, photos, tmp_path, capsys):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 broken")
    Image.fromarray(np.full((96, 90, 3), 128, np.uint8)).save(photos / "crop.png")  # face-sized, no face
    out = tmp_path / "faces.csv"
    assert main([str(photos), "--model", str(tiny_run / "run"), "--csv", str(out)]) == 0
    table = pd.read_csv(out).set_index("file")
    assert {"expression", "p_Happy", "x", "outcome"} <= set(table.columns)
    # every file is listed with its outcome (issue 14, case 10), a face crop is analysed whole
    assert table.loc["astronaut.png", "outcome"] == "face found"
    assert table.loc["blank.png", "outcome"] == "no face found" and pd.isna(table.loc["blank.png", "expression"])
    assert table.loc["broken.jpg", "outcome"].startswith("unreadable: unreadable image")
    assert table.loc["crop.png", "outcome"] == "no face detected; face-sized image analysed whole"
    assert table.loc["crop.png", "expression"] in (
        "Neutral",
        "Happy",
        "Sad",
        "Surprise",
        "Fear",
        "Disgust",
        "Anger",
        "Contempt",
    )
    printed = capsys.readouterr().out
    assert "3 images read, 2 faces, 1 images without a face, 1 unreadable" in printed
    assert "face found 1" in printed and "unreadable 1" in printed


def test_a_video_is_annotated_frame_by_frame(tiny_run, photos, tmp_path, capsys):
    video, annotated = tmp_path / "clip.mp4", tmp_path / "annotated.mp4"
    frame = cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (512, 512))
    for _ in range(6):
        writer.write(frame)
    writer.release()
    assert (
        main(
            [
                str(video),
                "--model",
                str(tiny_run / "run"),
                "--every",
                "3",
                "--annotate",
                str(annotated),
                "--csv",
                str(tmp_path / "video.csv"),
            ]
        )
        == 0
    )
    assert "6 frames, 2 analysed, 2 faces found" in capsys.readouterr().out
    assert int(cv2.VideoCapture(str(annotated)).get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    assert list(pd.read_csv(tmp_path / "video.csv")["frame"]) == [0, 3]


def test_a_bad_flag_is_one_line_naming_it(photos, capsys):
    with pytest.raises(SystemExit):
        main([str(photos / "blank.png"), "--model", "x", "--top-k", "0"])
    assert "argument --top-k must be >= 1 (see --help)" in capsys.readouterr().err


# ---- nothing lost (issue 36): predict's outputs, its inputs' odd names and sizes ----


def test_odd_images_and_names_are_counted_not_fatal(tiny_run, crops, tmp_path, capsys):
    """Cases 15, 20, 21: a 1x1 image aborted a folder run; tiny images without a face were "analysed
    whole" and got an expression; a file name that is not UTF-8 failed after all the work."""

    Image.new("RGB", (1, 1)).save(crops / "dot.png")
    Image.fromarray(np.full((20, 20, 3), 128, np.uint8)).save(crops / "small.png")
    odd = os.fsdecode(bytes(crops) + b"/caf\xe9.jpg")
    Image.open(crops / "face0.jpg").save(odd, format="JPEG")
    out = tmp_path / "faces.csv"
    assert main([str(crops), "--model", str(tiny_run / "run"), "--csv", str(out)]) == 0
    table = pd.read_csv(out).set_index("file")
    assert table.loc["dot.png", "outcome"] == "image under 8 px, not analysed"
    assert table.loc["small.png", "outcome"] == "no face found" and pd.isna(table.loc["small.png", "expression"])
    assert "caf\\xe9.jpg" in table.index
    assert main([str(crops / "dot.png"), "--model", str(tiny_run / "run")]) == 0
    assert "image under 8 px" in capsys.readouterr().out


def test_an_empty_folder_or_an_unwritable_output_is_refused_before_any_work(
    tiny_run, crops, tmp_path, capsys, monkeypatch
):
    """Cases 22 and 31: an empty folder ended with rc 0 and a 2-byte predictions.csv in the current
    folder; a CSV in a folder that cannot be written failed with OSError after the work."""
    from conftest import one_line_error

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main([str(empty), "--model", str(tiny_run / "run")])
    assert stop.value.code == 2 and "holds no images" in one_line_error(capsys)
    assert not (tmp_path / "predictions.csv").exists()
    for flag, value in (("--csv", "/proc/faces.csv"), ("--annotate", "/proc/annotated")):
        with pytest.raises(SystemExit) as stop:
            main([str(crops), "--no-detect", "--model", str(tiny_run / "run"), flag, value])
        assert stop.value.code == 2 and f"{flag} /proc" in one_line_error(capsys)


def test_predict_prints_no_litert_banner(tiny_run, tmp_path):
    """Case 33: every predict printed "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."."""
    import subprocess
    import sys

    from conftest import REPO

    face = next((tiny_run / "data" / "test").rglob("*.jpg"))
    done = subprocess.run(
        [sys.executable, str(REPO / "predict.py"), str(face)],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 0, done.stderr
    assert "XNNPACK" not in done.stderr + done.stdout


def test_predict_saves_its_resolved_settings_beside_its_output(tiny_run, crops, tmp_path, capsys):
    """Issue 35: predict saved none of its settings; the file beside its first output says how the outputs
    were made (the framing the model's record gave), and a user's file of that name is not replaced."""
    import yaml
    from conftest import one_line_error

    out = tmp_path / "faces.csv"
    assert main([str(crops), "--no-detect", "--model", str(tiny_run / "run"), "--csv", str(out), "--top-k", "2"]) == 0
    saved = (tmp_path / "faces.csv.settings.yaml").read_text()
    assert saved.startswith("# predict.py's resolved settings\n")
    settings = yaml.safe_load(saved)
    assert settings["csv"] == str(out) and settings["top_k"] == 2 and settings["no_detect"] is True
    assert settings["crop"] in ("box", "tight") and settings["engine"] == "keras"
    assert saved.splitlines()[1] == "# model: a run, run by keras"
    # issue 46, item 17: the saved settings are a config predict replays (they held keys it refused)
    (tmp_path / "faces.csv").unlink()
    assert main(["--config", str(tmp_path / "faces.csv.settings.yaml")]) == 0
    assert (tmp_path / "faces.csv").is_file()
    mine = tmp_path / "mine.csv.settings.yaml"
    mine.write_text("my notes\n")
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main([str(crops), "--no-detect", "--model", str(tiny_run / "run"), "--csv", str(tmp_path / "mine.csv")])
    assert stop.value.code == 2 and "not written by predict.py" in one_line_error(capsys)
    assert mine.read_text() == "my notes\n" and not (tmp_path / "mine.csv").exists()


def test_a_users_table_with_some_of_predicts_columns_is_not_replaced(tiny_run, crops, tmp_path, capsys):
    """Issue 46, item 8: a CSV whose header was `file` and some of predict's column names (a user's ground
    truth `file,expression`, boxes `file,x,y,width,height`) was taken for predict's and replaced, by --csv
    and by --tracks. Only a header with all of a face's or a track's columns is predict's."""
    from conftest import one_line_error

    from affect_keras.deploy.rows import csv_by_predict, csv_fields

    for header in ("file,expression", "file,x,y,width,height", "file,track,first_s"):
        table = tmp_path / "mine.csv"
        table.write_text(f"{header}\na.jpg,1,2,3,4\n")
        assert not csv_by_predict(table)
        with pytest.raises(SystemExit) as stop:
            main([str(crops), "--no-detect", "--model", str(tiny_run / "run"), "--csv", str(table)])
        assert stop.value.code == 2 and "not written by predict.py" in one_line_error(capsys)
        assert table.read_text().startswith(header)
    ours = tmp_path / "ours.csv"
    track = ["file", "track", "first_s", "last_s", "frames", "dominant", "share_Happy"]
    for header in (csv_fields(["Happy", "Sad"], ("expression",), frame=True), track):
        ours.write_text(",".join(header) + "\n")
        assert csv_by_predict(ours)
    assert main([str(crops), "--no-detect", "--model", str(tiny_run / "run"), "--csv", str(ours)]) == 0


def test_a_folders_phone_photos_are_read_and_other_files_counted(tiny_run, crops, tmp_path, capsys):
    """Issue 46, item 17: folder predict passed over .avif photos this Pillow reads, and every other file,
    without a word. AVIF is read; the files left are counted by suffix (.heic with what reads it)."""
    from PIL import features

    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF")
    first = sorted(crops.iterdir())[0]
    Image.open(first).save(crops / "phone.avif")
    (crops / "notes.txt").write_text("mine")
    (crops / "phone.heic").write_bytes(b"not read here")
    out = tmp_path / "faces.csv"
    assert main([str(crops), "--no-detect", "--model", str(tiny_run / "run"), "--csv", str(out)]) == 0
    rows = pd.read_csv(out)
    assert "phone.avif" in set(rows["file"]) and len(rows) == 7  # the six crops and the AVIF
    printed = capsys.readouterr().out
    assert "2 other files left, not images this reads: " in printed and ".txt 1" in printed
    assert ".heic 1" in printed and "pip install pillow-heif" in printed


MUX = REPO.parent / "shared" / "data" / "muxspace_subset"
needs_mux = pytest.mark.skipif(not MUX.is_dir(), reason="muxspace_subset not beside the repo")


@pytest.mark.parametrize(
    "flag, value, says",
    [("--csv", "missing_dir/faces.csv", "does not exist"), ("--annotate", "out.xyz", "write to one of")],
)
def test_predict_output_paths_are_checked_before_any_work(tiny_run, tmp_path, capsys, flag, value, says, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.zeros((48, 48, 3), np.uint8)).save(tmp_path / "face.png")
    import affect_keras.models.loading as loading

    monkeypatch.setattr(loading, "load", lambda *a: pytest.fail("the model was loaded first"))
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path / "face.png"), "--model", str(tiny_run / "run"), flag, value])
    assert stop.value.code != 0
    message = one_line_error(capsys)
    assert flag in message and says in message


@needs_mux
def test_a_sideways_photo_with_exif_orientation_gives_the_upright_face_and_prediction(tmp_path, capsys):
    """predict (default preset, Haar) and prepare (folders) read a phone's sideways JPEG upright."""
    photo = MUX / "happiness" / "Aaron_Sorkin_0002.jpg"
    upright = Image.open(photo).convert("RGB")
    upright.save(tmp_path / "upright.jpg", quality=95)
    sideways(upright, tmp_path / "sideways.jpg")
    printed = {}
    for name in ("upright", "sideways"):
        assert main([str(tmp_path / f"{name}.jpg"), "--top-k", "8"]) == 0
        printed[name] = capsys.readouterr().out.splitlines()[1:]
    assert printed["upright"] and printed["upright"][0].startswith("face 1 at")

    # the same box and probabilities, within what re-encoding the rotated pixels as JPEG changes
    def box(line):
        return np.array([int(v) for v in line.split(" at (")[1].split(")")[0].split(", ")])

    assert np.abs(box(printed["upright"][0]) - box(printed["sideways"][0])).max() <= 3

    def probabilities(line):
        return dict((part.split()[0], float(part.split()[1])) for part in line.split(": ", 1)[1].split(", "))

    up, side = probabilities(printed["upright"][0]), probabilities(printed["sideways"][0])
    assert max(abs(up[k] - side[k]) for k in up) < 0.05 and max(up, key=up.get) == max(side, key=side.get)

    tree = tmp_path / "tree"
    for label in ("happiness", "sadness"):
        (tree / label).mkdir(parents=True)
        upright.save(tree / label / "upright.jpg", quality=95)
        sideways(upright, tree / label / "sideways.jpg")
    prepare(
        PrepareConfig(
            source="folders", root=tree, out=tmp_path / "prepared", size=64, val_fraction=0.0, test_fraction=0.0
        )
    )
    manifest = pd.read_csv(tmp_path / "prepared" / "train.csv")
    faces = {
        Path(source).stem: np.asarray(Image.open(tmp_path / "prepared" / f), np.float32)
        for f, source in zip(manifest.file, manifest.source)
        if Path(source).parent.name == "happiness"
    }
    assert sorted(faces) == ["sideways", "upright"]
    assert np.corrcoef(faces["upright"].ravel(), faces["sideways"].ravel())[0, 1] > 0.98


@pytest.mark.parametrize("flag", ["input", "--camera", "--annotate"])
def test_a_video_name_that_is_not_utf8_is_refused_before_opencv_opens_it(tmp_path, flag):
    """Issue 46, item 13: OpenCV ended the process with a segmentation fault (exit 139, no message)."""
    import subprocess
    import sys

    odd = tmp_path / os.fsdecode(b"clip\xff.mp4")
    odd.write_bytes(b"\0" * 100)
    argv = {
        "input": [str(odd)],
        "--camera": ["--camera", str(odd), "--csv", str(tmp_path / "rows.csv")],
        "--annotate": [str(odd.with_name("ok.mp4")), "--annotate", str(odd.with_name(os.fsdecode(b"out\xff.mp4")))],
    }[flag]
    odd.with_name("ok.mp4").write_bytes(b"\0" * 100)
    command = [sys.executable, str(REPO / "predict.py"), *argv]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "not UTF-8" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert flag.lstrip("-") in done.stderr
