"""What predict draws on a photo or a video frame: each face's box and label, and the mark that says an
image is predict's own (so that a later run may replace it, and only it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from affect_keras.deploy.analyse import OK, FaceResult


def outputs_label(probabilities, va, status: str, names: list[str]) -> str:
    """The top expression and its probability (or the status that withholds it), and V/A where given."""
    parts = []
    if probabilities is not None:
        best = int(probabilities.argmax())
        parts.append(f"{names[best]} {probabilities[best]:.2f}" if status == OK else status)
    if va is not None:
        parts.append(f"V{va[0]:+.2f} A{va[1]:+.2f}")
    return " ".join(parts)


def track_label(tracked, names: list[str]) -> str:
    """A video's face (`video.TrackedFace`): its track's ID and smoothed outputs."""
    return " ".join(
        [f"#{tracked.track}", outputs_label(tracked.smoothed, tracked.smoothed_va, tracked.status, names)]
    ).strip()


def annotate(
    rgb: np.ndarray, faces: list[FaceResult], names: list[str], labels: list[str] | None = None
) -> Image.Image:
    """A copy of the image with each face's box and label (default: its outputs, `outputs_label`)."""
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(12, rgb.shape[0] // 30))
    labels = labels or [outputs_label(face.probabilities, face.va, face.status, names) for face in faces]
    for face, label in zip(faces, labels):
        x, y, w, h = face.box
        draw.rectangle((x, y, x + w, y + h), outline=(255, 40, 40), width=max(2, rgb.shape[0] // 200))
        draw.text(
            (x, max(0, y - font.size - 4)), label, fill=(255, 40, 40), font=font, stroke_width=2, stroke_fill=(0, 0, 0)
        )
    return image


SOFTWARE = "affect-keras predict.py"  # the mark on the images predict.py annotates (EXIF / PNG Software)
EXIF_SOFTWARE = 0x0131


def save_annotated(image: Image.Image, path: Path) -> None:
    """Write an annotated copy with predict.py's mark, so that a later run may replace it (and only it)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".png":
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("Software", SOFTWARE)
        image.save(path, pnginfo=info)
    elif suffix == ".gif":
        image.save(path, comment=SOFTWARE)
    elif suffix in (".jpg", ".jpeg", ".webp", ".tif", ".tiff"):
        exif = Image.Exif()
        exif[EXIF_SOFTWARE] = SOFTWARE
        image.save(path, exif=exif)
    else:  # BMP carries no metadata: such a copy is never replaced
        image.save(path)


def annotated_by_predict(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            return SOFTWARE in (
                image.info.get("Software"),
                image.getexif().get(EXIF_SOFTWARE),
                (image.info.get("comment") or b"").decode(errors="replace"),
            )
    except (OSError, ValueError, SyntaxError):
        return False
