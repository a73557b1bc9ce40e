"""Finding faces in photos, levelling them and framing them as a model was trained.

Three steps, each chosen by name:
- a detector (`DETECTORS`): MediaPipe's BlazeFace (short range, full range, or both on the same photo;
  shipped in the package, run by LiteRT) gives boxes and six landmarks; OpenCV's Haar cascade gives boxes
  only;
- alignment: the face is turned about its centre so that the eyes are level (needs landmarks);
- a framing (`CROPS`): what region around the face becomes the model's input: `tight`, a square on the
  face as in FER+, or `box`, the detector's box widened by a margin, as prepare_dataset.py crops
  AffectNet's boxes.

Nothing is downloaded: the BlazeFace files ship in `affect_keras/detectors/` (Apache-2.0, see the README
there) and the cascade ships inside the opencv wheel.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from affect_keras.data.images import ImageError, crop_box, load_rgb, write_jpeg
from affect_keras.litert import tflite_interpreter
from affect_keras.options import OptionError, setting

LANDMARKS = ("right eye", "left eye", "nose tip", "mouth", "right ear", "left ear")  # the subject's sides


@dataclass(frozen=True)
class Detection:
    """One detected face: `box` (x, y, width, height) in pixels, a score in [0, 1], and where the detector
    gives them, `landmarks` as a (6, 2) array of (x, y) pixels in the order of `LANDMARKS`."""

    box: tuple[int, int, int, int]
    score: float = 1.0
    landmarks: np.ndarray | None = None

    def eye_angle(self) -> float:
        """The eye line's angle to the horizontal in degrees, positive when the subject's left eye (on the
        image's right) lies lower; 0 without landmarks."""
        if self.landmarks is None:
            return 0.0
        (rx, ry), (lx, ly) = self.landmarks[0], self.landmarks[1]
        return math.degrees(math.atan2(ly - ry, lx - rx))


# ------------------------------------------------------------------------------------------------ BlazeFace


@dataclass(frozen=True)
class SSDSpec:
    """What MediaPipe's SSD anchor calculator needs for one BlazeFace model."""

    file: str
    input_size: int
    strides: tuple[int, ...]  # one per output layer; layers of equal stride share a grid
    anchors_per_layer: int  # 2: the aspect-1 anchor and its interpolated scale; 1: the first only
    border: float  # black border added on each side, a fraction of the photo's longer side (see BlazeFace)


BLAZEFACE = {
    "short": SSDSpec("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2, 0.2),
    "full": SSDSpec("face_detection_full_range.tflite", 192, (4,), 1, 0.0),
}


def ssd_anchors(spec: SSDSpec) -> np.ndarray:
    """(anchors, 2) centres in [0, 1]; every anchor is 1 x 1 (MediaPipe's `fixed_anchor_size`)."""
    centres = []
    for stride in dict.fromkeys(spec.strides):  # grids in order, each once
        repeats = spec.strides.count(stride) * spec.anchors_per_layer
        cells = math.ceil(spec.input_size / stride)
        grid = (np.arange(cells) + 0.5) / cells
        y, x = np.meshgrid(grid, grid, indexing="ij")
        centres.append(np.repeat(np.stack([x.ravel(), y.ravel()], 1), repeats, axis=0))
    return np.concatenate(centres).astype(np.float32)


def model_file(name: str) -> str:
    path = resources.files("affect_keras") / "detectors" / name
    if not path.is_file():
        raise RuntimeError(
            f"the face detector model {name} is missing from {path.parent}: reinstall "
            f"affect-keras (the file ships in the package), or use --detector haar"
        )
    return str(path)


class BlazeFace:
    """MediaPipe's BlazeFace detector: faces with six landmarks, in the image's pixels, largest first.

    The photo is padded to a square (so faces keep their shape), resized to the model's input and scaled to
    [-1, 1]; boxes come from the SSD anchors, and overlapping ones are merged by MediaPipe's weighted
    non-maximum suppression (a score-weighted mean of the overlapping boxes and landmarks).

    Two additions to MediaPipe's recipe, measured on muxspace_subset's 1,926 photos (faces that fill most
    of the photo, as in face datasets): the short-range model misses a face that reaches the photo's edges,
    so the photo gets a black border of 20 % of its longer side first (photos with no face 42 -> 9); and a
    detection lying mostly inside a larger face is a part of it, not another face (photos with several
    faces 10 -> 1). The border makes far-away faces smaller still: use the full-range model for those.

    Args:
        model: "short" (faces filling much of the photo: portraits, webcams, datasets' photos) or "full"
            (small faces further away, up to about 5 m).
        min_score: a detection's lowest score.
        min_size: smallest face side kept, in the photo's pixels.
        overlap: intersection over union above which two detections are one face.
        border: the black border's width, a fraction of the photo's longer side; None: the model's own
            (`SSDSpec.border`).
        threads: LiteRT's threads for the model (prepare runs one detector per worker process: 1).

    Examples:
        >>> faces = BlazeFace()(np.asarray(Image.open("photo.jpg").convert("RGB")))
        >>> faces[0].box, faces[0].eye_angle()
    """

    def __init__(
        self,
        model: str = "short",
        min_score: float = 0.5,
        min_size: int = 24,
        overlap: float = 0.3,
        border: float | None = None,
        threads: int = 1,
    ):
        if model not in BLAZEFACE:
            raise ValueError(f"BlazeFace model must be one of {', '.join(BLAZEFACE)}, not {model!r}")
        self.spec = BLAZEFACE[model]
        self.border = self.spec.border if border is None else border
        self.anchors = ssd_anchors(self.spec)
        self.min_score, self.min_size, self.overlap = min_score, min_size, overlap
        self.interpreter = tflite_interpreter(model_file(self.spec.file), threads=threads)
        self.interpreter.allocate_tensors()
        self._lock = threading.Lock()  # one interpreter, several of prepare's reader threads
        self._input = self.interpreter.get_input_details()[0]["index"]
        outputs = {tuple(d["shape"])[-1]: d["index"] for d in self.interpreter.get_output_details()}
        self._boxes, self._scores = outputs[16], outputs[1]  # by shape: the names differ between models

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        return self.detect(rgb.shape[:2], *self.square(rgb))

    def square(self, rgb: np.ndarray, size: int | None = None) -> tuple[np.ndarray, int, int, int]:
        """(input, side, left, top): the photo padded to a square of `side` pixels (the photo's top-left
        corner at (left, top)) and resized to `size` (default: the model's input side)."""
        import cv2

        height, width = rgb.shape[:2]
        border = round(self.border * max(height, width))
        side, size = max(height, width) + 2 * border, size or self.spec.input_size
        top, left = (side - height) // 2, (side - width) // 2
        square = cv2.copyMakeBorder(
            rgb, top, side - height - top, left, side - width - left, cv2.BORDER_CONSTANT, value=(0, 0, 0)
        )
        resized = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
        return resized, side, left, top

    def detect(self, shape: tuple[int, ...], resized: np.ndarray, side: int, left: int, top: int) -> list[Detection]:
        """The faces of a photo of `shape` (height, width) from its `square`."""
        height, width = shape[:2]
        size = self.spec.input_size
        with self._lock:
            self.interpreter.set_tensor(self._input, (resized.astype(np.float32) / 127.5 - 1.0)[None])
            self.interpreter.invoke()
            raw = self.interpreter.get_tensor(self._boxes)[0].reshape(-1, 8, 2) / size
            logits = self.interpreter.get_tensor(self._scores)[0, :, 0]
        scores = 1 / (1 + np.exp(-np.clip(logits, -80, 80)))  # exp(88) overflows float32
        keep = scores >= self.min_score
        if not keep.any():
            return []
        raw, scores, anchors = raw[keep], scores[keep], self.anchors[keep]
        points = raw.copy()  # [centre offset, size, 6 landmark offsets], as fractions of the square
        points[:, 0] += anchors
        points[:, 2:] += anchors[:, None]
        boxes = np.concatenate([points[:, 0] - points[:, 1] / 2, points[:, 0] + points[:, 1] / 2], 1)
        faces = []
        for members, score in weighted_nms(boxes, scores, self.overlap):
            weights = scores[members][:, None] / scores[members].sum()
            (x0, y0, x1, y1) = (boxes[members] * weights).sum(0) * side - [left, top, left, top]
            marks = (points[members, 2:] * weights[:, :, None]).sum(0) * side - [left, top]
            x0, y0, x1, y1 = max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1)
            if min(x1 - x0, y1 - y0) >= self.min_size:
                faces.append(
                    Detection(
                        (round(x0), round(y0), round(x1 - x0), round(y1 - y0)), float(score), marks.astype(np.float32)
                    )
                )
        return drop_nested(faces)


class BothRanges:
    """BlazeFace at every distance: both models on the same photo, their faces merged (`merge_faces`).

    The short-range model finds faces larger than about a quarter of the photo's side and the full-range
    model smaller ones, down to a few percent; neither finds the other's (measured on a 640 x 480 clip of
    three real faces of 150 to 170 px, `benchmarks/clips.py`: every face in 21 % of frames with the short-range
    model and its border, 3 % with the full-range one, 100 % with both, a face counting when 90 % of it is in
    the frame). Both run on the photo as it is; only
    where neither finds a face does the short-range model look again with its border, for a close-up that
    reaches the photo's edges (as `BlazeFace("short")` does).

    A photo much larger than the models' inputs (a class, a meeting: 30 faces of 100 px in a 1080p frame are
    10 px at the full-range model's 192) is also read in overlapping tiles (`tiles`), each by both models;
    a face cut by a tile's inner edge is left to the tile that holds it whole. On frames of 6 to 30
    real faces (`benchmarks/group_photos.py`) this finds 99 % of the faces where the photo read whole finds
    40 %, at about 4 times the time a frame.

    Args:
        min_size: smallest face side kept, in the photo's pixels.
        threads: LiteRT's threads for each model.
        overlap: intersection over union above which the two models' detections are one face.
        tiles: also read a large photo in tiles (False: the photo whole only, the faster `blazeface-whole`).
    """

    TILE_FROM = 3  # tiles for a photo whose longer side is at least this many full-range inputs (576 px)
    TILE_SHARE = 0.6  # a tile's side: this share of the photo's shorter side (at least two inputs, 384 px)

    def __init__(self, min_size: int = 24, threads: int = 1, overlap: float = 0.3, tiles: bool = True):
        self.near = BlazeFace("short", min_size=min_size, border=0.0, threads=threads)
        self.far = BlazeFace("full", min_size=min_size, border=0.0, threads=threads)
        self.close_up = BlazeFace("short", min_size=min_size, threads=threads)
        self.overlap, self.tiles = overlap, tiles

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        found, tiled = self.both(rgb), []
        for x, y, side in self.tile_grid(*rgb.shape[:2]) if self.tiles else ():
            inner = (x > 0, y > 0, x + side < rgb.shape[1], y + side < rgb.shape[0])  # edges inside the photo
            tile = self.both(rgb[y : y + side, x : x + side])
            tiled += [shifted(face, x, y) for face in tile if whole(face, side, inner)]
        kept, whole_photo = drop_groups(found + tiled, self.overlap), {id(face) for face in found}
        # a face the photo read whole found keeps that box (a video's boxes do not jump between passes);
        # the tiles add the faces it missed
        faces = merge_faces([face for face in kept if id(face) in whole_photo], self.overlap, nested=True)
        for face in merge_faces([face for face in kept if id(face) not in whole_photo], self.overlap, nested=True):
            if not faces or box_iou(face.box, [other.box for other in faces]).max() <= self.overlap:
                faces.append(face)
        return drop_nested(faces) or self.close_up(rgb)

    def both(self, rgb: np.ndarray) -> list[Detection]:
        """Both models' faces, the photo padded and resized once (to the full-range model's larger input)."""
        import cv2

        far = self.far.square(rgb)
        size = self.near.spec.input_size
        near = (cv2.resize(far[0], (size, size), interpolation=cv2.INTER_AREA), *far[1:])
        return self.near.detect(rgb.shape, *near) + self.far.detect(rgb.shape, *far)

    def tile_grid(self, height: int, width: int) -> list[tuple[int, int, int]]:
        """(x, y, side) of the square tiles of a photo, each row and column overlapping by a third of a side,
        the last on the photo's edge: tiles of `TILE_SHARE` of the shorter side, and where the photo is larger
        still, tiles of the whole shorter side (for faces too large for the small tiles' overlap and too small
        for the photo read whole); none for a photo smaller than `TILE_FROM` inputs."""
        size, short = self.far.spec.input_size, min(height, width)
        if max(height, width) < self.TILE_FROM * size:
            return []
        small = min(max(2 * size, round(self.TILE_SHARE * short)), short)
        grid = []
        for side in [small] + ([short] if short >= 1.5 * small else []):
            step = max(1, side - side // 3)

            def starts(length: int) -> list[int]:
                places = list(range(0, length - side + 1, step))
                return places + ([length - side] if places[-1] + side < length else [])

            grid += [(x, y, side) for y in starts(height) for x in starts(width)]
        return grid


def shifted(face: Detection, x: int, y: int) -> Detection:
    """A tile's face in the whole photo's pixels."""
    marks = None if face.landmarks is None else face.landmarks + np.array([x, y], np.float32)
    return Detection((face.box[0] + x, face.box[1] + y, *face.box[2:]), face.score, marks)


def drop_groups(faces: list[Detection], overlap: float = 0.3) -> list[Detection]:
    """Without a detection that holds the centres of two or more other faces, each less than half its side:
    a group of small faces read as one large one (a tile finds them apart). Of detections overlapping by
    more than `overlap` (IoU), only the best scored counts as another face."""
    distinct = merge_faces(faces, overlap, nested=True)
    centres = np.array([(x + w / 2, y + h / 2, w) for x, y, w, h in (f.box for f in distinct)]).reshape(-1, 3)

    def group(face: Detection) -> bool:
        x, y, w, h = face.box
        inside = (centres[:, 0] > x) & (centres[:, 0] < x + w) & (centres[:, 1] > y) & (centres[:, 1] < y + h)
        return int((inside & (centres[:, 2] < w / 2)).sum()) >= 2

    return [face for face in faces if not group(face)]


def whole(face: Detection, side: int, inner: tuple[bool, bool, bool, bool], slack: int = 2) -> bool:
    """Whether a tile's face lies whole in the tile: it touches none of the tile's `inner` edges (left,
    top, right, bottom: those inside the photo), where a face may be cut."""
    x, y, w, h = face.box
    touches = (x <= slack, y <= slack, x + w >= side - slack, y + h >= side - slack)
    return not any(inner_edge and touch for inner_edge, touch in zip(inner, touches))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over union of (x, y, width, height) boxes."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
    y1 = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
    return inter / np.maximum(union, 1e-9)


def merge_faces(faces: list[Detection], overlap: float = 0.3, nested: bool = False) -> list[Detection]:
    """Detections of several passes as one list: of those overlapping by more than `overlap` (IoU), the best
    scored; then `drop_nested` (unless `nested`)."""
    kept: list[Detection] = []
    for face in sorted(faces, key=lambda f: -f.score):
        if not kept or box_iou(face.box, [other.box for other in kept]).max() <= overlap:
            kept.append(face)
    return kept if nested else drop_nested(kept)


def drop_nested(faces: list[Detection], inside: float = 0.5) -> list[Detection]:
    """The faces largest first, without those lying mostly (`inside` of their area) within a larger one."""
    kept: list[Detection] = []
    for face in sorted(faces, key=lambda f: -f.box[2] * f.box[3]):
        x, y, w, h = face.box
        if not any(
            max(0, min(x + w, X + W) - max(x, X)) * max(0, min(y + h, Y + H) - max(y, Y)) > inside * w * h
            for X, Y, W, H in (k.box for k in kept)
        ):
            kept.append(face)
    return kept


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, overlap: float) -> list[tuple[np.ndarray, float]]:
    """Groups of overlapping detections (indices), each with its best score, best first."""
    order = np.argsort(-scores)
    groups = []
    while order.size:
        best = boxes[order[0]]
        rest = boxes[order]
        inter = np.clip(np.minimum(best[2], rest[:, 2]) - np.maximum(best[0], rest[:, 0]), 0, None) * np.clip(
            np.minimum(best[3], rest[:, 3]) - np.maximum(best[1], rest[:, 1]), 0, None
        )
        area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
        iou = inter / np.maximum(area(best) + area(rest) - inter, 1e-9)
        same = iou > overlap
        same[0] = True
        groups.append((order[same], float(scores[order[0]])))
        order = order[~same]
    return groups


# ------------------------------------------------------------------------------------------------ Haar


class Haar:
    """OpenCV's frontal-face Haar cascade (it ships inside the opencv wheel): boxes, no landmarks, so its
    faces are never aligned. Frontal, roughly upright faces only."""

    CASCADE = "haarcascade_frontalface_default.xml"

    def __init__(self, min_size: int = 24):
        import cv2

        self._cv2 = cv2
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + self.CASCADE)
        if self.cascade.empty():
            raise RuntimeError(
                f"OpenCV's {self.CASCADE} did not load from {cv2.data.haarcascades} "
                f"(OpenCV 5 no longer ships the cascades: pip install 'opencv-python-headless<5')"
            )
        self.min_size = min_size
        self._lock = threading.Lock()  # a cascade is not documented as safe across threads

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        gray = self._cv2.equalizeHist(self._cv2.cvtColor(rgb, self._cv2.COLOR_RGB2GRAY))
        with self._lock:
            boxes = self.cascade.detectMultiScale(
                gray, scaleFactor=1.1, minNeighbors=5, minSize=(self.min_size, self.min_size)
            )
        return drop_nested([Detection(tuple(int(v) for v in box)) for box in boxes])


