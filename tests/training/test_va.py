"""Valence / arousal: masked losses and the evaluation metrics, against values computed by hand."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest

from affect_keras.evaluation.va_metrics import va_scores
from affect_keras.training.losses import VA_LOSSES
from affect_keras.training.va import ConcordanceLoss, MaskedMeanSquaredError

NAN = np.nan
# valence: truth and prediction with hand-computed scores; the fifth face has no valence (masked)
T = np.array([0.5, -0.5, 0.0, 1.0, NAN])
P = np.array([0.4, -0.2, 0.1, 0.7, 0.9])
# by hand: errors -0.1 0.3 0.1 -0.3 -> MSE 0.05, MAE 0.2; means 0.25 and 0.25; cov 0.1875, var_t 0.3125,
# var_p 0.1125 -> CCC 0.375 / 0.425; P - 0.25 = 0.6 (T - 0.25) -> Pearson 1; signs agree on 3 of 4
CCC = 0.375 / 0.425


def test_metrics_match_hand_computed_values_on_the_faces_that_have_them():
    truth = np.stack([T, np.full(5, NAN)], axis=1)  # nobody has arousal
    scores = va_scores(truth, np.stack([P, np.zeros(5)], axis=1))
    v = scores["valence"]
    assert v["count"] == 4
    assert v["rmse"] == pytest.approx(np.sqrt(0.05)) and v["mae"] == pytest.approx(0.2)
    assert v["pearson_r"] == pytest.approx(1.0) and v["ccc"] == pytest.approx(CCC)
    assert v["sagr"] == pytest.approx(0.75)
    assert scores["arousal"] == {"count": 0}


def loss_value(loss, y_true, y_pred):
    y_pred = keras.Variable(np.asarray(y_pred, "float32"))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = loss(np.asarray(y_true, "float32"), y_pred)
        gradient = tape.gradient(value, y_pred)
        return float(value), keras.ops.convert_to_numpy(gradient)
    return float(loss(np.asarray(y_true, "float32"), y_pred)), None


def test_masked_mse_averages_over_the_entries_that_have_a_target():
    y_true = [[0.5, NAN], [-0.5, 0.2], [NAN, NAN]]
    y_pred = [[0.4, 0.9], [-0.2, 0.0], [0.3, 0.3]]
    value, gradient = loss_value(MaskedMeanSquaredError(), y_true, y_pred)
    assert value == pytest.approx((0.01 + 0.09 + 0.04) / 3, rel=1e-5)
    if gradient is not None:  # masked entries get no gradient, the rest 2 err / count
        np.testing.assert_allclose(gradient, [[2 * -0.1 / 3, 0], [2 * 0.3 / 3, 2 * -0.2 / 3], [0, 0]], atol=1e-6)


def test_ccc_loss_is_one_minus_the_hand_computed_concordance():
    y_true = np.stack([T, [NAN, 0.3, NAN, NAN, NAN]], axis=1)  # arousal: one target, too few for a CCC
    value, gradient = loss_value(ConcordanceLoss(), y_true, np.stack([P, np.zeros(5)], axis=1))
    assert value == pytest.approx(1 - CCC, rel=1e-5)
    if gradient is not None:
        assert np.isfinite(gradient).all() and np.all(gradient[4] == 0) and np.all(gradient[:, 1] == 0)
    perfect, _ = loss_value(ConcordanceLoss(), y_true, np.nan_to_num(y_true, nan=0.0))
    assert perfect == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", sorted(VA_LOSSES))
def test_a_batch_without_valence_or_arousal_contributes_zero_and_no_nan(name):
    value, gradient = loss_value(VA_LOSSES[name](), np.full((4, 2), NAN), np.full((4, 2), 0.5))
    assert value == 0.0
    if gradient is not None:
        assert np.all(gradient == 0)
