"""study.py: the class-imbalance study (one run per strategy, Table 7) with train.py's options."""

from __future__ import annotations

from affect_keras.cli.common import require_training_install

require_training_install("study.py")  # before the imports that need keras or pandas

from dataclasses import fields
from pathlib import Path

from affect_keras.cli import train as train_cli
from affect_keras.cli.common import add_settings, command, show_logs
from affect_keras.training.study import GROUPS, StudyConfig
from affect_keras.options import check_split
from affect_keras.training.config import TrainConfig


def build_parser():
    """train.py's arguments (TrainConfig's fields) and the study's own (StudyConfig's)."""
    parser = train_cli.build_parser()
    parser.prog = "study.py"
    parser.description = (
        "Train one run per class-imbalance strategy with every other setting equal (train.py's "
        "options below), evaluate each on the same split, and write the AffectNet paper's "
        "Table 7 (per-class top-1 / top-2 F1, as is and skew-normalised) as Markdown and "
        "CSV with a per-class F1 picture. With a frozen backbone every strategy trains its "
        "head on the same cached features."
    )
    add_settings(parser, StudyConfig, GROUPS)
    return parser


@command("study.py")
def main(argv=None) -> int:
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    args.pop("config")
    if not args["data"]:
        parser.error("argument --data is required")
    if args.pop("run_dir"):
        parser.error("argument --run-dir: a study writes one run per strategy under --out; use --out")
    own = {field.name: args.pop(field.name) for field in fields(StudyConfig)}
    try:
        study = StudyConfig(**own)
        out = Path(study.out or Path("studies") / f"{args['backbone']}-{Path(args['data']).resolve().name}")
        base = TrainConfig(**args, run_dir=str(out / "base"))
        base.validate()
        check_split(base.data, study.split)  # before the first strategy trains
    except ValueError as error:
        parser.fail(error)
    from affect_keras.training.study import run_study  # keras starts here

    show_logs()
    try:
        table = run_study(base, study.strategies, out, study.split, study.repeats)
    except (ValueError, RuntimeError) as error:
        parser.stop(error)
    print((out / "table7.md").read_text())
    print(f"Study written to {out} ({len(table['strategy'].unique())} strategies)")
    return 0
