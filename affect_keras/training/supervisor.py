"""A watcher for `--distribute multiworker`: the training runs in a child process, and this process,
which never loads TensorFlow, stays in charge of it.

Why a second process: while MultiWorkerMirroredStrategy waits for the other workers, TensorFlow blocks in
C++ holding Python's lock, so no Python timer or signal handler of the training process runs, and its
preemption handler takes SIGTERM for itself (the process went on waiting). From outside, the watcher:
- gives up when the cluster has not formed within `timeout` seconds, saying which workers of
  TF_CONFIG's cluster do not answer on their address, and ends the training;
- ends the training at Ctrl-C or SIGTERM, and exits with the signal's status (130, 143).
The child says that the cluster formed (its strategy was built) by creating the file named in `STARTED_ENV`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STARTED_ENV = "AFFECT_KERAS_STARTED_FILE"  # set in the child: where to say that the cluster formed
CHILD = "import sys; from affect_keras.cli.train import main; sys.exit(main(sys.argv[1:]))"


def supervised() -> bool:
    """Whether this process is the watched training (so it must not start a watcher of its own)."""
    return STARTED_ENV in os.environ


def started_file() -> Path | None:
    return Path(os.environ[STARTED_ENV]) if supervised() else None


def silent_peers(tf_config: dict, wait: float = 1.0) -> list[str]:
    """The addresses of the cluster's other tasks that refuse or do not answer a TCP connection."""
    task = tf_config["task"]
    silent = []
    for kind, addresses in tf_config["cluster"].items():
        for index, address in enumerate(addresses):
            if (kind, index) == (task["type"], task["index"]):
                continue
            host, _, port = address.rpartition(":")
            try:
                socket.create_connection((host.strip("[]"), int(port)), timeout=wait).close()
            except (OSError, ValueError):
                silent.append(f"{kind} {index} at {address}")
    return silent


def supervise(argv: list[str], tf_config: dict, timeout: float, poll: float = 0.2) -> int:
    """Run `train.py argv` as a watched child; its exit status, or 1 after the start timed out, or
    128 + the signal's number after Ctrl-C / SIGTERM."""
    received: list[int] = []
    previous = {s: signal.signal(s, lambda number, frame: received.append(number))
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with tempfile.TemporaryDirectory(prefix="affect-keras-") as folder:
            started = Path(folder) / "started"
            child = subprocess.Popen([sys.executable, "-c", CHILD, *argv],
                                     env={**os.environ, STARTED_ENV: str(started)})
            begin = time.monotonic()
            while child.poll() is None:
                if received:
                    _end(child)
                    name = signal.Signals(received[0]).name
                    print(f"train.py: stopped by {name}; the run directory keeps what finished, and the same "
                          f"command on every worker continues it", file=sys.stderr)
                    return 128 + received[0]
                if not started.exists() and time.monotonic() - begin > timeout:
                    silent = silent_peers(tf_config)
                    _end(child)
                    print(f"train.py: error: --distribute multiworker: the cluster did not form within "
                          f"{timeout:g} s (--worker-timeout): "
                          + (f"no answer from {', '.join(silent)}" if silent else
                             "every worker's address answers, but the cluster did not form")
                          + "; start the same command on every worker of TF_CONFIG, or check its addresses",
                          file=sys.stderr)
                    return 1
                time.sleep(poll)
            return child.returncode
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _end(child: subprocess.Popen) -> None:
    """Stop the training: SIGKILL, since TensorFlow's preemption handler swallows SIGTERM."""
    child.kill()
    child.wait()
