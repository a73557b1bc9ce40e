"""train.py: transfer learning on prepared class folders."""

from __future__ import annotations

from affect_keras.cli.common import require_training_install

require_training_install("train.py")  # before the imports that need keras or pandas

from affect_keras.cli.common import ArgumentParser, add_settings, command, show_logs
from affect_keras.training.config import GROUPS, TrainConfig


def build_parser() -> ArgumentParser:
    """train.py's flags: one per TrainConfig field (its help, default, choices and group are the field's)."""
    parser = ArgumentParser(
        prog="train.py",
        description="Train an expression classifier on folders written by prepare_dataset.py; writes models/<run>/.",
    )
    add_settings(parser, TrainConfig, GROUPS)
    return parser


@command("train.py")
def main(argv=None) -> int:
    parser = build_parser()
    config = parser.parse_config(TrainConfig, argv, required=("data",))
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
