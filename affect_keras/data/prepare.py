"""Records -> class folders ready for `keras.utils.image_dataset_from_directory`.

Writes, under `out`::

    {train,val,test}/<Class>/*.jpg       cropped, resized faces
    {train,val,test}.csv                 manifests: file, label, label_index, code, valence, arousal,
                                         source, and vote_<Class> columns where the source has votes
    {val,test}_balanced/ + .csv          with --balance-eval N: N per class (hard links)
    summary.json, skipped.csv            per-class counts per split; every skipped item with its reason
    prepare_config.yaml                  the resolved settings, re-runnable with --config

A re-run with the same settings reuses finished images made from the same source files (provenance.json)
and removes nothing it still needs; a run killed
half way leaves only complete images (atomic writes), so the same command resumes it.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from multiprocessing import Pool
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import yaml
from tqdm import tqdm

from affect_keras.atomic import write_text
from affect_keras.data.images import ImageError, prepare_image
from affect_keras.data.records import Record, Skipped
from affect_keras.data.sources import affectnet, ferplus, folders, sample
from affect_keras.labels import AFFECTNET_CODES, LabelScheme, get_scheme
from affect_keras.options import check

SPLITS = ("train", "val", "test")
SAMPLINGS = ("none", "down", "up")
CONFIG_FILE = "prepare_config.yaml"
PROVENANCE = "provenance.json"  # output file -> [source, size, mtime_ns, box]: what each image was made from
SAMPLE_DIR = "affectnet_sample"


@dataclass
class PrepareConfig:
    """Settings of one preparation; the CLI builds it, `prepare()` runs it.

    `root` may be None for the sample, which is then generated inside `out`.
    """

    source: str
    out: Path
    root: Path | None = None
    labels: str = "affectnet8"
    size: int = 256
    margin: float = 0.0
    val_fraction: float = 0.1
    test_fraction: float = 0.0
    seed: int = 0
    balance_eval: int = 0
    train_sampling: str = "none"
    sampling_target: int = 0
    class_map: dict[str, str] = field(default_factory=dict)
    group_pattern: str = ""
    folds: int = 0
    fold: int = 0
    count: int = 1000
    workers: int = 0

    def validate(self) -> None:
        """ValueError naming the option, for every value out of its range."""
        checks = [
            (self.source in SOURCES, "source", f"must be one of {', '.join(SOURCES)}"),
            (self.size >= 8, "size", "must be at least 8 pixels"),
            (0 <= self.margin <= 1, "margin", "must be in [0, 1]"),
            (0 <= self.val_fraction < 1, "val-fraction", "must be in [0, 1)"),
            (0 <= self.test_fraction < 1, "test-fraction", "must be in [0, 1)"),
            (self.val_fraction + self.test_fraction < 1, "test-fraction", "val + test fractions must be < 1"),
            (self.balance_eval >= 0, "balance-eval", "must be >= 0"),
            (self.train_sampling in SAMPLINGS, "train-sampling", f"must be one of {', '.join(SAMPLINGS)}"),
            (self.sampling_target >= 0, "sampling-target", "must be >= 0"),
            (self.count >= 1, "count", "must be >= 1"),
            (self.workers >= 0, "workers", "must be >= 0"),
            (self.folds == 0 or self.folds >= 2, "folds", "must be 0 (no cross-validation) or >= 2"),
            (self.folds == 0 or 0 <= self.fold < self.folds, "fold", f"must be in 0..{self.folds - 1}"),
            (_compiles(self.group_pattern), "group-pattern", "is not a valid regular expression"),
            (self.root is not None or self.source == "sample", "root", f"is required for --source {self.source}"),
        ]
        check(checks)
        get_scheme(self.labels)
        if self.root is not None and self.source != "sample":
            root, out = Path(self.root).resolve(), Path(self.out).resolve()
            if not root.is_dir():
                raise ValueError(f"--root {self.root} is not a directory")
            if root.is_relative_to(out) or out.is_relative_to(root):
                raise ValueError(f"--out {self.out} must lie outside --root {self.root} (and not contain it)")

    def to_dict(self) -> dict:
        values = asdict(self)
        values["out"], values["root"] = str(self.out), None if self.root is None else str(self.root)
        return values


@dataclass
class Summary:
    class_names: tuple[str, ...]
    counts: dict[str, dict[str, int]]
    skipped: Counter
    notes: Counter
    written: int
    reused: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def table(self) -> pd.DataFrame:
        table = pd.DataFrame(self.counts).reindex(list(self.class_names)).fillna(0).astype(int)
        table.loc["total"] = table.sum()
        return table

    def to_dict(self) -> dict:
        return {"class_names": list(self.class_names), "counts": self.counts,
                "skipped": dict(self.skipped.most_common()), "notes": dict(self.notes),
                "images_written": self.written, "images_reused": self.reused,
                "seconds": round(self.seconds, 2), "images_per_second": round(self.images_per_second, 1)}

    def report(self) -> str:
        lines = ["Images per class and split:", self.table().to_string(), ""]
        if self.skipped:
            lines.append(f"Skipped {sum(self.skipped.values())} items (each listed in skipped.csv):")
            lines += [f"  {n:7d}  {reason}" for reason, n in self.skipped.most_common()]
        else:
            lines.append("Skipped nothing.")
        if self.notes:
            lines.append("Notes:")
            lines += [f"  {note}: {n}" for note, n in self.notes.items()]
        lines.append(f"{self.written} images written, {self.reused} reused, in {self.seconds:.1f} s "
                     f"({self.images_per_second:.0f} images/s)")
        return "\n".join(lines)


def _read_sample(root: Path, config: PrepareConfig) -> Iterable[Record | Skipped]:
    """The built-in sample: generated (once) in AffectNet's original layout, then read as AffectNet."""
    sample.generate(root, config.count, config.seed, workers=_workers(config))
    return affectnet.read_original(root)


