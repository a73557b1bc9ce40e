"""predict.py: expressions of the faces in an image, a folder of images or a video."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from affect_keras.atomic import write_csv
from affect_keras.cli.common import ArgumentParser, add_settings, command
from affect_keras.data.images import PHONE_SUFFIXES, ImageError, load_rgb, printable_name, readable_suffixes
from affect_keras.deploy.analyse import OUTCOMES, Analyser, FaceResult
from affect_keras.deploy.config import GROUPS, PredictConfig
from affect_keras.deploy.drawing import SOFTWARE, annotate, save_annotated
from affect_keras.deploy.folders import analyse_folder, image_files, passed_over
from affect_keras.deploy.outputs import check_outputs, save_settings
from affect_keras.deploy.rows import csv_rows, track_rows, video_rows
from affect_keras.deploy.video import WINDOW, VideoAnalysis, run_stream

FOLDER_CSV = "predictions.csv"  # where a folder's predictions go without --csv


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


@command("predict.py")
def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_config(PredictConfig, argv)
    source = Path(args.input) if args.input is not None else None
    if source is not None and not source.exists():
        parser.error(f"argument input: {source} does not exist")
    files = image_files(source) if source is not None and source.is_dir() else None  # listed once
    if files == []:
        parser.error(
            f"argument input: {printable_name(source)} holds no images "
            f"({', '.join(sorted(readable_suffixes()))}, in it or its subfolders)"
        )
    if files is not None and not args.csv:
        args.csv = FOLDER_CSV  # a folder's predictions always go to a CSV
    try:
        check_outputs(source or Path(str(args.camera)), args, files)
    except ValueError as error:
        parser.fail(error)
    try:
        analyser = Analyser.from_config(args)
    except (ValueError, RuntimeError) as error:
        parser.stop(error)
    if files is not None:
        return _folder(source, files, analyser, args)
    if args.video:  # a video file or --camera
        return _stream(*_opened(args, parser), analyser, args, parser)
    try:
        rgb = np.asarray(load_rgb(source))
    except ImageError as error:
        parser.exit(1, f"predict.py: error: {printable_name(source)} is not an image this can read: {error}\n")
    faces, outcome = analyser.analyse(rgb)
    names = analyser.predictor.class_names
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


def _folder(folder: Path, files: list[Path], analyser: Analyser, args) -> int:
    annotated = Path(args.annotate) if args.annotate else None
    run = analyse_folder(folder, files, analyser, Path(args.csv), annotated)
    save_settings(args, analyser)
    stopped = f" (interrupted after {run.done} of {len(files)} images: the CSV holds those)" if run.interrupted else ""
    unreadable = run.unreadable
    print(
        f"{run.done - len(unreadable)} images read, {run.faces} faces, {run.outcomes[OUTCOMES['none']]} images "
        f"without a face, {len(unreadable)} unreadable{': ' + ', '.join(unreadable[:5]) if unreadable else ''}"
        f"{stopped}"
    )
    print(
        "Every file, by outcome (the CSV's outcome column): "
        + ", ".join(f"{outcome} {count}" for outcome, count in run.outcomes.most_common())
    )
    others = passed_over(folder, files)
    if others:
        phones = ", ".join(s for s in PHONE_SUFFIXES if s in others)
        print(
            f"{sum(others.values())} other files left, not images this reads: "
            + ", ".join(f"{suffix} {count}" for suffix, count in others.most_common(8))
            + (f" ({phones}: pip install pillow-heif, or a Pillow with AVIF, reads them)" if phones else "")
        )
    print(f"Predictions: {args.csv}" + (f"; annotated images: {annotated}" if annotated else ""))
    return 130 if run.interrupted else 0


def _opened(args, parser):
    """(its name, the opened capture, the clock of a live stream) of the video file or the --camera stream."""
    import cv2

    camera = args.camera
    capture = cv2.VideoCapture(args.input if camera is None else int(camera) if camera.isdigit() else camera)
    if not capture.isOpened():
        what = f"{args.input} is not a video this can read" if camera is None else f"--camera {camera}: no camera"
        parser.exit(
            1, f"predict.py: error: {what}{'' if camera is None else ' or stream there that OpenCV can open'}\n"
        )
    if args.show:
        try:
            cv2.namedWindow(WINDOW)
        except cv2.error:
            capture.release()
            parser.fail(
                ValueError(
                    "--show: this OpenCV has no windows (opencv-python-headless); install "
                    "opencv-python for them, or write the stream with --annotate"
                )
            )
    if camera is None:
        return args.input, capture, None
    start = time.monotonic()
    return f"camera {camera}", capture, lambda: time.monotonic() - start


def _stream(source: str, capture, clock, analyser: Analyser, args, parser) -> int:
    """A video file or a live stream (`video.run_stream`), then the per-track summary and the outputs."""
    names = analyser.predictor.class_names
    analysis = VideoAnalysis(analyser, args.smooth)
    try:
        run = run_stream(capture, analysis, args.every, clock, args.duration, args.annotate, args.show)
    except ValueError as error:  # the annotated video cannot be written
        parser.stop(error)
    if run.frames == 0:
        parser.exit(1, f"predict.py: error: {source} has no frames this can read\n")
    rows, tracks = video_rows(source, analysis.faces, names), analysis.tracks()
    print(
        f"{source}: {run.frames} frames, {len(range(0, run.frames, args.every))} analysed, {len(rows)} faces found, "
        f"{len(tracks)} tracks, {run.frames / run.seconds:.1f} frames/s"
        + (" (interrupted: what was read is kept)" if run.interrupted else "")
    )
    for track in tracks:
        shares = ", ".join(f"{label} {100 * share:.0f} %" for label, share in list(track["shares"].items())[:3])
        print(
            f"track {track['track']}: {track['first_s']:.2f}-{track['last_s']:.2f} s, {track['frames']} frames, "
            f"mostly {track['dominant'] or '-'} ({shares})"
        )
    for option, output in (("csv", rows), ("tracks", track_rows(source, tracks))):
        if getattr(args, option):
            write_csv(Path(getattr(args, option)), output)
            print(f"{'Predictions' if option == 'csv' else 'Tracks'}: {getattr(args, option)}")
    if args.timeline:
        from affect_keras.deploy.timeline import banded, plot_timeline

        length = max(run.time_s, run.frames / run.fps)
        plot_timeline(
            tracks, names, Path(args.timeline), length, title=Path(source).name, metadata={"Software": SOFTWARE}
        )
        drawn = len(banded(tracks))
        cut = f" ({drawn} of {len(tracks)} tracks, the longest seen)" if drawn < len(tracks) else ""
        print(f"Timeline: {args.timeline}{cut}")
    if args.annotate:
        print(f"Annotated video: {args.annotate}")
    save_settings(args, analyser)
    return 130 if run.interrupted else 0  # Ctrl-C: what was read is written, as a folder's run