# the detector registry: --detector name -> builder of (smallest face side in pixels, LiteRT threads)
DETECTORS: dict[str, Callable[[int, int], Callable[[np.ndarray], list[Detection]]]] = {
    "blazeface": lambda min_size, threads: BlazeFace("short", min_size=min_size, threads=threads),
    "blazeface-full": lambda min_size, threads: BlazeFace("full", min_size=min_size, threads=threads),
    "blazeface-both": lambda min_size, threads: BothRanges(min_size, threads),
    "blazeface-whole": lambda min_size, threads: BothRanges(min_size, threads, tiles=False),
    "haar": lambda min_size, threads: Haar(min_size),
}
# prepare's: a dataset photo's largest face, most often a close-up (the short-range model finds one in 99.5 %
# of muxspace_subset's photos, 2.5 times as fast as both models)
DEFAULT_DETECTOR = "blazeface"
# predict's: photos and videos with faces at any distance
DEFAULT_PREDICT_DETECTOR = "blazeface-both"


@lru_cache(maxsize=8)
def detector(name: str, min_size: int = 24, threads: int = 1) -> Callable[[np.ndarray], list[Detection]]:
    """The detector `name`, built once per process (prepare's workers each build their own)."""
    if name not in DETECTORS:
        raise OptionError("detector", f"must be one of {', '.join(DETECTORS)}, not {name!r}")
    return DETECTORS[name](min_size, threads)


