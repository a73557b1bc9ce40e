"""Images on disk: output names, provenance (what each output was made from), parallel writing."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import threading
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from tqdm import tqdm

from affect_keras.atomic import write_text
from affect_keras.data.faces import Framing, prepare_detected
from affect_keras.data.images import ImageError, prepare_image, read_bytes
from affect_keras.data.prepare.cleanup import PROVENANCE
from affect_keras.data.prepare.config import PrepareConfig
from affect_keras.data.records import Record, Skipped
from affect_keras.data.prepare.splits import Item


def name_files(items: list[Item]) -> None:
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


def origin_of(record: Record) -> list | None:
    try:
        stat = record.path.stat()
    except OSError:  # missing: skipped when it is read
        return None
    return [record.rel, stat.st_size, stat.st_mtime_ns, list(record.box) if record.box else None]


def forget_stale_images(out: Path, items: list[Item]) -> None:
    """Delete outputs that were made from another source file, or from an older version of theirs, then
    record what every planned output is made from. Reuse then only needs the output to exist: it is
    either an earlier output of the same source, or written by this run (also after a kill)."""
    path = out / PROVENANCE
    earlier = json.loads(path.read_text()) if path.is_file() else {}
    planned = {item.file: origin_of(item.record) for item in items}
    for file, origin in planned.items():
        if (origin is None or earlier.get(file) != origin) and (out / file).is_file():
            (out / file).unlink()
    write_text(path, json.dumps(planned))


def _context():
    """How workers start: from a small server process (forkserver), not forked from this one. A process that
    has run TensorFlow (a notebook that trained, then prepares) cannot be forked safely: a worker's garbage
    collector freeing an inherited TensorFlow function crashed it (seen in the test suite). Where there is
    no forkserver (Windows), Python's spawn, which is as clean."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _worker_start() -> None:
    """Workers leave Ctrl-C to the main process, which stops them all and says how to resume; and a worker
    ends when the main process is gone (killed by the memory killer, say: the pool's queue then never
    closes, and a worker would wait on it for good)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="parent-watch").start()


def _exit_with(parent) -> None:
    parent.join()  # returns when the parent process ends (on every platform: it waits on its sentinel)
    os._exit(1)


def _work(task):
    index, source, destination, box, margin, size, finding, reduced = task
    try:
        data = read_bytes(source)  # the wait on a slow disk: several are in flight per worker (--io-threads)
        if finding is None:
            prepare_image(data, destination, box, margin, size, reduced)
        else:
            prepare_detected(data, destination, size, *finding)
        return index, None
    except ImageError as error:
        return index, str(error)


def _work_chunk(job):
    """One worker's share: its tasks on `threads` threads, so that reads overlap each other and decoding
    (PIL releases Python's lock while it decodes)."""
    tasks, threads = job
    if threads == 1:
        return [_work(task) for task in tasks]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(_work, tasks))


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel what is queued and end the workers at once, as multiprocessing.Pool.terminate did: a worker
    killed mid-image leaves a temporary file, which the next run removes."""
    processes = list(getattr(pool, "_processes", {}).values())  # (no public handle on them)
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    # the pool's manager thread closes its wake-up pipe as it ends; ended before the interpreter's exit hook
    # writes to that pipe, or Python 3.11 may race them and print "OSError: Bad file descriptor" at exit
    if manager is not None:
        manager.join(timeout=10)


CHUNK = 32  # tasks a worker takes at a time


class WorkerDied(RuntimeError):
    """A worker process ended without finishing its share; what the others finished is on disk."""


def process(items: list[Item], config: PrepareConfig, out: Path, skipped: list, counter: Counter) -> list[Item]:
    """Write the images of `items` (in parallel); return the items that succeeded."""
    tasks, done = [], []
    finding = (
        None
        if not config.detect
        else (config.detector, Framing(config.crop, config.margin, config.align), config.no_face == "whole")
    )
    for index, item in enumerate(items):
        if (out / item.file).is_file():  # made earlier from the same source with the same settings
            counter["reused"] += 1
            done.append(index)
        else:
            r = item.record
            tasks.append(
                (index, r.path, out / item.file, r.box, config.margin, config.size, finding, config.reduced_decode)
            )
    workers = min(config.worker_count(), max(1, len(tasks)))
    jobs = [(tasks[k : k + CHUNK], config.io_threads) for k in range(0, len(tasks), CHUNK)]
    results = []
    with tqdm(total=len(tasks), unit="img", desc=f"{items[0].split if items else ''}", disable=None) as bar:
        if workers > 1:
            # concurrent.futures notices a worker that dies (the kernel's memory killer, a kill): the pool
            # breaks and the run stops saying so, where multiprocessing.Pool would wait for it forever
            pool = ProcessPoolExecutor(workers, mp_context=_context(), initializer=_worker_start)
            try:
                for future in as_completed([pool.submit(_work_chunk, job) for job in jobs]):
                    results += future.result()
                    bar.update(len(future.result()))
            except BrokenProcessPool:
                _stop(pool)
                raise WorkerDied(
                    f"a preparation worker died (killed, perhaps for memory: --workers {workers} at "
                    f"--size {config.size}); the {len(results)} images finished are kept: run the "
                    f"same command to continue"
                ) from None
            except BaseException:  # Ctrl-C: stop now, not after every queued image (writes are atomic)
                _stop(pool)
                raise
            pool.shutdown()
        else:
            for job in jobs:
                results += _work_chunk(job)
                bar.update(len(job[0]))
    for index, reason in results:
        if reason is None:
            counter["written"] += 1
            done.append(index)
        else:
            skipped.append(Skipped(items[index].record.rel, reason, items[index].record.split))
    return [items[i] for i in sorted(done)]
