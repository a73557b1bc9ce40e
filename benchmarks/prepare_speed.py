"""Preparation speed at AffectNet scale: reduced JPEG decoding and overlapped reads, in one run, as ratios.

Two sources of large JPEGs, made once in a work folder:
- `mux1600`: muxspace_subset photos upscaled to 1,600 px on the longer side (class folders, whole photos,
  the `folders` source);
- `sample1600`: the built-in sample's photos upscaled 7x (about 1,200-1,800 px) with their face boxes scaled
  alike (AffectNet's layout, the `affectnet` source: the box path).
Each is prepared at `--size 224` (and 96) with full and with reduced decoding, and with 20 ms of latency
injected into every source read (a stand-in for a network mount such as Google Drive in Colab: no slow disk
exists here; the latency is a `time.sleep` in the reader, which the forked worker processes inherit), with
one read in flight per worker (`--io-threads 1`) and with several. The outputs of full and reduced decoding
are compared pixel by pixel (mean and largest absolute difference over all images, 0-255).

    python benchmarks/prepare_speed.py --work /tmp/prepare_bench --photos 240 --out prepare.json
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image

from affect_keras.data.prepare import PrepareConfig, prepare


def mux1600(root: Path, target: Path, count: int) -> Path:
    if (target / "done").is_file():
        return target
    photos = sorted(p for p in root.rglob("*.jpg"))[:: max(1, len(list(root.rglob("*.jpg"))) // count)][:count]
    for path in photos:
        image = Image.open(path).convert("RGB")
        scale = 1600 / max(image.size)
        out = target / path.parent.name / path.name
        out.parent.mkdir(parents=True, exist_ok=True)
        image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC).save(
            out, quality=92
        )
    (target / "done").write_text("")
    return target


def sample1600(target: Path, count: int, factor: int = 7) -> Path:
    """The sample generated in AffectNet's original layout, every photo and box scaled by `factor`."""
    if (target / "done").is_file():
        return target
    from affect_keras.data.sources import sample

    sample.generate(target, count, seed=0, workers=2)
    for listing in (target / sample.ORIGINAL_LISTS).glob("*.csv"):
        rows = list(csv.reader(open(listing)))
        header = rows[0][0] == "subDirectory_filePath"
        for row in rows[1 if header else 0 :]:
            row[1:5] = [str(int(v) * factor) for v in row[1:5]]
            row[5] = ";".join(f"{float(v) * factor:.2f}" for v in row[5].split(";") if v)
            image_path = target / sample.ORIGINAL_IMAGES / row[0]
            image = Image.open(image_path)
            image.resize((image.width * factor, image.height * factor), Image.Resampling.BICUBIC).save(
                image_path, quality=92
            )
        with open(listing, "w", newline="") as handle:
            csv.writer(handle).writerows(rows)
    (target / "done").write_text("")
    return target


def timed_prepare(config: PrepareConfig) -> float:
    shutil.rmtree(config.out, ignore_errors=True)
    start = time.perf_counter()
    summary = prepare(config)
    seconds = time.perf_counter() - start
    return summary.written / seconds


def difference(a: Path, b: Path) -> dict:
    """Mean and largest absolute pixel difference between two preparations of the same images."""
    diffs, largest = [], 0
    for path in sorted(a.rglob("*.jpg")):
        other = b / path.relative_to(a)
        x = np.asarray(Image.open(path), np.int16)
        y = np.asarray(Image.open(other), np.int16)
        d = np.abs(x - y)
        diffs.append(d.mean())
        largest = max(largest, int(d.max()))
    return {
        "images": len(diffs),
        "mean_abs": round(float(np.mean(diffs)), 3),
        "worst_image_mean_abs": round(float(np.max(diffs)), 3),
        "max_abs": largest,
    }


def with_latency(seconds: float):
    """Every source read waits `seconds` first (patched where prepare's workers read; they fork from here)."""
    import affect_keras.data.prepare.writing as writing
    from affect_keras.data.images import read_bytes

    def slow(path):
        time.sleep(seconds)
        return read_bytes(path)

    writing.read_bytes = slow if seconds else read_bytes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="../shared/data/muxspace_subset")
    parser.add_argument("--work", default="/tmp/prepare_bench", help="where the large sources are made once")
    parser.add_argument("--photos", type=int, default=240, help="photos per source")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    work = Path(args.work)
    sources = {
        "mux1600 (folders)": ("folders", mux1600(Path(args.root), work / "mux1600", args.photos)),
        "sample1600 (affectnet boxes)": ("affectnet", sample1600(work / "sample1600", args.photos)),
    }
    results = {"workers": args.workers, "latency_ms": args.latency_ms, "rows": []}
    for name, (source, root) in sources.items():
        for size in (224, 96):
            base = dict(source=source, root=root, size=size, val_fraction=0.0, workers=args.workers)
            outs = {mode: work / f"out-{source}-{size}-{mode}" for mode in ("full", "reduced")}
            with_latency(0)
            full = timed_prepare(PrepareConfig(out=outs["full"], reduced_decode=False, **base))
            reduced = timed_prepare(PrepareConfig(out=outs["reduced"], reduced_decode=True, **base))
            agreement = difference(outs["full"], outs["reduced"])
            with_latency(args.latency_ms / 1000)
            one_read = timed_prepare(PrepareConfig(out=work / "out-slow-1", io_threads=1, **base))
            several = {
                threads: timed_prepare(PrepareConfig(out=work / f"out-slow-{threads}", io_threads=threads, **base))
                for threads in (4, 8)
            }
            with_latency(0)
            row = {
                "source": name,
                "size": size,
                "full_per_s": round(full, 1),
                "reduced_per_s": round(reduced, 1),
                "reduced_speedup": round(reduced / full, 2),
                "agreement": agreement,
                "latency_1_thread_per_s": round(one_read, 1),
                **{f"latency_{t}_threads_per_s": round(v, 1) for t, v in several.items()},
                **{f"latency_{t}_threads_speedup": round(v / one_read, 2) for t, v in several.items()},
            }
            results["rows"].append(row)
            print(row, flush=True)
    print(f"\n{args.workers} worker processes; images/s; latency: {args.latency_ms:g} ms per source read\n")
    print(
        "| source | --size | full decode | reduced | speed-up | mean / max abs diff | "
        "latency, 1 read in flight | 4 | 8 | speed-up (8) |"
    )
    print("| --- " * 10 + "|")
    for r in results["rows"]:
        a = r["agreement"]
        print(
            f"| {r['source']} | {r['size']} | {r['full_per_s']} | {r['reduced_per_s']} | {r['reduced_speedup']}x | "
            f"{a['mean_abs']} / {a['max_abs']} | {r['latency_1_thread_per_s']} | {r['latency_4_threads_per_s']} | "
            f"{r['latency_8_threads_per_s']} | {r['latency_8_threads_speedup']}x |"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
