"""evaluate.py: score a trained model on a prepared split, or compare evaluated runs."""

from __future__ import annotations

from affect_keras.cli.common import require_training_install

require_training_install("evaluate.py")  # before the imports that need keras or pandas

from pathlib import Path

from affect_keras.cli.common import ArgumentParser, add_settings, command
from affect_keras.evaluation.config import GROUPS, EvaluateConfig


def build_parser() -> ArgumentParser:
    """evaluate.py's arguments: one per EvaluateConfig field."""
    parser = ArgumentParser(
        prog="evaluate.py",
        description="Accuracy, balanced accuracy, F1, kappa, top-2, "
        "AUC, per-class and skew-normalised scores, confusion matrices and mistakes.",
    )
    add_settings(parser, EvaluateConfig, GROUPS)
    return parser


@command("evaluate.py")
def main(argv=None) -> int:
    parser = build_parser()
    config = parser.parse_config(EvaluateConfig, argv)
    try:
        if config.compare:
            return _compare(config.compare, config.split, Path(config.out or "."), config.bootstrap, config.seed)
        return _evaluate(config)  # keras starts here, not for bad flags
    except ValueError as error:
        parser.fail(error)
    except PermissionError as error:
        parser.exit(
            1,
            f"evaluate.py: error: argument --out: cannot write {error.filename}: permission denied "
            f"(choose a writable --out)\n",
        )


def _evaluate(config: EvaluateConfig) -> int:
    from affect_keras.evaluation.report import evaluate, format_report

    report = evaluate(config)
    print(format_report(report))
    print(f"\nReport: {Path(config.out) / 'report.json'}")
    for name, path in report["pictures"].items():
        print(f"{name}: {path}")
    return 0


def _compare(runs: list[str], split: str, out: Path, bootstrap: int, seed: int) -> int:
    from affect_keras.evaluation.compare import check_comparison_folder, compare, write_comparison

    check_comparison_folder(out)
    table = compare(runs, split, bootstrap, seed)
    print(table.to_string(index=False, float_format="{:.4f}".format))
    csv, markdown = write_comparison(table, out)
    print(f"\nWritten: {csv}, {markdown}")
    return 0
