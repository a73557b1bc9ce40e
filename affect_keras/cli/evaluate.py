"""evaluate.py: score a trained model on a prepared split, or compare evaluated runs."""

from __future__ import annotations

from affect_keras.cli.common import require_training_install

require_training_install("evaluate.py")  # before the imports that need keras or pandas

from pathlib import Path

from affect_keras.cli.common import ArgumentParser, settings_parser
from affect_keras.evaluation.config import GROUPS, EvaluateConfig
from affect_keras.options import check, check_split


def build_parser() -> ArgumentParser:
    """evaluate.py's arguments: one per EvaluateConfig field."""
    return settings_parser(
        "evaluate.py",
        "Accuracy, balanced accuracy, F1, kappa, top-2, "
        "AUC, per-class and skew-normalised scores, confusion matrices and mistakes.",
        EvaluateConfig,
        GROUPS,
    )


def main(argv=None) -> int:
    parser = build_parser()
    config = parser.parse_config(EvaluateConfig, argv)
    try:
        if config.compare:
            return _compare(config.compare, config.split, Path(config.out or "."), config.bootstrap, config.seed)
        from affect_keras.models.loading import check_trusted  # said before the data is read

        check_trusted(config.model, config.trust_saved_model)
        _validate(config)
        return _evaluate(config)  # keras starts here, not for bad flags
    except ValueError as error:
        parser.fail(error)
    except PermissionError as error:
        parser.exit(
            1,
            f"evaluate.py: error: argument --out: cannot write {error.filename}: permission denied "
            f"(choose a writable --out)\n",
        )


def _validate(config: EvaluateConfig) -> None:
    """What needs the files: the model and the prepared split exist (before the model loads)."""
    from affect_keras.models.presets import is_preset

    check(
        [
            (
                Path(config.model).exists() or is_preset(config.model),
                "model",
                f"{config.model} does not exist (nor is it a shipped preset)",
            ),
            (Path(config.data, "summary.json").is_file(), "data", "has no summary.json (prepare it first)"),
        ]
    )
    check_split(config.data, config.split)


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
