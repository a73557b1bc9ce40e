"""The service's analysers: `threads` copies of the model loaded and warmed once, each with its own
detector, run on a thread pool of that size behind a bounded queue. A request that finds every thread busy
and the queue full is refused at once (`Busy`), never queued without bound; one that waits and works
longer than the timeout is given up (its work, already started, finishes and frees its place)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import math
import os
import queue
import threading
import time
from collections import OrderedDict
from typing import Callable

import numpy as np

from affect_keras.deploy.analyse import Analyser
from affect_keras.deploy.config import VideoConfig
from affect_keras.options import OptionError
from affect_keras.serve.config import ServeConfig

log = logging.getLogger(__name__)

SERVER_ONLY = ("model", "engine", "trust_saved_model")  # the settings a request cannot change
REQUEST_OPTIONS = tuple(f.name for f in dataclasses.fields(VideoConfig) if f.name not in SERVER_ONLY)
VARIANTS = 8  # other settings' analysers kept per thread (a detector each), the least used dropped


class Busy(RuntimeError):
    """Every thread busy and the queue full: try again after `retry_after` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"the server is busy; retry after {retry_after} s")
        self.retry_after = retry_after


class Worker:
    """One copy of the model with the server's settings, and the analysers of other settings on it."""

    def __init__(self, config: VideoConfig, threads: int):
        self.threads = threads
        self.analyser = Analyser.from_config(config, threads=threads)
        self.key = _key(config)
        self.variants: OrderedDict[tuple, Analyser] = OrderedDict()
        self.lock = threading.Lock()

    def for_settings(self, settings: VideoConfig) -> Analyser:
        """The analyser of `settings` on this worker's model (its detector built on first use)."""
        key = _key(settings)
        if key == self.key:
            return self.analyser
        with self.lock:
            if key in self.variants:
                self.variants.move_to_end(key)
                return self.variants[key]
        analyser = Analyser.from_config(settings, self.analyser.predictor, self.threads)
        with self.lock:
            self.variants[key] = analyser
            while len(self.variants) > VARIANTS:
                self.variants.popitem(last=False)
        return analyser

    def warm(self) -> None:
        """The first calls of the model and detector (their set-up) made before any request."""
        predictor = self.analyser.predictor
        predictor.outputs(np.zeros((1, predictor.image_size, predictor.image_size, 3), np.uint8))
        if self.analyser.detector is not None:
            self.analyser.detector(np.zeros((240, 320, 3), np.uint8))


def _key(settings: VideoConfig) -> tuple:
    return tuple(getattr(settings, name) for name in REQUEST_OPTIONS)


class Workers:
    """The loaded analysers behind the thread pool and its queue.

    Args:
        config: the server's settings (the analysis settings, threads, queue, timeout).
    """

    def __init__(self, config: ServeConfig):
        self.config = config
        started = time.perf_counter()
        # the cores shared out: two analyses at once on two cores run one thread each, not two each
        share = max(1, (os.cpu_count() or 1) // config.threads)
        self.workers = [Worker(config, share) for _ in range(config.threads)]
        for worker in self.workers:
            worker.warm()
        self.load_seconds = time.perf_counter() - started
        self.predictor = self.workers[0].analyser.predictor
        self._idle: queue.SimpleQueue[Worker] = queue.SimpleQueue()
        for worker in self.workers:
            self._idle.put(worker)
        self._pool = concurrent.futures.ThreadPoolExecutor(config.threads, thread_name_prefix="affect-serve")
        self._lock = threading.Lock()
        self.admitted = 0  # running and waiting (changed on the event loop only)
        self.running = 0
        self._seconds = 0.0  # a moving average of one work's seconds, for Retry-After
        log.info(
            "%d thread(s) ready with %s (%s), loaded and warmed in %.1f s",
            config.threads,
            self.predictor.path,
            self.predictor.kind,
            self.load_seconds,
        )

    @property
    def capacity(self) -> int:
        return self.config.threads + self.config.queue

    @property
    def waiting(self) -> int:
        return max(0, self.admitted - self.running)

    def settings(self, options: dict) -> VideoConfig:
        """The server's settings with a request's `options` ({name: value}) over them, each checked
        (`OptionError` naming the option)."""
        for name in options:
            if name in SERVER_ONLY:
                raise OptionError(name, "is the server's: start affect-serve with another --" + name.replace("_", "-"))
            if name not in REQUEST_OPTIONS:
                raise OptionError(name, f"is not an option here (options: {', '.join(REQUEST_OPTIONS)})")
        values = {f.name: getattr(self.config, f.name) for f in dataclasses.fields(VideoConfig)}
        return VideoConfig(**{**values, **options})

    def analyser(self, settings: VideoConfig) -> Analyser:
        """An analyser of `settings` for what only reads its settings (a track's gate, the class names)."""
        return self.workers[0].for_settings(settings)

    async def run(self, work: Callable[[Analyser], object], settings: VideoConfig):
        """`work(analyser of settings)` on a free thread; `Busy` when the queue is full, TimeoutError after
        the timeout."""
        if self.admitted >= self.capacity:
            raise Busy(self.retry_after())
        self.admitted += 1
        loop = asyncio.get_running_loop()
        future = self._pool.submit(self._work, work, settings)
        future.add_done_callback(lambda _: _call_soon(loop, self._release))
        return await asyncio.wait_for(asyncio.wrap_future(future), self.config.timeout)

    def retry_after(self) -> int:
        """Seconds until a place is likely free: the queue's work spread over the threads."""
        return max(1, math.ceil(self._seconds * self.capacity / self.config.threads))

    def _release(self) -> None:
        self.admitted -= 1

    def _work(self, work, settings):
        with self._lock:
            self.running += 1
        worker = self._idle.get()
        started = time.perf_counter()
        try:
            return work(worker.for_settings(settings))
        finally:
            self._idle.put(worker)
            with self._lock:
                self.running -= 1
                self._seconds = 0.8 * self._seconds + 0.2 * (time.perf_counter() - started)

    def close(self) -> None:
        """Wait for the work under way, then free the threads."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def _call_soon(loop: asyncio.AbstractEventLoop, callback) -> None:
    try:
        loop.call_soon_threadsafe(callback)
    except RuntimeError:  # the loop closed (the server stopped)
        pass
