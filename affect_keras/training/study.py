"""The class-imbalance study: one run per strategy, everything else equal, and the AffectNet paper's Table 7.

`IMBALANCE_STRATEGIES` is the registry (name -> the training settings that make the strategy); the study trains one
run per chosen strategy into `OUT/<strategy>/` (an ordinary run directory: resumable, evaluable,
exportable), evaluates each on the same split, and writes into `OUT/`:

    table7.md       per class, top-1 and top-2 F1 of every strategy side by side, as is and skew-normalised
                    (class-balanced resamples), then accuracy / macro F1 rows
    table7.csv      the same figures, one row per (strategy, class)
    per_class_f1.png  top-1 F1 per class, one bar per strategy

With a frozen backbone (`--weights imagenet` or a saved backbone), every run trains its head on the same
cached features (the feature cache's key leaves out sampling, weights and loss), and is evaluated by its
head on the evaluated split's cached features (stored the first time), so the study costs one backbone
pass per split plus a head per strategy. From scratch the runs train one after another; a
killed study continues with the same command (finished runs are kept, an interrupted one resumes).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from affect_keras.atomic import refuse_foreign_folder
from affect_keras.options import check_fields, setting
from affect_keras.training.config import TrainConfig

log = logging.getLogger(__name__)

# the settings that differ between strategies; everything else is the study's base configuration
IMBALANCE_STRATEGIES = {
    "imbalanced": dict(class_weights="none", sampling="none", loss="crossentropy"),
    "down-sampled": dict(class_weights="none", sampling="undersample", loss="crossentropy"),
    "up-sampled": dict(class_weights="none", sampling="upsample", loss="crossentropy"),
    "inverse-frequency": dict(class_weights="auto", class_weight_power=1.0, sampling="none", loss="crossentropy"),
    "effective-number": dict(class_weights="effective", sampling="none", loss="crossentropy"),
    "balanced-batches": dict(class_weights="none", sampling="oversample", loss="crossentropy"),
    "logit-adjusted": dict(class_weights="none", sampling="none", loss="logit-adjusted"),
    "focal": dict(class_weights="none", sampling="none", loss="focal"),
}


GROUPS = {"study": ("study", "the strategies, the split they are scored on and the study's folder")}


@dataclass(kw_only=True)
class StudyConfig:
    """The study's own settings (study.py's flags beside train.py's, generated from these fields); the
    base training run is a `TrainConfig`.

    Examples:
        >>> study = StudyConfig(strategies=["imbalanced", "focal"], split="val")
        >>> run_study(base, study.strategies, Path(study.out or "studies/r18"), study.split, study.repeats)
    """

    strategies: list[str] = setting(
        list(IMBALANCE_STRATEGIES),
        group="study",
        choices=IMBALANCE_STRATEGIES,
        metavar="NAME",
        help=f"which strategies: {', '.join(IMBALANCE_STRATEGIES)}",
    )
    split: str = setting("val", group="study", help="the split every run is evaluated on")
    repeats: int = setting(
        10, group="study", check=(lambda v: v >= 1, "must be >= 1"), help="class-balanced resamples (skew-normalised)"
    )
    out: str = setting(
        "",
        group="study",
        help="study folder: one run directory per strategy and the tables (default: "
        "studies/<backbone>-<data folder name>)",
    )

    def __post_init__(self):
        check_fields(self)


def strategy_config(base: TrainConfig, strategy: str, out: Path) -> TrainConfig:
    # not calibrated: Table 7 scores the predicted classes, which a temperature does not change
    return replace(base, **IMBALANCE_STRATEGIES[strategy], run_dir=str(out / strategy), calibrate=False)


def run_study(
    base: TrainConfig,
    strategies: list[str],
    out: Path,
    split: str = "val",
    repeats: int = 10,
    verbose: int | str = "auto",
) -> pd.DataFrame:
    """Train and evaluate each strategy, skipping those already finished with the same settings, and write
    the tables (Table 7: table7.csv, table7.md) and the per-class F1 picture.

    Args:
        base: the settings every run shares; each strategy changes only its own (`IMBALANCE_STRATEGIES`).
        strategies: `IMBALANCE_STRATEGIES` names.
        out: the study folder: a run directory per strategy and the tables.
        split: the split every run is scored on.
        repeats: class-balanced resamples for the skew-normalised scores.
        verbose: keras's progress output ("auto": a bar per epoch; 0: none).

    Returns:
        The long table (table7.csv): per strategy, one row per class and two overall rows.

    Examples:
        Two strategies on the `affect_keras.TrainConfig` example's `config`:

        >>> import affect_keras
        >>> from pathlib import Path
        >>> table = affect_keras.run_study(config, ["imbalanced", "focal"], Path("studies/s32"), verbose=0)
        >>> sorted(table["strategy"].unique())
        ['focal', 'imbalanced']
    """
    from affect_keras.evaluation.report import EvaluateConfig, evaluate
    from affect_keras.training.run import train

    refuse_foreign_folder(out, "study.yaml", "out", "study.py")
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.yaml").write_text(
        yaml.safe_dump(
            {"base": asdict(base), "strategies": strategies, "split": split, "repeats": repeats}, sort_keys=False
        )
    )
    reports = {}
    for strategy in strategies:
        config = strategy_config(base, strategy, out)
        run = Path(config.run_dir)
        report = run / f"evaluation-{split}" / "report.json"
        settings = finished_settings(run, config)
        if settings is None:
            log.info("== %s: training %s", strategy, run)
            train(config, verbose=verbose)
            settings = finished_settings(run, config)
        if not report.is_file() or report.stat().st_mtime < (run / "last.keras").stat().st_mtime:
            evaluate(
                EvaluateConfig(model=str(run), data=config.data, split=split, repeats=repeats, out=str(report.parent)),
                outputs=cached_outputs(run, settings, split),
            )
        reports[strategy] = json.loads(report.read_text())
    table = table7(reports)
    write_table7(table, out)
    return table


def cached_outputs(run: Path, settings: TrainConfig, split: str) -> dict[str, np.ndarray] | None:
    """A run that trained its head on cached features (and did not fine-tune the backbone): its outputs on
    `split`, its head run on the split's cached unaugmented features, which the first run of the study
    stores (the validation split's are there from training). They equal the full model's within float
    rounding (`tests/training/test_cache.py`). None for any other run: evaluate then runs the full model.
    `settings`: the run's, as `finished_settings` resolves them."""
    from affect_keras.data.loader import FaceBatches
    from affect_keras.models.loading import load_classifier, named_outputs
    from affect_keras.training.cache import cache_keys, cached_features, split_model

    if settings.cache_views <= 0 or settings.finetune_epochs:
        return None
    model = load_classifier(run)  # the checkpoint evaluate scores, split as training split it
    data = FaceBatches(settings.data, split, model.class_names, settings.image_size, settings.batch_size)
    key = cache_keys(
        model, settings.backbone, settings.stem, settings.pooling, settings.seed, {split: (data, "none", 1)}
    )[split]
    features = cached_features(model, data, key, settings.feature_cache_root)
    _, head = split_model(model)
    return named_outputs(head.predict(np.asarray(features[0]), batch_size=256, verbose=0), model.heads)


def finished_settings(run: Path, config: TrainConfig) -> TrainConfig | None:
    """`config` resolved as train.py resolves it for `run` (auto values filled in), if `run` is a finished
    run of these settings as train.py judges one (the settings that change no result, input pipeline,
    cache folder and devices, left out); else None."""
    if not (run / "last.keras").is_file() or not (run / "config.yaml").is_file():
        return None
    resolved = replace(config)
    saved = resolved.recorded(yaml.safe_load((run / "config.yaml").read_text()))
    resolved.resolve()
    return None if resolved.differences(saved) else resolved


def table7(reports: dict[str, dict]) -> pd.DataFrame:
    """One row per (strategy, class): top-1 / top-2 F1 as is and skew-normalised, and the support."""
    rows = []
    for strategy, report in reports.items():
        balanced = report["skew_normalized"]["per_class"]
        for name in report["class_names"]:
            scores = report["per_class"][name]
            rows.append(
                {
                    "strategy": strategy,
                    "class": name,
                    "support": scores["support"],
                    "top1_f1": scores["top1_f1"],
                    "top2_f1": scores["top2_f1"],
                    "skew_top1_f1": balanced.get(name, {}).get("top1_f1", float("nan")),
                    "skew_top2_f1": balanced.get(name, {}).get("top2_f1", float("nan")),
                }
            )
        rows.append(
            {
                "strategy": strategy,
                "class": "(accuracy)",
                "support": report["images"],
                "top1_f1": report["accuracy"],
                "top2_f1": report["top2_accuracy"],
                "skew_top1_f1": report["skew_normalized"]["accuracy"]["mean"],
                "skew_top2_f1": report["skew_normalized"]["top2_accuracy"]["mean"],
            }
        )
        rows.append(
            {
                "strategy": strategy,
                "class": "(macro F1)",
                "support": report["images"],
                "top1_f1": report["macro_f1"],
                "top2_f1": float("nan"),
                "skew_top1_f1": report["skew_normalized"]["macro_f1"]["mean"],
                "skew_top2_f1": float("nan"),
            }
        )
    return pd.DataFrame(rows)


def _side_by_side(table: pd.DataFrame, top1: str, top2: str) -> pd.DataFrame:
    """Rows: classes (then accuracy, macro F1); columns: strategies; cells "top-1 / top-2"."""
    cells = table.assign(
        cell=[f"{a:.3f}" if pd.isna(b) else f"{a:.3f} / {b:.3f}" for a, b in zip(table[top1], table[top2])]
    )
    wide = cells.pivot(index="class", columns="strategy", values="cell")
    order = list(dict.fromkeys(table["class"]))
    return wide.loc[order, list(dict.fromkeys(table["strategy"]))]


def write_table7(table: pd.DataFrame, out: Path) -> dict[str, Path]:
    paths = {"csv": out / "table7.csv", "markdown": out / "table7.md", "picture": out / "per_class_f1.png"}
    table.to_csv(paths["csv"], index=False, float_format="%.4f")
    support = table.drop_duplicates("class").set_index("class")["support"]
    parts = [
        "# Class-imbalance study (layout of the AffectNet paper's Table 7)",
        "",
        "Per class: top-1 / top-2 F1. Accuracy row: top-1 / top-2 accuracy.",
        "",
    ]
    for title, top1, top2 in (
        ("As is", "top1_f1", "top2_f1"),
        ("Skew-normalised (class-balanced resamples)", "skew_top1_f1", "skew_top2_f1"),
    ):
        wide = _side_by_side(table, top1, top2)
        wide.insert(0, "images", support.loc[wide.index])
        parts += [f"## {title}", "", wide.to_markdown(), ""]
    paths["markdown"].write_text("\n".join(parts))
    _plot(table, paths["picture"])
    return paths


def _plot(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = table[~table["class"].str.startswith("(")]
    wide = classes.pivot(index="class", columns="strategy", values="top1_f1")
    wide = wide.loc[list(dict.fromkeys(classes["class"])), list(dict.fromkeys(classes["strategy"]))]
    axes = wide.plot.bar(figsize=(max(8, 1.2 * len(wide)), 4.5), width=0.85)
    axes.set_ylabel("top-1 F1")
    axes.set_ylim(0, 1)
    axes.set_title("Per-class F1 by imbalance strategy")
    axes.legend(fontsize=8, ncol=2)
    plt.tight_layout()
    plt.savefig(path, dpi=120)
    plt.close()