# the source registry: --source name -> reader of (root, settings); adding a dataset is adding a reader
SOURCES = {
    "affectnet": lambda root, config: affectnet.read(root),
    "ferplus": lambda root, config: ferplus.read(root),
    "folders": lambda root, config: folders.read(root, config.class_map),
    "sample": _read_sample,
}


def read_source(config: PrepareConfig) -> Iterable[Record | Skipped]:
    root = Path(config.root) if config.root is not None else Path(config.out) / SAMPLE_DIR
    return SOURCES[config.source](root, config)


def _workers(config: PrepareConfig) -> int:
    return config.workers or os.cpu_count() or 1


@dataclass
class _Item:
    """A record on its way to a file: where it goes and under which class."""

    record: Record
    split: str
    label: str
    file: str = ""  # relative to out
    group: str = ""  # subject, from --group-pattern


def prepare(config: PrepareConfig) -> Summary:
    config.validate()
    out = Path(config.out)
    saved = out / CONFIG_FILE
    if out.is_dir() and any(out.iterdir()) and not saved.is_file():
        raise ValueError(f"--out {out} is not empty and was not written by prepare_dataset.py (it has no "
                         f"{CONFIG_FILE}); nothing was changed: choose a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    scheme = get_scheme(config.labels)
    if not (saved.is_file() and _same_images(yaml.safe_load(saved.read_text()), config.to_dict())):
        _clear(out)  # other settings made these images: none of them may be reused
    (out / "summary.json").unlink(missing_ok=True)  # written last: its presence means finished
    saved.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))

    items, skipped = _assign(read_source(config), scheme, config)
    _name_files(items)
    _forget_stale_images(out, items)
    rng = np.random.default_rng(config.seed)
    started = time.perf_counter()
    counter = Counter()
    kept: list[_Item] = []
    for split in SPLITS:
        split_items = [i for i in items if i.split == split]
        if split == "train" and config.train_sampling == "down":
            kept += _down_sample(split_items, config, out, rng, skipped, counter)
        else:
            kept += _process(split_items, config, out, skipped, counter)
    seconds = time.perf_counter() - started

    notes = Counter()
    manifests = {split: _manifest([i for i in kept if i.split == split], scheme) for split in SPLITS}
    if config.train_sampling == "up":
        manifests["train"] = _up_sample(manifests["train"], config, out, rng, notes)
    if config.train_sampling == "down":
        notes["training images left out by down-sampling"] = counter["left out"]
    if config.balance_eval:
        for split in ("val", "test"):
            manifests[f"{split}_balanced"] = _balanced_copy(manifests[split], split, config, out, rng, notes)
    missing_affect = sum(1 for i in kept if math.isnan(i.record.valence))
    if missing_affect and config.source in ("affectnet", "sample"):
        notes["kept with valence/arousal not applicable (-2) or missing"] = missing_affect

    for name, manifest in manifests.items():
        manifest.to_csv(out / f"{name}.csv", index=False)
    _remove_stale(out, manifests)
    summary = Summary(scheme.class_names, {name: _class_counts(m, scheme) for name, m in manifests.items()},
                      Counter(s.reason for s in skipped), notes, counter["written"], counter["reused"], seconds)
    pd.DataFrame([asdict(s) for s in skipped], columns=["rel", "reason", "split"]).rename(
        columns={"rel": "source"}).to_csv(out / "skipped.csv", index=False)
    (out / "summary.json").write_text(json.dumps({**summary.to_dict(), "labels": scheme.name}, indent=2))
    return summary


