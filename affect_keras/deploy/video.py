"""A video's faces as people: each face followed across frames (`tracking.Tracker`), its expression
probabilities smoothed over time, and a summary per person. predict.py runs this on video files and on a
camera; `predict_video` is the same for a program."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affect_keras.data.faces import DEFAULT_PREDICT_DETECTOR
from affect_keras.deploy.analyse import OK, Analyser, FaceResult, Gate
from affect_keras.deploy.tracking import Tracker
from affect_keras.models.presets import DEFAULT_PRESET

SMOOTH = 0.5  # seconds: the default half-life of the smoothing (predict.py --smooth)
GRACE = 0.5  # seconds a track may miss its face and keep its ID


@dataclass
class TrackedFace:
    """One face of one analysed frame: the frame's outputs (`face`), its track, and the track's smoothed
    outputs up to this frame, with the status and label they give."""

    frame: int
    time_s: float
    track: int
    face: FaceResult
    smoothed: np.ndarray | None  # expression probabilities; None: the model has no expression output
    smoothed_va: np.ndarray | None
    status: str  # the gate's verdict on the smoothed probabilities

    def label(self, names: list[str]) -> str:
        """The smoothed expression, or the status that withholds it ("" without an expression output)."""
        if self.smoothed is None:
            return ""
        return names[int(self.smoothed.argmax())] if self.status == OK else self.status


class VideoAnalysis:
    """Analysed frames in, tracked and smoothed faces out; `tracks` summarises what was seen.

    Args:
        analyser: the detector, framing and model (`Analyser`).
        smooth: the smoothing's half-life in seconds (0: off, the smoothed outputs are the raw ones).
        grace: seconds a face may go undetected and keep its track.
    """

    def __init__(self, analyser: Analyser, smooth: float = SMOOTH, grace: float = GRACE):
        self.analyser = analyser
        self.tracker = Tracker(half_life=smooth, grace=grace)
        self.faces: list[TrackedFace] = []

    def add(self, frame: int, time_s: float, rgb: np.ndarray) -> list[TrackedFace]:
        """The faces of one analysed frame (RGB), each with its track."""
        found = self.analyser(rgb)
        outputs = [
            {name: value for name, value in (("expression", f.probabilities), ("va", f.va)) if value is not None}
            for f in found
        ]
        tracked = []
        for face, (track, smoothed) in zip(found, self.tracker.update(time_s, [f.box for f in found], outputs)):
            probabilities = smoothed.get("expression")
            status = self.analyser.gate.status(face, probabilities, self.analyser.predictor.image_size)
            tracked.append(TrackedFace(frame, time_s, track, face, probabilities, smoothed.get("va"), status))
        self.faces += tracked
        return tracked

    def tracks(self) -> list[dict]:
        """One dict per track, in order of appearance (`summarise`)."""
        return summarise(self.faces, self.analyser.predictor.class_names)


def summarise(faces: list[TrackedFace], names: list[str]) -> list[dict]:
    """Per track: `track`, `first_s` and `last_s` (first and last time seen), `frames` (analysed frames with
    the face), `shares` ({label: share of those frames}, the labels of the smoothed probabilities, or the
    status that withheld one), `dominant` (the expression of the largest share, None if none was given),
    and `series`: per analysed frame its `frame`, `time_s`, `box`, `probabilities` and `smoothed` ({class:
    p}), `va` and `smoothed_va` where the model predicts them, and `expression` (the smoothed label)."""
    by_track: dict[int, list[TrackedFace]] = {}
    for face in faces:
        by_track.setdefault(face.track, []).append(face)
    tracks = []
    for track, seen in by_track.items():
        labels = Counter(face.label(names) for face in seen)
        expressions = [(count, label) for label, count in labels.items() if label in names]
        series = [
            {
                "frame": f.frame,
                "time_s": round(f.time_s, 4),
                "box": f.face.box,
                "expression": f.label(names),
                **(
                    {
                        "probabilities": dict(zip(names, map(float, f.face.probabilities))),
                        "smoothed": dict(zip(names, map(float, f.smoothed))),
                    }
                    if f.smoothed is not None
                    else {}
                ),
                **(
                    {"va": tuple(map(float, f.face.va)), "smoothed_va": tuple(map(float, f.smoothed_va))}
                    if f.smoothed_va is not None
                    else {}
                ),
            }
            for f in seen
        ]
        tracks.append(
            {
                "track": track,
                "first_s": round(seen[0].time_s, 4),
                "last_s": round(seen[-1].time_s, 4),
                "frames": len(seen),
                "shares": {label: round(count / len(seen), 4) for label, count in labels.most_common() if label},
                "dominant": max(expressions)[1] if expressions else None,
                "series": series,
            }
        )
    return tracks


def read_frames(capture, clock=None):
    """(frame index, time in seconds, RGB frame) from an opened `cv2.VideoCapture` until it ends; a frame's
    time is `clock()` for a live stream, else its index over the file's frame rate."""
    import cv2

    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    frame = 0
    while True:
        ok, bgr = capture.read()
        if not ok:
            return
        yield frame, clock() if clock else frame / fps, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        frame += 1


