"""predict.py on a real photograph, on an image without a face, a non-image, a folder and a video."""

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from affect_keras.cli.predict import main

skimage_data = pytest.importorskip("skimage.data")
ASTRONAUT_FACE = (160, 40, 290, 190)  # left, top, right, bottom of Eileen Collins' face in the 512x512 photo


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(skimage_data.astronaut()).save(folder / "astronaut.png")
    Image.fromarray(np.full((200, 300, 3), 128, np.uint8)).save(folder / "blank.png")
    return folder


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


def test_an_exported_model_predicts_the_same_as_the_run(tiny_run, photos, capsys):
    from affect_keras.cli.export import main as export

    export([str(tiny_run / "run"), "--format", "saved_model", "keras"])
    capsys.readouterr()
    outputs = []
    for model in (tiny_run / "run", tiny_run / "run/export/saved_model", tiny_run / "run/export/model.keras"):
        assert main([str(photos / "astronaut.png"), "--model", str(model), "--top-k", "8", "--trust-saved-model"]) == 0
        box, scores = capsys.readouterr().out.splitlines()[1].split(": ")
        outputs.append((box, {s.split()[0]: float(s.split()[1]) for s in scores.split(", ")}))
    for box, scores in outputs[1:]:
        assert box == outputs[0][0]
        for name, p in scores.items():
            assert p == pytest.approx(outputs[0][1][name], abs=2e-3)


def test_a_bad_flag_is_one_line_naming_it(photos, capsys):
    with pytest.raises(SystemExit):
        main([str(photos / "blank.png"), "--model", "x", "--top-k", "0"])
    assert "argument --top-k must be >= 1 (see --help)" in capsys.readouterr().err


