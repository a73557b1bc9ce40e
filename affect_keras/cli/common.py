"""What every command line shares: one-line errors naming the flag, `--config FILE` defaults, and flags
generated from a config class's fields (`options.setting`)."""

from __future__ import annotations

import argparse
import dataclasses
import errno
import functools
import logging
import os
import sys
import types
import typing
from pathlib import Path

import yaml

from affect_keras.options import OptionError, choices_of, read_yaml, shown


class _Printed(logging.Handler):
    """Each record printed as a line on the standard output of the moment."""

    def emit(self, record):
        print(self.format(record), flush=True)


def show_logs() -> None:
    """What the library logs (progress, what a setting was resolved to), printed on the command's standard
    output as plain lines: the library logs, the CLIs print."""
    logger = logging.getLogger("affect_keras")
    if not any(isinstance(handler, _Printed) for handler in logger.handlers):
        logger.addHandler(_Printed())
    logger.setLevel(logging.INFO)
    logger.propagate = False  # a root handler (absl installs one) would print each line twice


class Gathered(argparse.Action):
    """A many-valued flag whose values add up when it is given twice (`--format keras --format tflite`:
    both; argparse's own keeps the last), replacing the default (or the config file's value)."""

    given = False

    def __call__(self, parser, namespace, values, option_string=None):
        earlier = getattr(namespace, self.dest) if self.given else []
        setattr(namespace, self.dest, [*earlier, *values])
        self.given = True


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults appended to each help line, except for on/off flags (their default is their absence) and
    empty defaults (the help says what none means)."""

    def _get_help_string(self, action):
        if action.nargs == 0 or action.default in (None, "", [], {}):
            return action.help
        return super()._get_help_string(action)


def int_list(text: str) -> list[int]:
    """ "256,128" -> [256, 128]; "" -> []."""
    return [int(value) for value in text.split(",") if value]


def _parsed_by(parse):
    """argparse's type for a setting's own parser: its ValueError becomes the flag's one-line error."""

    def convert(text: str):
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def add_settings(parser: argparse.ArgumentParser, config_class, groups: dict) -> dict:
    """One flag per field of `config_class` made by `options.setting`, under the argument group its
    metadata names (`groups`: {name: (title, description)}, in the order `--help` lists them); the flag's
    type, default, choices and help are the field's. Returns {group name: argument group}."""
    sections = {name: parser.add_argument_group(title, description) for name, (title, description) in groups.items()}
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        meta = field.metadata
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        default = None if default is dataclasses.MISSING else default
        kind = _optional_of(hints[field.name])
        dashed = field.name.replace("_", "-")
        flag = ("--no-" if kind is bool and default and not meta["negatable"] else "--") + dashed
        options = {"dest": field.name, "default": default, "help": meta["help"] if meta["cli"] else argparse.SUPPRESS}
        if kind is bool:
            options["action"] = (
                argparse.BooleanOptionalAction if meta["negatable"] else "store_false" if default else "store_true"
            )
        elif meta["parse"]:
            options["type"] = _parsed_by(meta["parse"])
        elif kind == list[int]:
            options["type"] = int_list
        elif kind == list[str]:
            options["nargs"], options["action"] = "+", Gathered
        else:
            options["type"] = kind
        if choices_of(field) is not None:
            options["choices"] = list(choices_of(field))
        if meta["metavar"]:
            options["metavar"] = meta["metavar"]
        if meta.get("positional"):  # the command's argument: no flag, optional (the config's rules say when)
            options.pop("dest")
            action = sections[meta["group"]].add_argument(field.name, nargs="?", **options)
        else:
            action = sections[meta["group"]].add_argument(flag, **options)
        # a config file (a run's config.yaml) may hold a structured value itself: it is read as its text
        if meta["text"]:
            action.structured, action.as_text = dict, meta["text"]
        elif kind == list[int]:
            action.structured, action.as_text = list, lambda items: ",".join(map(str, items))
    return sections


