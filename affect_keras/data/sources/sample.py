"""The built-in sample: synthetic faces written in AffectNet's original release layout.

Each image is larger than its face and comes with a face box, 68 landmarks (iBUG order), an expression
code and valence/arousal drawn around the expression's place on the circumplex. The expression lives only
in the face's geometry (mouth curvature, width and opening, brow height and slant, eye opening,
asymmetry); pose, size, position, skin and background colours, lighting and noise are drawn independently
of it, so no single pixel or colour gives the class away while a small CNN learns it well.

Generation is deterministic: image `i` of seed `s` is drawn from its own generator seeded with (s, i),
so the result does not depend on worker count or order.
"""

from __future__ import annotations

import csv
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from affect_keras.data.sources.affectnet import COLUMNS, ORIGINAL_FILES, ORIGINAL_IMAGES, ORIGINAL_LISTS

MARKER = "sample.json"
TEST_FRACTION = 0.2
# Share of each code among training faces: imbalanced like AffectNet, so class weights matter.
TRAIN_SHARES = {0: 0.18, 1: 0.22, 2: 0.11, 3: 0.10, 4: 0.08, 5: 0.07, 6: 0.11, 7: 0.07, 8: 0.02, 9: 0.02, 10: 0.02}
NOT_APPLICABLE = -2.0


@dataclass(frozen=True)
class Expression:
    """Mean face geometry of an expression, in units of the face's half-width."""

    eye_open: float = 1.0  # eye height relative to neutral
    brow_raise: float = 0.0  # up is positive
    brow_slant: float = 0.0  # inner ends up (sad, fear) is positive, inner ends down (anger) negative
    mouth_width: float = 0.30  # half-width
    mouth_curve: float = 0.0  # corners up (smile) is positive
    mouth_open: float = 0.0  # gap between the lips
    smirk: float = 0.0  # one corner raised (contempt)
    wrinkle: float = 0.0  # nose wrinkles (disgust)
    valence: float = 0.0
    arousal: float = 0.0


EXPRESSIONS = {
    0: Expression(),
    1: Expression(eye_open=0.7, mouth_width=0.40, mouth_curve=0.16, mouth_open=0.07, valence=0.7, arousal=0.4),
    2: Expression(eye_open=0.75, brow_slant=0.14, mouth_width=0.27, mouth_curve=-0.14, valence=-0.6, arousal=-0.3),
    3: Expression(eye_open=1.7, brow_raise=0.15, mouth_width=0.15, mouth_open=0.26, valence=0.2, arousal=0.75),
    4: Expression(
        eye_open=1.5,
        brow_raise=0.09,
        brow_slant=0.14,
        mouth_width=0.36,
        mouth_curve=-0.05,
        mouth_open=0.12,
        valence=-0.5,
        arousal=0.7,
    ),
    5: Expression(
        eye_open=0.6,
        brow_raise=-0.06,
        brow_slant=-0.05,
        mouth_width=0.30,
        mouth_curve=-0.09,
        mouth_open=0.05,
        wrinkle=1.0,
        valence=-0.6,
        arousal=0.3,
    ),
    6: Expression(eye_open=0.7, brow_raise=-0.08, brow_slant=-0.17, mouth_width=0.23, valence=-0.6, arousal=0.6),
    7: Expression(eye_open=0.9, smirk=0.13, valence=-0.4, arousal=0.2),
}
GEOMETRY_JITTER = {
    "eye_open": 0.12,
    "brow_raise": 0.025,
    "brow_slant": 0.03,
    "mouth_width": 0.025,
    "mouth_curve": 0.025,
    "mouth_open": 0.02,
    "smirk": 0.02,
}


def generate(root: Path, count: int, seed: int, workers: int = 1) -> None:
    """Write `count` faces (80 % training, 20 % validation) under `root` in AffectNet's layout.

    Skips the work when `root` already holds the same sample.
    """
    marker = root / MARKER
    settings = {"count": count, "seed": seed}
    if marker.is_file() and json.loads(marker.read_text()) == settings:
        return
    if count < 1:
        raise ValueError("the sample needs --count of at least 1")
    (root / ORIGINAL_LISTS).mkdir(parents=True, exist_ok=True)
    codes = _codes(count, seed)
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        rows = list(pool.map(_write_face, [(root, seed, i, code) for i, code in enumerate(codes)], chunksize=32))
    n_test = round(count * TEST_FRACTION)
    for split, split_rows in (("train", rows[n_test:]), ("test", rows[:n_test])):
        with open(root / ORIGINAL_LISTS / ORIGINAL_FILES[split], "w", newline="") as handle:
            writer = csv.writer(handle)
            if split == "train":  # as shipped: training.csv has a header, validation.csv has none
                writer.writerow(COLUMNS)
            writer.writerows(split_rows)
    marker.write_text(json.dumps(settings))


