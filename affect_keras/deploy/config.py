"""The analysis settings (`AnalysisConfig`: model, engine, detector, framing, gates), shared by `predict`,
`predict_video`, `Analyser.from_config` and every command that analyses photos, and predict.py's own
(`PredictConfig`: input, video, outputs), declared once (`options.setting`): the command's flags are
generated from them, the configs check each and the rules between them, and predict saves them resolved
beside what it writes. The framing settings are prepare's (`data.faces.framing_setting`), with None: what
the model records. Imports no keras: the runtime path stays light."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from affect_keras import __version__
from affect_keras.data.faces import DEFAULT_PREDICT_DETECTOR, DETECTORS, framing_setting
from affect_keras.data.images import printable_name
from affect_keras.models.loading import ENGINES, module_installed
from affect_keras.models.presets import DEFAULT_PRESET, shipped_presets
from affect_keras.options import check, check_fields, setting, version_check

SMOOTH = 0.5  # seconds: the default half-life of the video smoothing (predict.py --smooth)
# the files read as videos: what phones, cameras and camcorders write (OpenCV's FFmpeg reads each)
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".ts", ".mts", ".m2ts", ".3gp", ".wmv", ".flv"}
VIDEO_SUFFIXES |= {".mpg", ".mpeg"}

GROUPS = {  # the topics of predict.py --help, in order: {group: (title, description)}
    "input": ("input", None),
    "model": ("model", None),
    "faces": ("faces", None),
    "answer": (
        "when not to answer",
        "A face that does not pass is reported with its probabilities and a status (CSV column `status`) instead "
        "of an expression",
    ),
    "video": (
        "video",
        "Each face is followed across frames (a track, with an ID) and its probabilities are smoothed over time",
    ),
    "output": ("output", None),
}


NOT_UTF8 = "names a file whose name is not UTF-8, which OpenCV cannot open"


def _fraction(value) -> bool:
    return 0 <= value <= 1


@dataclass(kw_only=True)
class AnalysisConfig:
    """How a photo's faces are found, framed, read and gated: the settings `predict`, `predict_video` and
    predict.py share (`Analyser.from_config` builds the analyser of them).

    Examples:
        >>> AnalysisConfig(detector="haar", min_confidence=0.5).engine is None
        True
    """

    model: str = setting(
        DEFAULT_PRESET,
        group="model",
        help=f"a shipped preset's name ({', '.join(shipped_presets())}, ResNet18 trained on FER+), a preset "
        "folder, a run directory, a .keras file, or an exported SavedModel folder, .tflite or .onnx file",
    )
    engine: str | None = setting(
        None,
        group="model",
        choices=ENGINES,
        help="what runs the model: litert (LiteRT), onnx (ONNX Runtime), keras, or litert-int8 (a preset's int8 "
        "variant, smaller and faster); default: the lightest installed one that can run it (the shipped preset: "
        "litert, without keras or TensorFlow)",
    )
    trust_saved_model: bool = setting(
        False,
        group="model",
        help="run a SavedModel --model: a SavedModel is a program that can read and write files, so it runs only "
        "with this flag; .keras, .tflite and .onnx files are safe to load",
    )
    detector: str | None = setting(
        DEFAULT_PREDICT_DETECTOR,
        group="faces",
        choices=DETECTORS,
        help="blazeface-both: MediaPipe's BlazeFace, its short- and full-range models on each image, faces at any "
        "distance, with landmarks, a large image also read in tiles (a class, a meeting); blazeface-whole: both "
        "models on the whole image only (faster on large images, misses small faces in them); "
        "blazeface: the short-range model alone (close-ups, 2.5x as fast); "
        "blazeface-full: the full-range model alone (small faces far away); haar: OpenCV's frontal-face cascade, "
        "no landmarks",
    )  # (None, in the API: the images are face crops)
    no_detect: bool = setting(False, group="faces", help="the images are already face crops")
    crop: str | None = framing_setting("crop", None)
    margin: float | None = framing_setting("margin", None)
    align: bool | None = framing_setting("align", None)
    min_face: int = setting(
        24, group="faces", check=(lambda v: v >= 1, "must be >= 1"), help="smallest face side searched, pixels"
    )
    min_confidence: float = setting(
        0.0,
        group="answer",
        metavar="P",
        check=(_fraction, "must be in [0, 1]"),
        help="a face whose top probability is below P is `uncertain` (0: never)",
    )
    min_face_score: float = setting(
        0.0,
        group="answer",
        metavar="S",
        check=(_fraction, "must be in [0, 1]"),
        help="a detection scored below S is an `unsure face` (0: never)",
    )
    gate_small_faces: bool = setting(
        False, group="answer", help="a face smaller than the model's input side is `face too small`"
    )

    def __post_init__(self):
        check_fields(self)


@dataclass(kw_only=True)
class VideoConfig(AnalysisConfig):
    """The analysis settings and how a video's faces are followed: which frames are analysed and how a
    track's outputs are smoothed (predict.py's video and camera, the service's video and stream)."""

    every: int = setting(5, group="video", check=(lambda v: v >= 1, "must be >= 1"), help="analyse every N-th frame")
    smooth: float = setting(
        SMOOTH,
        group="video",
        metavar="SECONDS",
        check=(lambda v: v >= 0, "must be >= 0 seconds"),
        help="half-life of the smoothing: an output this old weighs half the newest (0: off)",
    )


