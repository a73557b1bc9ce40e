"""An existing class-folder tree: ROOT/<class>/<image>, or ROOT/{train,val,test}/<class>/<image>.

Folder names are matched to expressions case-insensitively (`Happy`, `happiness`, `angry`, `3`, ...);
`class_map` renames folders first, e.g. {"joy": "Happy"} for a dataset with its own names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from affect_keras.data.images import IMAGE_SUFFIXES, inside_root, printable_name
from affect_keras.data.records import SOURCE_SPLITS, Record, Skipped, SourceItems
from affect_keras.labels import code_of_folder


def read(root: Path, class_map: Mapping[str, str] | None = None) -> SourceItems:
    split_dirs = {s: root / s for s in SOURCE_SPLITS if (root / s).is_dir()}
    if not split_dirs:
        split_dirs = {"train": root}
    class_map = class_map or {}
    for split, split_dir in split_dirs.items():
        # a hidden folder (.git, .thumbnails) is not a class, unless --class-map names it
        folders = sorted(d for d in split_dir.iterdir() if d.is_dir())
        class_dirs = [d for d in folders if not d.name.startswith(".") or d.name in class_map]
        for hidden in (d for d in folders if d not in class_dirs):
            yield Skipped(
                hidden.relative_to(root).as_posix(),
                "hidden folder, not read (--class-map NAME=CLASS reads it as a class)",
                split,
            )
        unknown = [d.name for d in class_dirs if code_of_folder(d.name, class_map) is None]
        if unknown:
            raise ValueError(
                f"class folders with no known expression in {split_dir}: {', '.join(unknown)}; "
                f"map them with --class-map"
            )
        if not class_dirs:
            raise ValueError(f"{split_dir} has no class folders")
        for class_dir in class_dirs:
            code = code_of_folder(class_dir.name, class_map)
            for path in sorted(class_dir.rglob("*")):
                rel = path.relative_to(root).as_posix()
                if path.is_dir() or path.name.startswith("."):
                    continue
                outside = inside_root(root, rel) is None
                rel = printable_name(rel)  # the name the manifests and records carry; `path` is what is read
                if outside:  # a symbolic link leading out of --root
                    yield Skipped(rel, "path outside the dataset root (symbolic link)", split)
                    continue
                if path.suffix.lower() not in IMAGE_SUFFIXES:
                    yield Skipped(rel, f"not an image file ({path.suffix or 'no extension'})", split)
                    continue
                yield Record(path, rel, code, split)
