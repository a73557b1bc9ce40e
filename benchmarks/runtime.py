"""The runtime install against the full one, and each engine, in one run.

Builds the wheel of this checkout as `make dist` does (python -m build: the sdist, the wheel from it) and
two virtual environments from it (pip's cache makes that minutes, not tens of them): `runtime` (`pip
install affect_keras-*.whl`: numpy, Pillow, OpenCV headless, LiteRT, PyYAML, tqdm) and `full` (`pip install
'affect_keras-*.whl[train,cpu]'`: keras and TensorFlow), then measures, each engine in the venv that has it
(LiteRT in the light one, keras in the full one), the installed commands run from a folder outside the checkout:
- install size: MB on disk of each virtual environment;
- cold start: seconds from starting `predict.py photo.jpg` to its first printed line (median of 3, after a
  warm-up run that fills the disk cache);
- photos/s: predict's pipeline (read, detect, frame, model) over a folder of photos, in one process;
- frames/s: predict.py's frame loop on the faces benchmark's 640 x 480 clip, every frame analysed, with
  the default detector (both BlazeFace models) and with the short-range one;
- with `--data` (a prepared FER+ folder): FER+ validation accuracy of each engine and variant of the
  shipped preset, and faces/s one face at a time and in batches of 64.

    python benchmarks/runtime.py --photos ../shared/data/muxspace_subset --data data/fer48 --out runtime.json
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENGINE_VENV = {"litert": "runtime", "litert-int8": "runtime", "keras": "full"}

FOLDER_RATE = """
import sys, time
from pathlib import Path
import numpy as np
from affect_keras.data.images import load_rgb
from affect_keras.deploy.folders import image_files
from affect_keras.deploy.analyse import Analyser
files = image_files(Path(sys.argv[1]))
analyser = Analyser(Path("ferplus_resnet18_48"), engine=sys.argv[2])
analyser.analyse(np.asarray(load_rgb(files[0])))
start = time.perf_counter()
for path in files:
    analyser.analyse(np.asarray(load_rgb(path)))
print(len(files) / (time.perf_counter() - start))
"""

FERPLUS = """
import csv, json, sys, time
import numpy as np
from pathlib import Path
from PIL import Image
from affect_keras.models.loading import load
data, engine = Path(sys.argv[1]), sys.argv[2]
model = load("ferplus_resnet18_48", engine=engine)
with open(data / "val.csv", newline="") as stream:
    rows = list(csv.DictReader(stream))
faces = np.stack([np.asarray(Image.open(data / r["file"]).convert("RGB").resize((48, 48))) for r in rows])
labels = np.array([model.class_names.index(r["label"]) for r in rows])
model.outputs(faces[:64])
start = time.perf_counter()
p = np.concatenate([model.outputs(faces[k:k + 64])["expression"] for k in range(0, len(faces), 64)])
batched = len(faces) / (time.perf_counter() - start)
start = time.perf_counter()
for k in range(300):
    model.outputs(faces[k:k + 1])
single = 300 / (time.perf_counter() - start)
print(json.dumps({"accuracy": round(float((p.argmax(1) == labels).mean()), 4), "faces": len(faces),
                  "faces_per_second_one_at_a_time": round(single, 1), "faces_per_second_batch_64": round(batched, 1)}))
