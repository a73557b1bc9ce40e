"""Small state files written whole or not at all, so a run killed mid-write can still be resumed."""

from __future__ import annotations

import os
from pathlib import Path


def write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


LOCK = ".lock"
_held = {}  # folder -> its open lock file, in this process (a lock lasts as long as its file stays open)


def lock_folder(folder: Path, what: str) -> None:
    """Hold an exclusive lock on `folder` until this process ends; a second process gets a ValueError naming
    the process that holds it (`what`: the flag that named the folder, for the message)."""
    import fcntl

    folder = Path(folder)
    if folder.resolve() in _held:  # this process holds it already (a second run in the same process)
        return
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / LOCK, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ValueError(f"{what} {folder} is in use by process {holder}; wait for it to finish, or choose "
                         f"another {what}") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    _held[folder.resolve()] = handle