# ------------------------------------------------------------------------------------------------ framing


def _tight(box: tuple[int, int, int, int], margin: float) -> tuple[float, float, float]:
    """A square on the face: centre x, y and side (the box's longer side, widened by `margin` each side)."""
    x, y, w, h = box
    return x + w / 2, y + h / 2, max(w, h) * (1 + 2 * margin)


# the framing registry: --crop name -> (centre x, centre y, side) of the square cropped, from (box, margin);
# `box` is None: the detector's box widened by the margin and clamped to the photo, as prepare crops
# AffectNet's boxes (not square: resizing then stretches it, as in training on such crops)
CROPS: dict[str, Callable | None] = {"tight": _tight, "box": None}


MARGIN_RULE = "must be a number in [0, 1]"


def margin_ok(value) -> bool:
    """The one rule of a framing's margin (checked by `Framing`, prepare's and predict's settings)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 <= value <= 1


@dataclass(frozen=True)
class Framing:
    """How a face becomes a model's input: a `CROPS` name, its margin, and whether to level the eyes.

    The defaults are what prepare --detect uses, and predict.py where a model records no framing (or a
    part of one): chosen on muxspace_subset (docs/deployment.md, "Faces in the wild"): the box beat the
    square and every margin; levelling the eyes helped neither the FER+ preset end to end nor the
    transfer of its backbone to the photos prepared with --detect."""

    crop: str = "box"
    margin: float = 0.0
    align: bool = False

    def __post_init__(self):
        if not isinstance(self.crop, str) or self.crop not in CROPS:
            raise OptionError("crop", f"must be one of {', '.join(CROPS)}, not {str(self.crop)[:40]!r}")
        if not margin_ok(self.margin):
            raise OptionError("margin", f"{MARGIN_RULE}, not {str(self.margin)[:40]!r}")
        if not isinstance(self.align, bool):
            raise OptionError("align", f"must be true or false, not {str(self.align)[:40]!r}")

    @classmethod
    def from_dict(cls, values: dict | None, **overrides) -> "Framing":
        """A recorded framing (a preset's `framing`; None: none recorded), with the options a user gave
        taking precedence, and the defaults for what neither says."""
        known = {k: v for k, v in dict(values or {}).items() if k in ("crop", "margin", "align")}
        return cls(**{**known, **{k: v for k, v in overrides.items() if v is not None}})

    def to_dict(self) -> dict:
        return {"crop": self.crop, "margin": self.margin, "align": self.align}

    def crop_face(self, image: Image.Image, face: Detection) -> Image.Image:
        """The face's region of `image`, levelled when `align` and the face has landmarks.

        An unturned `box` is cut as prepare_dataset.py cuts a dataset's box (clamped to the photo). Any
        other region is sampled by one affine warp about the face's centre, and what lies beyond the
        photo repeats its edge: black corners, which no training face has, cost the FER+ preset 1.7
        points of accuracy on muxspace_subset's aligned faces (0.608 against 0.625).
        """
        import cv2

        angle = face.eye_angle() if self.align else 0.0
        frame = CROPS[self.crop]
        if frame is None and abs(angle) < 0.5:
            return crop_box(image, face.box, self.margin)
        if frame is None:
            x, y, w, h = face.box
            cx, cy, width, height = x + w / 2, y + h / 2, w * (1 + 2 * self.margin), h * (1 + 2 * self.margin)
        else:
            cx, cy, width = frame(face.box, self.margin)
            height = width
        turn = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)  # counter-clockwise by `angle`, as PIL turns
        turn[:, 2] += (width / 2 - cx, height / 2 - cy)  # the face's centre to the region's centre
        region = cv2.warpAffine(
            np.asarray(image),
            turn,
            (max(2, round(width)), max(2, round(height))),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        return Image.fromarray(region)


DEFAULT_FRAMING = Framing()  # (its defaults say why)


def framing_setting(name: str, default, group: str = "faces"):
    """The one declaration of a framing setting (`crop`, `margin`, `align`) in a config class: prepare's,
    with a default value, and predict's, whose default None means what the model records. Its help, choices
    and check are the same for both."""
    said = "" if default is not None else f"; default: what the model records, else {getattr(DEFAULT_FRAMING, name)}"
    if name == "crop":
        return setting(
            default,
            group=group,
            choices=CROPS,
            help="box: the face's box (the detector's, or the dataset's) widened by --margin; tight: a square on "
            "the face, its side the box's longer side" + said,
        )
    if name == "margin":
        return setting(
            default,
            group=group,
            check=(lambda v: v is None or margin_ok(v), MARGIN_RULE),
            help="widen the face's box by this fraction of its size on each side" + said,
        )
    if name == "align":
        return setting(
            default,
            group=group,
            negatable=True,
            help="turn each face so that its eyes are level (BlazeFace's landmarks; Haar's faces have none)" + said,
        )
    raise ValueError(f"no framing setting {name!r}")


def face_crops(rgb: np.ndarray, faces: list[Detection], size: int, framing: Framing) -> np.ndarray:
    """(faces, size, size, 3) uint8 inputs for a model, framed and resized as prepare_dataset.py does."""
    image = Image.fromarray(rgb)
    crops = [
        np.asarray(framing.crop_face(image, face).resize((size, size), Image.Resampling.BILINEAR)) for face in faces
    ]
    return np.stack(crops).astype(np.uint8) if crops else np.zeros((0, size, size, 3), np.uint8)


NO_FACE = "no face found"  # prepare's skip reason and predict's outcome


def prepare_detected(
    source: Path | bytes, destination, size: int, detector_name: str, framing: Framing, whole_without_face: bool = False
) -> None:
    """prepare_dataset.py --detect for one photo: turned upright by its EXIF tag, its largest face framed
    and resized to `size`, written to `destination`. No face raises `ImageError` (a counted skip), or with
    `whole_without_face` the whole photo is written instead."""
    image = load_rgb(source)
    faces = detector(detector_name)(np.asarray(image))
    if not faces and not whole_without_face:
        raise ImageError(NO_FACE)
    face = framing.crop_face(image, faces[0]) if faces else image
    write_jpeg(face.resize((size, size), Image.Resampling.BILINEAR), destination)
