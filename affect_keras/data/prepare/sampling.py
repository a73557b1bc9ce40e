"""Class balance written to disk: down-sampled or up-sampled training, balanced evaluation copies."""

from __future__ import annotations

import os
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from affect_keras.data.prepare.splits import Item
from affect_keras.data.prepare.writing import process


def down_sample(items, config, out, rng, skipped, counter) -> list[Item]:
    """At most `target` training images per class (default: the smallest class).

    Candidates are taken in a seeded random order and only the chosen ones are written; a chosen image
    that turns out unreadable is replaced by the next candidate, so a class reaches the target exactly
    whenever it has enough readable images.
    """
    by_class = defaultdict(list)
    for item in items:
        by_class[item.label].append(item)
    target = config.sampling_target or min((len(v) for v in by_class.values()), default=0)
    kept = []
    for label in sorted(by_class):
        queue = [by_class[label][k] for k in rng.permutation(len(by_class[label]))]
        ok = []
        while queue and len(ok) < target:
            batch, queue = queue[: target - len(ok)], queue[target - len(ok) :]
            ok += process(batch, config, out, skipped, counter)
        counter["left out"] += len(queue)
        kept += ok
    return kept


def up_sample(manifest: pd.DataFrame, config, out: Path, rng, notes: Counter) -> pd.DataFrame:
    """At least `target` training images per class (default: the largest class), by repeating images as
    hard links named `<stem>__dup<k>.jpg`."""
    sizes = manifest["label"].value_counts()
    target = config.sampling_target or (int(sizes.max()) if len(sizes) else 0)
    extra = []
    for label, size in sizes.items():
        rows = manifest[manifest["label"] == label]
        picks = rng.choice(len(rows), size=max(0, target - size), replace=target - size > size)
        for k, pick in enumerate(sorted(picks)):
            row = rows.iloc[pick].copy()
            stem = Path(row["file"]).with_suffix("")
            row["file"] = f"{stem}__dup{k}.jpg"
            link(out / rows.iloc[pick]["file"], out / row["file"])
            extra.append(row)
    notes["training images added by up-sampling (hard links)"] = len(extra)
    return pd.concat([manifest, pd.DataFrame(extra, columns=manifest.columns)], ignore_index=True)


def balanced_copy(manifest: pd.DataFrame, split: str, config, out: Path, rng, notes: Counter):
    """`config.balance_eval` images per class of `split`, as hard links in `<split>_balanced/`."""
    n = config.balance_eval
    parts = []
    for label, rows in manifest.groupby("label", sort=True):
        if len(rows) < n:
            notes[f"{split}_balanced {label} images (fewer than {n} available)"] = len(rows)
        parts.append(rows.iloc[np.sort(rng.permutation(len(rows))[:n])])
    balanced = pd.concat(parts, ignore_index=True) if parts else manifest.iloc[:0].copy()
    files = balanced["file"].str.replace(f"{split}/", f"{split}_balanced/", n=1, regex=False)
    for source, target in zip(balanced["file"], files):
        link(out / source, out / target)
    return balanced.assign(file=files)


def link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:  # file systems without hard links (some network drives)
        shutil.copyfile(source, target)
