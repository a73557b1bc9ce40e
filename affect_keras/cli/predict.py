"""predict.py: expressions of the faces in an image, a folder of images or a video."""

from __future__ import annotations

import csv
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from affect_keras.atomic import first_line, refuse_foreign_file, writable_file, writable_folder, write_text
from affect_keras.cli.common import ArgumentParser, add_settings
from affect_keras.data.images import ImageError, load_rgb, printable_name
from affect_keras.deploy.analyse import OK, OUTCOMES, Analyser, FaceResult, Gate
from affect_keras.deploy.config import GROUPS, VIDEO_SUFFIXES, PredictConfig
from affect_keras.deploy.video import TrackedFace, VideoAnalysis
from affect_keras.tasks import EXPRESSION, VA

FOLDER_CSV = "predictions.csv"  # where a folder's predictions go without --csv
SETTINGS_MARK = "# predict.py's resolved settings"  # the first line of the settings file it writes
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


def build_parser() -> ArgumentParser:
    """predict.py's arguments: one per PredictConfig field."""
    parser = ArgumentParser(
        prog="predict.py",
        description="Find faces, crop them as prepare_dataset.py does, and print the most probable expressions.",
    )
    add_settings(parser, PredictConfig, GROUPS)
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


def outputs_label(probabilities, va, status: str, names: list[str]) -> str:
    """The top expression and its probability (or the status that withholds it), and V/A where given."""
    parts = []
    if probabilities is not None:
        best = int(probabilities.argmax())
        parts.append(f"{names[best]} {probabilities[best]:.2f}" if status == OK else status)
    if va is not None:
        parts.append(f"V{va[0]:+.2f} A{va[1]:+.2f}")
    return " ".join(parts)


def face_label(face: FaceResult, names: list[str]) -> str:
    return outputs_label(face.probabilities, face.va, face.status, names)


def track_label(tracked: TrackedFace, names: list[str]) -> str:
    """A video's face: its track's ID and smoothed outputs."""
    return " ".join(
        [f"#{tracked.track}", outputs_label(tracked.smoothed, tracked.smoothed_va, tracked.status, names)]
    ).strip()


