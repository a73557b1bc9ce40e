"""The service under load (issue 43): affect-serve started on a free loopback port, K clients posting real
photos for T seconds, against the same photos through `affect_keras.predict` in this process, in one run.

Phases, each printed as a JSON line: `in_process` (photos/s), `clients_1` and `clients_K` (requests/s,
p50/p95/p99 latency, errors), `soak` (N requests from K clients: errors and the server's RSS after the first
100 and after all), `overload` (4 x K clients against a queue of --queue: how many 503s, each with
Retry-After, then one client again: every request served), and the server's RSS before and after.

    python benchmarks/serve_load.py --root ../shared/data/muxspace_subset --clients 2 --seconds 20
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


class Server:
    """serve.py started as a process on 127.0.0.1, port 0 (a free one); `url` once it listens, its output
    in `lines`. Stop it with `stop()` (SIGTERM, then SIGKILL after `timeout`)."""

    def __init__(self, *flags: str, start_s: float = 120):
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "serve.py"), "--port", "0", *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
        )
        self.lines: list[str] = []
        self.url, self.port = "", 0
        ready = threading.Event()

        def read():
            for line in self.process.stdout:
                self.lines.append(line.rstrip("\n"))
                found = re.search(r"on http://127\.0\.0\.1:(\d+)/", line)
                if found:
                    self.port = int(found.group(1))
                    self.url = f"http://127.0.0.1:{self.port}"
                    ready.set()
            ready.set()

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        if not ready.wait(start_s) or not self.url:
            self.stop()
            raise RuntimeError("serve.py did not start:\n" + "\n".join(self.lines[-20:]))

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024

    def call(self, path: str, body: bytes | None = None, kind: str = "image/jpeg", timeout: float = 60):
        """(status, headers, body) of one request on a connection of its own."""
        connection = connect(self.port, timeout)
        try:
            connection.request(
                "POST" if body is not None else "GET", path, body, {"Content-Type": kind} if body else {}
            )
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def stop(self, timeout: float = 60) -> int:
        import signal

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)
        finally:
            self.reader.join(10)  # every line it wrote read


def connect(port: int, timeout: float = 120) -> http.client.HTTPConnection:
    """A keep-alive connection with Nagle's algorithm off, as browsers and curl open theirs (http.client
    writes a request's headers and body apart: with Nagle on, each request waits for a delayed ACK, ~40 ms)."""
    import socket

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    connection.connect()
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def load(port: int, photos: list[bytes], clients: int, seconds: float = 0, requests: int = 0, on_request=None) -> dict:
    """`clients` threads, each on one keep-alive connection, posting the photos in turn for `seconds` (or
    `requests` in all); latencies of the 200s, the count of each other status, Retry-After present on 503s."""
    latencies, statuses, lock = [], {}, threading.Lock()
    retry_after = [True]
    done = [0]
    stop_at = time.perf_counter() + seconds if seconds else float("inf")

    def client(k: int) -> None:
        connection = connect(port)
        n = k
        while time.perf_counter() < stop_at:
            with lock:
                if requests and done[0] >= requests:
                    break
                done[0] += 1
                count = done[0]
            started = time.perf_counter()
            try:
                connection.request("POST", "/v1/faces", photos[n % len(photos)], {"Content-Type": "image/jpeg"})
                response = connection.getresponse()
                response.read()
                status = response.status
                if status == 503 and not response.getheader("Retry-After"):
                    retry_after[0] = False
            except (OSError, http.client.HTTPException):
                status = "connection error"
                connection.close()
                connection = connect(port)
            elapsed = time.perf_counter() - started
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    latencies.append(elapsed)
            if on_request:
                on_request(count)
            n += clients
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ms = np.array(latencies) * 1000 if latencies else np.zeros(1)
    return {
        "clients": clients,
        "requests": sum(statuses.values()),
        "ok": statuses.get(200, 0),
        "per_s": round(statuses.get(200, 0) / wall, 2),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "other": {str(k): v for k, v in statuses.items() if k != 200},
        "retry_after_on_every_503": retry_after[0],
    }


def real_photos(root: Path, count: int) -> list[bytes]:
    files = sorted(p for p in root.rglob("*.jpg"))
    step = max(1, len(files) // count)
    return [p.read_bytes() for p in files[::step][:count]]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=REPO.parent / "shared/data/muxspace_subset")
    parser.add_argument("--photos", type=int, default=64, help="real photos, sent in turn")
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20, help="each timed phase")
    parser.add_argument("--soak", type=int, default=2000, help="requests of the soak phase")
    parser.add_argument("--queue", type=int, default=2, help="the server's --queue in the overload phase")
    parser.add_argument("--server-flags", default="", help="more flags for serve.py")
    args = parser.parse_args(argv)
    photos = real_photos(args.root, args.photos)

    import io

    from PIL import Image

    import affect_keras

    affect_keras.predict(Image.open(io.BytesIO(photos[0])))  # the model loaded and warmed
    started, n = time.perf_counter(), 0
    while time.perf_counter() - started < args.seconds:  # each photo decoded from its bytes, as the server does
        affect_keras.predict(Image.open(io.BytesIO(photos[n % len(photos)])))
        n += 1
    in_process = n / (time.perf_counter() - started)
    print(json.dumps({"phase": "in_process", "photos": n, "per_s": round(in_process, 2)}), flush=True)

    server = Server("--threads", str(args.clients), "--queue", str(args.queue), *args.server_flags.split())
    try:
        rss = {"started": round(server.rss_mb(), 1)}
        single = load(server.port, photos, 1, args.seconds)
        print(json.dumps({"phase": "clients_1", **single}), flush=True)
        several = load(server.port, photos, args.clients, args.seconds)
        several["vs_in_process"] = round(several["per_s"] / in_process, 3)
        several["p95_vs_single_p50"] = round(several["p95_ms"] / single["p50_ms"], 3)
        print(json.dumps({"phase": f"clients_{args.clients}", **several}), flush=True)

        def soak_rss(count: int) -> None:
            if count == 100:
                rss["after_100"] = round(server.rss_mb(), 1)

        soak = load(server.port, photos, args.clients, requests=args.soak, on_request=soak_rss)
        rss["after_soak"] = round(server.rss_mb(), 1)
        soak["rss_growth_pct"] = round(100 * (rss["after_soak"] / rss["after_100"] - 1), 2)
        print(json.dumps({"phase": "soak", **soak, "rss_mb": rss}), flush=True)
        overload = load(server.port, photos, 4 * args.clients, args.seconds)
        alive = server.process.poll() is None
        after = load(server.port, photos, 1, min(args.seconds, 10))
        print(json.dumps({"phase": "overload", **overload, "server_alive": alive}), flush=True)
        print(json.dumps({"phase": "after_overload", **after}), flush=True)
        rss["end"] = round(server.rss_mb(), 1)
    finally:
        code = server.stop()
    print(json.dumps({"phase": "stopped", "exit": code, "rss_mb": rss}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
