"""predict.py: expressions of the faces in an image, a folder of images or a video."""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from affect_keras.atomic import first_line, refuse_foreign_file
from affect_keras.cli.common import ArgumentParser
from affect_keras.data.faces import CROPS, DEFAULT_DETECTOR, DEFAULT_FRAMING, DETECTORS
from affect_keras.data.images import ImageError, load_rgb
from affect_keras.deploy.analyse import OUTCOMES, Analyser, FaceResult, Gate
from affect_keras.models.presets import DEFAULT_PRESET, shipped_presets
from affect_keras.options import check

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}
FOLDER_CSV = "predictions.csv"  # where a folder's predictions go without --csv
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="predict.py", description="Find faces, crop them as prepare_dataset.py does, "
                                                           "and print the most probable expressions.")
    parser.add_argument("input", help="an image, a folder of images, or a video")
    model = parser.add_argument_group("model")
    model.add_argument("--model", default=DEFAULT_PRESET,
                       help="a shipped preset's name (" + ", ".join(shipped_presets()) + "), a preset folder, a "
                            "run directory, a .keras file, or an exported SavedModel folder, .tflite or .onnx file "
                            "(default: %(default)s, ResNet18 trained on FER+)")
    model.add_argument("--top-k", type=int, default=3, help="expressions printed per face")
    faces = parser.add_argument_group("faces")
    faces.add_argument("--detector", choices=list(DETECTORS), default=DEFAULT_DETECTOR,
                       help="blazeface: MediaPipe's BlazeFace, short range, with landmarks (default); "
                            "blazeface-full: its full-range model, for small faces far away; haar: OpenCV's "
                            "frontal-face cascade, no landmarks")
    faces.add_argument("--no-detect", action="store_true", help="the images are already face crops")
    faces.add_argument("--crop", choices=list(CROPS), default=None,
                       help="framing: tight (a square on the face, as FER+) or box (the detector's box plus "
                            "--margin, as AffectNet's boxes); default: what the model records, else "
                            f"{DEFAULT_FRAMING.crop}")
    faces.add_argument("--margin", type=float, default=None,
                       help="widen the framing by this fraction of the face on each side; default: what the "
                            f"model records, else {DEFAULT_FRAMING.margin}")
    faces.add_argument("--align", action=argparse.BooleanOptionalAction, default=None,
                       help="turn each face so that its eyes are level (BlazeFace's landmarks; Haar's faces "
                            "never are); default: what the model records, else "
                            + ("--align" if DEFAULT_FRAMING.align else "--no-align"))
    faces.add_argument("--min-face", type=int, default=24, help="smallest face side searched, pixels")
    faces.add_argument("--every", type=int, default=5, help="video: analyse every N-th frame")
    answer = parser.add_argument_group("when not to answer", "A face that does not pass is reported with its "
                                       "probabilities and a status (CSV column `status`) instead of an expression")
    answer.add_argument("--min-confidence", type=float, default=0.0, metavar="P",
                        help="a face whose top probability is below P is `uncertain` (0: never)")
    answer.add_argument("--min-face-score", type=float, default=0.0, metavar="S",
                        help="a detection scored below S is an `unsure face` (0: never)")
    answer.add_argument("--gate-small-faces", action="store_true",
                        help="a face smaller than the model's input side is `face too small`")
    output = parser.add_argument_group("output")
    output.add_argument("--csv", default="", help=f"write one row per face (folders: default {FOLDER_CSV})")
    output.add_argument("--annotate", default="", help="write a copy with boxes and labels: an image or video "
                                                       "path, or a folder for a folder input")
    return parser


def describe(faces: list[FaceResult], names: list[str], k: int) -> list[str]:
    lines = []
    for n, face in enumerate(faces, start=1):
        parts = []
        if face.probabilities is not None:
            top = np.argsort(-face.probabilities)[:k]
            parts.append(", ".join(f"{names[i]} {face.probabilities[i]:.3f}" for i in top))
        parts += [face.va_text()] if face.va is not None else []
        said = "; ".join(parts)
        lines.append(f"face {n} at {face.box}: " + (said if face.answered else f"{face.status} ({said})"))
    return lines


