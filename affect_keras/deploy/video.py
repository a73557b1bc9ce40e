"""A video's faces as people: each face followed across frames (`tracking.Tracker`), its expression
probabilities smoothed over time, and a summary per person. predict.py runs this on video files and on a
camera; `predict_video` is the same for a program."""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affect_keras.deploy.analyse import OK, Analyser, FaceResult, analyser_for
from affect_keras.data.images import printable_name
from affect_keras.deploy.config import NOT_UTF8, SMOOTH, VideoConfig
from affect_keras.deploy.tracking import Tracker
from affect_keras.models.loading import Loaded
from affect_keras.models.presets import DEFAULT_PRESET
from affect_keras.options import OptionError

WINDOW = "predict.py"  # the title of the window that shows a stream
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
        keep: keep every tracked face for `tracks` (False: a stream without end, answered frame by frame).
    """

    def __init__(self, analyser: Analyser, smooth: float = SMOOTH, grace: float = GRACE, keep: bool = True):
        self.analyser = analyser
        self.tracker = Tracker(half_life=smooth, grace=grace)
        self.faces: list[TrackedFace] = []
        self.keep = keep

    def add(self, frame: int, time_s: float, rgb: np.ndarray) -> list[TrackedFace]:
        """The faces of one analysed frame (RGB), each with its track."""
        return self.follow(frame, time_s, self.analyser(rgb))

    def follow(self, frame: int, time_s: float, found: list[FaceResult]) -> list[TrackedFace]:
        """The faces an analyser (this one's, or another with its settings) found in one frame, each with
        its track."""
        outputs = [
            {name: value for name, value in (("expression", f.probabilities), ("va", f.va)) if value is not None}
            for f in found
        ]
        tracked = []
        for face, (track, smoothed) in zip(found, self.tracker.update(time_s, [f.box for f in found], outputs)):
            probabilities = smoothed.get("expression")
            status = self.analyser.gate.status(face, probabilities, self.analyser.predictor.image_size)
            tracked.append(TrackedFace(frame, time_s, track, face, probabilities, smoothed.get("va"), status))
        if self.keep:
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
    """(frame index, time in seconds, RGB frame) from an opened `cv2.VideoCapture` until it ends. A frame's
    time is `clock()` for a live stream, else the frame's own timestamp in the file (a phone's video has a
    variable frame rate: index over the average rate would put a frame at 3.0 s at 8.9 s); where the file
    gives none (or one that does not advance), the time of the frame before plus one frame at its rate."""
    import cv2

    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    frame, last = 0, 0.0
    while True:
        ok, bgr = capture.read()
        if not ok:
            return
        if clock:
            time_s = clock()
        else:
            stamp = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
            time_s = stamp if (stamp > last or (frame == 0 and stamp >= 0)) else last + 1 / fps
        yield frame, time_s, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        frame, last = frame + 1, time_s


def predict_video(
    video: str | Path,
    model: str | Path | Loaded = DEFAULT_PRESET,
    *,
    every: int = 5,
    smooth: float = SMOOTH,
    **settings: str | float | bool | None,
) -> list[dict]:
    """The people of a video: each face followed across frames, its expression probabilities smoothed.

    Args:
        video: a video file OpenCV reads (.mp4, .avi, .mov, ...).
        model: as `predict`'s.
        every: analyse every N-th frame.
        smooth: the smoothing's half-life in seconds (0: off).
        **settings: the analysis settings, as `predict`'s (`AnalysisConfig`; the detector's default: both
            BlazeFace models, faces at any distance; `min_confidence` gates the smoothed probabilities).

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
    analyser = analyser_for(model, {"every": every, "smooth": smooth, **settings}, VideoConfig)  # each checked
    if not Path(video).is_file():
        raise FileNotFoundError(f"no video at {video}")
    if printable_name(video) != str(video):
        raise OptionError("video", f"{NOT_UTF8}: rename the file")
    analysis = VideoAnalysis(analyser, smooth)
    import cv2

    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise ValueError(f"{video} is not a video this can read")
    if run_stream(capture, analysis, every, progress=False).interrupted:
        raise KeyboardInterrupt
    return analysis.tracks()


