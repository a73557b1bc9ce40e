"""prepare(): counts, reasons and files on fixtures; splits, balancing, re-runs and resuming."""

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, read_csv
from PIL import Image

from affect_keras.cli.prepare import main as prepare_main
from affect_keras.data.prepare import PrepareConfig, prepare
from affect_keras.data.prepare.manifests import Summary
from affect_keras.data.sources import sample
from affect_keras import __version__


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sample")
    sample.generate(root, count=600, seed=0, workers=2)
    return root


def run_sample(sample_root, out, **settings) -> Summary:
    settings = {"size": 32, "count": 600, **settings}
    return prepare(PrepareConfig(source="sample", root=sample_root, out=out, **settings))


def files_under(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_original_release_end_to_end(affectnet_original, tmp_path):
    out = tmp_path / "out"
    before = {p for p in tmp_path.rglob("*")}
    summary = prepare(PrepareConfig(source="affectnet", root=affectnet_original, out=out, size=32, val_fraction=0.0))
    assert summary.counts["train"] == {
        "Neutral": 1,
        "Happy": 1,
        "Sad": 1,
        "Surprise": 1,
        "Fear": 0,
        "Disgust": 0,
        "Anger": 0,
        "Contempt": 0,
    }
    assert sum(summary.counts["test"].values()) == 3
    assert summary.skipped == Counter(
        {
            "face box outside image": 1,
            "label outside affectnet8: 9 Uncertain": 1,
            "missing image": 1,
            "unreadable image (OSError)": 2,
            "path outside the dataset root": 1,
            "malformed row (4 columns, expected 9)": 1,
            "malformed row (could not convert string to float: 'happy')": 1,
        }
    )
    skipped = read_csv(out / "skipped.csv")
    assert {r["source"] for r in skipped} >= {"2/offbox.jpg", "2/missing.jpg", "2/corrupt.jpg", "../outside.jpg"}
    train = read_csv(out / "train.csv")
    assert {r["file"] for r in train} == {
        "train/Happy/1_good.jpg",
        "train/Sad/1_cmyk.jpg",
        "train/Surprise/2_alpha.jpg",
        "train/Neutral/2_noaffect.jpg",
    }
    noaffect = next(r for r in train if r["source"] == "2/noaffect.jpg")
    assert noaffect["valence"] == "" and noaffect["label_index"] == "0"
    assert summary.notes["kept with valence/arousal not applicable (-2) or missing"] == 1
    for row in train:
        with Image.open(out / row["file"]) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (32, 32))
    # nothing was written outside --out
    assert {p for p in tmp_path.rglob("*") if not p.is_relative_to(out)} == before - {out}


def test_newer_release_end_to_end(affectnet_newer, tmp_path):
    summary = prepare(
        PrepareConfig(
            source="affectnet", root=affectnet_newer, out=tmp_path / "o", size=16, val_fraction=0.0, labels="affectnet7"
        )
    )
    assert sum(summary.counts["train"].values()) == 3 and sum(summary.counts["test"].values()) == 2
    assert summary.skipped == {"missing annotation 3_aro.npy": 1}


@pytest.mark.slow
def test_stratified_val_split(sample_root, tmp_path):
    summary = run_sample(sample_root, tmp_path, val_fraction=0.25)
    for name in summary.class_names:
        total = summary.counts["train"][name] + summary.counts["val"][name]
        assert summary.counts["val"][name] == round(total * 0.25)
    assert sum(summary.counts["test"].values()) == 120  # AffectNet's validation part, 15 per class


def test_balanced_eval_copies_are_hard_links(sample_root, tmp_path):
    summary = run_sample(sample_root, tmp_path, balance_eval=10)
    assert all(n == 10 for n in summary.counts["test_balanced"].values())
    assert summary.counts["val_balanced"] == {k: min(10, v) for k, v in summary.counts["val"].items()}
    row = read_csv(tmp_path / "test_balanced.csv")[0]
    assert row["file"].startswith("test_balanced/")
    assert os.path.samefile(tmp_path / row["file"], tmp_path / row["file"].replace("test_balanced/", "test/"))


