"""export.py: a trained run -> SavedModel / .keras / TFLite / ONNX."""

from __future__ import annotations

from pathlib import Path

from affect_keras.cli.common import ArgumentParser
from affect_keras.deploy.export import FORMATS


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="export.py", description="Export a run's model (without augmentation) taking "
                            "uint8 images and returning class probabilities; class names travel with it.")
    parser.add_argument("run", help="run directory written by train.py")
    output = parser.add_argument_group("output")
    output.add_argument("--format", nargs="+", choices=list(FORMATS), default=["saved_model"],
                        help="one or more formats (tflite and onnx are converted from the SavedModel)")
    output.add_argument("--out", default="", help="default: <run>/export/")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not Path(args.run, "config.yaml").is_file():
        parser.error(f"argument run: {args.run} is not a run directory (no config.yaml)")
    from affect_keras.deploy.export import export
    try:
        written = export(Path(args.run), args.format, Path(args.out) if args.out else None)
    except (ValueError, RuntimeError) as error:
        parser.exit(1, f"export.py: error: {error}\n")
    for fmt, path in written.items():
        print(f"{fmt}: {path}")
    return 0
