"""Calibrated scores and the "not a flower" threshold (training/calibration.py, chalicelib.serving.predictor.decide):
temperature scaling recovers a known temperature and keeps the top class, ECE on inputs worked out by hand,
the threshold refuses at most 5 % of the validation photos, the background class `other` answers null.
`flowers predict` and a real run with `other`: tests/integration/test_not_recognised.py."""
from __future__ import annotations

import numpy as np
import pytest

from chalicelib.serving.predictor import decide
from training import calibration


def synthetic(temperature: float, n: int = 20000, classes: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z); the model reports z x temperature (overconfident when temperature > 1)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2.0, (n, classes))
    p = calibration.softmax(z)
    labels = np.array([rng.choice(classes, p=row) for row in p])
    return z * temperature, labels


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_temperature_fit_recovers_a_known_temperature_and_keeps_the_top_class(true_t):
    logits, labels = synthetic(true_t)
    fitted = calibration.fit_temperature(logits, labels)
    assert fitted == pytest.approx(true_t, rel=0.06)
    assert calibration.nll(logits, labels, fitted) <= calibration.nll(logits, labels, 1.0) + 1e-12
    before, after = calibration.softmax(logits), calibration.softmax(logits / fitted)
    assert (before.argmax(axis=1) == after.argmax(axis=1)).all()
    if true_t != 1.0:  # calibration helps: ECE after well under ECE before, and small
        assert calibration.expected_calibration_error(after, labels) < 0.02
        assert calibration.expected_calibration_error(before, labels) > 2 * calibration.expected_calibration_error(after, labels)


def test_temperature_with_too_few_photos_is_one():
    assert calibration.fit_temperature(np.zeros((0, 3)), np.zeros(0, int)) == 1.0
    logits, labels = synthetic(3.0, n=calibration.MIN_PHOTOS - 1)
    assert calibration.fit_temperature(logits, labels) == 1.0  # too few photos to say anything


def test_ece_on_known_inputs():
    # 10 photos at 0.9 confidence, 9 right: perfectly calibrated
    p = np.tile([0.9, 0.1], (10, 1))
    labels = np.array([0] * 9 + [1])
    assert calibration.expected_calibration_error(p, labels) == pytest.approx(0.0, abs=1e-12)
    # 4 photos at 0.95 all wrong (bin 15: |0 - 0.95|), 4 at 0.55 all right (bin 9: |1 - 0.55|): (0.95 + 0.45) / 2
    p = np.array([[0.95, 0.05]] * 4 + [[0.55, 0.45]] * 4)
    labels = np.array([1] * 4 + [0] * 4)
    assert calibration.expected_calibration_error(p, labels) == pytest.approx(0.7)
    # a bin edge: 1/15 exactly belongs to the first bin, 1.0 to the last
    assert calibration.expected_calibration_error(np.array([[1.0, 0.0]]), np.array([0])) == pytest.approx(0.0)
    assert calibration.expected_calibration_error(np.zeros((0, 2)), np.zeros(0, int)) == 0.0


def test_logits_of_probabilities_give_back_the_uncalibrated_scores():
    logits, _ = synthetic(1.0, n=50)
    calibrated = calibration.softmax(logits / 1.7)
    np.testing.assert_allclose(calibration.softmax(1.7 * calibration.logits_of(calibrated)), calibration.softmax(logits),
                               atol=1e-9)


@pytest.mark.parametrize("n", [7, 20, 139, 1000])
def test_threshold_refuses_at_most_five_percent_of_validation(n):
    logits, labels = synthetic(1.0, n=n, seed=n)
    p = calibration.softmax(logits)
    names = ["a", "b", "c", "d", "e"]
    threshold = calibration.choose_threshold(p, labels, names)
    refused = calibration.refused(p, threshold, names)
    assert refused.mean() <= 0.05
    assert refused.sum() == int(np.floor(0.05 * n))  # the highest such threshold: it uses the whole budget
    assert 0 < threshold <= 1 and threshold == round(threshold, 6)


def test_threshold_with_a_background_class():
    names = ["daisy", "other", "roses"]
    # 20 flowers (one answered `other`, which uses the 5 % budget) and 5 `other` photos, ignored by the rule
    p = np.array([[0.5 + i / 100, 0.1, 0.4 - i / 100] for i in range(19)] + [[0.1, 0.8, 0.1]] + [[0.2, 0.7, 0.1]] * 5)
    truth = np.array([0] * 20 + [1] * 5)
    threshold = calibration.choose_threshold(p, truth, names)
    assert threshold == pytest.approx(0.5)  # nothing more may be refused: the lowest flower score
    refused = calibration.refused(p, threshold, names)
    assert refused[:20].sum() == 1 and refused[20:].all()


def test_decide_answers_the_top_class_or_null():
    predictions = [{"label": "roses", "score": 0.61}, {"label": "tulips", "score": 0.3}]
    assert decide(predictions, None) == "roses"  # a model trained before thresholds
    assert decide(predictions, 0.61) == "roses"
    assert decide(predictions, 0.62) is None
    assert decide([{"label": "other", "score": 0.99}, {"label": "roses", "score": 0.01}], None) is None
    assert decide([{"label": "other", "score": 0.99}, {"label": "roses", "score": 0.01}], 0.2) is None