def _optional_of(kind):
    """`X` for `X | None`, else `kind`."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        return options[0] if len(options) == 1 else kind
    return kind


class ArgumentParser(argparse.ArgumentParser):
    """argparse with help grouped by topic (via argument groups) and errors on one line."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.add_argument(
            "-c",
            "--config",
            metavar="FILE",
            help="YAML file of option values (keys as the long flags, - or _); "
            "flags given on the command line override it",
        )

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    def parse_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        for action in self._actions:
            if isinstance(action, Gathered):
                action.given = False
        pre = argparse.ArgumentParser(add_help=False)
        pre.add_argument("-c", "--config")
        known, _ = pre.parse_known_args(args)
        if known.config:
            self.set_defaults(**self._config_defaults(Path(known.config)))
        return super().parse_args(args, namespace)

    def _config_defaults(self, path: Path) -> dict:
        try:
            values = read_yaml(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            self.error(f"argument --config: cannot read {path}: {str(error).splitlines()[0]}")
        except UnicodeDecodeError:
            self.error(f"argument --config: {path} is not a text (YAML) file")
        if not isinstance(values, dict):
            self.error(f"argument --config: {path} must hold a mapping of option: value")
        actions = {action.dest: action for action in self._actions}
        defaults = {}
        for key, value in values.items():
            dest = str(key).replace("-", "_")
            if dest not in actions or dest in ("help", "config"):
                self.error(f"argument --config: unknown option {shown(key)} in {path}")
            if dest in defaults:  # batch-size and batch_size
                self.error(f"argument --config: {shown(key)} is given twice in {path} (- and _ are one key)")
            defaults[dest] = self._config_value(actions[dest], f"argument --config: {key} in {path}", value)
        return defaults

    def _config_value(self, action: argparse.Action, where: str, value):
        """A config file's value put through what the flag's own parsing does (its type, choices, number of
        values), so that a wrong type is one line naming the key rather than a TypeError later."""
        if value is None and action.default is None:  # an unset optional value, as saved configs hold
            return None
        if action.nargs == 0:  # --flag / --no-flag
            if not isinstance(value, bool):
                self.error(f"{where}: must be true or false, not {shown(value)}")
            return value
        if action.nargs in ("+", "*"):
            items = value if isinstance(value, list) else [value]  # one value for a list option: a list of one
            if action.nargs == "+" and not items and action.default != []:  # [] where none is the default
                self.error(f"{where}: needs at least one value")
            return [self._config_item(action, where, item) for item in items]
        return self._config_item(action, where, value)

    def _config_item(self, action: argparse.Action, where: str, value):
        if value is None:
            self.error(f"{where}: has no value")
        if isinstance(value, getattr(action, "structured", ())):  # a structured form of its text
            value = action.as_text(value)
        if isinstance(value, (list, dict)):
            self.error(f"{where}: must be a single value, not {shown(value)}")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        try:
            converted = action.type(text) if callable(action.type) else text
        except (TypeError, ValueError, argparse.ArgumentTypeError) as error:
            self.error(f"{where}: {shown(value)} is not valid ({shown(str(error), 200)[1:-1]})")
        if action.choices is not None and converted not in action.choices:
            self.error(f"{where}: {shown(value)} is not one of {', '.join(map(str, action.choices))}")
        return converted

    def words(self, error: Exception) -> str:
        """An error as this command says it: an `OptionError` with the flag of its option (the flag whose
        value lands in that name, else --<option>), another error as it is."""
        if not isinstance(error, OptionError):
            return str(error)
        actions = [
            action
            for action in self._actions
            if action.dest == error.option.replace("-", "_") and action.option_strings
        ]
        if actions and actions[0].help == argparse.SUPPRESS:  # a recorded value, not a flag: a --config key
            return OptionError.worded(f"--config: {error.option}", error.reason)
        return OptionError.worded(
            actions[0].option_strings[-1] if actions else "--" + error.option.replace("_", "-"), error.reason
        )

    def parse_config(self, config_class, argv=None, required: tuple[str, ...] = ()):
        """The command's config: the arguments (and `--config` file) parsed, the `required` settings
        present, built as `config_class` and checked (its `validate()`, where it has one); a bad value ends
        the command with the one-line error naming its flag."""
        values = vars(self.parse_args(argv))
        values.pop("config", None)
        for name in required:
            if values[name] is None or values[name] == "":
                self.error(f"argument --{name.replace('_', '-')} is required")
        try:
            config = config_class(**values)
            if hasattr(config, "validate"):
                config.validate()
        except ValueError as error:
            self.fail(error)
        return config

    def fail(self, error: Exception):
        """Report a bad argument (exit status 2) the same one-line way as argparse's own errors."""
        message = self.words(error)
        self.error(f"argument {message}" if message.startswith("--") else message)

    def stop(self, error: Exception, status: int = 1):
        """Report what stopped the work (exit status 1) on one line."""
        self.exit(status, f"{self.prog}: error: {self.words(error)}\n")


def command(prog: str):
    """A command's `main`, ended cleanly where the system stops it: its output read by a program that stopped
    reading (`predict.py ... | head -1`: status 141, as a shell reports SIGPIPE, no traceback), a file name
    longer than the file system allows (one line naming the flag that gave it, status 2)."""

    def wrap(main):
        @functools.wraps(main)
        def run(argv=None) -> int:
            try:
                status = main(argv)
                sys.stdout.flush()  # here, where a closed pipe can still be caught
                return status
            except BrokenPipeError:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's exit flushes again
                return 141
            except OSError as error:
                if error.errno != errno.ENAMETOOLONG:
                    raise
                name = str(error.filename or "")
                words = [str(word) for word in (sys.argv[1:] if argv is None else argv)]
                given = next((k for k, word in enumerate(words) if name and (word in name or name in word)), None)
                flag = words[given - 1] if given and words[given - 1].startswith("--") else ""
                shown_name = name if len(name) <= 60 else name[:40] + "..." + name[-12:]
                sys.stderr.write(
                    f"{prog}: error: {'argument ' + flag + ': ' if flag else ''}{shown_name}: a file name longer "
                    f"than the file system allows (most allow 255 bytes a name); give a shorter one\n"
                )
                raise SystemExit(2) from None

        return run

    return wrap


TRAINING_MODULES = ("keras", "pandas", "sklearn", "matplotlib")  # the `train` extra's, for every command but predict


def require_training_install(command: str) -> None:
    """Stop `command` with one line when the training install is missing (`pip install affect-keras` is the
    runtime alone): which modules are missing and the extra that brings them. `--help` there says what the
    command is, the same install line and where its settings are described (exit status 0)."""
    from affect_keras.models.loading import module_installed

    missing = [name for name in TRAINING_MODULES if not module_installed(name)]
    if not module_installed("tensorflow") and not module_installed("jax"):
        missing.append("a backend (tensorflow or jax)")
    if not missing:
        return
    install = (
        f"needs the training install ({', '.join(missing)} missing): pip install 'affect-keras[train,cpu]' "
        f"(or [train,tf] / [train,jax]); predict.py alone runs without it"
    )
    if {"-h", "--help"} & set(sys.argv[1:]):
        page = command.removesuffix(".py").removesuffix("_dataset")
        print(
            f"usage: {command} [options]\n\n{command} {install}.\nIts options, each with its default and help: "
            f"docs/reference/{page}.md in the source distribution, or {command} --help once installed."
        )
        sys.exit(0)
    sys.exit(f"{command}: error: {install}")
