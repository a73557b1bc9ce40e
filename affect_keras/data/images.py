"""Reading, cropping and writing face images, robust to what real datasets contain.

Every failure becomes an `ImageError` whose message is the reason reported for the skipped item.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Callable

from PIL import Image, ImageOps, UnidentifiedImageError

JPEG_QUALITY = 95
# the files taken as images (prepare's folder source, predict's folders)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
# phones' formats, read where this Pillow has a reader (AVIF: built into Pillow since 11.2; HEIC / HEIF: with
# the pillow-heif plugin installed)
PHONE_SUFFIXES = (".avif", ".heic", ".heif")
EXIF_ORIENTATION = 0x0112


class ImageError(Exception):
    """An image that cannot be used; `str(error)` is the skip reason."""


class ImageTooLarge(ImageError):
    """An image of more pixels than allowed, found from its header before it is decoded."""


def readable_suffixes() -> frozenset[str]:
    """`IMAGE_SUFFIXES` and the `PHONE_SUFFIXES` this installation reads (pillow-heif registered if present)."""
    import importlib.util

    if importlib.util.find_spec("pillow_heif") is not None:
        from pillow_heif import register_heif_opener

        register_heif_opener()
    opened = {suffix for suffix, name in Image.registered_extensions().items() if name in Image.OPEN}
    return IMAGE_SUFFIXES | {suffix for suffix in PHONE_SUFFIXES if suffix in opened}


def uint8_values(array, what: str = "image"):
    """`array` as uint8: any integer type with values in 0-255, or float in [0, 1] (scaled by 255) or 0-255;
    ValueError naming `what` for anything else (booleans, text, NaN, values out of range)."""
    import numpy as np

    numbers = np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    if array.dtype == np.bool_ or not numbers:
        raise ValueError(f"{what} must hold numbers 0-255, not {array.dtype} values")
    if array.size and np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ValueError(f"{what} holds NaN or infinite values")
        low, high = float(array.min()), float(array.max())
        if low < 0 or high > 255:
            raise ValueError(f"{what} values run from {low:g} to {high:g}; give 0-255 (uint8) or [0, 1]")
        array = np.rint(array * 255 if high <= 1 else array)
    elif array.size and array.dtype != np.uint8:
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise ValueError(f"{what} values run from {low} to {high} ({array.dtype}); give 8-bit values 0-255")
    return array.astype(np.uint8, copy=False)


def printable_name(path: Path | str) -> str:
    """A file name as text any CSV, JSON or terminal takes: bytes that are not UTF-8 (a name written in
    another system's encoding, kept by Python as surrogates) appear as \\xNN escapes."""
    return os.fsencode(str(path)).decode("utf-8", errors="backslashreplace")


def inside_root(root: Path, rel: str) -> Path | None:
    """`root / rel` if it stays inside `root` once resolved (no `../` or absolute escape), else None."""
    root = root.resolve()
    path = (root / rel).resolve()
    return path if path.is_relative_to(root) else None


def read_bytes(path: Path) -> bytes:
    """A source file's bytes: the one place prepare reads a source (on a network mount, the slow part)."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ImageError("missing image") from None
    except OSError as error:
        raise ImageError(f"unreadable file ({type(error).__name__})") from None


def load_rgb(path: Path | bytes, upright: bool = True) -> Image.Image:
    """Decode an image fully and return it as 8-bit RGB, turned upright by its EXIF orientation tag
    (phones store photos sideways with such a tag) unless `upright` is False: a dataset's face boxes given
    in the stored pixels (AffectNet, FER+) apply to the image as stored.

    Grayscale, palette, CMYK and 16-bit images are converted; transparency is composited onto black.
    A missing, truncated or undecodable file raises `ImageError`, and so does an image of more pixels than
    PIL's decompression-bomb limit (`Image.MAX_IMAGE_PIXELS`, 89.5 megapixels: far beyond any face photo,
    and what a 400 KB PNG can expand to is several GB of memory).
    """
    return decode_rgb(path, upright)[0]


def decode_rgb(
    source: Path | bytes,
    upright: bool = True,
    at_least: Callable[[tuple[int, int]], tuple[float, float]] | None = None,
    max_pixels: int | None = None,
) -> tuple[Image.Image, tuple[float, float]]:
    """`load_rgb` of a file or of its bytes, and where the caller needs fewer pixels than the photo holds,
    a reduced JPEG decode: `at_least(stored size)` says how large the decoded image must stay, and libjpeg
    then decodes at the smallest of 1/1, 1/2, 1/4 or 1/8 scale that keeps it at least that large (PIL's
    `Image.draft`, DCT scaling: a 1/4 decode costs a fraction of a full one). Returns the image and the
    scale (x, y) of its pixels to the stored ones, (1, 1) unless reduced. `max_pixels`: a lower limit than
    PIL's, checked on the header before any pixel is decoded (`ImageTooLarge`)."""
    limit = min(max_pixels or Image.MAX_IMAGE_PIXELS, Image.MAX_IMAGE_PIXELS)
    try:
        with warnings.catch_warnings():  # PIL only warns between one and two times its limit
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _decode(source, upright, at_least, limit)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge(f"image too large (over {limit:,} pixels)") from None