@dataclass(kw_only=True)
class PredictConfig(VideoConfig):
    """What predict.py reads, how it analyses it (`AnalysisConfig`) and what it writes (its flags).

    Examples:
        >>> config = PredictConfig(input="photos/", csv="faces.csv", min_confidence=0.5)
        >>> config.validate()
    """

    input: str | None = setting(
        None, group="input", positional=True, help="an image, a folder of images, or a video (or --camera)"
    )
    top_k: int = setting(
        3, group="model", check=(lambda v: v >= 1, "must be >= 1"), help="expressions printed per face"
    )
    camera: str | None = setting(
        None,
        group="video",
        metavar="SOURCE",
        check=(
            lambda v: v is None or not v.isdigit() or int(v) < 10_000,
            "must be a camera's index below 10000, a URL or a file",
        ),
        help="read a live stream instead of INPUT: a camera's index (0: the first webcam), a stream's URL, or a "
        "video file read as if live; Ctrl-C stops",
    )
    duration: float = setting(
        0.0,
        group="video",
        metavar="SECONDS",
        check=(lambda v: v >= 0, "must be >= 0 seconds"),
        help="--camera: stop after this long (0: when the stream ends or on Ctrl-C)",
    )
    show: bool = setting(
        False,
        group="video",
        help="--camera: show the annotated stream in a window (needs OpenCV with its GUI, not the headless wheel); "
        "q stops",
    )
    tracks: str = setting(
        "",
        group="video",
        help="write one row per track: first and last time seen, share of each expression, the dominant one (a .csv)",
    )
    timeline: str = setting(
        "",
        group="video",
        help="write the timeline picture: one band per track, its smoothed probabilities over time (a .png)",
    )
    csv: str = setting("", group="output", help="write one row per face (folders: default predictions.csv)")
    annotate: str = setting(
        "",
        group="output",
        help="write a copy with boxes and labels: an image or video path, or a folder for a folder input",
    )
    version: str = setting(__version__, group="output", cli=False, check=version_check())

    def __post_init__(self):
        if isinstance(self.camera, int) and not isinstance(self.camera, bool):  # a camera's index
            self.camera = str(self.camera)
        check_fields(self)

    @property
    def video(self) -> bool:
        """Whether the input is a video or a camera (tracked, smoothed, a per-track summary)."""
        return self.camera is not None or Path(self.input or "").suffix.lower() in VIDEO_SUFFIXES

    def validate(self) -> None:
        """The rules between settings; OptionError naming the first that fails."""
        check(
            [
                ((self.input is None) != (self.camera is None), "input", "or --camera: give one of them"),
                (self.camera is not None or self.duration == 0, "duration", "is for --camera"),
                (self.camera is not None or not self.show, "show", "is for --camera"),
                (self.video or not self.tracks, "tracks", "is for a video or --camera"),
                (self.video or not self.timeline, "timeline", "is for a video or --camera"),
                (
                    not self.timeline or module_installed("matplotlib"),
                    "timeline",
                    "needs matplotlib, not installed here: pip install matplotlib",
                ),
                (
                    self.camera is None or bool(self.show or self.annotate or self.csv or self.tracks or self.timeline),
                    "camera",
                    ": nothing would be kept; give --show, --annotate, --csv, --tracks or --timeline",
                ),
                # OpenCV's video reader and writer end the process (a segmentation fault) on such a name
                *(
                    (
                        not (self.video and value and printable_name(value) != value),
                        option,
                        f"{NOT_UTF8}: rename the file",
                    )
                    for option, value in (("input", self.input), ("camera", self.camera), ("annotate", self.annotate))
                ),
            ]
        )