def annotate(rgb: np.ndarray, faces: list[FaceResult], names: list[str]) -> Image.Image:
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(12, rgb.shape[0] // 30))
    for face in faces:
        x, y, w, h = face.box
        draw.rectangle((x, y, x + w, y + h), outline=(255, 40, 40), width=max(2, rgb.shape[0] // 200))
        parts = []
        if face.probabilities is not None:
            best = int(face.probabilities.argmax())
            parts.append(f"{names[best]} {face.probabilities[best]:.2f}" if face.answered else face.status)
        if face.va is not None:
            parts.append(f"V{face.va[0]:+.2f} A{face.va[1]:+.2f}")
        label = " ".join(parts)
        draw.text((x, max(0, y - font.size - 4)), label, fill=(255, 40, 40), font=font,
                  stroke_width=2, stroke_fill=(0, 0, 0))
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
            return SOFTWARE in (image.info.get("Software"), image.getexif().get(EXIF_SOFTWARE),
                                (image.info.get("comment") or b"").decode(errors="replace"))
    except (OSError, ValueError, SyntaxError):
        return False


def csv_by_predict(path: Path) -> bool:
    return first_line(path).startswith("file,")  # every CSV predict.py writes starts with its file column


def read_rgb(path: Path) -> np.ndarray:
    """The image as prepare_dataset.py reads it (any mode to RGB); raises ImageError."""
    return np.asarray(load_rgb(path))


def csv_rows(source: str, faces: list[FaceResult], names: list[str], frame: int | None = None,
             outcome: str | None = None) -> list[dict]:
    """One row per face; with `outcome` (folders), a file without a face still gets a row saying why."""
    where = {"file": source, **({"frame": frame} if frame is not None else {}),
             **({"outcome": outcome} if outcome is not None else {})}
    if not faces and outcome is not None:
        return [where]
    rows = []
    for n, face in enumerate(faces, start=1):
        row = {**where, "face": n,
               "x": face.box[0], "y": face.box[1], "width": face.box[2], "height": face.box[3],
               "face_score": round(face.score, 4), "status": face.status}
        if face.probabilities is not None:
            best = int(face.probabilities.argmax())
            row |= {"expression": names[best] if face.answered else face.status,
                    "confidence": round(float(face.probabilities[best]), 5)}
            row |= {f"p_{name}": round(float(p), 5) for name, p in zip(names, face.probabilities)}
        if face.va is not None:
            row |= {"valence": round(float(face.va[0]), 5), "arousal": round(float(face.va[1]), 5)}
        rows.append(row)
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    fields = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    source = Path(args.input)
    if not source.exists():
        parser.error(f"argument input: {source} does not exist")
    try:
        check([(args.top_k >= 1, "top-k", "must be >= 1"), (args.every >= 1, "every", "must be >= 1"),
               (0 <= args.min_confidence <= 1, "min-confidence", "must be in [0, 1]"),
               (0 <= args.min_face_score <= 1, "min-face-score", "must be in [0, 1]"),
               (args.margin is None or 0 <= args.margin <= 1, "margin", "must be in [0, 1]"),
               (args.min_face >= 1, "min-face", "must be >= 1")])
    except ValueError as error:
        parser.fail(error)
    files = image_files(source) if source.is_dir() else None  # listed once: checked, then analysed
    if files is not None and not args.csv:
        args.csv = FOLDER_CSV  # a folder's predictions always go to a CSV
    try:
        check_outputs(source, args, files)
    except ValueError as error:
        parser.fail(error)
    try:
        analyser = Analyser(Path(args.model), None if args.no_detect else args.detector, args.crop, args.margin,
                            args.align, args.min_face, Gate(args.min_confidence, args.min_face_score,
                                                            args.gate_small_faces))
    except (ValueError, RuntimeError) as error:
        parser.stop(error)
    names = analyser.predictor.class_names
    if files is not None:
        return _folder(source, files, analyser, names, args)
    if source.suffix.lower() in VIDEO_SUFFIXES:
        return _video(source, analyser, names, args, parser)
    try:
        rgb = read_rgb(source)
    except ImageError as error:
        parser.exit(1, f"predict.py: error: {source} is not an image this can read: {error}\n")
    faces, outcome = analyser.analyse(rgb)
    print(f"{source}: " + (outcome if outcome != OUTCOMES["face"] else f"{len(faces)} face(s)"))
    for line in describe(faces, names, args.top_k):
        print(line)
    if args.csv:
        write_csv(Path(args.csv), csv_rows(str(source), faces, names))
    if args.annotate:
        save_annotated(annotate(rgb, faces, names), Path(args.annotate))
        print(f"Annotated image: {args.annotate}")
    return 0


ANNOTATE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def check_outputs(source: Path, args, files: list[Path] | None) -> None:
    """Refuse, before any work, output paths that cannot be written or that would replace an input:
    --csv in a missing folder, --annotate with a suffix PIL cannot write, an annotated copy that would land
    on the input itself (a folder annotated into itself, or into a folder inside it). `files`: a folder
    input's images (`image_files`), None for one image or video."""
    csv = args.csv
    if csv and not Path(csv).resolve().parent.is_dir():
        raise ValueError(f"--csv {csv}: the folder {Path(csv).parent} does not exist")
    if csv:
        refuse_foreign_file(Path(csv), csv_by_predict, "csv", "predict.py")
    if not args.annotate:
        return
    annotate_to, read_from = Path(args.annotate).resolve(), source.resolve()
    if source.is_dir():
        if annotate_to == read_from or annotate_to.is_relative_to(read_from):
            raise ValueError(f"--annotate {args.annotate}: inside the input folder {source}, the annotated "
                             f"copies would replace or mix with the photos; choose a folder outside it")
        if annotate_to.exists() and not annotate_to.is_dir():
            raise ValueError(f"--annotate {args.annotate}: a folder input needs a folder to write into")
        for path in files:  # each copy's place: empty, or an earlier copy of predict.py's
            refuse_foreign_file(annotate_to / path.relative_to(source), annotated_by_predict, "annotate",
                                "predict.py")
        return
    if annotate_to == read_from:
        raise ValueError(f"--annotate {args.annotate}: that is the input itself; choose another file")
    wanted = VIDEO_SUFFIXES if source.suffix.lower() in VIDEO_SUFFIXES else ANNOTATE_SUFFIXES
    if annotate_to.suffix.lower() not in wanted:
        raise ValueError(f"--annotate {args.annotate}: write to one of {', '.join(sorted(wanted))}")
    if not annotate_to.parent.is_dir():
        raise ValueError(f"--annotate {args.annotate}: the folder {Path(args.annotate).parent} does not exist")
    refuse_foreign_file(annotate_to, annotated_by_predict, "annotate", "predict.py")  # (a video: any file)


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _folder(folder: Path, files: list[Path], analyser: Analyser, names, args) -> int:
    rows, outcomes, unreadable = [], Counter(), []
    annotated = Path(args.annotate) if args.annotate else None
    for path in tqdm(files, desc="images", unit="image"):
        try:
            rgb = read_rgb(path)
        except ImageError as error:
            unreadable.append(path)
            outcomes[OUTCOMES["unreadable"]] += 1
            rows += csv_rows(str(path.relative_to(folder)), [], names, outcome=f"{OUTCOMES['unreadable']}: {error}")
            continue
        faces, outcome = analyser.analyse(rgb)
        outcomes[outcome] += 1
        rows += csv_rows(str(path.relative_to(folder)), faces, names, outcome=outcome)
        if annotated:
            target = annotated / path.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            save_annotated(annotate(rgb, faces, names), target)
    out = Path(args.csv)
    write_csv(out, rows)
    faces = sum(1 for row in rows if "face" in row)
    print(f"{len(files) - len(unreadable)} images read, {faces} faces, {outcomes[OUTCOMES['none']]} images "
          f"without a face, {len(unreadable)} unreadable"
          f"{': ' + ', '.join(map(str, unreadable[:5])) if unreadable else ''}")
    print("Every file, by outcome (the CSV's outcome column): "
          + ", ".join(f"{outcome} {count}" for outcome, count in outcomes.most_common()))
    print(f"Predictions: {out}" + (f"; annotated images: {annotated}" if annotated else ""))
    return 0


def _video(path: Path, analyser: Analyser, names, args, parser) -> int:
    import cv2
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        parser.exit(1, f"predict.py: error: {path} is not a video this can read\n")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    writer, faces, rows, frame = None, [], [], 0
    start = time.perf_counter()
    with tqdm(total=total, desc="frames", unit="frame") as progress:
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if frame % args.every == 0:
                faces = analyser(rgb)
                rows += csv_rows(str(path), faces, names, frame)
            if args.annotate:
                if writer is None:
                    writer = cv2.VideoWriter(args.annotate, cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                             (rgb.shape[1], rgb.shape[0]))
                writer.write(cv2.cvtColor(np.asarray(annotate(rgb, faces, names)), cv2.COLOR_RGB2BGR))
            frame += 1
            progress.update()
    capture.release()
    if writer is not None:
        writer.release()
    if frame == 0:
        parser.exit(1, f"predict.py: error: {path} has no frames this can read\n")
    analysed = len(range(0, frame, args.every))
    rate = frame / (time.perf_counter() - start)
    print(f"{path}: {frame} frames, {analysed} analysed, {len(rows)} faces found, {rate:.1f} frames/s")
    if args.csv:
        write_csv(Path(args.csv), rows)
        print(f"Predictions: {args.csv}")
    if args.annotate:
        print(f"Annotated video: {args.annotate}")
    return 0
