"""Records -> class folders ready for `keras.utils.image_dataset_from_directory`.

Writes, under `out`::

    {train,val,test}/<Class>/*.jpg       cropped, resized faces
    {train,val,test}.csv                 manifests: file, label, label_index, code, valence, arousal,
                                         source, and vote_<Class> columns where the source has votes
    {val,test}_balanced/ + .csv          with --balance-eval N: N per class (hard links)
    summary.json, skipped.csv            per-class counts per split; every skipped item with its reason
    prepare_config.yaml                  the resolved settings, re-runnable with --config

A re-run with the same settings reuses finished images made from the same source files (provenance.json)
and removes nothing it still needs; a run killed half way leaves only complete images (atomic writes), so
the same command resumes it.

One job per module: `config` (settings, checks, reuse), `splits` (which split each record goes to),
`writing` (names, provenance, parallel writing), `sampling` (down/up-sampling, balanced copies),
`manifests` (manifests, summary), `cleanup` (removing only what prepare wrote). The sources live in
`affect_keras.data.sources`; this module runs the steps in order.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from affect_keras.atomic import refuse_foreign_folder, writable_folder
from affect_keras.data.prepare.cleanup import PROVENANCE, SPLITS, clear, remove_stale, written_files
from affect_keras.data.prepare.config import CONFIG_FILE, SPLIT_SAMPLINGS, PrepareConfig, same_images
from affect_keras.data.prepare.manifests import Summary, class_counts, manifest_of
from affect_keras.data.prepare.sampling import balanced_copy, down_sample, up_sample
from affect_keras.data.prepare.splits import Item, assign, stratified_take
from affect_keras.data.prepare.writing import forget_stale_images, name_files, process
from affect_keras.data.sources import SOURCES, read_source
from affect_keras.labels import get_scheme

__all__ = [
    "CONFIG_FILE",
    "SPLIT_SAMPLINGS",
    "SOURCES",
    "SPLITS",
    "PrepareConfig",
    "Summary",
    "prepare",
    "stratified_take",
]


def prepare(config: PrepareConfig) -> Summary:
    """Write `config.out`: class folders of faces per split, a manifest per split, `summary.json`,
    `skipped.csv` and the settings (`prepare_config.yaml`). Resumable: the same call after a kill reuses
    the finished images. Returns the counts per class and split, and what was skipped and why.

    Examples:
        The synthetic sample, generated on the way:

        >>> import affect_keras
        >>> summary = affect_keras.prepare(affect_keras.PrepareConfig(source="sample", out="data/s32",
        ...                                                            count=200, size=32))
        >>> summary.class_names
        ('Neutral', 'Happy', 'Sad', 'Surprise', 'Fear', 'Disgust', 'Anger', 'Contempt')
        >>> {split: sum(counts.values()) for split, counts in summary.counts.items()}
        {'train': ..., 'val': ..., 'test': ...}
        >>> print(summary.report())  # doctest: +ELLIPSIS
        Images per class and split: ...
    """
    config.validate()
    out = Path(config.out)
    saved = out / CONFIG_FILE
    refuse_foreign_folder(out, CONFIG_FILE, "out", "prepare_dataset.py")
    writable_folder(out, "out")
    scheme = get_scheme(config.labels)
    record = yaml.safe_load(saved.read_text()) if saved.is_file() else None
    if isinstance(record, dict):
        config.recorded(record, out)
    written = written_files(out)  # what earlier runs wrote: the only files a run may remove
    if not (record is not None and same_images(record, config.to_dict())):
        clear(out, written)  # other settings made these images: none of them may be reused
    (out / "summary.json").unlink(missing_ok=True)  # written last: its presence means finished
    saved.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))

    items, skipped = assign(read_source(config), scheme, config)
    name_files(items)
    forget_stale_images(out, items)
    rng = np.random.default_rng(config.seed)
    started = time.perf_counter()
    counter = Counter()
    kept: list[Item] = []
    for split in SPLITS:
        split_items = [i for i in items if i.split == split]
        if split == "train" and config.train_sampling == "down":
            kept += down_sample(split_items, config, out, rng, skipped, counter)
        else:
            kept += process(split_items, config, out, skipped, counter)
    seconds = time.perf_counter() - started

    notes = Counter()
    manifests = {split: manifest_of([i for i in kept if i.split == split], scheme) for split in SPLITS}
    if config.train_sampling == "up":
        manifests["train"] = up_sample(manifests["train"], config, out, rng, notes)
    if config.train_sampling == "down":
        notes["training images left out by down-sampling"] = counter["left out"]
    if config.balance_eval:
        for split in ("val", "test"):
            manifests[f"{split}_balanced"] = balanced_copy(manifests[split], split, config, out, rng, notes)
    missing_affect = sum(1 for i in kept if math.isnan(i.record.valence))
    if missing_affect and config.source in ("affectnet", "sample"):
        notes["kept with valence/arousal not applicable (-2) or missing"] = missing_affect

    for name, manifest in manifests.items():
        manifest.to_csv(out / f"{name}.csv", index=False)
    foreign = remove_stale(out, manifests, written | set(json.loads((out / PROVENANCE).read_text())))
    if foreign:
        notes["files in the split folders not written by prepare (kept, in no manifest)"] = len(foreign)
    summary = Summary(
        scheme.class_names,
        {name: class_counts(m, scheme) for name, m in manifests.items()},
        Counter(s.reason for s in skipped),
        notes,
        counter["written"],
        counter["reused"],
        seconds,
    )
    pd.DataFrame([asdict(s) for s in skipped], columns=["rel", "reason", "split"]).rename(
        columns={"rel": "source"}
    ).to_csv(out / "skipped.csv", index=False)
    (out / "summary.json").write_text(json.dumps({**summary.to_dict(), "labels": scheme.name}, indent=2))
    return summary
