"""prepare_dataset.py cut short and resumed, and the FER+ counts the README gives.

End to end, so marked slow: `make quick` leaves them out."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import FERPLUS, REPO

from affect_keras.data.prepare import PrepareConfig, prepare
from affect_keras.data.sources import sample


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sample")
    sample.generate(root, count=600, seed=0, workers=2)
    return root


def files_under(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _workers(pid: int) -> list[int]:
    """prepare's worker processes: the children of its forkserver (a child of the command with children)."""
    return [worker for child in _children(pid) for worker in _children(child)]


def test_killed_run_resumes_to_the_same_result(sample_root, tmp_path):
    command = [
        sys.executable,
        str(REPO / "prepare_dataset.py"),
        "--source",
        "sample",
        "--root",
        str(sample_root),
        "--size",
        "256",
        "--workers",
        "1",
    ]
    victim = subprocess.Popen(
        command + ["--out", str(tmp_path / "killed")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 60
    while time.time() < deadline and len(list((tmp_path / "killed").glob("train/*/*.jpg"))) < 20:
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    partial = len(list((tmp_path / "killed").glob("train/*/*.jpg")))
    assert 20 <= partial < 400, "the kill did not land mid-run"
    # what a kill during a write leaves behind
    (tmp_path / "killed/train/Happy/.half.jpg.123.tmp").write_bytes(b"\xff\xd8")
    resumed = subprocess.run(command + ["--out", str(tmp_path / "killed")], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{partial} reused" in resumed.stdout
    subprocess.run(command + ["--out", str(tmp_path / "clean")], check=True, capture_output=True)
    killed, clean = files_under(tmp_path / "killed"), files_under(tmp_path / "clean")
    for name in ("summary.json", "prepare_config.yaml"):
        killed.pop(name), clean.pop(name)
    assert killed == clean


@pytest.mark.skipif(not (FERPLUS / "FER2013Train/label.csv").is_file(), reason="FER+ data not beside the repo")
def test_ferplus_prepare_reproduces_the_readme_counts(tmp_path):
    summary = prepare(PrepareConfig(source="ferplus", root=FERPLUS, out=tmp_path, size=48))
    train, val = summary.counts["train"], summary.counts["val"]
    assert (sum(train.values()), sum(val.values())) == (25045, 3191)
    assert train == {
        "Neutral": 8733,
        "Happy": 7284,
        "Sad": 3022,
        "Surprise": 3136,
        "Fear": 536,
        "Disgust": 116,
        "Anger": 2098,
        "Contempt": 120,
    }
    manifest = pd.read_csv(tmp_path / "train.csv")
    assert len(manifest) == 25045 and len(list((tmp_path / "train").rglob("*.jpg"))) == 25045
    votes = manifest[[f"vote_{c}" for c in summary.class_names]].to_numpy()
    assert (votes.argmax(axis=1) == manifest["label_index"].to_numpy()).all()
    print(f"FER+ prepare: {summary.images_per_second:.0f} images/s")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc to find the workers")
def test_a_killed_worker_stops_the_run_and_the_same_command_continues_byte_identical(sample_root, tmp_path):
    """Issue 36, case 18: a worker killed (as the kernel's memory killer does) left the run waiting
    forever; now it stops with a message, keeps what is done, and the same command continues it to the
    files an uninterrupted run writes."""
    command = [
        sys.executable,
        str(REPO / "prepare_dataset.py"),
        "--source",
        "sample",
        "--root",
        str(sample_root),
        "--size",
        "256",
        "--workers",
        "2",
    ]
    victim = subprocess.Popen(
        command + ["--out", str(tmp_path / "killed")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 60
    while time.time() < deadline and len(list((tmp_path / "killed").glob("train/*/*.jpg"))) < 20:
        time.sleep(0.01)
    workers = _workers(victim.pid)
    assert workers, "no worker process to kill"
    os.kill(workers[0], signal.SIGKILL)
    _, stderr = victim.communicate(timeout=60)  # it used to wait here forever
    assert victim.returncode == 1 and "a preparation worker died" in stderr and "Traceback" not in stderr, stderr
    resumed = subprocess.run(command + ["--out", str(tmp_path / "killed")], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    subprocess.run(command + ["--out", str(tmp_path / "clean")], check=True, capture_output=True)
    killed, clean = files_under(tmp_path / "killed"), files_under(tmp_path / "clean")
    for name in ("summary.json", "prepare_config.yaml"):
        killed.pop(name), clean.pop(name)
    assert killed == clean


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