"""


def venv(folder: Path, requirement: str, extra: list[str]) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    python = folder / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", requirement, *extra], check=True
    )
    return python


def size_mb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6, 1)


def cold_start(python: Path, photo: Path, engine: str, cwd: Path) -> float:
    """Seconds from starting predict.py to its first line on stdout (the photo's faces)."""
    command = [str(python.parent / "affect-predict"), str(photo), "--engine", engine]
    times = []
    for attempt in range(4):
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
        line = process.stdout.readline()
        elapsed = time.perf_counter() - start
        _, errors = process.communicate()
        if not line.startswith(f"{photo}: "):
            raise RuntimeError(f"predict.py --engine {engine} printed {line!r} first: {errors[-500:]}")
        if attempt:  # the first fills the disk cache
            times.append(elapsed)
    return round(statistics.median(times), 3)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default="../shared/data/muxspace_subset")
    parser.add_argument("--folder-photos", type=int, default=200, help="photos of the folder measurement")
    parser.add_argument("--video-frames", type=int, default=300)
    parser.add_argument("--data", default="", help="a prepared FER+ folder (val split) for the accuracies")
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "benchmarks"))
    from faces_in_the_wild import photos, video_clip

    paths, _ = photos(Path(args.photos).resolve())
    results: dict = {"install_mb": {}, "engines": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run([sys.executable, "-m", "build", "--outdir", str(tmp / "dist"), str(REPO)], check=True)
        (wheel,) = (tmp / "dist").glob("*.whl")
        results["wheel_mb"] = round(wheel.stat().st_size / 1e6, 1)
        pythons = {
            "runtime": venv(tmp / "runtime", str(wheel), []),
            "full": venv(tmp / "full", f"{wheel}[train,cpu]", []),
        }
        subprocess.run([sys.executable, "-m", "venv", str(tmp / "bare")], check=True)
        results["install_mb"] = {name: size_mb(python.parents[1]) for name, python in pythons.items()}
        results["install_mb"]["bare venv (python -m venv: pip, setuptools)"] = size_mb(tmp / "bare")
        print(f"install: {results['install_mb']}", flush=True)
        folder = tmp / "photos"
        folder.mkdir()
        step = max(1, len(paths) // args.folder_photos)
        for path in paths[::step][: args.folder_photos]:
            (folder / f"{path.parent.name}_{path.name}").write_bytes(path.read_bytes())
        clip = tmp / "clip.mp4"
        video_clip(clip, paths[0], args.video_frames)
        for engine, name in ENGINE_VENV.items():
            python = pythons[name]
            row = {"venv": name, "cold_start_s": cold_start(python, paths[0], engine, tmp)}
            done = subprocess.run(
                [str(python), "-c", FOLDER_RATE, str(folder), engine], capture_output=True, text=True, cwd=tmp
            )
            row["photos_per_second"] = round(float(done.stdout.split()[-1]), 1) if done.returncode == 0 else None
            done = subprocess.run(
                [str(python.parent / "affect-predict"), str(clip), "--every", "1", "--engine", engine],
                capture_output=True,
                text=True,
                cwd=tmp,
            )
            rate = re.search(r"([\d.]+) frames/s", done.stdout)
            row["frames_per_second"] = float(rate[1]) if rate else None
            done = subprocess.run(
                [
                    str(python.parent / "affect-predict"),
                    str(clip),
                    "--every",
                    "1",
                    "--engine",
                    engine,
                    "--detector",
                    "blazeface",
                ],
                capture_output=True,
                text=True,
                cwd=tmp,
            )
            rate = re.search(r"([\d.]+) frames/s", done.stdout)
            row["frames_per_second_short_range_detector"] = float(rate[1]) if rate else None
            if args.data:
                done = subprocess.run(
                    [str(python), "-c", FERPLUS, str(Path(args.data).resolve()), engine],
                    capture_output=True,
                    text=True,
                    cwd=tmp,
                )
                row["ferplus_val"] = json.loads(done.stdout.splitlines()[-1]) if done.returncode == 0 else None
            results["engines"][engine] = row
            print(f"{engine}: {row}", flush=True)
    sizes = results["install_mb"]
    bare = sizes["bare venv (python -m venv: pip, setuptools)"]
    results["runtime_share_of_full"] = round(sizes["runtime"] / sizes["full"], 3)
    results["runtime_share_of_full_added"] = round((sizes["runtime"] - bare) / (sizes["full"] - bare), 3)
    print(
        f"runtime install / full install: {results['runtime_share_of_full']} (the venvs), "
        f"{results['runtime_share_of_full_added']} (what pip install added to a bare venv)"
    )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