def predict_video(
    video: str | Path,
    model: str | Path = DEFAULT_PRESET,
    detector: str | None = DEFAULT_PREDICT_DETECTOR,
    every: int = 5,
    smooth: float = SMOOTH,
    crop: str | None = None,
    margin: float | None = None,
    align: bool | None = None,
    min_confidence: float = 0.0,
    min_face_score: float = 0.0,
    gate_small_faces: bool = False,
    engine: str | None = None,
    trust_saved_model: bool = False,
) -> list[dict]:
    """The people of a video: each face followed across frames, its expression probabilities smoothed.

    Args:
        video: a video file OpenCV reads (.mp4, .avi, .mov, ...).
        model: as `predict`'s.
        detector: a `data.faces.DETECTORS` name (default: both BlazeFace models, faces at any distance).
        every: analyse every N-th frame.
        smooth: the smoothing's half-life in seconds (0: off).
        crop: the framing, as `predict`'s.
        margin: as `predict`'s.
        align: as `predict`'s.
        min_confidence: below this top smoothed probability a face's label is "uncertain" (0: never).
        min_face_score: as `predict`'s.
        gate_small_faces: as `predict`'s.
        engine: as `predict`'s.
        trust_saved_model: as `predict`'s.

    Returns one dict per track (a face followed over time), in order of appearance: `track` (its ID),
    `first_s`, `last_s`, `frames`, `shares` ({expression: share of the analysed frames}), `dominant`, and
    `series` (per analysed frame: `frame`, `time_s`, `box`, raw `probabilities`, `smoothed` ones,
    `expression`); see `summarise`.

    Examples:
        A 2-second clip of that smiling face:

        >>> import affect_keras
        >>> for person in affect_keras.predict_video("clip.mp4", every=2):
        ...     print(person["track"], person["dominant"], person["first_s"], person["last_s"])
        1 Happy 0.0 1.8...
    """
    if every < 1 or smooth < 0:
        raise ValueError("every must be >= 1 and smooth >= 0")
    if not Path(video).is_file():
        raise FileNotFoundError(f"no video at {video}")
    analysis = VideoAnalysis(
        Analyser(
            model,
            detector,
            crop,
            margin,
            align,
            gate=Gate(min_confidence, min_face_score, gate_small_faces),
            engine=engine,
            trust_saved_model=trust_saved_model,
        ),
        smooth,
    )
    import cv2

    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise ValueError(f"{video} is not a video this can read")
    try:
        for frame, time_s, rgb in read_frames(capture):
            if frame % every == 0:
                analysis.add(frame, time_s, rgb)
    finally:
        capture.release()
    return analysis.tracks()
