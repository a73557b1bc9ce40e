"""What predict writes, checked before any work (nothing replaces an input, a user's file or another
output), and the record of the settings it ran with, saved beside its first output."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from affect_keras.atomic import first_line, refuse_foreign_file, writable_file, writable_folder, write_text
from affect_keras.data.images import IMAGE_SUFFIXES
from affect_keras.deploy.config import VIDEO_SUFFIXES, PredictConfig
from affect_keras.deploy.drawing import annotated_by_predict
from affect_keras.deploy.rows import csv_by_predict

SETTINGS_MARK = "# predict.py's resolved settings"  # the first line of the settings file it writes
ANNOTATE_SUFFIXES = IMAGE_SUFFIXES - {".gif"}
OUTPUTS = ("csv", "tracks", "timeline", "annotate")  # predict's output settings, the first one given first


def settings_file(args: PredictConfig) -> Path | None:
    """Where predict saves its resolved settings: beside its first output, `<its name>.settings.yaml`
    (None: it writes nothing)."""
    output = next((getattr(args, option) for option in OUTPUTS if getattr(args, option)), "")
    return beside(output) if output else None


def beside(output: str | Path) -> Path:
    """The settings file that goes with an output."""
    return Path(output).with_name(Path(output).name + ".settings.yaml")


def settings_files(args: PredictConfig) -> list[Path]:
    """Every settings file predict writes: beside its first output, and beside an annotated video (which
    carries no mark of its own: the file beside it says predict made it, so that a later run may replace
    it)."""
    files = [settings_file(args)] if settings_file(args) else []
    if args.annotate and args.video and beside(args.annotate) not in files:
        files.append(beside(args.annotate))
    return files


def video_by_predict(path: Path) -> bool:
    """Whether a video is one predict.py annotated: its settings file lies beside it."""
    return first_line(beside(path)) == SETTINGS_MARK


def save_settings(args: PredictConfig, analyser) -> None:
    """The settings predict ran with, resolved (the framing the model's record and the flags gave, the
    engine that ran the model), beside its outputs: the record of how they were made, which
    `predict.py --config` replays. What kind of model it was is said in a comment."""
    import yaml

    framing = analyser.framing.to_dict()
    resolved = {
        **dataclasses.asdict(args),
        **{key: framing[key] for key in ("crop", "margin", "align") if key in framing},
        "engine": analyser.predictor.engine,
    }
    comment = f"# model: a {analyser.predictor.kind}, run by {analyser.predictor.engine}\n"
    for path in settings_files(args):
        write_text(path, f"{SETTINGS_MARK}\n{comment}{yaml.safe_dump(resolved, sort_keys=False)}")


def check_outputs(source: Path, args, files: list[Path] | None) -> None:
    """Refuse, before any work, output paths that cannot be written or that would replace an input or each
    other: a missing folder, a suffix that cannot be written, an annotated copy that would land on the
    input itself (a folder annotated into itself, or into a folder inside it), a file predict.py did not
    write. `files`: a folder input's images (`image_files`), None for one image, a video or a camera."""
    outputs = {option: getattr(args, option) for option in OUTPUTS if getattr(args, option)}
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
    for path in settings_files(args):  # the record of the settings, beside the first output (and a video)
        first = next(iter(outputs))
        refuse_foreign_file(path, lambda path: first_line(path) == SETTINGS_MARK, first, "predict.py")
    if "timeline" in outputs:
        if Path(outputs["timeline"]).suffix.lower() != ".png":
            raise ValueError(f"--timeline {outputs['timeline']}: write to a .png")
        refuse_foreign_file(Path(outputs["timeline"]), annotated_by_predict, "timeline", "predict.py")
    if not args.annotate:
        return
    annotate_to, read_from = Path(args.annotate).resolve(), source.resolve()
    if files is not None:
        if annotate_to.is_relative_to(read_from):  # the folder itself, or one inside it
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
    wanted = VIDEO_SUFFIXES if args.video else ANNOTATE_SUFFIXES
    if annotate_to.suffix.lower() not in wanted:
        raise ValueError(f"--annotate {args.annotate}: write to one of {', '.join(sorted(wanted))}")
    refuse_foreign_file(annotate_to, video_by_predict if args.video else annotated_by_predict, "annotate", "predict.py")
