"""A folder of photos: every image's faces into a CSV written as it goes (whole or not at all), the
annotated copies, and the count of each outcome."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from affect_keras.atomic import RowsFile
from affect_keras.data.images import ImageError, load_rgb, printable_name, readable_suffixes
from affect_keras.deploy.analyse import OUTCOMES, Analyser
from affect_keras.deploy.drawing import annotate, save_annotated
from affect_keras.deploy.rows import csv_fields, csv_rows


def image_files(folder: Path) -> list[Path]:
    """The images in `folder` and its subfolders, sorted (by suffix: `data.images.readable_suffixes`)."""
    suffixes = readable_suffixes()
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def passed_over(folder: Path, files: list[Path]) -> Counter:
    """{suffix: count} of the other files in `folder` and its subfolders (hidden ones aside), which
    `image_files` does not take: said, never silently left."""
    taken = set(files)
    return Counter(
        p.suffix.lower() or "no suffix"
        for p in folder.rglob("*")
        if p.is_file() and p not in taken and not p.name.startswith(".")
    )


@dataclass
class FolderRun:
    """What `analyse_folder` did: images done (read or not), faces found, each outcome's count, the
    unreadable files' names, and whether Ctrl-C cut it short (the CSV then holds the images done)."""

    done: int = 0
    faces: int = 0
    outcomes: Counter = field(default_factory=Counter)
    unreadable: list[str] = field(default_factory=list)
    interrupted: bool = False


def analyse_folder(
    folder: Path, files: list[Path], analyser: Analyser, csv: Path, annotate_to: Path | None = None
) -> FolderRun:
    """Every image of `files` (in `folder`): its rows written to `csv` as they come (a `RowsFile`: it replaces
    `csv` at the end, also after Ctrl-C, with the images done; any other failure leaves `csv` as it was),
    and with `annotate_to` an annotated copy at the image's place under it."""
    names = analyser.predictor.class_names
    run = FolderRun()
    with RowsFile(csv, csv_fields(names, analyser.predictor.heads, outcome=True)) as out:
        try:
            for path in tqdm(files, desc="images", unit="image"):
                name = printable_name(path.relative_to(folder))
                try:
                    rgb = np.asarray(load_rgb(path))
                    found, outcome = analyser.analyse(rgb)
                    said = outcome
                except ImageError as error:
                    rgb, found, outcome = None, [], OUTCOMES["unreadable"]
                    said = f"{outcome}: {error}"
                    run.unreadable.append(name)
                run.outcomes[outcome] += 1
                run.faces += len(found)
                out.write(csv_rows(name, found, names, outcome=said))
                if annotate_to and rgb is not None:
                    target = annotate_to / path.relative_to(folder)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    save_annotated(annotate(rgb, found, names), target)
                run.done += 1
        except KeyboardInterrupt:  # the CSV keeps the images done
            run.interrupted = True
    return run