FOURCC = {".webm": "VP80", ".avi": "MJPG"}  # the codec of an annotated video by its suffix; others: mp4v


def video_writer(path: str, fps: float, size: tuple[int, int], name: str = ""):
    """An opened `cv2.VideoWriter` for `path`, its codec chosen by the suffix (`FOURCC`); ValueError naming
    --annotate (and `name`, the file the user asked for, where `path` is its temporary name) where OpenCV
    cannot write it (it would write nothing, silently)."""
    import cv2

    suffix = Path(path).suffix.lower()
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*FOURCC.get(suffix, "mp4v")), fps, size)
    if not writer.isOpened():
        writer.release()
        raise OptionError("annotate", f"{name or path}: OpenCV cannot write {suffix or 'this'} video here; try .mp4")
    return writer


@dataclass
class StreamRun:
    """What `run_stream` read: frames, the last one's time, the stream's frame rate, the seconds it took,
    and whether Ctrl-C cut it short (what was read is kept)."""

    frames: int = 0
    time_s: float = 0.0
    fps: float = 25.0
    seconds: float = 0.0
    interrupted: bool = False


def run_stream(
    capture,
    analysis: VideoAnalysis,
    every: int = 1,
    clock=None,
    duration: float = 0.0,
    annotate: str = "",
    show: bool = False,
    progress: bool = True,
) -> StreamRun:
    """Read frames from an opened `cv2.VideoCapture` until it ends (or after `duration` seconds, on Ctrl-C,
    or q in the window): every `every`-th frame analysed into `analysis` (faces tracked and smoothed); with
    `annotate` (a video path) or `show` (a window) each frame drawn with its faces' boxes and track labels.
    `clock`: the live time of each frame (None: a file's frame index over its frame rate). The capture is
    released at the end."""
    import cv2
    from tqdm import tqdm

    from affect_keras.deploy.drawing import annotate as draw, track_label

    names = analysis.analyser.predictor.class_names
    run = StreamRun(fps=capture.get(cv2.CAP_PROP_FPS) or 25.0)
    total = None if clock else int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    writer, shown, start = None, [], time.perf_counter()
    # written under a temporary name, moved into place when whole: a kill leaves the earlier video as it was
    final = Path(annotate or "unused.mp4")
    writing = final.with_name(f".{final.name}.partial-{os.getpid()}{final.suffix}")
    finished = False
    try:
        if annotate and all(size):  # the writer checked before the work
            writer = video_writer(str(writing), run.fps, size, annotate)
        with tqdm(total=total, desc="frames", unit="frame", disable=not progress) as bar:
            for frame, time_s, rgb in read_frames(capture, clock):
                if duration and run.frames and time_s > duration:
                    break
                run.frames, run.time_s = run.frames + 1, time_s
                if frame % every == 0:
                    shown = analysis.add(frame, time_s, rgb)
                if annotate or show:
                    labels = [track_label(t, names) for t in shown]
                    bgr = cv2.cvtColor(np.asarray(draw(rgb, [t.face for t in shown], names, labels)), cv2.COLOR_RGB2BGR)
                    if annotate:
                        if writer is None:  # a stream that did not say its size
                            writer = video_writer(str(writing), run.fps, (rgb.shape[1], rgb.shape[0]), annotate)
                        writer.write(bgr)
                    if show:
                        cv2.imshow(WINDOW, bgr)
                        if cv2.waitKey(1) & 0xFF == ord("q"):
                            break
                bar.update()
        finished = True
    except KeyboardInterrupt:
        run.interrupted = finished = True  # what was read is written
    finally:
        capture.release()
        if writer is not None:
            writer.release()
        if annotate and writer is not None and finished:
            os.replace(writing, annotate)
        elif annotate:  # a writer that could not open may still have left an empty file
            writing.unlink(missing_ok=True)
        if show:
            cv2.destroyAllWindows()
    run.seconds = time.perf_counter() - start
    return run
