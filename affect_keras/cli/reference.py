"""The settings reference: one Markdown page per command, generated from the command's own parser (the
flags train.py and prepare_dataset.py generate from their config classes, and those the other commands
declare): flag, config-file key, type, default, help, grouped as `--help` groups them.

    python -m affect_keras.cli.reference docs/reference     # writes docs/reference/<command>.md

`tests/test_docs.py` generates the pages again and compares them with the committed ones, so they cannot
drift from the code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

# command -> (its module in affect_keras.cli, the script users run)
COMMANDS = {
    "prepare": "prepare_dataset.py",
    "train": "train.py",
    "evaluate": "evaluate.py",
    "calibrate": "calibrate.py",
    "export": "export.py",
    "predict": "predict.py",
    "study": "study.py",
    "serve": "serve.py",
}


def _type_of(action: argparse.Action) -> str:
    if action.nargs == 0:
        return "on/off"
    if action.choices is not None:
        return "one of " + ", ".join(f"`{c}`" for c in action.choices)
    kind = getattr(action.type, "__name__", None) or "text"
    kind = {
        "str": "text",
        "int": "whole number",
        "float": "number",
        "int_list": "numbers, comma-separated",
        "convert": "text",
        "Path": "path",
    }.get(kind, kind)
    return f"{kind}, one or more" if action.nargs in ("+", "*") else kind


def _default_of(action: argparse.Action) -> str:
    if isinstance(action, argparse.BooleanOptionalAction):
        flags = action.option_strings
        return "-" if action.default is None else f"`{flags[0] if action.default else flags[-1]}`"
    if action.nargs == 0:
        return "not given"
    if action.default in (None, "", [], {}):
        return "-"
    if isinstance(action.default, list):
        return " ".join(f"`{value}`" for value in action.default) or "-"
    return f"`{action.default}`"


def _help(action: argparse.Action) -> str:
    """The help text as --help shows it (its %(default)s filled in)."""
    try:
        return (action.help or "") % {**vars(action), "default": action.default}
    except (KeyError, TypeError, ValueError):
        return action.help or ""


def _cell(text: str) -> str:
    return " ".join(str(text or "").split()).replace("|", "\\|")


def page(command: str) -> str:
    """The Markdown reference of one command's settings."""
    parser = importlib.import_module(f"affect_keras.cli.{command}").build_parser()
    script = COMMANDS[command]
    lines = [
        f"# {script}",
        "",
        _cell(parser.description),
        "",
        f"Every flag may also be given in a YAML file, `{script} --config FILE`, under its config key (a "
        f"flag on the command line overrides the file). Generated from the command's parser by "
        f"`python -m affect_keras.cli.reference docs/reference`.",
        "",
    ]
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.help != argparse.SUPPRESS and a.dest not in ("help", "config")]
        if not actions:
            continue
        title = {"positional arguments": "arguments", "options": "other"}.get(group.title, group.title)
        lines += [f"## {title}", ""]
        if group.description:
            lines += [_cell(group.description), ""]
        lines += ["| flag | config key | type | default | what it does |", "| --- | --- | --- | --- | --- |"]
        for action in actions:
            flag = " / ".join(f"`{s}`" for s in action.option_strings) or f"`{action.dest}` (positional)"
            key = f"`{action.dest}`" if action.option_strings else "-"
            lines.append(f"| {flag} | {key} | {_type_of(action)} | {_default_of(action)} | {_cell(_help(action))} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    out = Path((argv if argv is not None else sys.argv[1:] or ["docs/reference"])[0])
    out.mkdir(parents=True, exist_ok=True)
    for command in COMMANDS:
        (out / f"{command}.md").write_text(page(command))
        print(out / f"{command}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