def _same_images(old: dict, new: dict) -> bool:
    """Whether finished images of an earlier run can be reused: everything that shapes pixels, names
    or selection must match (the worker count does not)."""
    old, new = dict(old or {}), dict(new)
    old.pop("workers", None), new.pop("workers", None)
    return old == new


def _assign(items: Iterable[Record | Skipped], scheme: LabelScheme, config: PrepareConfig):
    """Keep the records the scheme has a class for and give each its output split."""
    records, skipped = [], []
    for item in items:
        if isinstance(item, Skipped):
            skipped.append(item)
            continue
        label = scheme.class_of(item.code)
        if label is None:
            skipped.append(Skipped(item.rel, f"label outside {scheme.name}: {item.code} "
                                             f"{AFFECTNET_CODES[item.code]}", item.split))
        else:
            records.append(_Item(item, item.split, label))
    if config.group_pattern:
        records, unmatched = _with_groups(records, config.group_pattern)
        skipped += unmatched
    present = {i.split for i in records}
    train = [i for i in records if i.split == "train"]
    if config.folds:
        if "test" in present:
            raise ValueError("--folds: the source has its own test split; cross-validation needs one pool")
        for item in _fold(train, config.folds, config.fold, config.seed):
            item.split = "test"
        train = [i for i in train if i.split == "train"]
    carve = {"val": config.val_fraction if "val" not in present else 0.0,
             "test": config.test_fraction if "test" not in present and not config.folds else 0.0}
    for split, fraction in carve.items():
        take = _group_take if config.group_pattern else stratified_take
        for item in take(train, fraction, config.seed, key=lambda i: i.label):
            item.split = split
        train = [i for i in train if i.split == "train"]
    return records, skipped


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
        return True
    except re.error:
        return False


def _with_groups(records: list[_Item], pattern: str) -> tuple[list[_Item], list[Skipped]]:
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
        raise ValueError(f"--group-pattern {pattern!r} matches no file name (e.g. {Path(records[0].record.rel).name})")
    return kept, skipped


def _group_take(items: list, fraction: float, seed: int, key) -> list:
    """About `fraction` of the items, whole groups only (sklearn's GroupShuffleSplit)."""
    from sklearn.model_selection import GroupShuffleSplit
    groups = [i.group for i in items]
    if fraction <= 0 or len(set(groups)) < 2:
        return []
    split = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    _, taken = next(split.split(items, groups=groups))
    return [items[k] for k in sorted(taken)]


def _fold(items: list, folds: int, fold: int, seed: int) -> list:
    """Fold `fold` of a stratified k-fold split, grouped when items have groups (StratifiedGroupKFold)."""
    from sklearn.model_selection import StratifiedGroupKFold
    groups = [i.group or i.record.rel for i in items]
    if len(set(groups)) < folds:
        raise ValueError(f"--folds {folds}: only {len(set(groups))} groups to divide")
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


def _name_files(items: list[_Item]) -> None:
    """Output names from the source path: readable, stable across runs, unique within a class folder."""
    used = set()
    for item in items:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(item.record.rel).with_suffix("").as_posix())
        name, k = f"{item.split}/{item.label}/{stem}.jpg", 1
        while name in used:
            k += 1
            name = f"{item.split}/{item.label}/{stem}_{k}.jpg"
        used.add(name)
        item.file = name


def _origin(record: Record) -> list | None:
    try:
        stat = record.path.stat()
    except OSError:  # missing: skipped when it is read
        return None
    return [record.rel, stat.st_size, stat.st_mtime_ns, list(record.box) if record.box else None]


def _forget_stale_images(out: Path, items: list[_Item]) -> None:
    """Delete outputs that were made from another source file, or from an older version of theirs, then
    record what every planned output is made from. Reuse then only needs the output to exist: it is
    either an earlier output of the same source, or written by this run (also after a kill)."""
    path = out / PROVENANCE
    earlier = json.loads(path.read_text()) if path.is_file() else {}
    planned = {item.file: _origin(item.record) for item in items}
    for file, origin in planned.items():
        if (origin is None or earlier.get(file) != origin) and (out / file).is_file():
            (out / file).unlink()
    write_text(path, json.dumps(planned))


