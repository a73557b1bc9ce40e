"""A photo's faces and what a model says of each: detection, framing as the model's training faces were
framed, and the model's outputs. predict.py runs this on each image and video frame; `predict` is the same
for a program."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affect_keras.data.faces import DEFAULT_PREDICT_DETECTOR, NO_FACE, Framing, face_crops
from affect_keras.data.faces import Detection
from affect_keras.models.presets import DEFAULT_PRESET
from affect_keras.heads import EXPRESSION, VA


# what predict says of a face: "ok" (it answers), or why it does not name an expression
OK, UNCERTAIN, TOO_SMALL, UNSURE = "ok", "uncertain", "face too small", "unsure face"


@dataclass(frozen=True)
class Gate:
    """When predict does not answer for a face (it still reports the face's probabilities).

    Args:
        min_confidence: a face whose top probability is below this is `uncertain` (0: never).
        min_face_score: a detection scored below this is an `unsure face` (0: never).
        small_faces: a face smaller than the model's input side is `face too small` (upscaled, it is guessed
            from fewer pixels than the model was trained on).
    """
    min_confidence: float = 0.0
    min_face_score: float = 0.0
    small_faces: bool = False

    def status(self, face, probabilities: np.ndarray | None, image_size: int) -> str:
        if self.small_faces and min(face.box[2:]) < image_size:
            return TOO_SMALL
        if face.score < self.min_face_score:
            return UNSURE
        if probabilities is not None and float(probabilities.max()) < self.min_confidence:
            return UNCERTAIN
        return OK


@dataclass
class FaceResult:
    box: tuple[int, int, int, int]
    probabilities: np.ndarray | None  # None: the model has no expression output (a V/A model)
    va: np.ndarray | None = None  # valence, arousal, where the model predicts them
    score: float = 1.0  # the detector's score (1 for a crop analysed whole)
    status: str = OK  # `Gate.status`

    @property
    def answered(self) -> bool:
        return self.status == OK

    def va_text(self) -> str:
        return "" if self.va is None else f"valence {self.va[0]:+.3f}, arousal {self.va[1]:+.3f}"


class Analyser:
    """Faces of one RGB frame and their probabilities."""

    def __init__(self, model: Path, detector: str | None = DEFAULT_PREDICT_DETECTOR, crop: str | None = None,
                 margin: float | None = None, align: bool | None = None, min_face: int = 24, gate: Gate = Gate(),
                 engine: str | None = None):
        from affect_keras.data.faces import detector as build_detector
        from affect_keras.models import loading
        self.predictor = loading.load(model, engine=engine)
        self.detector = build_detector(detector, min_face, DETECTOR_THREADS) if detector else None
        # the model's recorded framing, with what the user said (None: not said) taking precedence
        self.framing = Framing.from_dict(self.predictor.framing, crop=crop, margin=margin, align=align)
        self.gate = gate

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
        size = self.predictor.image_size
        return [FaceResult(face.box, None if probabilities is None else probabilities[k],
                           None if va is None else va[k], float(face.score),
                           self.gate.status(face, None if probabilities is None else probabilities[k], size))
                for k, face in enumerate(found)], outcome


DETECTOR_THREADS = min(2, os.cpu_count() or 1)  # one image at a time: the detector may use two cores
FACE_SIZED = 320  # an image no larger than this (and about square) with no face found is taken as a face crop
OUTCOMES = {"face": "face found", "crop": "face crop (--no-detect)", "none": NO_FACE,
            "whole": "no face detected; face-sized image analysed whole", "unreadable": "unreadable"}


def face_sized(rgb: np.ndarray) -> bool:
    height, width = rgb.shape[:2]
    return max(height, width) <= FACE_SIZED and 0.75 <= width / height <= 4 / 3


def predict(image: str | Path | np.ndarray, model: str | Path = DEFAULT_PRESET, detector: str | None = DEFAULT_PREDICT_DETECTOR,
            crop: str | None = None, margin: float | None = None, align: bool | None = None,
            min_confidence: float = 0.0, min_face_score: float = 0.0, gate_small_faces: bool = False,
            engine: str | None = None) -> list[dict]:
    """The faces of one photo and the model's outputs for each, largest face first.

    Args:
        image: a path to an image (read upright by its EXIF tag) or an (h, w, 3) uint8 RGB array.
        model: a shipped preset's name, a preset or run directory, a .keras file, an exported SavedModel,
            .tflite or .onnx (`affect_keras.models.loading.KINDS`).
        detector: a `data.faces.DETECTORS` name, or None when the image is itself a face crop.
        crop: the framing, "box" or "tight" (`data.faces.CROPS`); None: what the model records.
        margin: widen the framing by this fraction of the face on each side; None: the model's.
        align: level the eyes (True) or not (False); None: the model's.
        min_confidence: below this top probability a face's `status` is "uncertain" (0: never).
        min_face_score: below this detection score a face's `status` is "unsure face" (0: never).
        gate_small_faces: a face smaller than the model's input has the `status` "face too small".
        engine: what runs the model (`models.loading.ENGINES`: litert, onnx, keras, litert-int8); None: the
            lightest installed one that can (the shipped preset: LiteRT, no keras).

    Returns one dict per face: `box` (x, y, width, height), `score` (the detector's), `status` ("ok", or
    why the face gets no answer: "uncertain", "face too small", "unsure face"), `probabilities` ({class:
    p}) where the model classifies expressions, `va` ((valence, arousal)) where it predicts them.

    Examples:
        >>> import affect_keras
        >>> faces = affect_keras.predict("photo.jpg")
        >>> max(faces[0]["probabilities"].items(), key=lambda kv: kv[1])
    """
    from affect_keras.data.images import load_rgb
    rgb = np.asarray(load_rgb(Path(image))) if not isinstance(image, np.ndarray) else image
    analyser = _analysers(str(model), detector, crop, margin, align,
                          Gate(min_confidence, min_face_score, gate_small_faces), engine)
    faces, _ = analyser.analyse(rgb)
    names = analyser.predictor.class_names
    return [{"box": face.box, "score": face.score, "status": face.status,
             **({"probabilities": dict(zip(names, map(float, face.probabilities)))}
                if face.probabilities is not None else {}),
             **({"va": tuple(map(float, face.va))} if face.va is not None else {})} for face in faces]


_cache: dict = {}


def _analysers(*key) -> Analyser:
    """One Analyser per (model, detector, framing) in a process: loading a model takes seconds."""
    if key not in _cache:
        model, detector, crop, margin, align, gate, engine = key
        _cache[key] = Analyser(Path(model), detector, crop, margin, align, gate=gate, engine=engine)
    return _cache[key]
