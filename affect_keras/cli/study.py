"""study.py: the class-imbalance study (one run per strategy, Table 7) with train.py's options."""

from __future__ import annotations

from affect_keras.cli.common import require_training_install

require_training_install("study.py")  # before the imports that need keras or pandas

from pathlib import Path

from affect_keras.cli import train as train_cli
from affect_keras.cli.common import show_logs
from affect_keras.evaluation.study import IMBALANCE_STRATEGIES
from affect_keras.options import check_split
from affect_keras.training.config import TrainConfig


def build_parser():
    parser = train_cli.build_parser()
    parser.prog = "study.py"
    parser.description = (
        "Train one run per class-imbalance strategy with every other setting equal (train.py's "
        "options below), evaluate each on the same split, and write the AffectNet paper's "
        "Table 7 (per-class top-1 / top-2 F1, as is and skew-normalised) as Markdown and "
        "CSV with a per-class F1 picture. With a frozen backbone every strategy trains its "
        "head on the same cached features."
    )
    study = parser.add_argument_group("study")
    study.add_argument(
        "--strategies",
        nargs="+",
        choices=list(IMBALANCE_STRATEGIES),
        default=list(IMBALANCE_STRATEGIES),
        metavar="NAME",
        help=f"which strategies: {', '.join(IMBALANCE_STRATEGIES)}",
    )
    study.add_argument("--split", default="val", help="the split every run is evaluated on")
    study.add_argument("--repeats", type=int, default=10, help="class-balanced resamples (skew-normalised)")
    study.add_argument(
        "--out",
        help="study folder: one run directory per strategy and the tables "
        "(default: studies/<backbone>-<data folder name>)",
    )
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = train_cli.parse_training_args(parser, argv)
    if args.pop("run_dir"):
        parser.error("argument --run-dir: a study writes one run per strategy under --out; use --out")
    strategies, split, repeats, out = (args.pop(k) for k in ("strategies", "split", "repeats", "out"))
    if repeats < 1:
        parser.error("argument --repeats must be >= 1")
    out = Path(out or Path("studies") / f"{args['backbone']}-{Path(args['data']).resolve().name}")
    try:
        base = TrainConfig(**args, run_dir=str(out / "base"))
        base.validate()
        check_split(base.data, split)  # before the first strategy trains
    except ValueError as error:
        parser.fail(error)
    from affect_keras.evaluation.study import run_study  # keras starts here

    show_logs()
    try:
        table = run_study(base, strategies, out, split, repeats)
    except (ValueError, RuntimeError) as error:
        parser.stop(error)
    print((out / "table7.md").read_text())
    print(f"Study written to {out} ({len(table['strategy'].unique())} strategies)")
    return 0