@pytest.mark.slow
def test_down_and_up_sampling_counts(sample_root, tmp_path):
    plain = run_sample(sample_root, tmp_path / "plain").counts["train"]
    down = run_sample(sample_root, tmp_path / "down", train_sampling="down", sampling_target=30)
    assert down.counts["train"] == {k: min(30, v) for k, v in plain.items()}
    assert down.notes["training images left out by down-sampling"] == sum(max(0, v - 30) for v in plain.values())
    smallest = run_sample(sample_root, tmp_path / "smallest", train_sampling="down").counts["train"]
    assert set(smallest.values()) == {min(plain.values())}
    up = run_sample(sample_root, tmp_path / "up", train_sampling="up", sampling_target=80)
    assert up.counts["train"] == {k: max(80, v) for k, v in plain.items()}
    files = [r["file"] for r in read_csv(tmp_path / "up/train.csv")]
    assert len(files) == len(set(files)) and all((tmp_path / "up" / f).is_file() for f in files)
    assert sum("__dup" in f for f in files) == sum(max(0, 80 - v) for v in plain.values())


def test_rerun_is_idempotent_and_reuses_images(sample_root, tmp_path):
    first = run_sample(sample_root, tmp_path, balance_eval=5)
    files = files_under(tmp_path)
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "train").rglob("*.jpg")}
    second = run_sample(sample_root, tmp_path, balance_eval=5)
    assert (second.written, second.reused) == (0, first.written)
    assert second.counts == first.counts
    assert {k: v for k, v in files_under(tmp_path).items() if k != "summary.json"} == {
        k: v for k, v in files.items() if k != "summary.json"
    }
    assert mtimes == {p: p.stat().st_mtime_ns for p in (tmp_path / "train").rglob("*.jpg")}


def test_changed_settings_rewrite_and_leave_no_stale_files(sample_root, tmp_path):
    run_sample(sample_root, tmp_path, balance_eval=5, train_sampling="up")
    summary = run_sample(sample_root, tmp_path, size=24)
    assert summary.reused == 0
    listed = {r["file"] for split in ("train", "val", "test") for r in read_csv(tmp_path / f"{split}.csv")}
    on_disk = {
        p.relative_to(tmp_path).as_posix()
        for s in ("train", "val", "test")
        for p in (tmp_path / s).rglob("*")
        if p.is_file()
    }
    assert on_disk == listed
    assert not (tmp_path / "val_balanced").exists()
    with Image.open(tmp_path / sorted(listed)[0]) as image:
        assert image.size == (24, 24)


def test_out_inside_root_is_refused(affectnet_original):
    with pytest.raises(ValueError, match="^out .* must lie outside --root"):
        prepare(PrepareConfig(source="affectnet", root=affectnet_original, out=affectnet_original / "prepared"))


def test_a_folder_prepared_before_0_2_0_is_refused_in_one_line_and_left_as_it_is(tmp_path):
    """A prepare_config.yaml without `version` (written before 0.2.0): the same call refuses to continue,
    naming --out and saying what to do, and changes no image; the record of 0.2.0 on carries the version."""

    from affect_keras.data.prepare import CONFIG_FILE
    from affect_keras.options import OptionError

    config = dict(source="sample", out=tmp_path / "out", count=60, size=32)
    prepare(PrepareConfig(**config))
    record = yaml.safe_load((tmp_path / "out" / CONFIG_FILE).read_text())
    assert record["version"] == __version__
    del record["version"]
    (tmp_path / "out" / CONFIG_FILE).write_text(yaml.safe_dump(record, sort_keys=False))
    images = sorted((tmp_path / "out").rglob("*.jpg"))
    before = {path: path.stat().st_mtime_ns for path in images}
    with pytest.raises(OptionError, match="was prepared before affect-keras 0.2.0; prepare into a new --out") as error:
        prepare(PrepareConfig(**config))
    assert error.value.option == "out"
    assert {path: path.stat().st_mtime_ns for path in sorted((tmp_path / "out").rglob("*.jpg"))} == before


@pytest.mark.slow
def test_a_rerun_removes_only_what_prepare_wrote(sample_root, tmp_path):
    """Case 4: the identical command again deleted a user's files in the split folders; other settings
    deleted whole split folders."""
    run_sample(sample_root, tmp_path, balance_eval=3)
    happy = tmp_path / "train" / "Happy"
    (happy / "my_notes.txt").write_text("notes")
    (happy / "my_own_face.jpg").write_bytes(next(happy.glob("*.jpg")).read_bytes())
    (tmp_path / "val_balanced" / "mine.txt").write_text("mine")
    summary = run_sample(sample_root, tmp_path, balance_eval=3)
    assert summary.notes["files in the split folders not written by prepare (kept, in no manifest)"] == 3
    run_sample(sample_root, tmp_path, size=24)  # other settings: every image of prepare's made again
    assert (happy / "my_notes.txt").read_text() == "notes" and (happy / "my_own_face.jpg").is_file()
    assert (tmp_path / "val_balanced" / "mine.txt").is_file()
    assert not (tmp_path / "val_balanced.csv").exists()  # the manifest of a split no longer made
    listed = {r["file"] for split in ("train", "val", "test") for r in read_csv(tmp_path / f"{split}.csv")}
    assert "train/Happy/my_own_face.jpg" not in listed


