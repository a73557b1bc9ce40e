"""study.py: every strategy of the imbalance study trained once.

End to end, so marked slow: `make quick` leaves them out."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from affect_keras.cli.study import main
from affect_keras.data.loader import FaceBatches
from affect_keras.evaluation.report import EvaluateConfig, evaluate
from affect_keras.training.study import IMBALANCE_STRATEGIES
from affect_keras.training.config import NOT_IDENTITY


@pytest.mark.slow
def test_the_study_trains_every_strategy_once_and_writes_table_7(tiny_run, tmp_path, capsys):
    data, out = tiny_run / "data", tmp_path / "study"
    argv = [
        "--data",
        str(data),
        "--backbone",
        "resnet18",
        "--weights",
        str(tiny_run / "run"),
        "--image-size",
        "32",
        "--augment",
        "none",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--out",
        str(out),
        "--split",
        "test",
        "--repeats",
        "3",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("Feature cache: train, 1 view(s)") == 1  # one backbone pass, then reused
    assert printed.count("Feature cache: reusing") >= 2 * (len(IMBALANCE_STRATEGIES) - 1)
    # every strategy is scored by its head on the test split's features, stored by the first evaluation
    assert printed.count("Feature cache: test, 1 view(s)") == 1
    assert printed.count("Feature cache: reusing") >= 3 * (len(IMBALANCE_STRATEGIES) - 1)

    table = pd.read_csv(out / "table7.csv")
    names = json.loads((data / "summary.json").read_text())["class_names"]
    assert list(dict.fromkeys(table["strategy"])) == list(IMBALANCE_STRATEGIES)
    assert len(table) == len(IMBALANCE_STRATEGIES) * (len(names) + 2)
    classes = table[~table["class"].str.startswith("(")]
    assert set(classes["class"]) == set(names)
    assert classes[["top1_f1", "top2_f1"]].apply(lambda c: c.between(0, 1)).all().all()
    assert (classes["top2_f1"] >= classes["top1_f1"] - 1e-9).all()  # top-2 can only find more
    test = FaceBatches(data, "test", names, 32, 16)
    support = classes[classes["strategy"] == "imbalanced"].set_index("class")["support"]
    assert support.to_dict() == {n: int(np.sum(test.labels == k)) for k, n in enumerate(names)}

    for strategy, settings in IMBALANCE_STRATEGIES.items():  # each run is the base run with only its settings changed
        config = yaml.safe_load((out / strategy / "config.yaml").read_text())
        assert config["epochs"] == 2 and config["backbone"] == "resnet18"
        assert config["sampling"] == settings["sampling"] and config["loss"] == settings["loss"]
    f1 = classes.pivot(index="class", columns="strategy", values="top1_f1")
    assert f1.T.drop_duplicates().shape[0] > 1  # the strategies trained different heads

    # scored on cached features, each run's report is the one its full model gives, image by image
    full = evaluate(
        EvaluateConfig(model=str(out / "focal"), data=str(data), split="test", repeats=3, out=str(tmp_path / "full"))
    )
    cached = json.loads((out / "focal" / "evaluation-test" / "report.json").read_text())
    assert cached["confusion_matrix"] == full["confusion_matrix"]
    for score in ("accuracy", "balanced_accuracy", "macro_f1", "kappa", "top2_accuracy"):
        assert cached[score] == pytest.approx(full[score], abs=1e-6)

    markdown = (out / "table7.md").read_text()
    assert "## As is" in markdown and "## Skew-normalised" in markdown
    assert all(strategy in markdown for strategy in IMBALANCE_STRATEGIES)
    assert (out / "per_class_f1.png").stat().st_size > 10_000

    assert main(argv) == 0  # a second call trains nothing: every run is finished with the same settings
    assert "training" not in capsys.readouterr().out.split("Class-imbalance study")[0]

    # a run whose settings differ only where no result changes (the input pipeline) is finished too
    saved = yaml.safe_load((out / "focal" / "config.yaml").read_text())
    assert "input_pipeline" in NOT_IDENTITY
    saved["input_pipeline"] = "pydataset" if saved["input_pipeline"] != "pydataset" else "tf.data"
    (out / "focal" / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    assert main(argv) == 0
    assert "training" not in capsys.readouterr().out.split("Class-imbalance study")[0]
