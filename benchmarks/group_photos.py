"""Faces found in group photos (a class, a meeting): frames of 6 to 30 real faces at 120-300 px in 640x480
and 1080p (`clips.GROUPS`, faces pasted on a grey room), per detector: the share of faces found, the
detections on no face, and the time a frame; and the frames/s of the detector on the two-face clip.

The faces are muxspace_subset photos in which the short-range BlazeFace finds one face when the photo is
read alone, so that a face missed in the group is the group's doing. A face counts as found when a
detection's centre lies in its square (each square once).

    python benchmarks/group_photos.py --root ../shared/data/muxspace_subset --frames 5
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from clips import GROUPS, actor_of, group_frame, steady, write_clip

DETECTORS = ("blazeface-both", "blazeface-whole", "haar")


def single_face_photos(root: Path, count: int, seed: int = 0) -> list[Path]:
    """`count` photos of `root` (in a seeded order) in which the short-range BlazeFace finds one face."""
    from affect_keras.data.faces import BlazeFace
    from affect_keras.data.images import load_rgb

    files = sorted(root.rglob("*.jpg"))
    np.random.default_rng(seed).shuffle(files)
    alone, chosen = BlazeFace("short"), []
    for path in files:
        if len(alone(np.asarray(load_rgb(path)))) == 1:
            chosen.append(path)
            if len(chosen) == count:
                return chosen
    raise SystemExit(f"{root}: fewer than {count} photos with one face")


def found(boxes: list[tuple], detections) -> tuple[int, int]:
    """(squares with a detection, detections on no square)."""
    left, hits, stray = dict(enumerate(boxes)), 0, 0
    for detection in detections:
        square = actor_of(left, detection.box)
        if square is None:
            stray += 1
        else:
            hits += 1
            del left[square]
    return hits, stray


def clip_speed(name: str, root: Path, frames: int = 100) -> float:
    """The detector's frames/s on the first `frames` frames of the two-face clip (`clips.steady`)."""
    import cv2

    from affect_keras.data.faces import detector

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "steady.mp4"
        actors, _ = steady(root)
        write_clip(path, actors, frames)
        capture, images = cv2.VideoCapture(str(path)), []
        while len(images) < frames:
            ok, bgr = capture.read()
            if not ok:
                break
            images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    detect = detector(name)
    detect(images[0])  # warm
    start = time.perf_counter()
    for image in images:
        detect(image)
    return len(images) / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="../shared/data/muxspace_subset")
    parser.add_argument("--frames", type=int, default=5, help="frames per layout, each with other faces")
    parser.add_argument("--detectors", nargs="+", default=list(DETECTORS))
    args = parser.parse_args(argv)
    from affect_keras.data.faces import detector

    root = Path(args.root)
    photos = single_face_photos(root, 30 * args.frames)
    totals = {name: [0, 0, 0, 0.0] for name in args.detectors}  # faces, found, stray, seconds
    print("| layout | " + " | ".join(args.detectors) + " |")
    print("| --- |" + " --- |" * len(args.detectors))
    for layout, (count, size, width, height) in GROUPS.items():
        cells = []
        for name in args.detectors:
            detect, faces, hits, stray, seconds = detector(name), 0, 0, 0, 0.0
            for k in range(args.frames):
                frame, boxes = group_frame(photos[30 * k : 30 * k + count], size, width, height, seed=k)
                start = time.perf_counter()
                detections = detect(frame)
                seconds += time.perf_counter() - start
                h, s = found(boxes, detections)
                faces, hits, stray = faces + count, hits + h, stray + s
            share, ms = 100 * hits / faces, 1000 * seconds / args.frames
            cells.append(f"{hits}/{faces} ({share:.0f} %), {stray} stray, {ms:.0f} ms")
            total = totals[name]
            total[:] = [total[0] + faces, total[1] + hits, total[2] + stray, total[3] + seconds]
        print(f"| {layout} | " + " | ".join(cells) + " |")
    cells = [f"{t[1]}/{t[0]} ({100 * t[1] / t[0]:.1f} %), {t[2]} stray" for t in totals.values()]
    print("| all | " + " | ".join(cells) + " |")
    speeds = [f"{clip_speed(name, root):.1f} frames/s" for name in args.detectors]
    print("| two-face clip, 640x480 | " + " | ".join(speeds) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
