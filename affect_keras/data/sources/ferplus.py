"""FER+ (Barsoum et al. 2016): FER2013 faces relabelled by ten taggers each.

Layout: ROOT/FER2013Train, FER2013Valid, FER2013Test, each holding the PNGs and a header-less
`label.csv` with rows `file name, "(x, y, w, h)", neutral, happiness, surprise, sadness, anger, disgust,
fear, contempt, unknown, NF` (vote counts).
"""

from __future__ import annotations

import csv
from pathlib import Path

from affect_keras.data.images import inside_root
from affect_keras.data.records import Record, Skipped, SourceItems

FOLDERS = {"train": "FER2013Train", "val": "FER2013Valid", "test": "FER2013Test"}
# label.csv vote columns as AffectNet codes; `unknown` and `NF` map to Uncertain (9) and NonFace (10).
VOTE_CODES = (0, 1, 3, 2, 6, 5, 4, 7, 9, 10)
EMOTION_CODES = frozenset(VOTE_CODES[:8])


def majority_code(votes: dict[int, int]) -> int | None:
    """The FER+ paper's majority rule: drop single (outlier) votes, then a class wins with more than
    half of the remaining votes. Returns its code (which may be Uncertain or NonFace), or None."""
    kept = {code: count for code, count in votes.items() if count > 1}
    total = sum(kept.values())
    if not total:
        return None
    code, count = max(kept.items(), key=lambda item: item[1])
    return code if count > 0.5 * total else None


def read(root: Path) -> SourceItems:
    found = [split for split, folder in FOLDERS.items() if (root / folder / "label.csv").is_file()]
    if not found:
        raise ValueError(f"{root} holds none of {', '.join(f + '/label.csv' for f in FOLDERS.values())}")
    for split in found:
        folder = FOLDERS[split]
        with open(root / folder / "label.csv", newline="", encoding="utf-8") as handle:
            for line, row in enumerate(csv.reader(handle), start=1):
                yield _item(root / folder, split, f"{folder}/label.csv:{line}", row)


def _item(folder: Path, split: str, where: str, row: list[str]):
    if len(row) != 2 + len(VOTE_CODES):
        return Skipped(where, f"malformed row ({len(row)} columns, expected {2 + len(VOTE_CODES)})", split)
    rel = f"{folder.name}/{row[0].strip()}"
    try:
        votes = dict(zip(VOTE_CODES, (int(v) for v in row[2:])))
        box = tuple(int(v) for v in row[1].strip(" ()").split(","))
    except ValueError as error:
        return Skipped(rel, f"malformed row ({error})", split)
    path = inside_root(folder, row[0].strip())
    if path is None:
        return Skipped(rel, "path outside the dataset root", split)
    code = majority_code(votes)
    if code is None:
        return Skipped(rel, "no majority label (FER+ rule)", split)
    if len(box) != 4:
        return Skipped(rel, "malformed row (face box needs 4 numbers)", split)
    return Record(path, rel, code, split, box, votes=votes)
