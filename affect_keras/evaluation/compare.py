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
    train_sampling = yaml.safe_load(prepared.read_text()).get("train_sampling", "none") if prepared.is_file() else "none"
    if train_sampling != "none":
        return f"{train_sampling}-sampling"
    if config.get("sampling", "none") != "none":
        return config["sampling"]
    weights = config.get("class_weights", "none")
    return "imbalanced" if weights == "none" else f"weighted loss ({Path(weights).name})"


def compare(runs: list[str], split: str) -> pd.DataFrame:
    rows = []
    for run in map(Path, runs):
        report_path = run / f"evaluation-{split}" / "report.json"
        if not (run / "config.yaml").is_file():
            raise OptionError("compare", f"{run}: not a run directory (no config.yaml)")
        if not report_path.is_file():
            raise OptionError("compare", f"{run}: no {split} report yet; run evaluate.py {run} --split {split}")
        config = yaml.safe_load((run / "config.yaml").read_text())
        report = json.loads(report_path.read_text())
        rows.append({
            "run": run.name, "backbone": config["backbone"], "weights": Path(str(config["weights"])).name,
            "imbalance": imbalance_strategy(config), "optimizer": f"{config['optimizer']} {config['lr']:g}",
            "epochs": config["epochs"] + config.get("finetune_epochs", 0),
            "accuracy": report["accuracy"], "balanced accuracy": report["skew_normalized"]["accuracy"]["mean"],
            "macro F1": report["macro_f1"], "balanced macro F1": report["skew_normalized"]["macro_f1"]["mean"],
            "top-2": report["top2_accuracy"], "kappa": report["kappa"],
        })
    return pd.DataFrame(rows)


def check_comparison_folder(out: Path) -> None:
    """Refuse a folder whose comparison.csv / comparison.md are not earlier comparisons (the user's own)."""
    refuse_foreign_file(out / "comparison.csv", lambda p: first_line(p).startswith("run,backbone,"), "out",
                        "evaluate.py --compare")
    refuse_foreign_file(out / "comparison.md", lambda p: first_line(p).startswith("| run "), "out",
                        "evaluate.py --compare")


def write_comparison(table: pd.DataFrame, out: Path) -> tuple[Path, Path]:
    check_comparison_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    csv, markdown = out / "comparison.csv", out / "comparison.md"
    table.to_csv(csv, index=False, float_format="%.4f")
    markdown.write_text(table.to_markdown(index=False, floatfmt=".4f") + "\n")
    return csv, markdown
