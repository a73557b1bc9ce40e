"""Sources: each reads a dataset's own layout and yields `Record`s (votes already mapped to AffectNet codes)
and `Skipped`s. Adding a dataset is one module here and one entry in `SOURCES`."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from affect_keras.data.records import Record, Skipped
from affect_keras.data.sources import affectnet, ferplus, folders, sample

SAMPLE_DIR = "affectnet_sample"  # where the sample is generated inside --out when no --root is given


def _read_sample(root: Path, config) -> Iterable[Record | Skipped]:
    """The built-in sample: generated (once) in AffectNet's original layout, then read as AffectNet."""
    sample.generate(root, config.count, config.seed, workers=config.worker_count())
    return affectnet.read_original(root)


# the source registry: --source name -> reader of (root, the preparation's settings)
SOURCES = {
    "affectnet": lambda root, config: affectnet.read(root),
    "ferplus": lambda root, config: ferplus.read(root),
    "folders": lambda root, config: folders.read(root, config.class_map),
    "sample": _read_sample,
}


def read_source(config) -> Iterable[Record | Skipped]:
    """The records of the source `config` (a PrepareConfig) names."""
    root = Path(config.root) if config.root is not None else Path(config.out) / SAMPLE_DIR
    return SOURCES[config.source](root, config)
