"""Settings declared once, and their errors.

A config class (`training.config.TrainConfig`) declares each setting as a dataclass field made by
`setting()`: its default, help, group, allowed values and check live in the field's metadata. The config
validates itself from them (`check_fields`) and the CLI builds its parser from them (`cli.common`).
Errors name the setting as the library knows it (`OptionError.option`, a field name); the CLI words them
as its flags (`--batch-size`)."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Callable, Iterable


class OptionError(ValueError):
    """A bad value of one setting. `option`: its name in the library (a config field, an argument);
    `reason`: what is wrong, said so that "<option> <reason>" reads as a sentence (or "<option>: ...").

    Examples:
        >>> str(OptionError("batch_size", "must be >= 1"))
        'batch_size must be >= 1'
    """

    def __init__(self, option: str, reason: str):
        super().__init__(self.worded(option, reason))
        self.option, self.reason = option, reason

    @staticmethod
    def worded(name: str, reason: str) -> str:
        """`name` (the option as one side calls it) followed by the reason."""
        return f"{name}{'' if reason.startswith(':') else ' '}{reason}"


def setting(
    default=dataclasses.MISSING,
    *,
    group: str,
    help: str = "",
    choices=None,
    check: tuple[Callable, str] | None = None,
    metavar: str = "",
    parse: Callable | None = None,
    text: Callable | None = None,
    negatable: bool = False,
    identity: bool = True,
    cli: bool = True,
    positional: bool = False,
):
    """A config field with what it takes to parse, check and document it. Its CLI flag is `--<name>` (a
    boolean defaulting to True: `--no-<name>`).

    Args:
        default: its default (a list or mapping is copied for each instance); none for a required setting.
        group: the topic `--help` lists it under (a key of the config's `GROUPS`).
        help: one line for `--help` (the default is appended by the CLI).
        choices: the allowed values (a tuple, or a registry dict: its names).
        check: (predicate of the value, what a bad value is told: "must be > 0").
        metavar: the CLI's placeholder for its value.
        parse: text -> value, for a value that is not an int, float, str or Path (a list of ints is read
            from "256,128" without it); ValueError for bad text.
        text: value -> text, so that a config file may hold the structured value (a mapping) itself.
        negatable: a boolean with both --<name> and --no-<name>.
        identity: False for a setting that does not change what a run computes (a run may continue with
            another value).
        cli: False for a setting that is not a user's choice (recorded for older runs; no flag).
        positional: given without a flag, as the command's argument (predict.py PHOTO); optional on the
            command line (a rule of the config says when it is needed).
    """
    metadata = {
        "group": group,
        "help": help,
        "choices": choices,
        "check": check,
        "metavar": metavar,
        "parse": parse,
        "text": text,
        "negatable": negatable,
        "identity": identity,
        "cli": cli,
        "positional": positional,
    }
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def choices_of(field: dataclasses.Field) -> tuple | None:
    """The allowed values of a `setting()` field (None: any)."""
    choices = field.metadata.get("choices")
    return None if choices is None else tuple(choices)


FIRST_RELEASE = "0.2.0"  # what affect-keras wrote before its first release is refused, never migrated


def before_first_release(what: str, how: str, detail: str = "") -> str:
    """The one line that refuses what affect-keras wrote before its first release: `what` was written ("P was
    written", "R holds a run trained"), `detail` what showed it, `how` to make it again with this version."""
    return f"{what} before affect-keras {FIRST_RELEASE}{detail}; {how}"


def version_tuple(text) -> tuple[int, ...] | None:
    """ "0.2.0" -> (0, 2, 0); None for anything that is not a dotted version."""
    parts = str(text).split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else None


def version_check() -> tuple[Callable, str]:
    """The `setting` check of a config's `version` (the affect-keras release that wrote it): a release
    number, no newer than this one (a config file of a newer release is refused, a malformed one too)."""
    from affect_keras import __version__

    ours = version_tuple(__version__)
    return (
        lambda v: version_tuple(v) is not None and version_tuple(v) <= ours,
        f"must be a release number (such as {__version__}) no newer than this affect-keras ({__version__}): "
        f"the release that wrote the config",
    )


def read_yaml(text: str):
    """YAML as `yaml.safe_load` reads it, less aliases (`*name`): a few hundred bytes of nested aliases
    expand to gigabytes, and no config of the toolkit needs one; and a key given twice in a mapping (YAML
    keeps the last silently). yaml.YAMLError naming the alias or the key."""
    import yaml

    class NoAliases(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, f"an alias (*{event.anchor}) is not allowed in a config file", event.start_mark
                )
            return super().compose_node(parent, index)

        def construct_mapping(self, node, deep=False):
            keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
            twice = next((key for k, key in enumerate(keys) if key in keys[:k]), None)
            if twice is not None:  # YAML would keep the last silently
                raise yaml.constructor.ConstructorError(
                    None, None, f"{shown(twice)} is given twice in one mapping", node.start_mark
                )
            return super().construct_mapping(node, deep)

    return yaml.load(text, Loader=NoAliases)  # noqa: S506 - a SafeLoader


def shown(value, limit: int = 60) -> str:
    """`repr(value)` cut to `limit` characters: a message never carries a huge value whole."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def type_error(value, kind) -> str | None:
    """What is wrong with `value` as a `kind` (a field's annotation: int, float, str, bool, Path, list[X],
    dict[str, str], X | None), or None when it is one. An int is a float; a bool is no number."""
    import types
    import typing
    from pathlib import Path

    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        problems = [type_error(value, option) for option in args]
        return None if None in problems else problems[0]
    if kind is type(None):
        return None if value is None else "must be empty (None)"
    if origin is list:
        if not isinstance(value, list):
            return f"must be a list, not {shown(value)}"
        return next(
            (f"item {shown(item)} {problem}" for item in value if (problem := type_error(item, args[0])) is not None),
            None,
        )
    if origin is dict:
        ok = isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        return None if ok else f"must be a mapping of names to names, not {shown(value)}"
    if kind is bool:
        return None if isinstance(value, bool) else f"must be true or false, not {shown(value)}"
    if kind is int:
        whole = isinstance(value, int) and not isinstance(value, bool)
        return None if whole else f"must be a whole number, not {shown(value)}"
    if kind is float:
        import math

        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if number and math.isfinite(value) else f"must be a finite number, not {shown(value)}"
    if kind is str:
        return None if isinstance(value, str) else f"must be text, not {shown(value)}"
    if kind is Path:
        return None if isinstance(value, (str, Path)) else f"must be a path, not {shown(value)}"
    return None


def as_text(value, kind):
    """`value` with a path (`os.PathLike`) given where `kind` declares text turned into its text, also in a
    list; anything else as it is (a field declared as a `Path` keeps its `Path`)."""
    import os
    import typing

    if isinstance(value, os.PathLike) and type_error(value, kind) is not None:
        text = os.fspath(value)
        return text if type_error(text, kind) is None else value
    if isinstance(value, list) and typing.get_origin(kind) is list:
        return [as_text(item, typing.get_args(kind)[0]) for item in value]
    return value


def check_fields(config) -> None:
    """OptionError for the first field of `config` whose value is not of its declared type, not among its
    choices or fails its check (a list field: each of its items). A `Path` given for a text field becomes
    its text first (`as_text`): the configs are saved as YAML, and the API takes paths as either."""
    import typing

    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        setattr(config, field.name, as_text(getattr(config, field.name), hints[field.name]))
        problem = type_error(getattr(config, field.name), hints[field.name])
        if problem is not None:
            raise OptionError(field.name, problem)
    for field in dataclasses.fields(config):
        value, choices = getattr(config, field.name), choices_of(field)
        values = value if isinstance(value, list) else [] if value is None else [value]  # None: not set
        if choices is not None and not all(v in choices for v in values):
            raise OptionError(field.name, f"must be one of {', '.join(map(str, choices))}")
        predicate, reason = field.metadata.get("check") or (None, "")
        if predicate is not None and not predicate(value):
            raise OptionError(field.name, reason)


def check(rules: Iterable[tuple[bool, str, str]]) -> None:
    """OptionError(option, reason) for the first rule (ok, option, reason) that fails."""
    for ok, option, reason in rules:
        if not ok:
            raise OptionError(option, reason)


def check_split(data, split: str) -> None:
    """OptionError naming `split` when the prepared dataset `data` has no manifest of that split, listing
    the ones it has: checked before any long work (a study's first strategy, a model's loading)."""
    from pathlib import Path

    if not (Path(data) / f"{split}.csv").is_file():
        splits = sorted(p.stem for p in Path(data).glob("*.csv") if p.stem != "skipped")
        raise OptionError(
            "split", f"{split}: {data} has no {split}.csv manifest (its splits: {', '.join(splits) or 'none'})"
        )


def build(registry: dict, name: str, option: str, *args, **settings):
    """`registry[name](*args, **its own settings)`: each builder of a registry declares the settings it
    takes (Adam no momentum, the step schedule no warm-up), and callers hand over every setting of the
    topic (as timm's `OptimInfo` says what each optimiser accepts). OptionError naming `option` for an
    unknown name."""
    if name not in registry:
        raise OptionError(option, f"must be one of {', '.join(registry)}")
    builder = registry[name]
    takes = inspect.signature(builder).parameters
    return builder(*args, **{key: value for key, value in settings.items() if key in takes})
