"""Each engine called from several threads at once, against the answers one thread gets (issue 46, item 1).

For every engine the model can run in: `--threads` threads, each calling the loaded model `--calls` times on
its own random face (one face a call, as predict does), every answer compared with that face's answer from
one thread, exactly. Prints a JSON line per engine: wrong answers, calls, seconds.

    python benchmarks/engine_threads.py --model ferplus_resnet18_48 --engines litert litert-int8 onnx keras
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import numpy as np


def wrong_answers(model: str, engine: str, threads: int, calls: int) -> dict:
    from affect_keras.models.loading import load

    loaded = load(model, engine=engine)
    size = loaded.image_size
    faces = np.random.default_rng(0).integers(0, 256, (threads, 1, size, size, 3), dtype=np.uint8)
    alone = [loaded.outputs(face)["expression"] for face in faces]
    wrong = []

    def work(k: int) -> None:
        wrong.extend(k for _ in range(calls) if not np.array_equal(loaded.outputs(faces[k])["expression"], alone[k]))

    start = time.perf_counter()
    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - start
    return {"engine": engine, "wrong": len(wrong), "calls": threads * calls, "seconds": round(seconds, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ferplus_resnet18_48", help="a preset, a run or an export")
    parser.add_argument("--engines", nargs="+", default=["litert", "litert-int8", "onnx", "keras"])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--calls", type=int, default=50, help="calls per thread")
    args = parser.parse_args(argv)
    for engine in args.engines:
        print(json.dumps(wrong_answers(args.model, engine, args.threads, args.calls)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