def _codes(count: int, seed: int) -> list[int]:
    """Expression codes: the first 20 % (AffectNet's validation part) balanced over codes 0-7, the rest
    drawn with `TRAIN_SHARES`."""
    rng = np.random.default_rng([seed, count])
    n_test = round(count * TEST_FRACTION)
    test = [i % 8 for i in range(n_test)]
    shares = np.array(list(TRAIN_SHARES.values()))
    train = rng.choice(list(TRAIN_SHARES), size=count - n_test, p=shares / shares.sum())
    return test + [int(c) for c in train]


def _write_face(task) -> list:
    root, seed, index, code = task
    rng = np.random.default_rng([seed, index])
    image, box, landmarks = draw_face(rng, code)
    rel = f"{index % 100:02d}/sample_{seed}_{index:06d}.jpg"
    path = root / ORIGINAL_IMAGES / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="JPEG", quality=int(rng.integers(75, 96)))
    valence, arousal = _affect(rng, code)
    landmark_text = "".join(f"{x:.2f};{y:.2f};" for x, y in landmarks)
    return [rel, *box, landmark_text, code, f"{valence:.4f}", f"{arousal:.4f}"]


def _affect(rng: np.random.Generator, code: int) -> tuple[float, float]:
    if code not in EXPRESSIONS:
        return NOT_APPLICABLE, NOT_APPLICABLE
    e = EXPRESSIONS[code]
    return tuple(float(np.clip(m + rng.normal(0, 0.12), -1, 1)) for m in (e.valence, e.arousal))


def _jittered(rng: np.random.Generator, code: int) -> Expression:
    if code in (8, 9):  # None / Uncertain: some other affect state; geometry from a random blend
        a, b = rng.choice(8, size=2, replace=False)
        t = rng.uniform()
        base = {k: t * getattr(EXPRESSIONS[a], k) + (1 - t) * getattr(EXPRESSIONS[b], k) for k in GEOMETRY_JITTER}
    else:
        base = {k: getattr(EXPRESSIONS.get(code, EXPRESSIONS[0]), k) for k in GEOMETRY_JITTER}
    values = {k: base[k] + rng.normal(0, sd) for k, sd in GEOMETRY_JITTER.items()}
    values["eye_open"] = max(0.25, values["eye_open"])
    values["mouth_open"] = max(0.0, values["mouth_open"])
    values["smirk"] *= rng.choice([-1, 1])
    wrinkle = EXPRESSIONS[code].wrinkle if code in EXPRESSIONS else 0.0
    return Expression(**values, wrinkle=wrinkle)


def _ellipse(cx, cy, rx, ry, n=36):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _curve(left, right, middle_offset, n=9):
    """A quadratic curve from `left` to `right` whose middle is shifted down by `middle_offset`."""
    t = np.linspace(0, 1, n)[:, None]
    left, right = np.asarray(left, float), np.asarray(right, float)
    control = (left + right) / 2 + np.array([0.0, 2 * middle_offset])
    return (1 - t) ** 2 * left + 2 * (1 - t) * t * control + t**2 * right


def _random_colour(rng, low=0, high=256):
    return tuple(int(v) for v in rng.integers(low, high, size=3))


def _background(rng, width, height) -> Image.Image:
    a, b = (np.array(_random_colour(rng), float) for _ in range(2))
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width]
    t = (np.cos(angle) * xx / width + np.sin(angle) * yy / height + 1) / 2
    image = Image.fromarray((a * (1 - t[..., None]) + b * t[..., None]).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(2, 7)):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(5, 0.3 * min(width, height))
        shape = draw.ellipse if rng.uniform() < 0.5 else draw.rectangle
        shape((x - r, y - r, x + r, y + r), fill=_random_colour(rng))
    return image


def draw_face(rng: np.random.Generator, code: int):
    """One image: returns (PIL RGB image, face box (x, y, w, h), 68 landmarks as (x, y) pairs)."""
    width, height = (int(v) for v in rng.integers(170, 261, size=2))
    image = _background(rng, width, height)
    box_size = rng.uniform(0.42, 0.62) * min(width, height)
    scale = box_size / 2  # face units -> pixels: the face spans about [-1, 1] horizontally
    cx = rng.uniform(box_size / 2, width - box_size / 2)
    cy = rng.uniform(box_size / 2, height - box_size / 2)
    angle = np.deg2rad(rng.uniform(-14, 14))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    yaw = rng.uniform(-0.08, 0.08)  # features shift sideways as the head turns

    def to_image(points):
        points = np.asarray(points, float) + np.array([yaw, 0.0])
        return points @ rotation.T * scale + np.array([cx, cy])

    draw = ImageDraw.Draw(image)
    skin = np.array(_random_colour(rng, 60, 240))
    ink = tuple(int(v) for v in skin * rng.uniform(0.15, 0.45))
    if code == 10:  # Non-Face: background only, box and landmarks where a face would be
        head = None
    else:
        hair = _random_colour(rng, 0, 200)
        draw.polygon([tuple(p) for p in to_image(_ellipse(-yaw, -0.25, 0.88, 0.95))], fill=hair)
        head = to_image(_ellipse(-yaw, 0.0, 0.78, 1.0))
        draw.polygon([tuple(p) for p in head], fill=tuple(int(v) for v in skin))
    e = _jittered(rng, code)
    landmarks = _features(draw if head is not None else None, to_image, e, ink, scale)
    x0, y0 = int(round(cx - box_size / 2)), int(round(cy - box_size / 2))
    image = _light_and_noise(rng, image)
    return image, (x0, y0, int(round(box_size)), int(round(box_size))), landmarks


