"""Removing only what prepare wrote: the files its records list (provenance.json and the manifests) that no
manifest lists any more, and its own temporary files; a user's file in a split folder is left alone."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd

SPLITS = ("train", "val", "test")
PROVENANCE = "provenance.json"  # output file -> [source, size, mtime_ns, box]: what each image was made from
TEMPORARY = re.compile(r"^\..+\.\d+\.tmp$")  # `images.write_jpeg`'s temporary file of a killed run


def owned_folders() -> list[str]:
    return [*SPLITS, *(f"{s}_balanced" for s in ("val", "test"))]


def written_files(out: Path) -> set[str]:
    """The files (relative to `out`) that prepare's records say it wrote: provenance.json's outputs and
    every manifest's files (balanced and up-sampled copies). Read before a run replaces the records."""
    files = set()
    try:
        provenance = json.loads((out / PROVENANCE).read_text()) if (out / PROVENANCE).is_file() else {}
        files |= set(provenance) if isinstance(provenance, dict) else set()
    except (OSError, ValueError):
        pass
    for folder in owned_folders():
        manifest = out / f"{folder}.csv"
        try:
            files |= set(pd.read_csv(manifest, usecols=["file"])["file"].astype(str)) if manifest.is_file() else set()
        except (OSError, ValueError, pd.errors.ParserError):
            pass
    return files


def _is_ours(out: Path, path: Path, written: set[str]) -> bool:
    return path.relative_to(out).as_posix() in written or bool(TEMPORARY.match(path.name))


def clear(out: Path, written: set[str]) -> None:
    """Remove every file prepare wrote (`written`) from the split folders: other settings made them."""
    remove_stale(out, {}, written)


def remove_stale(out: Path, manifests: dict[str, pd.DataFrame], written: set[str]) -> list[str]:
    """Delete the files prepare wrote (`written`, and its temporary files) that no manifest lists:
    leftovers of other settings and of a killed run; then the folders left empty. Returns the files in
    the split folders that prepare did not write (kept)."""
    wanted = {f for m in manifests.values() for f in m["file"]}
    foreign = []
    for folder in owned_folders():
        for path in sorted((out / folder).rglob("*")) if (out / folder).is_dir() else []:
            if not path.is_file() or path.relative_to(out).as_posix() in wanted:
                continue
            if _is_ours(out, path, written):
                path.unlink()
            else:
                foreign.append(path.relative_to(out).as_posix())
        for directory in sorted((out / folder).rglob("*"), reverse=True) if (out / folder).is_dir() else []:
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()
        if (out / folder).is_dir() and not any((out / folder).iterdir()):
            shutil.rmtree(out / folder)
        if folder not in manifests:  # the manifest of a split these settings no longer make
            (out / f"{folder}.csv").unlink(missing_ok=True)
    return foreign
