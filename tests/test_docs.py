"""The documentation (issue 26): the site builds in strict mode, the API reference documents exactly the
public API, every command the README and the guides show parses with its CLI's own parser, and the
README's five-minute tour runs."""

import os
import re
import shlex
import subprocess
import sys

import pytest

import affect_keras
from conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
CLIS = {
    "prepare_dataset.py": "prepare",
    "train.py": "train",
    "evaluate.py": "evaluate",
    "export.py": "export",
    "predict.py": "predict",
    "study.py": "study",
    "calibrate.py": "calibrate",
}


def test_the_readme_is_short_and_links_into_the_guides():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    linked = set(re.findall(r"\]\(docs/([\w.-]+\.md)\)", readme))
    assert linked == {p.name for p in (REPO / "docs").glob("*.md")} - {"index.md"}


def test_the_site_builds_in_strict_mode(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "api" / "index.html").is_file()


def test_the_api_reference_documents_exactly_the_public_api():
    page = (REPO / "docs" / "api.md").read_text()
    entries = re.findall(r"^## affect_keras\.(\w+)\n\n::: ([\w.]+)$", page, re.MULTILINE)
    assert sorted(name for name, _ in entries) == sorted(affect_keras.__all__)
    for name, path in entries:
        module, attribute = affect_keras._PUBLIC[name]
        assert (
            path == f"{module}.{attribute}"
            or getattr(affect_keras, name).__module__ + "." + getattr(affect_keras, name).__qualname__ == path
        ), name


def shown_commands() -> list[tuple[str, list[str]]]:
    """(page, argv) of every command of a project CLI in the pages' bash blocks; continuation lines joined,
    variables set in the same block expanded; commands with placeholders (`...`, `{a,b}`, a shell loop's
    `$name`, a `--config` of a run to be made) left out."""
    commands = []
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.DOTALL):
            variables = {}
            for line in block.replace("\\\n", " ").splitlines():
                line = line.strip()
                assignment = re.match(r'^(\w+)="(.*)"$', line)
                if assignment:
                    variables[assignment[1]] = assignment[2]
                    continue
                for name, value in variables.items():
                    line = line.replace(f"${name}", value)
                words = shlex.split(line, comments=True)
                while words and re.match(r"^\w+=", words[0]):  # KERAS_BACKEND=jax python ...
                    words = words[1:]
                if len(words) >= 2 and words[0] == "python" and words[1] in CLIS:
                    if any(w == "..." or "{" in w or w.startswith("[") or "$" in w for w in words) or any(
                        a == "--config" and "<" in b for a, b in zip(words, words[1:])
                    ):
                        continue  # a placeholder, a loop's variable, a config file to be written first
                    commands.append((f"{page.name}: {line}", [CLIS[words[1]], *words[2:]]))
    return commands


def test_every_command_shown_parses_with_its_cli():
    import importlib

    commands = shown_commands()
    assert len(commands) > 40  # the pages' commands were found
    failures = []
    for where, (cli, *argv) in commands:
        parser = importlib.import_module(f"affect_keras.cli.{cli}").build_parser()
        try:
            parser.parse_args(argv)
        except SystemExit as stop:
            if stop.code:  # (--help exits 0)
                failures.append(where)
    assert failures == []


@pytest.mark.slow
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