def annotate(
    rgb: np.ndarray, faces: list[FaceResult], names: list[str], labels: list[str] | None = None
) -> Image.Image:
    """A copy of the image with each face's box and label (default: `face_label`)."""
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(12, rgb.shape[0] // 30))
    labels = labels if labels is not None else [face_label(face, names) for face in faces]
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


FACE_COLUMNS = ("face", "x", "y", "width", "height", "face_score", "status")  # a face's row: where, how sure
# the columns of the CSVs predict.py writes (faces, video faces, tracks), and the prefixes of its per-class ones
CSV_COLUMNS = {"file", "frame", "time_s", "track", "outcome", *FACE_COLUMNS, "expression", "confidence"}
CSV_COLUMNS |= {"raw_expression", "valence", "arousal", "smooth_valence", "smooth_arousal"}
CSV_COLUMNS |= {"first_s", "last_s", "frames", "dominant"}
CSV_PREFIXES = ("p_", "smooth_", "share_")


def csv_by_predict(path: Path) -> bool:
    """Whether `path` is a CSV predict.py wrote: its whole header is predict's (file first, then only
    predict's columns): a dataset's manifest or a user's table with a `file` column is not."""
    try:
        with open(path, newline="", encoding="utf-8") as stream:
            header = next(csv.reader(stream), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return (
        len(header) > 1
        and header[0] == "file"
        and all(column in CSV_COLUMNS or column.startswith(CSV_PREFIXES) for column in header[1:])
    )


def csv_fields(names: list[str], heads: tuple[str, ...], frame: bool = False, outcome: bool = False) -> list[str]:
    """The columns of predict's face CSV for a model with class `names` and `heads` (`csv_rows`' keys)."""
    return [
        "file",
        *(["frame"] if frame else []),
        *(["outcome"] if outcome else []),
        *FACE_COLUMNS,
        *(["expression", "confidence", *(f"p_{name}" for name in names)] if EXPRESSION in heads else []),
        *(["valence", "arousal"] if VA in heads else []),
    ]


def _running(pid: int) -> bool:
    """Whether process `pid` runs (signal 0 probes it on POSIX; on Windows os.kill would end it: assumed)."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process, or a system without signal 0: leave its file alone
        return True
    return True


class RowsFile:
    """A CSV written row by row into a temporary file beside `path`, which replaces `path` only when
    `close` is called: a crash or a kill midway leaves `path` as it was (and no half-written file)."""

    def __init__(self, path: Path, fields: list[str] | None = None):
        self.path = Path(path)
        for stale in self.path.parent.glob(f".{self.path.name}.*.partial"):  # of a predict that was killed
            pid = stale.name[len(self.path.name) + 2 : -len(".partial")]
            if pid.isdigit() and not _running(int(pid)):
                stale.unlink(missing_ok=True)
        self.partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial")
        self.stream = open(self.partial, "w", newline="", encoding="utf-8")
        self.writer, self.fields, self.rows = None, fields, 0

    def write(self, rows: list[dict]) -> None:
        if self.writer is None:
            self.fields = self.fields or list(dict.fromkeys(key for row in rows for key in row))
            self.writer = csv.DictWriter(self.stream, fieldnames=self.fields, restval="", extrasaction="raise")
            self.writer.writeheader()
        self.writer.writerows(rows)
        self.rows += len(rows)
        self.stream.flush()

    def close(self) -> None:
        if self.writer is None:
            self.write([])
        self.stream.close()
        os.replace(self.partial, self.path)

    def discard(self) -> None:
        self.stream.close()
        self.partial.unlink(missing_ok=True)


def settings_file(args: PredictConfig) -> Path | None:
    """Where predict saves its resolved settings: beside its first output, `<its name>.settings.yaml`
    (None: it writes nothing)."""
    output = next(
        (getattr(args, option) for option in ("csv", "tracks", "timeline", "annotate") if getattr(args, option)), ""
    )
    return Path(output).with_name(Path(output).name + ".settings.yaml") if output else None


def save_settings(args: PredictConfig, analyser: Analyser) -> None:
    """The settings predict ran with, resolved (the framing the model's record and the flags gave, what
    kind of model it was), beside its outputs: the record of how they were made."""
    import dataclasses

    import yaml

    path = settings_file(args)
    if path is not None:
        resolved = {
            **dataclasses.asdict(args),
            "framing": analyser.framing.to_dict(),
            "model_kind": analyser.predictor.kind,
        }
        write_text(path, f"{SETTINGS_MARK}\n{yaml.safe_dump(resolved, sort_keys=False)}")


def read_rgb(path: Path) -> np.ndarray:
    """The image as prepare_dataset.py reads it (any mode to RGB); raises ImageError."""
    return np.asarray(load_rgb(path))


def csv_rows(
    source: str, faces: list[FaceResult], names: list[str], frame: int | None = None, outcome: str | None = None
) -> list[dict]:
    """One row per face; with `outcome` (folders), a file without a face still gets a row saying why."""
    where = {
        "file": source,
        **({"frame": frame} if frame is not None else {}),
        **({"outcome": outcome} if outcome is not None else {}),
    }
    if not faces and outcome is not None:
        return [where]
    rows = []
    for n, face in enumerate(faces, start=1):
        row = {
            **where,
            "face": n,
            "x": face.box[0],
            "y": face.box[1],
            "width": face.box[2],
            "height": face.box[3],
            "face_score": round(face.score, 4),
            "status": face.status,
        }
        if face.probabilities is not None:
            best = int(face.probabilities.argmax())
            row |= {
                "expression": names[best] if face.answered else face.status,
                "confidence": round(float(face.probabilities[best]), 5),
            }
            row |= {f"p_{name}": round(float(p), 5) for name, p in zip(names, face.probabilities)}
        if face.va is not None:
            row |= {"valence": round(float(face.va[0]), 5), "arousal": round(float(face.va[1]), 5)}
        rows.append(row)
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    """The rows as a CSV at `path`, written whole or not at all (`RowsFile`)."""
    out = RowsFile(path)
    try:
        out.write(rows)
    except BaseException:
        out.discard()
        raise
    out.close()


def main(argv=None) -> int:
    parser = build_parser()
    values = vars(parser.parse_args(argv))
    values.pop("config")
    try:
        args = PredictConfig(**values)
        args.validate()
    except ValueError as error:
        parser.fail(error)
    source = Path(args.input) if args.input is not None else None
    if source is not None and not source.exists():
        parser.error(f"argument input: {source} does not exist")
    is_video = args.video
    if args.camera is not None:
        try:
            check_outputs(Path(str(args.camera)), args, None, video=True)
        except ValueError as error:
            parser.fail(error)
        analyser = _analyser(args, parser)
        return _camera(args.camera, analyser, args, parser)
    files = image_files(source) if source.is_dir() else None  # listed once: checked, then analysed
    if files == []:
        parser.error(
            f"argument input: {printable_name(source)} holds no images "
            f"({', '.join(sorted(IMAGE_SUFFIXES))}, in it or its subfolders)"
        )
    if files is not None and not args.csv:
        args.csv = FOLDER_CSV  # a folder's predictions always go to a CSV
    try:
        check_outputs(source, args, files, video=is_video)
    except ValueError as error:
        parser.fail(error)
    analyser = _analyser(args, parser)
    names = analyser.predictor.class_names
    if files is not None:
        return _folder(source, files, analyser, names, args)
    if is_video:
        return _video(source, analyser, args, parser)
    try:
        rgb = read_rgb(source)
    except ImageError as error:
        parser.exit(1, f"predict.py: error: {printable_name(source)} is not an image this can read: {error}\n")
    faces, outcome = analyser.analyse(rgb)
    print(f"{printable_name(source)}: " + (outcome if outcome != OUTCOMES["face"] else f"{len(faces)} face(s)"))
    for line in describe(faces, names, args.top_k):
        print(line)
    if args.csv:
        write_csv(Path(args.csv), csv_rows(printable_name(source), faces, names))
    if args.annotate:
        save_annotated(annotate(rgb, faces, names), Path(args.annotate))
        print(f"Annotated image: {args.annotate}")
    save_settings(args, analyser)
    return 0


def _analyser(args, parser) -> Analyser:
    try:
        return Analyser(
            args.model,
            None if args.no_detect else args.detector,
            args.crop,
            args.margin,
            args.align,
            args.min_face,
            Gate(args.min_confidence, args.min_face_score, args.gate_small_faces),
            args.engine,
            args.trust_saved_model,
        )
    except (ValueError, RuntimeError) as error:
        parser.stop(error)


ANNOTATE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def check_outputs(source: Path, args, files: list[Path] | None, video: bool = False) -> None:
    """Refuse, before any work, output paths that cannot be written or that would replace an input or each
    other: a missing folder, a suffix that cannot be written, an annotated copy that would land on the
    input itself (a folder annotated into itself, or into a folder inside it), a file predict.py did not
    write. `files`: a folder input's images (`image_files`), None for one image or video; `video`: the
    input is a video or a camera."""
    outputs = {
        option: getattr(args, option) for option in ("csv", "tracks", "timeline", "annotate") if getattr(args, option)
    }
    seen: dict[Path, str] = {}
    for option, path in outputs.items():
        if Path(path).resolve() in seen:
            raise ValueError(
                f"--{option} {path}: the same file as --{seen[Path(path).resolve()]}; give each output its own file"
            )
        seen[Path(path).resolve()] = option
        if option != "annotate" or files is None:  # the folder it goes into exists and takes files
            writable_file(Path(path), option)
    for option in ("csv", "tracks"):
        if option in outputs:
            refuse_foreign_file(Path(outputs[option]), csv_by_predict, option, "predict.py")
    if settings_file(args) is not None:  # the record of the settings, beside the first output
        first = next(iter(outputs))
        refuse_foreign_file(settings_file(args), lambda path: first_line(path) == SETTINGS_MARK, first, "predict.py")
    if "timeline" in outputs:
        if Path(outputs["timeline"]).suffix.lower() != ".png":
            raise ValueError(f"--timeline {outputs['timeline']}: write to a .png")
        refuse_foreign_file(Path(outputs["timeline"]), annotated_by_predict, "timeline", "predict.py")
    if not args.annotate:
        return
    annotate_to, read_from = Path(args.annotate).resolve(), source.resolve()
    if files is not None:
        if annotate_to == read_from or annotate_to.is_relative_to(read_from):
            raise ValueError(
                f"--annotate {args.annotate}: inside the input folder {source}, the annotated "
                f"copies would replace or mix with the photos; choose a folder outside it"
            )
        if annotate_to.exists() and not annotate_to.is_dir():
            raise ValueError(f"--annotate {args.annotate}: a folder input needs a folder to write into")
        writable_folder(annotate_to, "annotate")
        for path in files:  # each copy's place: empty, or an earlier copy of predict.py's
            refuse_foreign_file(annotate_to / path.relative_to(source), annotated_by_predict, "annotate", "predict.py")
        return
    if annotate_to == read_from:
        raise ValueError(f"--annotate {args.annotate}: that is the input itself; choose another file")
    wanted = VIDEO_SUFFIXES if video else ANNOTATE_SUFFIXES
    if annotate_to.suffix.lower() not in wanted:
        raise ValueError(f"--annotate {args.annotate}: write to one of {', '.join(sorted(wanted))}")
    refuse_foreign_file(annotate_to, annotated_by_predict, "annotate", "predict.py")  # (a video: any file)


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _folder(folder: Path, files: list[Path], analyser: Analyser, names, args) -> int:
    """Every image of the folder: its rows written to the CSV as they come (a temporary file that replaces
    the CSV at the end, also after Ctrl-C, with the images done), the annotated copies, the counts."""
    outcomes, unreadable, faces, done = Counter(), [], 0, 0
    annotated = Path(args.annotate) if args.annotate else None
    predictor = analyser.predictor
    out = RowsFile(Path(args.csv), csv_fields(names, predictor.heads, outcome=True))
    stopped = ""
    try:
        for path in tqdm(files, desc="images", unit="image"):
            name = printable_name(path.relative_to(folder))
            try:
                rgb = read_rgb(path)
                found, outcome = analyser.analyse(rgb)
            except ImageError as error:
                unreadable.append(name)
                outcomes[OUTCOMES["unreadable"]] += 1
                out.write(csv_rows(name, [], names, outcome=f"{OUTCOMES['unreadable']}: {error}"))
                done += 1
                continue
            outcomes[outcome] += 1
            faces += len(found)
            out.write(csv_rows(name, found, names, outcome=outcome))
            if annotated:
                target = annotated / path.relative_to(folder)
                target.parent.mkdir(parents=True, exist_ok=True)
                save_annotated(annotate(rgb, found, names), target)
            done += 1
    except KeyboardInterrupt:
        stopped = f" (interrupted after {done} of {len(files)} images: the CSV holds those)"
    except BaseException:
        out.discard()  # the CSV at the path stays as it was
        raise
    out.close()
    save_settings(args, analyser)
    print(
        f"{done - len(unreadable)} images read, {faces} faces, {outcomes[OUTCOMES['none']]} images "
        f"without a face, {len(unreadable)} unreadable"
        f"{': ' + ', '.join(unreadable[:5]) if unreadable else ''}{stopped}"
    )
    print(
        "Every file, by outcome (the CSV's outcome column): "
        + ", ".join(f"{outcome} {count}" for outcome, count in outcomes.most_common())
    )
    print(f"Predictions: {out.path}" + (f"; annotated images: {annotated}" if annotated else ""))
    return 130 if stopped else 0


def video_rows(source: str, tracked: list[TrackedFace], names: list[str]) -> list[dict]:
    """One row per face of an analysed frame: the frame's columns (`csv_rows`: box, raw probabilities
    p_*), its time and track, the smoothed probabilities (smooth_*) and the expression they give
    (`expression`; the raw one in `raw_expression`)."""
    rows = []
    frame = tracked[0].frame if tracked else 0
    for face, row in zip(tracked, csv_rows(source, [t.face for t in tracked], names, frame)):
        row = {
            "file": row.pop("file"),
            "frame": row.pop("frame"),
            "time_s": round(face.time_s, 4),
            "track": face.track,
            **row,
        }
        row.pop("face", None)
        if face.smoothed is not None:
            best = int(face.smoothed.argmax())
            row["raw_expression"] = row["expression"]
            row |= {
                "expression": face.label(names),
                "confidence": round(float(face.smoothed[best]), 5),
                "status": face.status,
            }
            row |= {f"smooth_{name}": round(float(p), 5) for name, p in zip(names, face.smoothed)}
        if face.smoothed_va is not None:
            row |= {
                "smooth_valence": round(float(face.smoothed_va[0]), 5),
                "smooth_arousal": round(float(face.smoothed_va[1]), 5),
            }
        rows.append(row)
    return rows


def track_rows(source: str, tracks: list[dict]) -> list[dict]:
    """One row per track (`VideoAnalysis.tracks`): times, analysed frames, the dominant expression and the
    share of each label."""
    labels = list(dict.fromkeys(label for t in tracks for label in t["shares"]))
    return [
        {
            "file": source,
            "track": t["track"],
            "first_s": t["first_s"],
            "last_s": t["last_s"],
            "frames": t["frames"],
            "dominant": t["dominant"] or "",
            **{f"share_{label}": t["shares"].get(label, 0.0) for label in labels},
        }
        for t in tracks
    ]


def _video(path: Path, analyser: Analyser, args, parser) -> int:
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        parser.exit(1, f"predict.py: error: {path} is not a video this can read\n")
    return _stream(str(path), capture, None, analyser, args, parser)


def _camera(source: str, analyser: Analyser, args, parser) -> int:
    import cv2

    capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not capture.isOpened():
        parser.exit(1, f"predict.py: error: --camera {source}: no camera or stream there that OpenCV can open\n")
    if args.show:
        try:
            cv2.namedWindow("predict.py")
        except cv2.error:
            capture.release()
            parser.fail(
                ValueError(
                    "--show: this OpenCV has no windows (opencv-python-headless); install "
                    "opencv-python for them, or write the stream with --annotate"
                )
            )
    start = time.monotonic()
    return _stream(f"camera {source}", capture, lambda: time.monotonic() - start, analyser, args, parser)


def _stream(source: str, capture, clock, analyser: Analyser, args, parser) -> int:
    """Read frames from an opened capture until it ends (or --duration, Ctrl-C, q in the window): faces
    tracked and smoothed, rows, the annotated stream; then the per-track summary and the outputs. `clock`:
    the live time of each frame (None: a file's frame index / its frame rate)."""
    import cv2
    from affect_keras.deploy.video import read_frames

    names = analyser.predictor.class_names
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = None if clock else int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    analysis = VideoAnalysis(analyser, args.smooth)
    writer, shown, rows, frames, time_s, stopped = None, [], [], 0, 0.0, ""
    start = time.perf_counter()
    try:
        with tqdm(total=total, desc="frames", unit="frame") as progress:
            for frame, time_s, rgb in read_frames(capture, clock):
                if args.duration and frames and time_s > args.duration:
                    break
                frames += 1
                if frame % args.every == 0:
                    shown = analysis.add(frame, time_s, rgb)
                    rows += video_rows(source, shown, names)
                if args.annotate or args.show:
                    bgr = cv2.cvtColor(
                        np.asarray(
                            annotate(rgb, [t.face for t in shown], names, [track_label(t, names) for t in shown])
                        ),
                        cv2.COLOR_RGB2BGR,
                    )
                    if args.annotate:
                        if writer is None:
                            writer = cv2.VideoWriter(
                                args.annotate, cv2.VideoWriter_fourcc(*"mp4v"), fps, (rgb.shape[1], rgb.shape[0])
                            )
                        writer.write(bgr)
                    if args.show:
                        cv2.imshow("predict.py", bgr)
                        if cv2.waitKey(1) & 0xFF == ord("q"):
                            break
                progress.update()
    except KeyboardInterrupt:
        stopped = " (interrupted: what was read is kept)"
    finally:
        capture.release()
        if writer is not None:
            writer.release()
        if args.show:
            cv2.destroyAllWindows()
    if frames == 0:
        parser.exit(1, f"predict.py: error: {source} has no frames this can read\n")
    rate = frames / (time.perf_counter() - start)
    tracks = analysis.tracks()
    print(
        f"{source}: {frames} frames, {len(range(0, frames, args.every))} analysed, {len(rows)} faces found, "
        f"{len(tracks)} tracks, {rate:.1f} frames/s{stopped}"
    )
    for track in tracks:
        shares = ", ".join(f"{label} {100 * share:.0f} %" for label, share in list(track["shares"].items())[:3])
        print(
            f"track {track['track']}: {track['first_s']:.2f}-{track['last_s']:.2f} s, {track['frames']} frames, "
            f"mostly {track['dominant'] or '-'} ({shares})"
        )
    if args.csv:
        write_csv(Path(args.csv), rows)
        print(f"Predictions: {args.csv}")
    if args.tracks:
        write_csv(Path(args.tracks), track_rows(source, tracks))
        print(f"Tracks: {args.tracks}")
    if args.timeline:
        from affect_keras.deploy.timeline import plot_timeline

        plot_timeline(
            tracks,
            names,
            Path(args.timeline),
            max(time_s, frames / fps),
            title=Path(source).name,
            metadata={"Software": SOFTWARE},
        )
        print(f"Timeline: {args.timeline}")
    if args.annotate:
        print(f"Annotated video: {args.annotate}")
    save_settings(args, analyser)
    return 0
