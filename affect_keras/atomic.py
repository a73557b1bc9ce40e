"""Files written whole or not at all (small state files, models, CSVs written row by row), so a process killed
mid-write leaves the previous file; folder locks; refusing to replace what another program wrote."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from affect_keras.options import OptionError


def write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def partial_path(path: Path) -> Path:
    """Where this process writes a model file before it replaces `path` (keras wants the name to end in
    .keras): a name of its own, so that two processes writing the same file (train.py ending, calibrate.py
    on the same run) never write into one temporary file. Those left by a killed process are removed."""
    path = Path(path)
    remove_stale(path.parent, f".{path.name}.", f".partial{path.suffix}")
    return path.with_name(f".{path.name}.{os.getpid()}.partial{path.suffix}")


def remove_stale(folder: Path, prefix: str, suffix: str = "") -> None:
    """Remove what killed processes left in `folder` under a temporary name, `prefix` + the process id +
    `suffix` (a file or a folder), where that process has ended."""
    import glob
    import shutil

    for stale in Path(folder).glob(f"{glob.escape(prefix)}*{glob.escape(suffix)}"):
        pid = stale.name[len(prefix) : len(stale.name) - len(suffix)]
        if pid.isdigit() and int(pid) != os.getpid() and not running(int(pid)):
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)


def write_model(model, path: Path) -> None:
    """`model.save(path)`, whole or not at all: a process killed while saving leaves the previous file."""
    partial = partial_path(path)
    model.save(partial)
    os.replace(partial, path)


LOCK, OWNER = ".lock", ".lock.owner"  # the lock file (filelock's), and the process that holds it
_held = {}  # folder -> its held lock, in this process (a lock lasts as long as it is held)


def lock_folder(folder: Path, option: str) -> None:
    """Hold an exclusive lock on `folder` until this process ends (`filelock`: on Windows too); a second
    process gets an OptionError naming `option` (the setting that named the folder) and the process that
    holds it."""
    from filelock import FileLock, Timeout

    folder = Path(folder)
    if folder.resolve() in _held:  # this process holds it already (a second run in the same process)
        return
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / LOCK)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = first_line(folder / OWNER) or "another process"
        raise OptionError(
            option, f"{folder} is in use by process {holder}; wait for it to finish, or choose another folder"
        ) from None
    write_text(folder / OWNER, str(os.getpid()))
    _held[folder.resolve()] = lock


def refuse_foreign_folder(folder: Path, marker: str, option: str, writer: str) -> None:
    """OptionError naming `option` when `folder` holds files but not `marker`, the file `writer` leaves in
    every folder it writes: the files are someone else's, and writing there could replace them."""
    folder = Path(folder)
    if (
        folder.is_dir()
        and any(p.name not in (LOCK, OWNER) for p in folder.iterdir())
        and not (folder / marker).is_file()
    ):
        raise OptionError(
            option,
            f"{folder} is not empty and was not written by {writer} (it has no {marker}); "
            f"nothing was changed: choose a new or empty folder",
        )


def writable_folder(folder: Path, option: str) -> Path:
    """Make `folder` (and its parents) and check that a file can be written in it, before any long work:
    OptionError naming `option` when it is a file, read-only or cannot be made."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OptionError(option, f"{folder} is a file; give a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise OptionError(
            option, f"{folder} cannot be written ({error.strerror or error}); choose a writable folder"
        ) from None
    return folder


def writable_file(path: Path, option: str) -> Path:
    """`writable_folder` for the folder a file `path` goes into (which must exist), before any long work."""
    path = Path(path)
    if not path.resolve().parent.is_dir():
        raise OptionError(option, f"{path}: the folder {path.parent} does not exist")
    if path.exists() and not os.access(path, os.W_OK):
        raise OptionError(option, f"{path} is read-only; choose another file")
    writable_folder(path.resolve().parent, option)
    return path


def first_line(path: Path) -> str:
    """The first line of a text file ("" for an empty or unreadable one)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            return stream.readline().strip()
    except OSError:
        return ""


def refuse_foreign_file(path: Path, ours, option: str, writer: str) -> None:
    """OptionError naming `option` when `path` exists, holds something, and `ours(path)` does not recognise
    it as what `writer` writes: replacing it would lose a file that is not the toolkit's."""
    path = Path(path)
    if path.is_dir():
        raise OptionError(option, f"{path} is a folder; give a file name")
    if path.is_file() and path.stat().st_size > 0 and not ours(path):
        raise OptionError(
            option,
            f"{path} exists and was not written by {writer}; nothing was changed: choose "
            f"another file name, or move that file away",
        )


def running(pid: int) -> bool:
    """Whether process `pid` runs (signal 0 probes it on POSIX; on Windows os.kill would end it: assumed)."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process, or a system without signal 0: leave its file alone
        return True
    return True


class RowsFile:
    """A CSV written row by row into a temporary file beside `path`, which replaces `path` only when
    `close` is called (a `with` block: when it ends without an error): a crash or a kill midway leaves
    `path` as it was (and no half-written file)."""

    def __init__(self, path: Path, fields: list[str] | None = None):
        self.path = Path(path)
        remove_stale(self.path.parent, f".{self.path.name}.", ".partial")  # of a predict that was killed
        self.partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial")
        self.stream = open(self.partial, "w", newline="", encoding="utf-8")
        self.writer, self.fields, self.rows = None, fields, 0

    def write(self, rows: list[dict]) -> None:
        if self.writer is None:
            self.fields = self.fields or list(dict.fromkeys(key for row in rows for key in row))
            self.writer = csv.DictWriter(self.stream, fieldnames=self.fields, restval="", extrasaction="raise")
            self.writer.writeheader()
        self.writer.writerows(rows)
        self.rows += len(rows)
        self.stream.flush()

    def close(self) -> None:
        if self.writer is None:
            self.write([])
        self.stream.close()
        os.replace(self.partial, self.path)

    def discard(self) -> None:
        self.stream.close()
        self.partial.unlink(missing_ok=True)

    def __enter__(self) -> "RowsFile":
        return self

    def __exit__(self, error, *_) -> None:
        self.discard() if error else self.close()


def write_csv(path: Path, rows: list[dict]) -> None:
    """The rows as a CSV at `path`, written whole or not at all (`RowsFile`)."""
    with RowsFile(path) as out:
        out.write(rows)
