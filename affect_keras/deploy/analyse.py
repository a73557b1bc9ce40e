"""A photo's faces and what a model says of each: detection, framing as the model's training faces were
framed, and the model's outputs. predict.py runs this on each image and video frame; `predict` is the same
for a program."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affect_keras.data.faces import DEFAULT_DETECTOR, NO_FACE, Framing, face_crops
from affect_keras.data.faces import Detection
from affect_keras.models.presets import DEFAULT_PRESET
from affect_keras.heads import EXPRESSION, VA


@dataclass
class FaceResult:
    box: tuple[int, int, int, int]
    probabilities: np.ndarray | None  # None: the model has no expression output (a V/A model)
    va: np.ndarray | None = None  # valence, arousal, where the model predicts them

    def va_text(self) -> str:
        return "" if self.va is None else f"valence {self.va[0]:+.3f}, arousal {self.va[1]:+.3f}"


class Analyser:
    """Faces of one RGB frame and their probabilities."""

    def __init__(self, model: Path, detector: str | None = DEFAULT_DETECTOR, crop: str | None = None,
                 margin: float | None = None, align: bool | None = None, min_face: int = 24):
        from affect_keras.data.faces import detector as build_detector
        from affect_keras.models import loading
        self.predictor = loading.load(model)
        self.detector = build_detector(detector, min_face) if detector else None
        # the model's recorded framing, with what the user said (None: not said) taking precedence
        self.framing = Framing.from_dict(self.predictor.framing, crop=crop, margin=margin, align=align)

    def __call__(self, rgb: np.ndarray) -> list[FaceResult]:
        return self.analyse(rgb)[0]

    def analyse(self, rgb: np.ndarray) -> tuple[list[FaceResult], str]:
        """(faces, outcome): the detected faces; with none, an image that is itself about face-sized (most
        datasets' tight crops, which the detector often misses) is analysed whole, and says so."""
        whole = [Detection((0, 0, rgb.shape[1], rgb.shape[0]))]
        framing = self.framing
        if self.detector is None:
            found, outcome = whole, OUTCOMES["crop"]
        else:
            found = self.detector(rgb)
            outcome = OUTCOMES["face"]
            if not found:
                found, outcome = (whole, OUTCOMES["whole"]) if face_sized(rgb) else ([], OUTCOMES["none"])
        if not found:
            return [], outcome
        if outcome != OUTCOMES["face"]:  # the image is the face: use it as it is
            framing = Framing("box", 0.0, align=False)
        outputs = self.predictor.outputs(face_crops(rgb, found, self.predictor.image_size, framing))
        probabilities, va = outputs.get(EXPRESSION), outputs.get(VA)
        return [FaceResult(face.box, None if probabilities is None else probabilities[k], None if va is None else va[k])
                for k, face in enumerate(found)], outcome


FACE_SIZED = 320  # an image no larger than this (and about square) with no face found is taken as a face crop
OUTCOMES = {"face": "face found", "crop": "face crop (--no-detect)", "none": NO_FACE,
            "whole": "no face detected; face-sized image analysed whole", "unreadable": "unreadable"}


def face_sized(rgb: np.ndarray) -> bool:
    height, width = rgb.shape[:2]
    return max(height, width) <= FACE_SIZED and 0.75 <= width / height <= 4 / 3


def predict(image: str | Path | np.ndarray, model: str | Path = DEFAULT_PRESET, detector: str | None = DEFAULT_DETECTOR,
            crop: str | None = None, margin: float | None = None, align: bool | None = None
            ) -> list[dict]:
    """The faces of one photo and the model's outputs for each, largest face first.

    Args:
        image: a path to an image (read upright by its EXIF tag) or an (h, w, 3) uint8 RGB array.
        model: a shipped preset's name, a preset or run directory, a .keras file, an exported SavedModel,
            .tflite or .onnx (`affect_keras.models.loading.KINDS`).
        detector: a `data.faces.DETECTORS` name, or None when the image is itself a face crop.
        crop: the framing, "box" or "tight" (`data.faces.CROPS`); None: what the model records.
        margin: widen the framing by this fraction of the face on each side; None: the model's.
        align: level the eyes (True) or not (False); None: the model's.

    Returns one dict per face: `box` (x, y, width, height), `probabilities` ({class: p}) where the model
    classifies expressions, `va` ((valence, arousal)) where it predicts them.

    Examples:
        >>> import affect_keras
        >>> faces = affect_keras.predict("photo.jpg")
        >>> max(faces[0]["probabilities"].items(), key=lambda kv: kv[1])
    """
    from affect_keras.data.images import load_rgb
    rgb = np.asarray(load_rgb(Path(image))) if not isinstance(image, np.ndarray) else image
    analyser = _analysers(str(model), detector, crop, margin, align)
    faces, _ = analyser.analyse(rgb)
    names = analyser.predictor.class_names
    return [{"box": face.box,
             **({"probabilities": dict(zip(names, map(float, face.probabilities)))}
                if face.probabilities is not None else {}),
             **({"va": tuple(map(float, face.va))} if face.va is not None else {})} for face in faces]


_cache: dict = {}


def _analysers(*key) -> Analyser:
    """One Analyser per (model, detector, framing) in a process: loading a model takes seconds."""
    if key not in _cache:
        model, detector, crop, margin, align = key
        _cache[key] = Analyser(Path(model), detector, crop, margin, align)
    return _cache[key]
