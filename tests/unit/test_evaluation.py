"""training/evaluation.py: per-class metrics and the most confused pairs."""
import numpy as np

from training import evaluation


def test_per_class_f1_and_most_confused_pairs():
    labels = ["daisy", "roses", "tulips"]
    true = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    predicted = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 0])
    metrics = evaluation.classification_metrics(true, predicted, labels)
    roses = metrics["per_class"]["roses"]
    assert roses["precision"] == 0.5 and roses["recall"] == 1 / 3 and roses["support"] == 3
    assert abs(roses["f1"] - 0.4) < 1e-9
    assert metrics["confused_pairs"] == [{"true": "roses", "predicted": "tulips", "count": 2},
                                         {"true": "daisy", "predicted": "roses", "count": 1},
                                         {"true": "tulips", "predicted": "daisy", "count": 1}]
    empty = evaluation.classification_metrics(np.array([], int), np.array([], int), labels)
    assert empty["confused_pairs"] == [] and empty["per_class"]["daisy"]["f1"] == 0.0
    text = evaluation.per_class_text(metrics)
    assert "| roses | 0.500 | 0.333 | 0.400 | 3 |" in text and "roses → tulips (2)" in text