def test_bad_settings_are_one_line_when_the_config_is_built(tmp_path):
    """Cases 17, 27, 31: --size 100000 ran workers out of memory; --seed -1 named no option; a file as
    --out, class_map="a=b" and a class map onto a path failed deep inside or said the folder was not mapped."""
    from affect_keras.options import OptionError

    (tmp_path / "file").write_text("x")
    for settings, option, words in (
        ({"size": 100000}, "size", "must be 8 to 2048 pixels"),
        ({"seed": -1}, "seed", "must be in"),
        ({"class_map": "a=b"}, "class_map", "must be a mapping"),
        ({"size": 48.5}, "size", "must be a whole number"),
    ):
        with pytest.raises(OptionError, match=words) as error:
            PrepareConfig(out=tmp_path / "out", **settings)
        assert error.value.option == option
    with pytest.raises(OptionError, match="is a file; give a folder"):
        prepare(PrepareConfig(out=tmp_path / "file"))
    with pytest.raises(OptionError, match="'../../escape' is not an expression"):
        PrepareConfig(
            source="folders", root=tmp_path, out=tmp_path / "out", class_map={"happiness": "../../escape"}
        ).validate()
    done = subprocess.run(
        [sys.executable, str(REPO / "prepare_dataset.py"), "--out", str(tmp_path / "o"), "--seed", "-1"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "--seed must be in" in done.stderr and len(done.stderr.splitlines()) == 1


def test_hidden_and_oddly_named_class_folders_are_read_or_reported(tmp_path):
    """Cases 15 and 21: a class folder `..weird` mapped with --class-map was dropped while the run reported
    "Skipped nothing"; a file name that is not UTF-8 failed at the end without naming the file."""
    tree = tmp_path / "tree"
    for folder in ("Happy", "..weird", ".thumbnails"):
        (tree / folder).mkdir(parents=True)
        for k in range(3):
            Image.new("RGB", (40, 40), (40 * k, 80, 120)).save(tree / folder / f"{k}.jpg")
    Image.new("RGB", (40, 40)).save(os.fsdecode(bytes(tree / "Happy") + b"/caf\xe9.jpg"), format="JPEG")
    summary = prepare(
        PrepareConfig(
            source="folders",
            root=tree,
            out=tmp_path / "out",
            size=32,
            val_fraction=0,
            class_map={"..weird": "Sad"},
            workers=1,
        )
    )
    assert summary.counts["train"] == {**summary.counts["train"], "Happy": 4, "Sad": 3}
    skipped = pd.read_csv(tmp_path / "out" / "skipped.csv")
    assert list(skipped["source"]) == [".thumbnails"] and "hidden folder" in skipped["reason"][0]
    assert "Happy/caf\\xe9.jpg" in set(pd.read_csv(tmp_path / "out" / "train.csv")["source"])


def _tree(root, files):
    from PIL import Image

    for name, colour in files.items():
        (root / "happy").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 40), colour).save(root / "happy" / name)


def _mean_rgb(path):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(path)).reshape(-1, 3).mean(axis=0)


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


def test_prepares_workers_end_when_the_main_process_is_killed(tmp_path):
    """Issue 46, item 14: SIGKILL of prepare's main process (as the memory killer sends) left its workers
    waiting on the pool's queue for good. Each worker now ends with its parent (workers started as
    prepare starts them: from the forkserver, with its initializer)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "pool.py"
    script.write_text(
        "import os, time\nfrom concurrent.futures import ProcessPoolExecutor\n"
        "from affect_keras.data.prepare.writing import _context, _worker_start\n"
        "def pid(_):\n    time.sleep(0.2)\n    return os.getpid()\n"
        "if __name__ == '__main__':\n"
        "    pool = ProcessPoolExecutor(2, mp_context=_context(), initializer=_worker_start)\n"
        "    print(*sorted(set(pool.map(pid, range(8)))), flush=True)\n"
        "    waiting = [pool.submit(time.sleep, 60) for _ in range(4)]\n    time.sleep(60)\n"
    )
    main = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    workers = [int(pid) for pid in main.stdout.readline().split()]
    os.kill(main.pid, signal.SIGKILL)
    main.wait()

    def running(pid):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().split()[2] != "Z"  # a zombie has ended
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 10
    while any(map(running, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in workers if running(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert len(workers) == 2 and not left, f"workers {left} outlived the main process"
