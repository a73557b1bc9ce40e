"""The README's five-minute tour, command by command, as a new user types it."""

import os
import re
import shlex
import subprocess
import sys

import pytest
from conftest import REPO


def test_the_readme_tour_runs(tmp_path):
    """The README's five-minute tour, command by command, on a real photo (`photo.jpg` there)."""
    photo = REPO.parent / "shared" / "data" / "muxspace_subset" / "happiness" / "Aaron_Sorkin_0002.jpg"
    if not photo.is_file():
        pytest.skip("muxspace_subset not beside the repo")
    tour = re.search(r"## A five-minute tour\n\n```bash\n(.*?)```", (REPO / "README.md").read_text(), re.DOTALL)[1]
    lines = [line for line in tour.replace("\\\n", " ").splitlines() if line.strip() and not line.startswith("#")]
    assert len(lines) == 6  # predict, prepare, train, evaluate, export, predict
    printed = ""
    for line in lines:
        words = [str(photo) if w == "photo.jpg" else w for w in shlex.split(line)]
        # the repository's entry points, run in a scratch folder that receives data/ and models/
        done = subprocess.run(
            [sys.executable, str(REPO / words[1]), *words[2:]],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)},
        )
        assert done.returncode == 0, (line, done.stderr[-2000:])
        printed += done.stdout
    assert printed.count("face 1 at") == 2 and "macro_f1" in printed
    assert (tmp_path / "models" / "tour" / "export" / "saved_model" / "saved_model.pb").is_file()
