"""Checking option values, so every command reports a bad value the same way: naming the flag."""

from __future__ import annotations

from typing import Iterable


def check(rules: Iterable[tuple[bool, str, str]]) -> None:
    """Raise ValueError("--option message") for the first rule (ok, option, message) that fails."""
    for ok, option, message in rules:
        if not ok:
            raise ValueError(f"--{option} {message}")
