"""The files that describe a prepared dataset: per-split manifests, and the summary of a preparation."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pandas as pd

from affect_keras.data.prepare.splits import Item
from affect_keras.labels import LabelScheme


def manifest_of(items: list[Item], scheme: LabelScheme) -> pd.DataFrame:
    rows = []
    for item in items:
        r = item.record
        row = {
            "file": item.file,
            "label": item.label,
            "label_index": scheme.index_of(item.label),
            "code": r.code,
            "valence": r.valence,
            "arousal": r.arousal,
            "source": r.rel,
        }
        if r.votes is not None:
            for name in scheme.class_names:
                row[f"vote_{name}"] = 0
            for code, count in r.votes.items():  # votes per code, as the source handed them over: each
                label = scheme.class_of(code)  # counts for its class under the scheme, or for none
                if label is not None:
                    row[f"vote_{label}"] += count
        rows.append(row)
    columns = ["file", "label", "label_index", "code", "valence", "arousal", "source"]
    return pd.DataFrame(rows, columns=columns + [c for c in (rows[0] if rows else {}) if c not in columns])


def class_counts(manifest: pd.DataFrame, scheme: LabelScheme) -> dict[str, int]:
    counts = manifest["label"].value_counts()
    return {name: int(counts.get(name, 0)) for name in scheme.class_names}


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
        return {
            "class_names": list(self.class_names),
            "counts": self.counts,
            "skipped": dict(self.skipped.most_common()),
            "notes": dict(self.notes),
            "images_written": self.written,
            "images_reused": self.reused,
            "seconds": round(self.seconds, 2),
            "images_per_second": round(self.images_per_second, 1),
        }

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
        lines.append(
            f"{self.written} images written, {self.reused} reused, in {self.seconds:.1f} s "
            f"({self.images_per_second:.0f} images/s)"
        )
        return "\n".join(lines)
