"""Runs side by side (the AffectNet paper's imbalanced / down-sampling / up-sampling / weighted-loss table)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from affect_keras.atomic import first_line, refuse_foreign_file
from affect_keras.options import OptionError


def imbalance_strategy(config: dict) -> str:
    """How a run dealt with class imbalance: prepare's train sampling, train's sampling, or loss weights."""
    prepared = Path(config.get("data", "")) / "prepare_config.yaml"
    train_sampling = (
        yaml.safe_load(prepared.read_text()).get("train_sampling", "none") if prepared.is_file() else "none"
    )
    if train_sampling != "none":
        return f"{train_sampling}-sampling"
    if config.get("sampling", "none") != "none":
        return config["sampling"]
    weights = config.get("class_weights", "none")
    return "imbalanced" if weights == "none" else f"weighted loss ({Path(weights).name})"


def compare(runs: list[str], split: str, bootstrap: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per evaluated run; from the second run on, its accuracy and macro-F1 difference from the
    first run's on the same faces with a paired-bootstrap 95 % interval, and whether the difference is
    inside the noise (0 within the interval). Runs scored on other faces get no difference."""
    rows, reports = [], []
    for run in map(Path, runs):
        report_path = run / f"evaluation-{split}" / "report.json"
        if not (run / "config.yaml").is_file():
            raise OptionError("compare", f"{run}: not a run directory (no config.yaml)")
        if not report_path.is_file():
            raise OptionError("compare", f"{run}: no {split} report yet; run evaluate.py {run} --split {split}")
        config = yaml.safe_load((run / "config.yaml").read_text())
        report = json.loads(report_path.read_text())
        reports.append(report)
        rows.append(
            {
                "run": run.name,
                "backbone": config["backbone"],
                "weights": Path(str(config["weights"])).name,
                "imbalance": imbalance_strategy(config),
                "optimizer": f"{config['optimizer']} {config['lr']:g}",
                "epochs": config["epochs"] + config.get("finetune_epochs", 0),
                "accuracy": report["accuracy"],
                "balanced accuracy": report["skew_normalized"]["accuracy"]["mean"],
                "macro F1": report["macro_f1"],
                "balanced macro F1": report["skew_normalized"]["macro_f1"]["mean"],
                "top-2": report["top2_accuracy"],
                "kappa": report["kappa"],
                **_paired(reports[0], report, bootstrap, seed, len(reports) > 1),
            }
        )
    return pd.DataFrame(rows)


def _paired(first: dict, other: dict, bootstrap: int, seed: int, compared: bool) -> dict:
    """The difference columns of `other` against `first` (empty for the first run itself)."""
    import numpy as np

    from affect_keras.evaluation.intervals import paired_difference

    columns = {f"{m} vs first": "" for m in ("accuracy", "macro F1")} | {"inside noise": ""}
    if not compared:
        return {**columns, "inside noise": "(reference)"}
    if not bootstrap:
        return {**columns, "inside noise": "(--bootstrap 0)"}
    if not (first.get("faces") and other.get("faces")):  # a report of 0.2.0 does not list its faces
        return {**columns, "inside noise": "(report lists no faces: evaluate again)"}
    if first["faces"]["files"] != other["faces"]["files"]:
        return {**columns, "inside noise": "(other faces: no paired difference)"}
    labels = np.array(first["faces"]["labels"])
    difference = paired_difference(
        labels,
        np.array(first["faces"]["predicted"]),
        np.array(other["faces"]["predicted"]),
        len(first["class_names"]),
        bootstrap,
        seed,
    )
    worded = {
        name: f"{d['difference']:+.4f} [{d['interval'][0]:+.4f}, {d['interval'][1]:+.4f}]"
        for name, d in difference.items()
    }
    noise = [name for name, d in difference.items() if d["inside_noise"]]
    return {
        "accuracy vs first": worded["accuracy"],
        "macro F1 vs first": worded["macro_f1"],
        "inside noise": "both" if len(noise) == 2 else ", ".join(noise) or "no",
    }


def check_comparison_folder(out: Path) -> None:
    """Refuse a folder whose comparison.csv / comparison.md are not earlier comparisons (the user's own)."""
    refuse_foreign_file(
        out / "comparison.csv", lambda p: first_line(p).startswith("run,backbone,"), "out", "evaluate.py --compare"
    )
    refuse_foreign_file(
        out / "comparison.md", lambda p: first_line(p).startswith("| run "), "out", "evaluate.py --compare"
    )


def write_comparison(table: pd.DataFrame, out: Path) -> tuple[Path, Path]:
    check_comparison_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    csv, markdown = out / "comparison.csv", out / "comparison.md"
    table.to_csv(csv, index=False, float_format="%.4f")
    markdown.write_text(table.to_markdown(index=False, floatfmt=".4f") + "\n")
    return csv, markdown
