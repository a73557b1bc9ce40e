"""train.py learns the built-in sample: ResNet18, expression alone and multitask (on JAX without TensorFlow:
test_distribute.py's data-parallel run and test_cache.py's cached run; VGG16 and EfficientNetB3 memorise a
batch from scratch in tests/models/test_pretrained.py, in a tenth of a full run's time). Small images (32 px)
and few epochs keep this within the suite's time budget; backbones are trained from scratch because
ImageNet weights cannot be downloaded here."""

import json

import numpy as np
import pytest
from conftest import LINEAR_HEAD, tiny_flags

from affect_keras.cli.train import main
from affect_keras.data.loader import FaceBatches
from affect_keras.data.prepare import PrepareConfig, prepare

pytestmark = pytest.mark.slow  # minutes of training each

CHANCE = 1 / 8
# From scratch, the default head (dense 256, batch norm, dropout) held ResNet18 at ~22 % after two
# epochs where a plain linear head reached 93 %; the default is meant for frozen pretrained backbones.


@pytest.fixture(scope="module")
def sample_32(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample32")
    prepare(PrepareConfig(source="sample", out=out, count=1600, size=32))
    return out


def test_a_multitask_model_learns_valence_arousal_and_keeps_the_expression_accuracy(sample_32, tmp_path):
    """Issue 12's bar on the sample (its valence / arousal follow the expression): CCC > 0.5 on both
    dimensions, expression accuracy within 5 points of the expression-only model (same budget). The
    expression-only run is also this file's check that ResNet18 learns the sample. ResNet18's ImageNet stem
    at 32 px (a quarter of the side after it) and 4 epochs: 0.66 accuracy, CCC 0.75 / 0.68, in 75 s, where
    the small stem's 2 epochs took 200 s for the same bar."""
    from affect_keras.evaluation.va_metrics import va_scores
    from affect_keras.models.loading import load

    args = [
        *tiny_flags(sample_32),
        "--augment",
        "none",
        "--epochs",
        "4",
        "--lr",
        "1e-3",
        "--stem",
        "imagenet",
        *LINEAR_HEAD,
    ]
    names = json.loads((sample_32 / "summary.json").read_text())["class_names"]
    test = FaceBatches(sample_32, "test", names, 32, 64, task="va")
    images = [x for x, _ in test]
    scores = {}
    for task in ("expression", "multitask"):
        run = tmp_path / task
        assert main([*args, "--task", task, "--run-dir", str(run)]) == 0
        model = load(run)
        outputs = [model.outputs(x) for x in images]
        predicted = np.concatenate([o["expression"] for o in outputs]).argmax(1)
        scores[task] = {"accuracy": float((predicted == test.labels).mean())}
        if task == "multitask":
            scores[task].update(va_scores(test.columns["va"], np.concatenate([o["va"] for o in outputs])))
    print(scores)
    assert scores["expression"]["accuracy"] >= 4 * CHANCE  # ResNet18 learns the sample
    assert scores["multitask"]["valence"]["ccc"] > 0.5 and scores["multitask"]["arousal"]["ccc"] > 0.5
    assert scores["multitask"]["accuracy"] >= scores["expression"]["accuracy"] - 0.05
