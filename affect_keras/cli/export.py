"""export.py: a trained run -> SavedModel / .keras / TFLite / ONNX."""

from __future__ import annotations

from affect_keras.cli.common import require_training_install

require_training_install("export.py")  # before the imports that need keras or pandas

from pathlib import Path

from affect_keras.cli.common import ArgumentParser, add_settings, command
from affect_keras.models.export import GROUPS, ExportConfig


def build_parser() -> ArgumentParser:
    """export.py's arguments: one per ExportConfig field."""
    parser = ArgumentParser(
        prog="export.py",
        description="Export a run's model (without augmentation) taking uint8 images and returning class "
        "probabilities; class names travel with it.",
    )
    add_settings(parser, ExportConfig, GROUPS)
    return parser


@command("export.py")
def main(argv=None) -> int:
    parser = build_parser()
    config = parser.parse_config(ExportConfig, argv)
    if not config.run:
        parser.error("argument run: give a run directory, a preset or a .keras file")
    from affect_keras.models.loading import KINDS, kind_of

    kind = kind_of(config.run)
    if kind is None or not KINDS[kind].keras:
        parser.error(
            f"argument run: {config.run} is neither a run directory (no config.yaml), a preset, nor a .keras file"
        )
    if config.out and Path(config.out).exists() and not Path(config.out).is_dir():
        parser.error(f"argument --out: {config.out} is a file; give a folder to write the export into")
    from affect_keras.models.export import export

    try:
        written = export(config.run, config.format, Path(config.out) if config.out else None)
    except (ValueError, RuntimeError) as error:
        parser.stop(error)
    for fmt, path in written.items():
        print(f"{fmt}: {path}")
    return 0
