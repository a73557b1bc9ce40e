"""A photo's faces and what a model says of each: detection, framing as the model's training faces were
framed, and the model's outputs. predict.py runs this on each image and video frame; `predict` is the same
for a program."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affect_keras.data.faces import DEFAULT_PREDICT_DETECTOR, NO_FACE, Detection, Framing, face_crops
from affect_keras.data.images import uint8_values
from affect_keras.deploy.config import AnalysisConfig
from affect_keras.models.loading import Loaded
from affect_keras.models.presets import DEFAULT_PRESET
from affect_keras.tasks import EXPRESSION, VA


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
    landmarks: np.ndarray | None = None  # (6, 2) pixels, `data.faces.LANDMARKS`, where the detector gives them

    @property
    def answered(self) -> bool:
        return self.status == OK

    def va_text(self) -> str:
        return "" if self.va is None else f"valence {self.va[0]:+.3f}, arousal {self.va[1]:+.3f}"


class Analyser:
    """Faces of one RGB frame and their probabilities."""

    def __init__(
        self,
        model: str | Path | Loaded,
        detector: str | None = DEFAULT_PREDICT_DETECTOR,
        crop: str | None = None,
        margin: float | None = None,
        align: bool | None = None,
        min_face: int = 24,
        gate: Gate = Gate(),
        engine: str | None = None,
        trust_saved_model: bool = False,
        threads: int | None = None,
    ):
        from affect_keras.data.faces import detector as build_detector
        from affect_keras.models import loading

        if isinstance(model, loading.Loaded):  # a model already loaded, read with other settings
            self.predictor, model = model, model.path
        else:
            with loading.inference_threads(threads):
                self.predictor = loading.load(model, engine=engine, trust_saved_model=trust_saved_model)
        self.detector = build_detector(detector, min_face, threads or DETECTOR_THREADS) if detector else None
        # the model's recorded framing, with what the user said (None: not said) taking precedence; a
        # recorded value that is not valid is the model file's fault, not that of a flag the user never gave
        given = {"crop": crop, "margin": margin, "align": align}
        for key, value in dict(self.predictor.framing or {}).items():
            if key in given and given[key] is None:
                try:
                    Framing.from_dict({key: value})
                except (ValueError, TypeError) as error:
                    raise loading.ModelFileError(
                        f"{model}: its recorded framing {key}={str(value)[:40]!r} is not "
                        f"valid ({getattr(error, 'reason', error)}); it is damaged, or "
                        f"give --{key}"
                    ) from None
        self.framing = Framing.from_dict(self.predictor.framing, **given)
        self.gate = gate

    @classmethod
    def from_config(
        cls, config: AnalysisConfig, predictor: Loaded | None = None, threads: int | None = None
    ) -> "Analyser":
        """The analyser of the settings (`AnalysisConfig`, or a config that extends it): how predict.py,
        `predict` and `predict_video` build theirs. `predictor`: the model of `config.model`, loaded
        already (the service reads one model with each request's settings); `threads`: the CPU threads of
        the model and the detector (None: their defaults, for one analysis at a time)."""
        return cls(
            config.model if predictor is None else predictor,
            None if config.no_detect else config.detector,
            config.crop,
            config.margin,
            config.align,
            config.min_face,
            Gate(config.min_confidence, config.min_face_score, config.gate_small_faces),
            config.engine,
            config.trust_saved_model,
            threads,
        )

    def __call__(self, rgb: np.ndarray) -> list[FaceResult]:
        return self.analyse(rgb)[0]

    def analyse(self, rgb: np.ndarray) -> tuple[list[FaceResult], str]:
        """(faces, outcome): the detected faces; with none, an image that is itself about face-sized (most
        datasets' tight crops, which the detector often misses) is analysed whole, and says so."""
        rgb = as_rgb(rgb)
        if min(rgb.shape[:2]) < SMALLEST:
            return [], OUTCOMES["tiny"]
        whole = [Detection((0, 0, rgb.shape[1], rgb.shape[0]))]
        framing = self.framing
        if self.detector is None:
            found, outcome = whole, OUTCOMES["crop"]
        else:
            found = self.detector(rgb)
            outcome = OUTCOMES["face"]
            if not found:
                found, outcome = (
                    (whole, OUTCOMES["whole"]) if face_sized(rgb, self.predictor.image_size) else ([], OUTCOMES["none"])
                )
        if not found:
            return [], outcome
        if outcome != OUTCOMES["face"]:  # the image is the face: use it as it is
            framing = Framing("box", 0.0, align=False)
        outputs = self.predictor.outputs(face_crops(rgb, found, self.predictor.image_size, framing))
        probabilities, va = outputs.get(EXPRESSION), outputs.get(VA)
        size = self.predictor.image_size
        return [
            FaceResult(
                face.box,
                None if probabilities is None else probabilities[k],
                None if va is None else va[k],
                float(face.score),
                self.gate.status(face, None if probabilities is None else probabilities[k], size),
                face.landmarks,
            )
            for k, face in enumerate(found)
        ], outcome


DETECTOR_THREADS = min(2, os.cpu_count() or 1)  # one image at a time: the detector may use two cores
FACE_SIZED = 320  # an image no larger than this (and about square) with no face found is taken as a face crop
SMALLEST = 8  # an image narrower than this, in pixels, holds nothing to analyse (not even a face crop)
OUTCOMES = {
    "face": "face found",
    "crop": "face crop (--no-detect)",
    "none": NO_FACE,
    "whole": "no face detected; face-sized image analysed whole",
    "unreadable": "unreadable",
    "tiny": f"image under {SMALLEST} px, not analysed",
}


def face_sized(rgb: np.ndarray, image_size: int = 0) -> bool:
    """Whether an image in which no face was found may be a face crop itself: about square, no larger than
    `FACE_SIZED` and no smaller than the model's input side `image_size` (a smaller picture would be
    guessed from fewer pixels than any face the model was trained on)."""
    height, width = rgb.shape[:2]
    return image_size <= min(height, width) and max(height, width) <= FACE_SIZED and 0.75 <= width / height <= 4 / 3


def as_rgb(image) -> np.ndarray:
    """An (h, w, 3) uint8 RGB array of an image given to `predict`: a path or PIL image (read upright by
    its EXIF tag, any mode converted), or an array: grey (h, w) or (h, w, 1), RGB, RGBA (alpha dropped),
    of any integer type with values in 0-255, or float with values in [0, 1] (scaled by 255) or 0-255.
    Anything else raises ValueError (or TypeError) saying what was given."""
    from PIL import Image

    from affect_keras.data.images import ImageError, load_rgb

    if isinstance(image, (str, Path)):
        try:
            return np.asarray(load_rgb(Path(image)))
        except ImageError as error:
            raise ValueError(f"{image}: {error}") from None
    if isinstance(image, Image.Image):
        from affect_keras.data.images import _rgb

        return np.asarray(_rgb(image, upright=True))
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"image must be a path, a PIL image or an (h, w, 3) uint8 RGB array, not {type(image).__name__}"
        )
    array = image
    if array.ndim == 3 and array.shape[-1] in (1, 3, 4):
        array = array[..., :3] if array.shape[-1] == 4 else array
    elif array.ndim != 2:
        raise ValueError(f"image must be one (h, w, 3) RGB array (or (h, w) grey), not an array of shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"image is empty (shape {array.shape})")
    array = uint8_values(array, "image")
    if array.ndim == 2 or array.shape[-1] == 1:
        array = np.repeat(array.reshape(array.shape[0], array.shape[1], 1), 3, axis=-1)
    return np.ascontiguousarray(array)


def predict(
    image: str | Path | np.ndarray, model: str | Path | Loaded = DEFAULT_PRESET, **settings: str | float | bool | None
) -> list[dict]:
    """The faces of one photo and the model's outputs for each, largest face first.

    Args:
        image: a path to an image or a PIL image (read upright by its EXIF tag), or an (h, w, 3) uint8 RGB
            array (also grey, RGBA, other integer types in 0-255, float in [0, 1]: `as_rgb`).
        model: a shipped preset's name, a preset or run directory, a .keras file, an exported SavedModel,
            .tflite or .onnx (`affect_keras.models.loading.KINDS`), or a model `load_model` returned.
        **settings: any other analysis setting, by its `AnalysisConfig` name (predict.py's flag without the
            dashes: detector, crop, margin, align, min_face, min_confidence, min_face_score, gate_small_faces,
            engine, trust_saved_model); each is checked there, and documented once.

    Returns one dict per face (`face_dict`): `box` (x, y, width, height), `score` (the detector's),
    `status` ("ok", or why the face gets no answer: "uncertain", "face too small", "unsure face"),
    `landmarks` (the eyes, nose tip, mouth and ears in pixels, or None), `probabilities` ({class: p}) and
    `expression` (the answer, None where the status withholds it) where the model classifies expressions,
    `va` ((valence, arousal)) where it predicts them.

    Examples:
        A photo of one smiling face, read by the shipped preset:

        >>> import affect_keras
        >>> faces = affect_keras.predict("photo.jpg")
        >>> len(faces), faces[0]["status"]
        (1, 'ok')
        >>> max(faces[0]["probabilities"], key=faces[0]["probabilities"].get)
        'Happy'
    """
    rgb = as_rgb(image)
    analyser = analyser_for(model, settings)
    faces, _ = analyser.analyse(rgb)
    return [face_dict(face, analyser.predictor.class_names) for face in faces]


def face_dict(face: FaceResult, names: list[str]) -> dict:
    """One face as `predict` returns it (and the HTTP service answers it): `box`, `score`, `status`,
    `landmarks` ([[x, y], ...] in `data.faces.LANDMARKS` order, or None), and where the model has them
    `probabilities` ({class: p}) with `expression` (the most probable class where the face is answered,
    else None), and `va` ((valence, arousal))."""
    result = {
        "box": tuple(int(v) for v in face.box),
        "score": float(face.score),
        "status": face.status,
        "landmarks": None if face.landmarks is None else np.asarray(face.landmarks, float).round(1).tolist(),
    }
    if face.probabilities is not None:
        result["probabilities"] = dict(zip(names, map(float, face.probabilities)))
        result["expression"] = names[int(face.probabilities.argmax())] if face.answered else None
    if face.va is not None:
        result["va"] = tuple(map(float, face.va))
    return result


_cache: dict = {}


def analyser_for(model: str | Path | Loaded, settings: dict, config_class=AnalysisConfig) -> Analyser:
    """The analyser `predict` and `predict_video` use: `model` (a name or path, or a model `load_model`
    returned) read with `settings` (checked by `config_class`); one per model and settings in a process."""
    if not isinstance(model, Loaded):
        return _analysers(config_class(model=model, **settings))
    config = config_class(model=str(model.path), **settings)
    return _analysers(config, model)


def _analysers(config: AnalysisConfig, loaded: Loaded | None = None) -> Analyser:
    """One Analyser per settings in a process: loading a model takes seconds. A model is known by its path
    and the size and time of change of each of its files: a file replaced, added or removed loads the model
    again. A model loaded already (`loaded`) is known by its id (its analyser here holds it: the id stays
    its own)."""
    import dataclasses

    if loaded is not None:
        key = (("loaded", id(loaded)), *dataclasses.astuple(config))
        if key not in _cache:
            _cache[key] = Analyser.from_config(config, loaded)  # which holds `loaded` (its predictor)
        return _cache[key]
    key = (config.model, model_stamp(config.model), *dataclasses.astuple(config))
    if key not in _cache:
        for old in [k for k in _cache if k[0] == key[0]]:  # an older version of the same model
            del _cache[old]
        _cache[key] = Analyser.from_config(config)
    return _cache[key]


def model_stamp(model: str | Path) -> tuple:
    """(name, size, modification time) of every file of a model (a shipped preset's, a folder's, a file);
    () where there is nothing (the loader then says what is missing)."""
    from affect_keras.models.presets import preset_path

    path = preset_path(model) or Path(model)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
    stamps = []
    for file in files:
        try:
            info = file.stat()
        except OSError:
            continue
        stamps.append((str(file), info.st_size, info.st_mtime_ns))
    return tuple(stamps)
