"""Checking option values, so every command reports a bad value the same way: naming the flag."""

from __future__ import annotations

from typing import Iterable


def check(rules: Iterable[tuple[bool, str, str]]) -> None:
    """Raise ValueError("--option message") for the first rule (ok, option, message) that fails."""
    for ok, option, message in rules:
        if not ok:
            raise ValueError(f"--{option} {message}")


def check_split(data, split: str) -> None:
    """ValueError naming --split when the prepared dataset `data` has no manifest of that split, listing the
    ones it has: checked before any long work (a study's first strategy, a model's loading)."""
    from pathlib import Path

    if not (Path(data) / f"{split}.csv").is_file():
        splits = sorted(p.stem for p in Path(data).glob("*.csv") if p.stem != "skipped")
        raise ValueError(f"--split {split}: {data} has no {split}.csv manifest (its splits: "
                         f"{', '.join(splits) or 'none'})")
