"""Faces in the wild: the face detectors, and predict.py end to end, on real photos in class folders.

On a class-folder tree (`../shared/data/muxspace_subset`: 1,926 photos) it measures, in one run:
1. each detector (`--detector` choices): how many photos give exactly one face, none or several, and
   images/s of the detection alone (photos decoded beforehand);
2. predict.py's pipeline end to end (the `deploy.analyse.Analyser` that predict.py runs on each photo:
   detection, framing, the model), the largest face of each photo scored against its folder's label; a photo
   without a face counts as wrong. Rows: Haar, BlazeFace without alignment, BlazeFace with alignment, and the `fer`
   package's own pipeline (its Haar cascade, its 10 px offsets and its bundled FER2013 model, through its
   `FER.detect_emotions`). The model's framing is its recorded one unless `--crop` / `--margin` say;
3. with `--sweep`, the framings (`--crop` x `--margin`, BlazeFace with alignment): how the defaults were
   chosen.
Speeds are per photo, one photo at a time, as predict.py goes through a folder (the decode excluded).

Bench-only: `fer` is never a dependency (its requirements pull a second TensorFlow): `pip install fer
--no-deps`. Its module imports `pkg_resources` (gone from recent setuptools) for two file names only; the
benchmark gives it a stand-in that answers them from `importlib.resources`.

    python benchmarks/faces_in_the_wild.py --root ../shared/data/muxspace_subset --sweep --out faces.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from collections import Counter
from importlib import resources
from pathlib import Path

import numpy as np

from sklearn import metrics as skm

REPO = Path(__file__).resolve().parents[1]

FER_NAMES = {
    "angry": "Anger",
    "disgust": "Disgust",
    "fear": "Fear",
    "happy": "Happy",
    "sad": "Sad",
    "surprise": "Surprise",
    "neutral": "Neutral",
}


def photos(root: Path) -> tuple[list[Path], list[str]]:
    from affect_keras.data.sources import folders
    from affect_keras.labels import get_scheme

    scheme = get_scheme("affectnet8")
    records = [r for r in folders.read(root) if hasattr(r, "code")]
    return [r.path for r in records], [scheme.class_of(r.code) for r in records]


def scores(truth: list[str], predicted: list[str | None], names: list[str]) -> dict:
    """Accuracy and macro-F1 over `names`; a photo with no prediction (no face) is wrong."""
    kept = [k for k, label in enumerate(truth) if label in names]
    t = [truth[k] for k in kept]
    p = [predicted[k] or "(no face)" for k in kept]
    return {
        "photos": len(kept),
        "accuracy": round(float(skm.accuracy_score(t, p)), 4),
        "macro_f1": round(float(skm.f1_score(t, p, labels=names, average="macro", zero_division=0)), 4),
    }


def detection_table(images: list[np.ndarray], min_face: int) -> dict:
    from affect_keras.data.faces import DETECTORS, detector
    from affect_keras.deploy.analyse import DETECTOR_THREADS

    table = {}
    for name in DETECTORS:
        find = detector(name, min_face, DETECTOR_THREADS)  # as predict.py runs it
        find(images[0])  # warm-up
        start = time.perf_counter()
        counts = Counter(min(len(find(rgb)), 2) for rgb in images)
        seconds = time.perf_counter() - start
        table[name] = {
            "one": counts[1],
            "none": counts[0],
            "several": counts[2],
            "one_share": round(counts[1] / len(images), 4),
            "images_per_second": round(len(images) / seconds, 1),
        }
        print(f"detector {name}: {table[name]}", flush=True)
    return table


def end_to_end(images, truth, model: str, detector_name: str, crop, margin, align: bool, min_face: int) -> dict:
    from affect_keras.deploy.analyse import OUTCOMES, Analyser

    analyser = Analyser(Path(model), detector_name, crop, margin, align, min_face)
    names = analyser.predictor.class_names
    analyser.analyse(images[0])  # warm-up
    probabilities, outcomes = [], Counter()  # of each photo's largest face
    start = time.perf_counter()
    for rgb in images:
        faces, outcome = analyser.analyse(rgb)
        outcomes[outcome] += 1
        probabilities.append(faces[0].probabilities if faces else None)
    seconds = time.perf_counter() - start
    # over fer's 7 classes, the model's prediction taken among those 7 only (its Contempt left out)
    seven = [n for n in names if n in FER_NAMES.values()]
    keep = [names.index(n) for n in seven]
    eight = scores(truth, [None if p is None else names[int(p.argmax())] for p in probabilities], names)
    seven_scores = scores(truth, [None if p is None else seven[int(p[keep].argmax())] for p in probabilities], seven)
    return {
        "detector": detector_name,
        "framing": analyser.framing.to_dict(),
        "all_classes": eight,
        "fer_classes": {
            "photos": seven_scores["photos"],
            "accuracy_7": seven_scores["accuracy"],
            "macro_f1_7": seven_scores["macro_f1"],
        },
        "outcomes": dict(outcomes),
        "no_face": outcomes[OUTCOMES["none"]],
        "ms_per_photo": round(1000 * seconds / len(images), 2),
    }


def fer_pipeline(paths: list[Path], truth: list[str]) -> dict:
    """The fer package's own detect_emotions on each photo (BGR, as it reads files), largest face."""
    import cv2

    shim = types.ModuleType("pkg_resources")
    shim.resource_filename = lambda package, name: str(resources.files(package) / name)
    sys.modules.setdefault("pkg_resources", shim)
    from fer.fer import FER

    fer = FER()
    bgr = [cv2.imread(str(p)) for p in paths]
    seven = list(FER_NAMES.values())
    fer.detect_emotions(bgr[0])
    predicted, none = [], 0
    start = time.perf_counter()
    for image in bgr:
        found = fer.detect_emotions(image)
        if not found:
            none += 1
            predicted.append(None)
            continue
        largest = max(found, key=lambda f: f["box"][2] * f["box"][3])
        predicted.append(FER_NAMES[max(largest["emotions"], key=largest["emotions"].get)])
    seconds = time.perf_counter() - start
    result = scores(truth, predicted, seven)
    return {
        "fer_classes": {**result, "accuracy_7": result["accuracy"], "macro_f1_7": result["macro_f1"]},
        "no_face": none,
        "ms_per_photo": round(1000 * seconds / len(paths), 2),
    }


