"""train.py: transfer learning on prepared class folders."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from affect_keras.cli.common import ArgumentParser, add_settings
from affect_keras.options import check
from affect_keras.training.config import GROUPS, TrainConfig
from affect_keras.training.distribute import check_tf_config
from affect_keras.training.supervisor import supervise, supervised


def build_parser() -> ArgumentParser:
    """train.py's flags: one per TrainConfig field (its help, default, choices and group are the field's),
    and --worker-timeout, which watches a multiworker run rather than setting it."""
    parser = ArgumentParser(prog="train.py", description="Train an expression classifier on folders written "
                                                         "by prepare_dataset.py; writes models/<run>/.")
    groups = add_settings(parser, TrainConfig, GROUPS)
    groups["run"].add_argument("--worker-timeout", type=float, default=600, metavar="SECONDS",
                               help="multiworker: give up, naming the workers that do not answer, when not every "
                                    "worker of TF_CONFIG has joined within this time")
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
    args = parse_training_args(parser, argv)
    args["run_dir"] = args["run_dir"] or str(Path("models") / f"{args['backbone']}-{Path(args['data']).resolve().name}")
    worker_timeout = args.pop("worker_timeout")
    config = TrainConfig(**args)
    try:
        config.validate()
        check([(worker_timeout > 0, "worker_timeout", "must be > 0 seconds")])
    except ValueError as error:
        parser.fail(error)
    if config.distribute == "multiworker" and not supervised():  # watched from a process without TensorFlow
        try:
            tf_config = check_tf_config(os.environ.get("TF_CONFIG"))
        except ValueError as error:
            parser.fail(error)
        return supervise(list(sys.argv[1:] if argv is None else argv), tf_config, worker_timeout)
    from affect_keras.training.run import train  # keras and TensorFlow start here, not for --help

    from affect_keras.deploy.export import export
    from affect_keras.deploy.model_card import write_model_card

    try:
        train(config)
        write_model_card(Path(config.run_dir))
        if config.export:
            for fmt, path in export(Path(config.run_dir), config.export).items():
                print(f"Exported {fmt}: {path}")
    except (ValueError, RuntimeError) as error:
        parser.stop(error)
    print(f"Run written to {config.run_dir}")
    return 0
