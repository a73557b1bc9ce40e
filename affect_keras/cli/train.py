"""train.py: transfer learning on prepared class folders."""

from __future__ import annotations

from affect_keras.cli.common import require_training_install

require_training_install("train.py")  # before the imports that need keras or pandas

from affect_keras.cli.common import ArgumentParser, add_settings, show_logs
from affect_keras.training.config import GROUPS, TrainConfig


def build_parser() -> ArgumentParser:
    """train.py's flags: one per TrainConfig field (its help, default, choices and group are the field's)."""
    parser = ArgumentParser(
        prog="train.py",
        description="Train an expression classifier on folders written by prepare_dataset.py; writes models/<run>/.",
    )
    add_settings(parser, TrainConfig, GROUPS)
    return parser


def parse_training_args(parser: ArgumentParser, argv) -> dict:
    """The parsed options as TrainConfig's fields (and any the caller added), --data required."""
    args = vars(parser.parse_args(argv))
    args.pop("config")
    if not args["data"]:
        parser.error("argument --data is required")
    return args


def main(argv=None) -> int:
    parser = build_parser()
    settings = parse_training_args(parser, argv)
    try:
        config = TrainConfig(**settings)
        config.validate()
    except ValueError as error:
        parser.fail(error)
    from affect_keras.training.run import train  # keras and TensorFlow start here, not for --help

    show_logs()
    try:
        train(config)
    except (ValueError, RuntimeError) as error:
        parser.stop(error)
    except KeyboardInterrupt:
        parser.exit(
            130,
            f"train.py: interrupted; the finished epochs are kept in {config.run_dir}, and the same "
            f"command continues the run from the last one\n",
        )
    print(f"Run written to {config.run_dir}")
    return 0
