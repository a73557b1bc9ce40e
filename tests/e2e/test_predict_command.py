"""predict.py on photos and folders: what it prints and writes, what it never replaces, and a run cut short.

End to end, so marked slow: `make quick` leaves them out."""

import os

import numpy as np
import pandas as pd
import pytest
from conftest import (
    FERPLUS,  # noqa: E402
    REPO,
    one_line_error,
    user_files,
)
from PIL import Image

from affect_keras.cli.predict import main


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
    import signal
    import subprocess
    import sys
    import time

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


def test_annotating_a_folder_into_itself_is_refused_and_no_photo_changes(tiny_run, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(3):
        Image.fromarray(np.full((60, 60, 3), 40 * k, np.uint8)).save(photos / f"p{k}.png")
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    for target in (photos, photos / "annotated"):
        with pytest.raises(SystemExit) as stop:
            main([str(photos), "--model", str(tiny_run / "run"), "--annotate", str(target)])
        assert stop.value.code != 0 and "--annotate" in one_line_error(capsys)
    assert {p.name: p.read_bytes() for p in photos.iterdir() if p.is_file()} == before
    with pytest.raises(SystemExit):  # a single photo annotated onto itself
        main([str(photos / "p0.png"), "--model", str(tiny_run / "run"), "--annotate", str(photos / "p0.png")])
    assert (photos / "p0.png").read_bytes() == before["p0.png"]


def test_predict_never_replaces_a_users_csv_or_picture_but_replaces_its_own(tiny_run, tmp_path, capsys, monkeypatch):
    """Issue 24: "nothing any CLI writes replaces a file it did not write itself". main wrote --csv and
    --annotate over whatever was there (a user's spreadsheet, a user's photo)."""
    monkeypatch.chdir(tmp_path)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((60, 60, 3), 90, np.uint8)).save(photos / "a.png")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "table.csv").write_text("name,score\nme,1\n")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(mine / "a.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(mine / "holiday.jpg")
    before = user_files(mine)
    model = ["--model", str(tiny_run / "run")]
    refusals = [
        [str(photos), "--csv", str(mine / "table.csv")],  # a folder's CSV onto a user's table
        [str(photos), "--csv", str(tmp_path / "out.csv"), "--annotate", str(mine)],  # a copy onto a.png
        [str(photos / "a.png"), "--annotate", str(mine / "holiday.jpg")],
    ]  # one photo's copy
    for argv in refusals:
        with pytest.raises(SystemExit) as stop:
            main(argv + model)
        message = one_line_error(capsys)
        assert stop.value.code != 0 and "was not written by predict.py" in message, argv
    assert user_files(mine) == before
    # its own outputs it replaces: the same commands twice into new places
    for _ in range(2):
        assert (
            main([str(photos), "--csv", str(tmp_path / "out.csv"), "--annotate", str(tmp_path / "annotated")] + model)
            == 0
        )
        assert (
            main(
                [str(photos / "a.png"), "--annotate", str(tmp_path / "a_faces.jpg"), "--csv", str(tmp_path / "one.csv")]
                + model
            )
            == 0
        )
    assert pd.read_csv(tmp_path / "out.csv").file.tolist() == ["a.png"]


needs_ferplus = pytest.mark.skipif(not (FERPLUS / "FER2013Valid").is_dir(), reason="FER+ not beside the repo")


@needs_ferplus
def test_predict_without_model_recognises_fer_validation_faces(capsys):
    """No --model: the default preset. 40 FER+ validation faces whose ten votes agree most (the label's
    share of the votes), straight from the PNGs: it prints FER+ classes and gets most of them right."""
    labels = pd.read_csv(FERPLUS / "FER2013Valid" / "label.csv", header=None)
    columns = ["Neutral", "Happy", "Surprise", "Sad", "Anger", "Disgust", "Fear", "Contempt"]
    votes = labels.iloc[:, 2:10].to_numpy()
    clear = labels[(votes.max(axis=1) >= 9)].head(40)
    right = 0
    for _, row in clear.iterrows():
        assert main([str(FERPLUS / "FER2013Valid" / row[0]), "--no-detect", "--top-k", "1"]) == 0
        printed = capsys.readouterr().out
        top = printed.splitlines()[-1].split()
        truth = columns[int(np.argmax(row.iloc[2:10].to_numpy()))]
        assert any(word.strip(":,") in columns for word in top), printed
        right += truth in printed.splitlines()[-1]
    assert right >= 34, f"{right} of 40"
