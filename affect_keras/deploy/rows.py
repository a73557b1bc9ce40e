"""The layout of the CSVs predict writes: a row per face (photos, folders, video frames), a row per track,
and how predict recognises a CSV of its own."""

from __future__ import annotations

import csv
from pathlib import Path

from affect_keras.tasks import EXPRESSION, VA

FACE_COLUMNS = ("face", "x", "y", "width", "height", "face_score", "status")  # a face's row: where, how sure
# the columns of the CSVs predict.py writes (faces, video faces, tracks), and the prefixes of its per-class ones
CSV_COLUMNS = {"file", "frame", "time_s", "track", "outcome", *FACE_COLUMNS, "expression", "confidence"}
CSV_COLUMNS |= {"raw_expression", "valence", "arousal", "smooth_valence", "smooth_arousal"}
TRACK_COLUMNS = ("track", "first_s", "last_s", "frames", "dominant")  # a track's row
CSV_COLUMNS |= set(TRACK_COLUMNS)
CSV_PREFIXES = ("p_", "smooth_", "share_")


def csv_by_predict(path: Path) -> bool:
    """Whether `path` is a CSV predict.py wrote: its whole header is predict's (file first, then every column
    of a face's row or of a track's row, and only predict's columns): a dataset's manifest, a user's table
    of ground truth (`file,expression`) or of boxes (`file,x,y,width,height`) is not."""
    try:
        with open(path, newline="", encoding="utf-8") as stream:
            header = next(csv.reader(stream), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return (
        len(header) > 1
        and header[0] == "file"
        and all(column in CSV_COLUMNS or column.startswith(CSV_PREFIXES) for column in header[1:])
        and any(set(layout) <= set(header) for layout in (FACE_COLUMNS[1:], TRACK_COLUMNS))  # (video rows: no `face`)
    )


def csv_fields(names: list[str], heads: tuple[str, ...], frame: bool = False, outcome: bool = False) -> list[str]:
    """The columns of predict's face CSV for a model with class `names` and `heads` (`csv_rows`' keys)."""
    return [
        "file",
        *(["frame"] if frame else []),
        *(["outcome"] if outcome else []),
        *FACE_COLUMNS,
        *(["expression", "confidence", *(f"p_{name}" for name in names)] if EXPRESSION in heads else []),
        *(["valence", "arousal"] if VA in heads else []),
    ]


def csv_rows(
    source: str, faces: list, names: list[str], frame: int | None = None, outcome: str | None = None
) -> list[dict]:
    """One row per face; with `outcome` (folders), a file without a face still gets a row saying why."""
    where = {
        "file": source,
        **({"frame": frame} if frame is not None else {}),
        **({"outcome": outcome} if outcome is not None else {}),
    }
    if not faces and outcome is not None:
        return [where]
    rows = []
    for n, face in enumerate(faces, start=1):
        row = {**where, **dict(zip(FACE_COLUMNS, (n, *face.box, round(face.score, 4), face.status)))}
        if face.probabilities is not None:
            best = int(face.probabilities.argmax())
            row |= {
                "expression": names[best] if face.answered else face.status,
                "confidence": round(float(face.probabilities[best]), 5),
            }
            row |= {f"p_{name}": round(float(p), 5) for name, p in zip(names, face.probabilities)}
        if face.va is not None:
            row |= {"valence": round(float(face.va[0]), 5), "arousal": round(float(face.va[1]), 5)}
        rows.append(row)
    return rows


def video_rows(source: str, tracked: list, names: list[str]) -> list[dict]:
    """One row per face of the analysed frames (`video.TrackedFace`s): the frame's columns (`csv_rows`: box,
    raw probabilities p_*), its time and track, the smoothed probabilities (smooth_*) and the expression they
    give (`expression`; the raw one in `raw_expression`)."""
    rows = []
    for face in tracked:
        (row,) = csv_rows(source, [face.face], names, face.frame)
        row = {
            "file": row.pop("file"),
            "frame": row.pop("frame"),
            "time_s": round(face.time_s, 4),
            "track": face.track,
            **row,
        }
        row.pop("face", None)
        if face.smoothed is not None:
            best = int(face.smoothed.argmax())
            row["raw_expression"] = row["expression"]
            row |= {
                "expression": face.label(names),
                "confidence": round(float(face.smoothed[best]), 5),
                "status": face.status,
            }
            row |= {f"smooth_{name}": round(float(p), 5) for name, p in zip(names, face.smoothed)}
        if face.smoothed_va is not None:
            row |= {
                "smooth_valence": round(float(face.smoothed_va[0]), 5),
                "smooth_arousal": round(float(face.smoothed_va[1]), 5),
            }
        rows.append(row)
    return rows


def track_rows(source: str, tracks: list[dict]) -> list[dict]:
    """One row per track (`VideoAnalysis.tracks`): times, analysed frames, the dominant expression and the
    share of each label."""
    labels = list(dict.fromkeys(label for t in tracks for label in t["shares"]))
    return [
        {
            "file": source,
            "track": t["track"],
            "first_s": t["first_s"],
            "last_s": t["last_s"],
            "frames": t["frames"],
            "dominant": t["dominant"] or "",
            **{f"share_{label}": t["shares"].get(label, 0.0) for label in labels},
        }
        for t in tracks
    ]