def test_valence_and_arousal_are_printed_and_written_when_the_model_has_them(multitask_run, photos, tmp_path, capsys):
    face = tmp_path / "crops"
    face.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(face / "a.png")
    out = tmp_path / "faces.csv"
    assert main([str(face / "a.png"), "--model", str(multitask_run), "--no-detect", "--csv", str(out)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("face 1 at"))
    valence = float(line.split("valence ")[1].split(",")[0])
    row = pd.read_csv(out).iloc[0]
    assert -1 <= valence <= 1 and row["valence"] == pytest.approx(valence, abs=1e-3)
    assert -1 <= row["arousal"] <= 1 and row["expression"] in line


# ---- nothing lost (issue 36): predict's outputs, its inputs' odd names and sizes ----


@pytest.fixture
def crops(tiny_run, tmp_path):
    """A folder of six prepared faces (predict --no-detect reads them whole)."""
    folder = tmp_path / "crops"
    folder.mkdir()
    for k, path in enumerate(sorted((tiny_run / "data" / "test").rglob("*.jpg"))[:6]):
        Image.open(path).save(folder / f"face{k}.jpg")
    return folder


def _failing_at(monkeypatch, image: int, error: BaseException):
    """Make the analysis of the `image`-th image (from 1) raise `error`."""
    from affect_keras.deploy.analyse import Analyser

    real, calls = Analyser.analyse, []

    def analyse(self, rgb):
        calls.append(1)
        if len(calls) == image:
            raise error
        return real(self, rgb)

    monkeypatch.setattr(Analyser, "analyse", analyse)


def test_only_predicts_own_csv_is_replaced(tiny_run, crops, tmp_path, capsys):
    """Case 3: any CSV whose first line began with `file,` was taken for predict's own and replaced: a
    dataset's manifest, a user's inventory."""
    from conftest import one_line_error

    manifest = tmp_path / "test.csv"
    manifest.write_bytes((tiny_run / "data" / "test.csv").read_bytes())
    inventory = tmp_path / "inventory.csv"
    inventory.write_text("file,owner\nface0.jpg,me\n")
    for mine in (manifest, inventory):
        before = mine.read_bytes()
        with pytest.raises(SystemExit) as stop:
            main([str(crops), "--no-detect", "--model", str(tiny_run / "run"), "--csv", str(mine)])
        assert stop.value.code == 2 and "not written by predict.py" in one_line_error(capsys)
        assert mine.read_bytes() == before
    ours = tmp_path / "ours.csv"
    for _ in range(2):  # its own CSV, written again
        assert main([str(crops), "--no-detect", "--model", str(tiny_run / "run"), "--csv", str(ours)]) == 0
    assert len(pd.read_csv(ours)) == 6


def test_a_crash_or_ctrl_c_midway_leaves_the_csv_whole(tiny_run, crops, tmp_path, monkeypatch, capsys):
    """Cases 7 and 26: a late crash left an existing CSV truncated to its header; Ctrl-C printed a
    traceback and kept nothing."""
    out = tmp_path / "faces.csv"
    assert main([str(crops), "--no-detect", "--model", str(tiny_run / "run"), "--csv", str(out)]) == 0
    before = out.read_bytes()
    with monkeypatch.context() as patch:
        _failing_at(patch, 4, RuntimeError("a late failure"))
        with pytest.raises(RuntimeError):
            main([str(crops), "--no-detect", "--model", str(tiny_run / "run"), "--csv", str(out)])
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crops", "faces.csv", "faces.csv.settings.yaml"]
    capsys.readouterr()
    with monkeypatch.context() as patch:
        _failing_at(patch, 4, KeyboardInterrupt())
        assert main([str(crops), "--no-detect", "--model", str(tiny_run / "run"), "--csv", str(out)]) == 130
    assert "interrupted after 3 of 6 images: the CSV holds those" in capsys.readouterr().out
    assert list(pd.read_csv(out)["file"]) == ["face0.jpg", "face1.jpg", "face2.jpg"]


def test_a_killed_folder_predict_leaves_the_older_csv_and_the_same_command_finishes(tiny_run, crops, tmp_path):
    """Acceptance: predict killed at any point leaves nothing corrupt (the CSV at the path is the older
    one, complete), and the same command writes the whole CSV."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from conftest import REPO

    for k in range(6, 60):  # enough images that the kill lands midway
        Image.open(crops / f"face{k % 6}.jpg").save(crops / f"face{k}.jpg")
    out = tmp_path / "faces.csv"
    command = [
        sys.executable,
        str(REPO / "predict.py"),
        str(crops),
        "--no-detect",
        "--model",
        str(tiny_run / "run"),
        "--csv",
        str(out),
    ]
    assert main(command[2:]) == 0  # the earlier run (in this process: only the killed one needs its own)
    before = out.read_bytes()
    running = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = tmp_path / f".faces.csv.{running.pid}.partial"
    deadline = time.monotonic() + 120
    while not (partial.is_file() and partial.read_text().count("\n") >= 3) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(running.pid, signal.SIGKILL)
    running.wait()
    assert out.read_bytes() == before  # the older CSV, whole
    assert main(command[2:]) == 0  # the same command
    assert len(pd.read_csv(out)) == 60
    assert not partial.exists()  # the killed run's temporary file, removed by the next


def test_odd_images_and_names_are_counted_not_fatal(tiny_run, crops, tmp_path, capsys):
    """Cases 15, 20, 21: a 1x1 image aborted a folder run; tiny images without a face were "analysed
    whole" and got an expression; a file name that is not UTF-8 failed after all the work."""
    import os

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
    assert settings["framing"]["crop"] in ("box", "tight") and settings["model_kind"] == "run"
    mine = tmp_path / "mine.csv.settings.yaml"
    mine.write_text("my notes\n")
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main([str(crops), "--no-detect", "--model", str(tiny_run / "run"), "--csv", str(tmp_path / "mine.csv")])
    assert stop.value.code == 2 and "not written by predict.py" in one_line_error(capsys)
    assert mine.read_text() == "my notes\n" and not (tmp_path / "mine.csv").exists()
