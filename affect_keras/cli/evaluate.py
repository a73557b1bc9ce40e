"""evaluate.py: score a trained model on a prepared split, or compare evaluated runs."""

from __future__ import annotations

from affect_keras.cli.common import require_training_install

require_training_install("evaluate.py")  # before the imports that need keras or pandas

from pathlib import Path
from typing import TYPE_CHECKING

from affect_keras.cli.common import ArgumentParser
from affect_keras.options import OptionError, check, check_split

if TYPE_CHECKING:  # the report module imports keras: only once the arguments are parsed
    from affect_keras.evaluation.report import EvaluateConfig


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="evaluate.py",
        description="Accuracy, balanced accuracy, F1, kappa, top-2, "
        "AUC, per-class and skew-normalised scores, confusion matrices and mistakes.",
    )
    parser.add_argument(
        "model",
        nargs="?",
        help="a run directory (its best.keras), a preset, a .keras file, "
        "or a model exported by export.py: SavedModel folder, .tflite, .onnx",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--data", help="prepared dataset folder (required unless --compare)")
    data.add_argument("--split", default="test", help="train, val, test, val_balanced, test_balanced, ...")
    data.add_argument("--batch-size", type=int, default=64)
    data.add_argument(
        "--trust-saved-model",
        action="store_true",
        help="evaluate a SavedModel: a SavedModel is a program that can read and write files, so it "
        "runs only with this flag (.keras, .tflite and .onnx files are safe to load)",
    )
    scoring = parser.add_argument_group("scoring")
    scoring.add_argument(
        "--drop-class",
        default="",
        metavar="CLASS",
        help="score without this class: its images and its output removed (e.g. Contempt)",
    )
    scoring.add_argument(
        "--tta",
        choices=("none", "flip"),
        default="none",
        help="flip: average each face's probabilities with its mirror image's",
    )
    scoring.add_argument("--repeats", type=int, default=10, help="class-balanced resamples for skew-normalised scores")
    scoring.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        metavar="N",
        help="bootstrap resamples for the 95 %% interval of each headline figure (0: none); with "
        "--compare, of each run's difference from the first run on the same faces",
    )
    scoring.add_argument("--seed", type=int, default=0, help="seed of the resamples")
    output = parser.add_argument_group("output")
    output.add_argument("--out", default="", help="default: <run>/evaluation-<split>/ (with --compare: .)")
    output.add_argument("--save-predictions", action="store_true", help="also write predictions.csv")
    output.add_argument(
        "--compare",
        nargs="+",
        metavar="RUN",
        help="one table of evaluated runs side by side (uses their --split report)",
    )
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    args.pop("config")
    runs = args.pop("compare")
    try:
        if runs:
            check([(args["bootstrap"] >= 0, "bootstrap", "must be >= 0")])
            return _compare(runs, args["split"], Path(args["out"] or "."), args["bootstrap"], args["seed"])
        if args["model"] and Path(args["model"], "saved_model.pb").is_file() and not args["trust_saved_model"]:
            from affect_keras.models.loading import UNTRUSTED_SAVED_MODEL  # said before the data is read

            raise OptionError("model", f"{args['model']} {UNTRUSTED_SAVED_MODEL}")
        if not args["model"] or not args["data"]:
            parser.error("argument model and --data are required (or use --compare)")
        _validate(args)
        from affect_keras.evaluation.report import EvaluateConfig  # keras starts here, not for bad flags

        return _evaluate(EvaluateConfig(**args))
    except ValueError as error:
        parser.fail(error)
    except PermissionError as error:
        parser.exit(
            1,
            f"evaluate.py: error: argument --out: cannot write {error.filename}: permission denied "
            f"(choose a writable --out)\n",
        )


def _validate(args: dict) -> None:
    from affect_keras.models.presets import is_preset

    check(
        [
            (
                Path(args["model"]).exists() or is_preset(args["model"]),
                "model",
                f"{args['model']} does not exist (nor is it a shipped preset)",
            ),
            (Path(args["data"], "summary.json").is_file(), "data", "has no summary.json (prepare it first)"),
            (args["repeats"] >= 1, "repeats", "must be >= 1"),
            (args["bootstrap"] >= 0, "bootstrap", "must be >= 0"),
            (args["batch_size"] >= 1, "batch-size", "must be >= 1"),
        ]
    )
    check_split(args["data"], args["split"])  # before the model loads


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
