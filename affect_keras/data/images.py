"""Reading, cropping and writing face images, robust to what real datasets contain.

Every failure becomes an `ImageError` whose message is the reason reported for the skipped item.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

JPEG_QUALITY = 95
EXIF_ORIENTATION = 0x0112


class ImageError(Exception):
    """An image that cannot be used; `str(error)` is the skip reason."""


def inside_root(root: Path, rel: str) -> Path | None:
    """`root / rel` if it stays inside `root` once resolved (no `../` or absolute escape), else None."""
    root = root.resolve()
    path = (root / rel).resolve()
    return path if path.is_relative_to(root) else None


def load_rgb(path: Path, upright: bool = True) -> Image.Image:
    """Decode an image fully and return it as 8-bit RGB, turned upright by its EXIF orientation tag
    (phones store photos sideways with such a tag) unless `upright` is False: a dataset's face boxes given
    in the stored pixels (AffectNet, FER+) apply to the image as stored.

    Grayscale, palette, CMYK and 16-bit images are converted; transparency is composited onto black.
    A missing, truncated or undecodable file raises `ImageError`, and so does an image of more pixels than
    PIL's decompression-bomb limit (`Image.MAX_IMAGE_PIXELS`, 89.5 megapixels: far beyond any face photo,
    and what a 400 KB PNG can expand to is several GB of memory).
    """
    try:
        with warnings.catch_warnings():  # PIL only warns between one and two times its limit
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _decode(path, upright)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"image too large (over {Image.MAX_IMAGE_PIXELS:,} pixels)") from None


def _decode(path: Path, upright: bool) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            if upright and image.getexif().get(EXIF_ORIENTATION, 1) != 1:  # (a copy only when turned)
                image = ImageOps.exif_transpose(image)
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                rgba = image.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
                return Image.alpha_composite(background, rgba).convert("RGB")
            if image.mode.startswith("I"):  # 16/32-bit grayscale: scale to 8 bits
                return image.point(lambda v: v / 256).convert("L").convert("RGB")
            return image.convert("RGB")
    except FileNotFoundError:
        raise ImageError("missing image") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"unreadable image ({type(error).__name__})") from None


def crop_box(image: Image.Image, box: tuple[int, int, int, int] | None, margin: float) -> Image.Image:
    """Crop the face box widened by `margin` (a fraction of its size on each side), clamped to the image.

    A box with no area, or one that lies entirely outside the image, raises `ImageError`.
    """
    if box is None:
        return image
    x, y, w, h = box
    width, height = image.size
    if w <= 0 or h <= 0:
        raise ImageError("empty face box")
    left, top = x - margin * w, y - margin * h
    right, bottom = x + w + margin * w, y + h + margin * h
    left, top = max(0, round(left)), max(0, round(top))
    right, bottom = min(width, round(right)), min(height, round(bottom))
    if right - left < 2 or bottom - top < 2:
        raise ImageError("face box outside image")
    return image.crop((left, top, right, bottom))


def write_jpeg(image: Image.Image, destination: Path) -> None:
    """Write atomically: a killed run leaves a temporary file, never a half-written JPEG."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    image.save(temporary, format="JPEG", quality=JPEG_QUALITY)
    os.replace(temporary, destination)


def prepare_image(source: Path, destination: Path, box, margin: float, size: int) -> None:
    """Load, crop, resize to `size` x `size` and write one face; raises `ImageError` with the reason. A
    whole photo (no box) is turned upright by its EXIF orientation first; a box is in the stored pixels."""
    face = crop_box(load_rgb(source, upright=box is None), box, margin)
    write_jpeg(face.resize((size, size), Image.Resampling.BILINEAR), destination)
