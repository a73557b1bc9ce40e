"""Removing only what prepare wrote: its split folders, and files no manifest lists any more."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

SPLITS = ("train", "val", "test")


def owned_folders() -> list[str]:
    return [*SPLITS, *(f"{s}_balanced" for s in ("val", "test"))]


def clear(out: Path) -> None:
    for folder in owned_folders():
        shutil.rmtree(out / folder, ignore_errors=True)


def remove_stale(out: Path, manifests: dict[str, pd.DataFrame]) -> None:
    """Delete files in our split folders that no manifest lists: leftovers of other settings, and the
    temporary files of a killed run."""
    wanted = {f for m in manifests.values() for f in m["file"]}
    for folder in owned_folders():
        for path in sorted((out / folder).rglob("*")) if (out / folder).is_dir() else []:
            if path.is_file() and path.relative_to(out).as_posix() not in wanted:
                path.unlink()
        if folder not in manifests and (out / folder).is_dir():
            shutil.rmtree(out / folder)
    for folder in (out / s for s in manifests):
        for directory in sorted(folder.rglob("*"), reverse=True) if folder.is_dir() else []:
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()
