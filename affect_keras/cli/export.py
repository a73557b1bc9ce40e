"""export.py: a trained run -> SavedModel / .keras / TFLite / ONNX."""

from __future__ import annotations

from affect_keras.cli.common import require_training_install

require_training_install("export.py")  # before the imports that need keras or pandas

from pathlib import Path

from affect_keras.cli.common import ArgumentParser
from affect_keras.models.export import FORMATS


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="export.py",
        description="Export a run's model (without augmentation) taking "
        "uint8 images and returning class probabilities; class names travel with it.",
    )
    parser.add_argument(
        "run",
        help="run directory written by train.py, a preset (a shipped preset's name "
        "or a preset folder), or a .keras file",
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--format",
        nargs="+",
        choices=list(FORMATS),
        default=["saved_model"],
        help="one or more formats (tflite and onnx are converted from the SavedModel)",
    )
    output.add_argument("--out", default="", help="default: <run>/export/ (a preset or .keras file: export-<name>/)")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from affect_keras.models.loading import KINDS, kind_of

    kind = kind_of(args.run)
    if kind is None or not KINDS[kind].keras:
        parser.error(
            f"argument run: {args.run} is neither a run directory (no config.yaml), a preset, nor a .keras file"
        )
    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        parser.error(f"argument --out: {args.out} is a file; give a folder to write the export into")
    from affect_keras.models.export import export

    try:
        written = export(Path(args.run), args.format, Path(args.out) if args.out else None)
    except (ValueError, RuntimeError) as error:
        parser.stop(error)
    for fmt, path in written.items():
        print(f"{fmt}: {path}")
    return 0
