"""flowers_cli/output.py: a model without per-class figures says so."""
from __future__ import annotations

from flowers_cli.output import format_model


def test_a_model_without_per_class_figures_says_so():
    text = format_model({"version": "0123456789abcdef", "status": "approved", "metrics": {"test_accuracy": 0.9}})
    assert "no per-class figures for this model" in text
    with_baseline = format_model({"version": "0123456789abcdef", "status": "pending", "metrics": {
        "per_class": {"a": {"precision": 1, "recall": 1, "f1": 1, "support": 2}}, "confused_pairs": [],
        "baseline": {"accuracy": 0.5, "per_class": {"a": {"precision": 1, "recall": 0.5, "f1": 2 / 3, "support": 2}}}}})
    assert "F1 of the model served then" in with_baseline and with_baseline.splitlines()[2].split()[-3:] == ["2", "66.7", "%"]
    assert "most confused none" in with_baseline
    older = format_model({"version": "0123456789abcdef", "status": "approved",
                          "metrics": {"per_class": {"a": {"precision": 1, "recall": 0.5, "support": 2}}}})
    assert "a 100.0 % 50.0 % - 2".split() in [line.split() for line in older.splitlines()] and "most confused" not in older
