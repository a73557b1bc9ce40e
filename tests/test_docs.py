"""The documentation (issue 26): the site builds in strict mode, the API reference documents exactly the
public API, every command the README and the guides show parses with its CLI's own parser (the README's
five-minute tour runs in tests/e2e/test_readme_tour.py)."""

import os
import re
import shlex
import subprocess
import sys

from conftest import REPO

import affect_keras

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
CLIS = {
    "prepare_dataset.py": "prepare",
    "train.py": "train",
    "evaluate.py": "evaluate",
    "export.py": "export",
    "predict.py": "predict",
    "study.py": "study",
    "calibrate.py": "calibrate",
    "serve.py": "serve",
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


# ---- prose checked against the code (issue 35): paths, flags, defaults, the module map ----

NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"
# pip's (the peer-benchmark install lines, the platform checks), curl's (the service), twine's (make dist)
OTHER_TOOLS_FLAGS = {"--no-deps", "--dry-run", "--platform", "--only-binary", "--data-binary", "--strict"}


def prose() -> dict[str, str]:
    """{page name: text} of every page a user reads: README, the guides, models/README.md and the
    notebook's cells."""
    import json

    texts = {str(page.relative_to(REPO)): page.read_text() for page in [*PAGES, REPO / "models" / "README.md"]}
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    texts["notebooks/quickstart.ipynb"] = "\n".join("".join(cell["source"]) for cell in cells)
    return texts


def declared_flags() -> dict[str, object]:
    """{flag: its default} of every command, and the flags the benchmarks declare (default None)."""
    import importlib

    flags = {}
    for cli in set(CLIS.values()):
        for action in importlib.import_module(f"affect_keras.cli.{cli}").build_parser()._actions:
            for flag in action.option_strings:
                flags.setdefault(flag, action.default)
    for script in (REPO / "benchmarks").glob("*.py"):
        for flag in re.findall(r'add_argument\(\s*"(--[a-z0-9-]+)"', script.read_text()):
            flags.setdefault(flag, None)
    return flags


def test_every_path_and_flag_the_docs_name_exists():
    """Every `affect_keras/...` or `tests/...` path and every `--flag` named on a page or in the notebook
    is in the code (the docs had placed the task registry in affect_keras/models/tasks.py)."""
    flags = declared_flags()
    missing = []
    for page, text in prose().items():
        for path in re.findall(r"(?<![\w/])(?:affect_keras|tests)/[A-Za-z0-9_./-]*", text):
            if not (REPO / path.rstrip("./")).exists():
                missing.append(f"{page}: {path}")
        for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text):
            if flag not in flags and flag not in OTHER_TOOLS_FLAGS:
                missing.append(f"{page}: {flag}")
    assert missing == []


def test_every_default_a_page_states_is_the_declared_one():
    """ "`--flag` (default X" and "`--flag`, default X" on a page: X is the flag's declared default (where
    the declared default is empty or "auto", the page says what it resolves to, which is not checked)."""
    flags = declared_flags()
    stated = []
    for page, text in prose().items():
        for flag, value in re.findall(r"`(--[a-z0-9-]+)`,? \(?default:? `?([\w.]+)", text):
            declared = flags.get(flag)
            if declared in (None, "", "auto", [], -1):
                continue
            stated.append(flag)
            same = str(declared) == value or (
                isinstance(declared, (int, float))
                and not isinstance(declared, bool)
                and float(value) == float(declared)
            )
            assert same, f"{page}: {flag} default {value}, declared {declared!r}"
    assert "--smooth" in stated  # the pattern still finds the pages' statements
    from affect_keras.data.faces import DEFAULT_FRAMING

    framing = "not levelled" if not DEFAULT_FRAMING.align else "levelled"
    for page in ("docs/deployment.md", "docs/concepts.md"):
        assert (
            f"Without a record: `{DEFAULT_FRAMING.crop}`, margin {DEFAULT_FRAMING.margin:g}, {framing}."
            in prose()[page]
        ), page


def test_what_the_docs_say_of_the_shipped_preset_and_the_detector_is_the_code():
    """The preset's crop (`crop: box`, the docs had said "tight"), and the detector's measured duplicate
    removal quoted from the code's comment ("10 -> 1"; the docs had "10 -> 0")."""
    from affect_keras.models.presets import DEFAULT_PRESET, load_metadata

    texts = prose()
    crop = load_metadata(DEFAULT_PRESET)["framing"]["crop"]
    assert f"`crop: {crop}`" in texts["docs/deployment.md"]
    assert "tight square" not in texts["notebooks/quickstart.ipynb"]
    code = re.findall(r"faces (\d+) -> (\d+)", (REPO / "affect_keras" / "data" / "faces.py").read_text())
    docs = re.findall(r"photos with several faces: (\d+) -> (\d+)", texts["docs/deployment.md"])
    assert code and docs and set(docs) <= set(code)


def test_the_architecture_page_names_every_module():
    """docs/architecture.md's map of the package names each module (it had left out deploy/analyse.py and
    deploy/presets.py, and named modules that no longer exist)."""
    page = (REPO / "docs" / "architecture.md").read_text()
    package = REPO / "affect_keras"
    unnamed = [
        str(p.relative_to(package))
        for p in sorted(package.rglob("*.py"))
        if p.name != "__init__.py" and p.name not in page
    ]
    assert unnamed == []
    named = set(re.findall(r"^  ([a-z_]+\.py)\b", page, flags=re.M))
    assert {name for name in named if not list(package.glob(name))} == set()


def test_the_setup_page_lists_every_extra():
    """docs/setup.md's table of extras is setup.cfg's (it had left out [onnx] and [tflite])."""
    import configparser

    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    extras = set(config["options.extras_require"])
    page = (REPO / "docs" / "setup.md").read_text()
    listed = {name for row in re.findall(r"^\| `([^|]+)` \|", page, flags=re.M) for name in re.findall(r"\w+", row)}
    assert extras <= listed, extras - listed
    assert "MixUp, CutMix, ...) this toolkit uses" not in page  # they are its own, data/mixing.py


def test_the_readme_says_which_commands_save_their_settings():
    """The README said every command saves its resolved settings with its output: predict saves none."""
    readme = (REPO / "README.md").read_text()
    assert "saves its\nresolved settings" not in readme and "saves its resolved settings" not in readme


def test_the_settings_reference_is_generated_from_the_commands():
    """docs/reference/<command>.md is what `python -m affect_keras.cli.reference` writes from each command's
    parser now: a flag added, renamed or given another default fails here until the pages are written again."""
    from affect_keras.cli import reference

    stale = [
        command
        for command in reference.COMMANDS
        if (REPO / "docs" / "reference" / f"{command}.md").read_text() != reference.page(command)
    ]
    assert stale == [], "run: python -m affect_keras.cli.reference docs/reference"
    pages = {
        "docs/reference/predict.md": "`--smooth` | `smooth` | number | `0.5`",
        "docs/reference/train.md": "`--batch-size` | `batch_size` | whole number | `32`",
    }
    for page, row in pages.items():
        assert row in (REPO / page).read_text(), page
