"""A fingerprint of a prepared split's pixels and labels, cheap enough to take at every run start.

The split's manifest (`<split>.csv`) names files and labels but not pixels: preparing the same folder again
with another `--margin` or `--size` writes other pixels under the same names. So the fingerprint also
covers what prepare records of how each image was made (`prepare_config.yaml`, less the settings that
change no pixel, and `provenance.json`: each output's source file, its size and time, its box), and the
size and modification time of each image (a file replaced after prepare wrote it).
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import pandas as pd
import yaml

NO_PIXEL_SETTINGS = ("out", "workers")  # prepare settings that change no image


def split_fingerprint(root: Path, split: str) -> str:
    """sha256 (20 hex digits) of `split`'s manifest and of how its images were made."""
    root = Path(root)
    digest = hashlib.sha256()
    digest.update((root / f"{split}.csv").read_bytes())
    config, provenance = root / "prepare_config.yaml", root / "provenance.json"
    if config.is_file() and provenance.is_file():
        digest.update(_how_made(*(file_version(p) for p in (config, provenance))).encode())
    # and each image's version: a file replaced after prepare (by hand, by another program) has another size
    # or time of change, whatever prepare's records say
    for name in pd.read_csv(root / f"{split}.csv", usecols=["file"])["file"]:
        path = Path(name) if os.path.isabs(name) else root / name
        try:
            stat = path.stat()
            digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        except OSError:
            digest.update(f"{name}:missing;".encode())
    return digest.hexdigest()[:20]


def file_version(path: Path) -> tuple[str, int, int]:
    """(path, size, modification time): a file's version, as cheap keys of work done on it once."""
    stat = path.stat()
    return str(path), stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=16)
def _how_made(config: tuple, provenance: tuple) -> str:
    """The digest of prepare's record, computed once per version of the two files (a run start takes
    several splits' fingerprints, and AffectNet's provenance.json is tens of MB)."""
    settings = yaml.safe_load(Path(config[0]).read_text()) or {}
    digest = hashlib.sha256(
        repr(sorted((k, repr(v)) for k, v in settings.items() if k not in NO_PIXEL_SETTINGS)).encode()
    )
    digest.update(Path(provenance[0]).read_bytes())
    return digest.hexdigest()


def data_fingerprint(root: Path, splits=("train", "val")) -> dict[str, str]:
    return {split: split_fingerprint(root, split) for split in splits if (Path(root) / f"{split}.csv").is_file()}
