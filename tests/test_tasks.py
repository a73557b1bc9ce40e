"""--task: every task trains, logs what its monitor is checked against, evaluates; the hierarchical
output layer and the epoch CCC metric against values computed by hand."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import os

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import (
    LINEAR_HEAD,
    one_line_error,
    tiny_flags,
)

from affect_keras.cli.train import main as train_main
from affect_keras.data.prepare import PrepareConfig, prepare
from affect_keras.evaluation.va_metrics import ccc
from affect_keras.tasks import TASKS
from affect_keras.labels import polarity_of
from affect_keras.heads._hierarchical import HierarchicalProbabilities
from affect_keras.training.va import Concordance


def test_the_expression_classifier_logs_its_monitors(tiny_run):
    history = pd.read_csv(tiny_run / "run" / "history.csv")
    assert set(history.columns) - {"epoch"} == set(TASKS["expression"].monitors())


def test_a_valence_arousal_task_on_data_without_them_is_refused(tmp_path, small_sample, capsys):
    data = tmp_path / "no_va"
    data.mkdir()
    for name in ("summary.json", "train.csv", "val.csv"):
        table_or_text = (small_sample / name).read_text()
        (data / name).write_text(table_or_text)
    for split in ("train", "val"):
        table = pd.read_csv(data / f"{split}.csv")
        table["file"] = [str(small_sample / f) for f in table["file"]]
        table[["valence", "arousal"]] = np.nan  # as FER+ or a folder tree: no valence / arousal
        table.to_csv(data / f"{split}.csv", index=False)
    with pytest.raises(SystemExit) as exit_:
        train_main(
            [
                *tiny_flags(data),
                "--task",
                "va",
                "--run-dir",
                str(tmp_path / "run"),
                *LINEAR_HEAD,
            ]
        )
    assert exit_.value.code == 1
    assert "--task va: no face of the train split" in capsys.readouterr().err


def test_hierarchical_probabilities_are_polarity_times_the_expression_within_it():
    groups = polarity_of(["Neutral", "Happy", "Sad", "Surprise", "Anger"])
    assert groups == [1, 0, 2, 0, 2]  # Positive 0, Neutral 1, Negative 2
    polarity = np.array([[0.2, 0.3, 0.5]], "float32")
    logits = np.array([[0.0, np.log(3.0), 0.0, 0.0, np.log(4.0)]], "float32")
    out = keras.ops.convert_to_numpy(HierarchicalProbabilities(groups)([polarity, logits]))
    # by hand: Neutral alone in its group 0.3; Happy 0.2 * 3/4, Surprise 0.2 * 1/4; Sad 0.5 * 1/5, Anger 0.5 * 4/5
    np.testing.assert_allclose(out, [[0.3, 0.15, 0.1, 0.05, 0.4]], atol=1e-6)
    with pytest.raises(ValueError, match="class Uncertain has no polarity"):
        polarity_of(["Happy", "Uncertain"])


def test_the_epoch_ccc_metric_covers_every_batch_and_skips_missing_targets():
    rng = np.random.default_rng(0)
    truth = rng.uniform(-1, 1, (40, 2)).astype("float32")
    predicted = (0.7 * truth + rng.normal(0, 0.2, truth.shape)).astype("float32")
    truth[::5, 0] = np.nan  # faces without valence
    metric = Concordance(0)
    for start in range(0, 40, 16):  # batches of 16, 16, 8
        metric.update_state(truth[start : start + 16], predicted[start : start + 16])
    keep = ~np.isnan(truth[:, 0])
    assert float(metric.result()) == pytest.approx(
        ccc(truth[keep, 0].astype("float64"), predicted[keep, 0].astype("float64")), abs=1e-5
    )
    metric.reset_state()
    metric.update_state(truth[:8], np.nan_to_num(truth[:8]))  # perfect where a target exists
    assert float(metric.result()) == pytest.approx(1.0, abs=1e-5)


def test_a_head_is_one_class_that_serves_every_stage():
    """Each head of the registry (one file each in affect_keras/heads/) builds its layers, gives its default
    loss, metrics (named as the task says it logs them), targets and prediction columns; its training loss
    (training.losses.HEAD_LOSSES) and report section (evaluation.sections.SECTIONS) are found by its name."""
    import inspect

    import pandas as pd

    from affect_keras.evaluation.sections import SECTIONS
    from affect_keras.heads import HEADS, Head
    from affect_keras.training.config import TrainConfig
    from affect_keras.training.losses import HEAD_LOSSES

    assert set(HEADS) == {"expression", "va", "polarity"}
    assert all(set(task.heads) <= set(HEADS) for task in TASKS.values())
    assert set(HEAD_LOSSES) == set(HEADS) and set(SECTIONS) == set(HEADS) - {"polarity"}
    for name, head in HEADS.items():
        assert isinstance(head, Head) and head.name == name
        assert inspect.getsourcefile(type(head)).endswith(f"heads/{name}.py")
        logged = [m if isinstance(m, str) else m.name for m in head.metrics()]
        assert logged == list(head.metric_names), (name, logged)
        assert keras.losses.get({"class_name": head.loss, "config": {}}) is not None and head.card(["A", "B", "C"])
        assert HEAD_LOSSES[name](TrainConfig(data="d"), [1, 2, 3]) is not None
        table = pd.DataFrame({"file": ["a", "b"]})
        values = np.full((2, 3 if name != "va" else 2), 0.5, "float32")
        head.columns(table, values, ["Happy", "Sad", "Neutral"])
        assert len(table.columns) > 1


def test_hierarchical_on_polarity_labels_says_the_data_is_labelled_by_polarity(tmp_path, capsys):
    prepare(PrepareConfig(source="sample", out=tmp_path / "pol", count=60, size=32, labels="polarity3"))
    with pytest.raises(SystemExit) as stop:
        train_main(
            [
                *tiny_flags(tmp_path / "pol"),
                "--epochs",
                "1",
                "--task",
                "hierarchical",
                "--run-dir",
                str(tmp_path / "run"),
            ]
        )
    message = one_line_error(capsys)
    assert stop.value.code != 0 and "already labelled by polarity" in message