def _ignore_interrupt() -> None:
    """Workers leave Ctrl-C to the main process, which stops them all and says how to resume."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _work(task):
    index, source, destination, box, margin, size = task
    try:
        prepare_image(source, destination, box, margin, size)
        return index, None
    except ImageError as error:
        return index, str(error)


def _process(items: list[_Item], config: PrepareConfig, out: Path, skipped: list,
             counter: Counter) -> list[_Item]:
    """Write the images of `items` (in parallel); return the items that succeeded."""
    tasks, done = [], []
    for index, item in enumerate(items):
        if (out / item.file).is_file():  # made earlier from the same source with the same settings
            counter["reused"] += 1
            done.append(index)
        else:
            r = item.record
            tasks.append((index, r.path, out / item.file, r.box, config.margin, config.size))
    workers = min(_workers(config), max(1, len(tasks)))
    progress = dict(total=len(tasks), unit="img", desc=f"{items[0].split if items else ''}", disable=None)
    if workers > 1:
        with Pool(workers, initializer=_ignore_interrupt) as pool:
            results = list(tqdm(pool.imap_unordered(_work, tasks, chunksize=16), **progress))
    else:
        results = [_work(t) for t in tqdm(tasks, **progress)]
    for index, reason in results:
        if reason is None:
            counter["written"] += 1
            done.append(index)
        else:
            skipped.append(Skipped(items[index].record.rel, reason, items[index].record.split))
    return [items[i] for i in sorted(done)]


def _down_sample(items, config, out, rng, skipped, counter) -> list[_Item]:
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
            batch, queue = queue[: target - len(ok)], queue[target - len(ok):]
            ok += _process(batch, config, out, skipped, counter)
        counter["left out"] += len(queue)
        kept += ok
    return kept


def _up_sample(manifest: pd.DataFrame, config, out: Path, rng, notes: Counter) -> pd.DataFrame:
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
            _link(out / rows.iloc[pick]["file"], out / row["file"])
            extra.append(row)
    notes["training images added by up-sampling (hard links)"] = len(extra)
    return pd.concat([manifest, pd.DataFrame(extra, columns=manifest.columns)], ignore_index=True)


def _balanced_copy(manifest: pd.DataFrame, split: str, config, out: Path, rng, notes: Counter):
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
        _link(out / source, out / target)
    return balanced.assign(file=files)


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:  # file systems without hard links (some network drives)
        shutil.copyfile(source, target)


def _manifest(items: list[_Item], scheme: LabelScheme) -> pd.DataFrame:
    rows = []
    for item in items:
        r = item.record
        row = {"file": item.file, "label": item.label, "label_index": scheme.index_of(item.label),
               "code": r.code, "valence": r.valence, "arousal": r.arousal, "source": r.rel}
        if r.votes is not None:
            for name in scheme.class_names:
                row[f"vote_{name}"] = 0
            for code, count in r.votes.items():  # votes per code, as the source handed them over: each
                label = scheme.class_of(code)       # counts for its class under the scheme, or for none
                if label is not None:
                    row[f"vote_{label}"] += count
        rows.append(row)
    columns = ["file", "label", "label_index", "code", "valence", "arousal", "source"]
    return pd.DataFrame(rows, columns=columns + [c for c in (rows[0] if rows else {}) if c not in columns])


def _class_counts(manifest: pd.DataFrame, scheme: LabelScheme) -> dict[str, int]:
    counts = manifest["label"].value_counts()
    return {name: int(counts.get(name, 0)) for name in scheme.class_names}


def _owned_folders() -> list[str]:
    return [*SPLITS, *(f"{s}_balanced" for s in ("val", "test"))]


def _clear(out: Path) -> None:
    for folder in _owned_folders():
        shutil.rmtree(out / folder, ignore_errors=True)


def _remove_stale(out: Path, manifests: dict[str, pd.DataFrame]) -> None:
    """Delete files in our split folders that no manifest lists: leftovers of other settings, and the
    temporary files of a killed run."""
    wanted = {f for m in manifests.values() for f in m["file"]}
    for folder in _owned_folders():
        for path in sorted((out / folder).rglob("*")) if (out / folder).is_dir() else []:
            if path.is_file() and path.relative_to(out).as_posix() not in wanted:
                path.unlink()
        if folder not in manifests and (out / folder).is_dir():
            shutil.rmtree(out / folder)
    for folder in (out / s for s in manifests):
        for directory in sorted(folder.rglob("*"), reverse=True) if folder.is_dir() else []:
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()
