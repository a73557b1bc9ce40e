"""Which split each record goes to: the source's own, stratified or grouped carving, k-fold."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from affect_keras.data.prepare.config import PrepareConfig
from affect_keras.data.records import Record, Skipped
from affect_keras.labels import AFFECTNET_CODES, LabelScheme
from affect_keras.options import OptionError


@dataclass
class Item:
    """A record on its way to a file: where it goes and under which class."""

    record: Record
    split: str
    label: str
    file: str = ""  # relative to out
    group: str = ""  # subject, from --group-pattern


def assign(items: Iterable[Record | Skipped], scheme: LabelScheme, config: PrepareConfig):
    """Keep the records the scheme has a class for and give each its output split."""
    records, skipped = [], []
    for item in items:
        if isinstance(item, Skipped):
            skipped.append(item)
            continue
        label = scheme.class_of(item.code)
        if label is None:
            skipped.append(
                Skipped(item.rel, f"label outside {scheme.name}: {item.code} {AFFECTNET_CODES[item.code]}", item.split)
            )
        else:
            records.append(Item(item, item.split, label))
    if config.group_pattern:
        records, unmatched = with_groups(records, config.group_pattern)
        skipped += unmatched
    present = {i.split for i in records}
    train = [i for i in records if i.split == "train"]
    if config.folds:
        if "test" in present:
            raise OptionError("folds", ": the source has its own test split; cross-validation needs one pool")
        for item in fold_of(train, config.folds, config.fold, config.seed):
            item.split = "test"
        train = [i for i in train if i.split == "train"]
    carve = {
        "val": config.val_fraction if "val" not in present else 0.0,
        "test": config.test_fraction if "test" not in present and not config.folds else 0.0,
    }
    for split, fraction in carve.items():
        take = group_take if config.group_pattern else stratified_take
        for item in take(train, fraction, config.seed, key=lambda i: i.label):
            item.split = split
        train = [i for i in train if i.split == "train"]
    return records, skipped


def with_groups(records: list[Item], pattern: str) -> tuple[list[Item], list[Skipped]]:
    """Each record's group (subject): the first group of `pattern` (else its whole match) in the file name."""
    regex, kept, skipped = re.compile(pattern), [], []
    for item in records:
        match = regex.search(Path(item.record.rel).name)
        if match is None:
            skipped.append(Skipped(item.record.rel, "file name does not match --group-pattern", item.split))
            continue
        item.group = match.group(1) if regex.groups else match.group(0)
        kept.append(item)
    if records and not kept:
        example = Path(records[0].record.rel).name
        raise OptionError("group_pattern", f"{pattern!r} matches no file name (e.g. {example})")
    return kept, skipped


def group_take(items: list, fraction: float, seed: int, key) -> list:
    """About `fraction` of the items, whole groups only (sklearn's GroupShuffleSplit)."""
    from sklearn.model_selection import GroupShuffleSplit

    groups = [i.group for i in items]
    if fraction <= 0 or len(set(groups)) < 2:
        return []
    split = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    _, taken = next(split.split(items, groups=groups))
    return [items[k] for k in sorted(taken)]


def fold_of(items: list, folds: int, fold: int, seed: int) -> list:
    """Fold `fold` of a stratified k-fold split, grouped when items have groups (StratifiedGroupKFold)."""
    from sklearn.model_selection import StratifiedGroupKFold

    groups = [i.group or i.record.rel for i in items]
    if len(set(groups)) < folds:
        raise OptionError("folds", f"{folds}: only {len(set(groups))} groups to divide")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    _, chosen = list(splitter.split(items, [i.label for i in items], groups))[fold]
    return [items[k] for k in sorted(chosen)]


def stratified_take(items: list, fraction: float, seed: int, key) -> list:
    """A random `fraction` of each class (rounded, at least one where the class has two or more).

    Written per class rather than with sklearn's train_test_split, which refuses classes of one item,
    and AffectNet-7 subsets or user folders can have those.
    """
    if fraction <= 0:
        return []
    rng = np.random.default_rng(seed)
    by_class = defaultdict(list)
    for item in items:
        by_class[key(item)].append(item)
    taken = []
    for label in sorted(by_class):
        members = by_class[label]
        n = round(len(members) * fraction)
        n = max(n, 1) if len(members) >= 2 else 0
        taken += [members[k] for k in sorted(rng.permutation(len(members))[:n])]
    return taken
