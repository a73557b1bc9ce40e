"""Video: the detectors on a clip of several faces, tracking, smoothing and its cost, in one run.

On the clips of `clips.py` (real faces from `muxspace_subset` pasted on a grey room, every frame's truth
known) it measures:
1. detection: for each detector, the share of the crossing clip's frames in which every face in the frame
   is found (a face counts when 90 % of it is in the frame), faces found on no face, and frames/s of
   the detection alone (frames decoded beforehand);
2. tracking on the crossing clip (A and B cross, C leaves for over a second and comes back): swaps (a
   track moving to another face), ID switches while a face stays in the frame, tracks per face, and each
   track's dominant expression beside the shipped preset's answer for the same face's still photo;
3. smoothing: label changes per second, raw against smoothed, on the steady clip (two faces the model
   finds ambivalent, each keeping one photo); and on the switch clip (Happy, then Surprise at frame 75),
   the frames the smoothed label takes to follow;
4. speed: predict.py's frame loop on the faces benchmark's 640 x 480 clip (`faces_in_the_wild.video_clip`),
   every frame analysed, without tracking (detection, framing, model, CSV row: the loop before tracking)
   and with tracking and smoothing, alternating, best of `--repeats`.

    python benchmarks/video_tracking.py --root ../shared/data/muxspace_subset --out video.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import clips  # noqa: E402


def decoded(path: Path) -> list[np.ndarray]:
    import cv2
    from affect_keras.deploy.video import read_frames

    capture = cv2.VideoCapture(str(path))
    try:
        return [rgb for _, _, rgb in read_frames(capture)]
    finally:
        capture.release()


def detection(frames: list[np.ndarray], truth: list[dict]) -> dict:
    from affect_keras.deploy.analyse import DETECTOR_THREADS
    from affect_keras.data.faces import DETECTORS, detector

    table = {}
    for name in DETECTORS:
        find = detector(name, 24, DETECTOR_THREADS)
        find(frames[0])
        start = time.perf_counter()
        found = [find(rgb) for rgb in frames]
        seconds = time.perf_counter() - start
        every = sum(
            all(any(clips.actor_of({a: box}, f.box) for f in faces) for a, box in seen.items())
            for faces, seen in zip(found, truth)
        )
        stray = sum(clips.actor_of(seen, f.box) is None for faces, seen in zip(found, truth) for f in faces)
        table[name] = {
            "every_face_share": round(every / len(frames), 4),
            "stray_faces": stray,
            "frames_per_second": round(len(frames) / seconds, 1),
        }
        print(f"detection, {name}: {table[name]}", flush=True)
    return table


def tracking(model: str, clip: Path, truth: list[dict], actors: list, every: int, smooth: float) -> dict:
    import affect_keras

    tracks = affect_keras.predict_video(clip, model=model, every=every, smooth=smooth)
    tracked = [(s["frame"], t["track"], s["box"]) for t in tracks for s in t["series"]]
    still = {}
    for actor in actors:
        faces = affect_keras.predict(actor.photo, model=model)
        still[actor.name] = max(faces[0]["probabilities"].items(), key=lambda kv: kv[1])[0] if faces else None
    owner = {}
    for t in tracks:
        names = [clips.actor_of(truth[s["frame"]], s["box"]) for s in t["series"]]
        owner[t["track"]] = max(set(names), key=names.count)
    result = {
        "every": every,
        "smooth": smooth,
        **clips.identity_errors(truth, tracked),
        "tracks": [
            {
                "track": t["track"],
                "face": owner[t["track"]],
                "dominant": t["dominant"],
                "still_photo": still.get(owner[t["track"]]),
                "first_s": t["first_s"],
                "last_s": t["last_s"],
            }
            for t in tracks
        ],
    }
    result["dominant_matches_still"] = all(t["dominant"] == t["still_photo"] for t in result["tracks"])
    return result


def flicker(model: str, clip: Path, every: int, smooth: float) -> dict:
    import affect_keras

    tracks = affect_keras.predict_video(clip, model=model, every=every, smooth=smooth)
    raw = [clips.label_changes_per_second(t["series"], "probabilities") for t in tracks]
    smoothed = [clips.label_changes_per_second(t["series"], "smoothed") for t in tracks]
    return {
        "every": every,
        "smooth": smooth,
        "raw_changes_per_s": round(float(np.mean(raw)), 3),
        "smoothed_changes_per_s": round(float(np.mean(smoothed)), 3),
    }


def switch_delay(model: str, clip: Path, at: int, every: int, smooth: float) -> dict:
    import affect_keras

    tracks = affect_keras.predict_video(clip, model=model, every=every, smooth=smooth)
    series = max(tracks, key=lambda t: t["frames"])["series"]
    after = [s for s in series if s["frame"] >= at]
    new = max(after[-1]["probabilities"], key=after[-1]["probabilities"].get)
    followed = next((s["frame"] for s in after if s["expression"] == new), None)
    fps = clips.FPS
    return {
        "every": every,
        "smooth": smooth,
        "switch_frame": at,
        "new_expression": new,
        "smoothed_follows_at": followed,
        "frames_late": None if followed is None else followed - at,
        "allowed_frames": smooth * fps + 1,
    }


def speed(model: str, clip: Path, repeats: int) -> dict:
    """Frames/s of the frame loop (decoding included), untracked and tracked, alternating."""
    import cv2
    from affect_keras.deploy.analyse import Analyser
    from affect_keras.deploy.rows import csv_rows, video_rows
    from affect_keras.deploy.video import VideoAnalysis, read_frames

    analyser = Analyser(Path(model))
    names = analyser.predictor.class_names

    def untracked() -> float:
        capture, rows, start = cv2.VideoCapture(str(clip)), [], time.perf_counter()
        for frame, _, rgb in read_frames(capture):
            rows += csv_rows(str(clip), analyser(rgb), names, frame)
        capture.release()
        return (frame + 1) / (time.perf_counter() - start)

    def tracked() -> float:
        capture, rows, start = cv2.VideoCapture(str(clip)), [], time.perf_counter()
        analysis = VideoAnalysis(analyser)
        for frame, time_s, rgb in read_frames(capture):
            rows += video_rows(str(clip), analysis.add(frame, time_s, rgb), names)
        capture.release()
        return (frame + 1) / (time.perf_counter() - start)

    untracked()  # warm-up
    rates = {"untracked": [], "tracked": []}
    for _ in range(repeats):
        rates["untracked"].append(untracked())
        rates["tracked"].append(tracked())
    best = {name: round(max(values), 1) for name, values in rates.items()}
    return {
        "frames_per_second": best,
        "tracked_slower_by": round(1 - best["tracked"] / best["untracked"], 4),
        "all_runs": {name: [round(v, 1) for v in values] for name, values in rates.items()},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="../shared/data/muxspace_subset")
    parser.add_argument("--model", default="ferplus_resnet18_48")
    parser.add_argument("--speed-frames", type=int, default=300, help="frames of the 640x480 speed clip")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    root = Path(args.root)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        made = {}
        for name, build in clips.CLIPS.items():
            actors, frames = build(root)
            made[name] = (Path(folder) / f"{name}.mp4", actors)
            made[name] += (clips.write_clip(made[name][0], actors, frames),)
        path, actors, truth = made["crossing"]
        results["detection"] = detection(decoded(path), truth)
        results["tracking"] = [tracking(args.model, path, truth, actors, every, 0.5) for every in (1, 5)]
        print(f"tracking: {results['tracking']}", flush=True)
        results["smoothing"] = [
            flicker(args.model, made["steady"][0], every, smooth) for every in (1, 5) for smooth in (0.5, 1.0)
        ]
        print(f"smoothing: {results['smoothing']}", flush=True)
        results["switch"] = [
            switch_delay(args.model, made["switch"][0], 75, every, smooth) for every in (1, 5) for smooth in (0.5, 1.0)
        ]
        print(f"switch: {results['switch']}", flush=True)
        if args.speed_frames:
            from faces_in_the_wild import photos, video_clip

            clip = Path(folder) / "speed.mp4"
            video_clip(clip, photos(root)[0][0], args.speed_frames)  # the faces benchmark's clip
            results["speed"] = speed(args.model, clip, args.repeats)
            print(f"speed: {results['speed']}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