def _features(draw, to_image, e: Expression, ink, scale) -> np.ndarray:
    """Draw eyes, brows, nose and mouth (unless `draw` is None); return the 68 landmarks."""
    line = max(1, int(round(0.045 * scale)))
    jaw = to_image(_ellipse(0, 0, 0.78, 1.0, n=32)[16::-1])  # iBUG order: right ear, chin, left ear
    brows, eyes = [], []
    for side in (-1, 1):
        inner, outer = np.array([side * 0.12, 0.0]), np.array([side * 0.52, 0.0])
        base_y = -0.42 - e.brow_raise
        inner[1], outer[1] = base_y - e.brow_slant, base_y + e.brow_slant * 0.3
        brow = _curve(outer, inner, -0.03, n=5) if side < 0 else _curve(inner, outer, -0.03, n=5)
        brows.append(brow)
        eye = _ellipse(side * 0.34, -0.18, 0.14, 0.065 * e.eye_open, n=6)
        eyes.append(eye)
    nose = np.array(
        [[0, -0.2], [0, -0.1], [0, 0.0], [0, 0.1], [-0.1, 0.18], [-0.05, 0.2], [0, 0.21], [0.05, 0.2], [0.1, 0.18]]
    )
    w = e.mouth_width
    corner_l = np.array([-w, 0.45 - e.mouth_curve + e.smirk])
    corner_r = np.array([w, 0.45 - e.mouth_curve - e.smirk])
    upper = _curve(corner_l, corner_r, e.mouth_curve - e.mouth_open / 2, n=7)
    lower = _curve(corner_r, corner_l, e.mouth_curve + e.mouth_open / 2, n=7)
    outer_mouth = np.concatenate([upper[:-1], lower[:-1]])  # 12 points
    inner_mouth = np.concatenate([upper[[0, 2, 3, 4]], lower[[0, 2, 3, 4]]])  # corner + 3 points, twice
    if draw is not None:
        for brow in brows:
            draw.line([tuple(p) for p in to_image(brow)], fill=ink, width=line + 1)
        for eye in eyes:
            draw.polygon([tuple(p) for p in to_image(eye)], fill=(250, 250, 250), outline=ink)
            cx, cy = eye.mean(axis=0)
            pupil = _ellipse(cx, cy, 0.045, min(0.045, 0.06 * e.eye_open), n=12)
            draw.polygon([tuple(p) for p in to_image(pupil)], fill=ink)
        draw.line([tuple(p) for p in to_image(nose[:4])], fill=ink, width=line)
        draw.line([tuple(p) for p in to_image(nose[4:])], fill=ink, width=line)
        for k in range(int(3 * e.wrinkle)):
            y = -0.12 + 0.05 * k
            draw.line([tuple(p) for p in to_image([[-0.16, y], [-0.06, y - 0.03]])], fill=ink, width=line)
            draw.line([tuple(p) for p in to_image([[0.16, y], [0.06, y - 0.03]])], fill=ink, width=line)
        if e.mouth_open > 0.03:
            draw.polygon([tuple(p) for p in to_image(outer_mouth)], fill=(60, 20, 30), outline=ink)
        else:
            draw.line([tuple(p) for p in to_image(upper)], fill=ink, width=line + 1)
    points = np.concatenate(
        [
            jaw,
            to_image(brows[0]),
            to_image(brows[1]),
            to_image(nose),
            to_image(eyes[0]),
            to_image(eyes[1]),
            to_image(outer_mouth),
            to_image(inner_mouth),
        ]
    )
    assert len(points) == 68, len(points)
    return points


def _light_and_noise(rng: np.random.Generator, image: Image.Image) -> Image.Image:
    pixels = np.asarray(image, float)
    height, width = pixels.shape[:2]
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width]
    ramp = np.cos(angle) * (xx / width - 0.5) + np.sin(angle) * (yy / height - 0.5)
    light = rng.uniform(0.6, 1.25) * (1 + rng.uniform(0, 0.6) * ramp)
    pixels = pixels * light[..., None] + rng.normal(0, rng.uniform(2, 12), size=pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
