"""What every command line shares: one-line errors naming the flag, and `--config FILE` defaults."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml


class ArgumentParser(argparse.ArgumentParser):
    """argparse with help grouped by topic (via argument groups) and errors on one line."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)
        self.add_argument("-c", "--config", metavar="FILE",
                          help="YAML file of option values (keys as the long flags, - or _); "
                               "flags given on the command line override it")

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    def parse_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        pre = argparse.ArgumentParser(add_help=False)
        pre.add_argument("-c", "--config")
        known, _ = pre.parse_known_args(args)
        if known.config:
            self.set_defaults(**self._config_defaults(Path(known.config)))
        return super().parse_args(args, namespace)

    def _config_defaults(self, path: Path) -> dict:
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            self.error(f"argument --config: cannot read {path}: {error}")
        if not isinstance(values, dict):
            self.error(f"argument --config: {path} must hold a mapping of option: value")
        dests = {action.dest for action in self._actions}
        defaults = {}
        for key, value in values.items():
            dest = str(key).replace("-", "_")
            if dest not in dests or dest in ("help", "config"):
                self.error(f"argument --config: unknown option {key!r} in {path}")
            defaults[dest] = value
        return defaults

    def fail(self, error: Exception):
        """Report a validation error (whose message starts with the flag) the same one-line way."""
        message = str(error)
        self.error(f"argument {message}" if message.startswith("--") else message)