def video_clip(path: Path, photo: Path, frames: int, fps: int = 25) -> None:
    """A 640 x 480 clip of one face (a photo scaled to 240 px) drifting across a grey room."""
    import cv2
    from affect_keras.data.images import load_rgb

    face = cv2.cvtColor(np.asarray(load_rgb(photo).resize((240, 240))), cv2.COLOR_RGB2BGR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    for k in range(frames):
        frame = np.full((480, 640, 3), 90, np.uint8)
        x, y = 60 + (k * 3) % 320, 100 + int(40 * np.sin(k / 10))
        frame[y : y + 240, x : x + 240] = face
        writer.write(frame)
    writer.release()


def video_table(model: str, photo: Path, frames: int) -> dict:
    """predict.py on the clip, every frame analysed (`--every 1`), for each detector: the frames/s predict.py
    reports for its frame loop (read, detect, frame, model, CSV row), and of the whole command (model
    loading included)."""
    import re
    import subprocess
    import tempfile

    table = {}
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.mp4"
        video_clip(clip, photo, frames)
        for name in ("blazeface-both", "blazeface", "haar"):
            command = [sys.executable, str(REPO / "predict.py"), str(clip), "--model", model, "--detector", name]
            start = time.perf_counter()
            printed = subprocess.run([*command, "--every", "1"], capture_output=True, text=True, check=True).stdout
            whole = time.perf_counter() - start
            summary = re.search(r"(\d+) faces found, \d+ tracks, ([\d.]+) frames/s", printed)
            table[name] = {
                "frames": frames,
                "faces_found": int(summary[1]),
                "frames_per_second": float(summary[2]),
                "command_frames_per_second": round(frames / whole, 1),
            }
            print(f"video, {name}: {table[name]}", flush=True)
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="../shared/data/muxspace_subset", help="a class-folder tree of photos")
    parser.add_argument("--model", default="ferplus_resnet18_48")
    parser.add_argument("--crop", default=None, help="the framing for the main rows (default: the model's)")
    parser.add_argument("--margin", type=float, default=None)
    parser.add_argument("--min-face", type=int, default=24)
    parser.add_argument("--limit", type=int, default=0, help="every k-th photo so that about this many remain")
    parser.add_argument("--sweep", action="store_true", help="also every framing, BlazeFace with alignment")
    parser.add_argument("--no-fer", action="store_true", help="leave out the fer package's row")
    parser.add_argument(
        "--video-frames", type=int, default=500, help="frames of the 640x480 test clip (0: no video measurement)"
    )
    parser.add_argument("--only-video", action="store_true", help="measure the video speed alone")
    parser.add_argument("--out", default="", help="also write the results as JSON here")
    args = parser.parse_args(argv)

    from affect_keras.data.faces import CROPS
    from affect_keras.data.images import load_rgb

    paths, truth = photos(Path(args.root))
    if args.only_video:
        video_table(args.model, paths[0], args.video_frames)
        return 0
    if args.limit:
        step = max(1, len(paths) // args.limit)
        paths, truth = paths[::step], truth[::step]
    images = [np.asarray(load_rgb(p)) for p in paths]
    print(f"{len(images)} photos from {args.root}", flush=True)
    results = {
        "root": args.root,
        "photos": len(images),
        "model": args.model,
        "detectors": detection_table(images, args.min_face),
        "end_to_end": {},
    }
    rows = {
        "haar": ("haar", False),
        "blazeface, not aligned": ("blazeface", False),
        "blazeface, aligned": ("blazeface", True),
        "blazeface-both, not aligned": ("blazeface-both", False),
    }
    for row, (name, align) in rows.items():
        results["end_to_end"][row] = end_to_end(
            images, truth, args.model, name, args.crop, args.margin, align, args.min_face
        )
        print(f"{row}: {results['end_to_end'][row]}", flush=True)
    if not args.no_fer:
        results["end_to_end"]["fer package (Haar + its FER2013 model)"] = fer_pipeline(paths, truth)
        print(f"fer: {results['end_to_end']['fer package (Haar + its FER2013 model)']}", flush=True)
    if args.sweep:
        results["sweep"] = {}
        for crop in CROPS:
            for margin in (0.0, 0.1, 0.2, 0.3):
                row = end_to_end(images, truth, args.model, "blazeface", crop, margin, True, args.min_face)
                results["sweep"][f"{crop} {margin}"] = row
                print(f"sweep {crop} {margin}: {row['all_classes']} {row['fer_classes']}", flush=True)

    if args.video_frames:
        results["video"] = video_table(args.model, paths[0], args.video_frames)
    print(f"\n{len(images)} photos; detection (one / none / several faces, images/s):")
    for name, row in results["detectors"].items():
        print(
            f"| {name} | {row['one']} ({100 * row['one_share']:.1f} %) | {row['none']} | {row['several']} "
            f"| {row['images_per_second']:.0f} |"
        )
    print("\nend to end (8 classes: accuracy, macro-F1 | fer's 7 classes: accuracy, macro-F1 | no face | ms/photo):")
    for name, row in results["end_to_end"].items():
        eight = row.get("all_classes", {})
        print(
            f"| {name} | {eight.get('accuracy', '-')} | {eight.get('macro_f1', '-')} | "
            f"{row['fer_classes']['accuracy_7']} | {row['fer_classes']['macro_f1_7']} | {row['no_face']} | "
            f"{row['ms_per_photo']} |"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