def _decode(source: Path | bytes, upright: bool, at_least, limit: int) -> tuple[Image.Image, tuple[float, float]]:
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            if image.size[0] * image.size[1] > limit:
                raise ImageTooLarge(f"image of {image.size[0]:,} x {image.size[1]:,} pixels (over {limit:,})")
            scale = (1.0, 1.0)
            if at_least is not None and image.format == "JPEG":
                stored = image.size
                image.draft(image.mode, tuple(max(1, int(v)) for v in at_least(stored)))
                scale = (image.size[0] / stored[0], image.size[1] / stored[1])
            image.load()
            return _rgb(image, upright), scale
    except FileNotFoundError:
        raise ImageError("missing image") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"unreadable image ({type(error).__name__})") from None


def _rgb(image: Image.Image, upright: bool) -> Image.Image:
    if upright and image.getexif().get(EXIF_ORIENTATION, 1) != 1:  # (a copy only when turned)
        image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode.startswith("I") or image.mode == "F":  # 16/32-bit or float grayscale: to 8 bits by its range
        return _grey_to_8_bits(image).convert("RGB")
    return image.convert("RGB")


def _grey_to_8_bits(image: Image.Image) -> Image.Image:
    """A grayscale image of more than 8 bits as 8-bit "L": values already within 0-255 (an int32 TIFF of
    8-bit data) kept, 16-bit ones (up to 65535) divided by 257, anything wider scaled to its own maximum."""
    import numpy as np

    values = np.asarray(image, dtype=np.float64)
    high = float(values.max()) if values.size else 0.0
    scale = 1.0 if high <= 255 else 255 / 65535 if high <= 65535 else 255 / high
    return Image.fromarray(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8), mode="L")


def crop_box(image: Image.Image, box: tuple[int, int, int, int] | None, margin: float) -> Image.Image:
    """Crop the face box widened by `margin` (a fraction of its size on each side), clamped to the image.

    A box with no area, or one that lies entirely outside the image, raises `ImageError`.
    """
    if box is None:
        return image
    return image.crop(box_edges(box, margin, image.size))


def write_jpeg(image: Image.Image, destination: Path) -> None:
    """Write atomically: a killed run leaves a temporary file, never a half-written JPEG."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    image.save(temporary, format="JPEG", quality=JPEG_QUALITY)
    os.replace(temporary, destination)


# a reduced decode keeps the face at least this many times the output size (the measured tolerance: the
# preparation benchmark in docs/benchmark.md); 1 would be the least that still fills the output
REDUCED_DECODE_MARGIN = 1.5
# and only photos at least this large on their shorter side: a small JPEG decodes in about a millisecond,
# and reducing it gains nothing and loses detail (the sample's 200 px photos at --size 32: 2 of 3 seeds of
# a 2-epoch ResNet18 learned less from them, macro-F1 0.897 / 0.836 / 0.746 against 0.936 / 0.869 / 0.746)
REDUCED_DECODE_FROM = 512


def prepare_image(
    source: Path | bytes, destination: Path, box, margin: float, size: int, reduced: bool = False
) -> None:
    """Load, crop, resize to `size` x `size` and write one face; raises `ImageError` with the reason. A
    whole photo (no box) is turned upright by its EXIF orientation first; a box is in the stored pixels.

    `reduced`: a JPEG much larger than the output (and of at least `REDUCED_DECODE_FROM` pixels on its
    shorter side) is decoded at 1/2, 1/4 or 1/8 scale (`decode_rgb`), the
    face kept at least `REDUCED_DECODE_MARGIN` times `size` on its shorter side, and the box is cropped at
    that scale with sub-pixel edges (PIL's `resize(box=...)`), so the output stays the full decode's within
    docs/data.md's stated tolerance."""

    def at_least(stored: tuple[int, int]) -> tuple[float, float]:
        if min(stored) < REDUCED_DECODE_FROM:
            return stored
        shorter = min(stored) if box is None else min(box[2], box[3]) * (1 + 2 * margin)
        factor = min(1.0, REDUCED_DECODE_MARGIN * size / max(shorter, 1))
        return stored[0] * factor, stored[1] * factor

    image, (sx, sy) = decode_rgb(source, upright=box is None, at_least=at_least if reduced else None)
    if box is None or (sx, sy) == (1.0, 1.0):  # not reduced: exactly what a full decode writes
        write_jpeg(crop_box(image, box, margin).resize((size, size), Image.Resampling.BILINEAR), destination)
        return
    left, top, right, bottom = box_edges(box, margin, (image.size[0] / sx, image.size[1] / sy))
    write_jpeg(
        image.resize((size, size), Image.Resampling.BILINEAR, box=(left * sx, top * sy, right * sx, bottom * sy)),
        destination,
    )


def box_edges(box, margin: float, size: tuple[float, float]) -> tuple[int, int, int, int]:
    """The edges `crop_box` cuts: the box widened by `margin` each side, rounded and clamped to the image."""
    x, y, w, h = box
    if w <= 0 or h <= 0:
        raise ImageError("empty face box")
    width, height = size
    left, top = max(0, round(x - margin * w)), max(0, round(y - margin * h))
    right, bottom = min(round(width), round(x + w + margin * w)), min(round(height), round(y + h + margin * h))
    if right - left < 2 or bottom - top < 2:
        raise ImageError("face box outside image")
    return left, top, right, bottom
