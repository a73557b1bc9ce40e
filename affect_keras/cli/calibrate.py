"""calibrate.py: fit a temperature for an existing run, preset or .keras file on a prepared split."""

from __future__ import annotations

from affect_keras.cli.common import require_training_install

require_training_install("calibrate.py")  # before the imports that need keras or pandas

from pathlib import Path

from affect_keras.cli.common import ArgumentParser, add_settings, command, show_logs
from affect_keras.training.calibrate import GROUPS, CalibrateConfig


def build_parser() -> ArgumentParser:
    """calibrate.py's arguments: one per CalibrateConfig field."""
    parser = ArgumentParser(
        prog="calibrate.py",
        description="Temperature scaling: fit the temperature that "
        "minimises the negative log-likelihood on a prepared split (the validation split by "
        "default) and make it part of the model; the predicted classes do not change.",
    )
    add_settings(parser, CalibrateConfig, GROUPS)
    return parser


@command("calibrate.py")
def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_config(CalibrateConfig, argv)
    from affect_keras.training.calibrate import calibrate_model  # keras starts here

    show_logs()
    try:
        written, record = calibrate_model(
            args.model, Path(args.data), args.split, Path(args.out) if args.out else None, args.batch_size, args.force
        )
    except (ValueError, RuntimeError) as error:
        parser.stop(error)
    print(
        f"Temperature {record['temperature']:.4f} on {args.split} ({record['images']} faces): "
        f"ECE {record['before']['ece']:.4f} -> {record['after']['ece']:.4f}, "
        f"NLL {record['before']['nll']:.4f} -> {record['after']['nll']:.4f}, "
        f"Brier {record['before']['brier']:.4f} -> {record['after']['brier']:.4f}"
    )
    for path in written:
        print(f"Written: {path}")
    return 0
