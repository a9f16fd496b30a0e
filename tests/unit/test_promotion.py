"""chalicelib/pipeline/promotion.py: the gate a new model passes to be served."""
from __future__ import annotations

import pytest

from chalicelib.pipeline import promotion


def _meta(accuracy, baseline=None):
    metrics = {"test": {"accuracy": accuracy, "count": 150, "evaluated_on": "test"}}
    if baseline is not None:
        metrics["baseline"] = baseline
    return {"metrics": metrics}


def test_gate_first_model_needs_min_accuracy():
    assert promotion.decide(_meta(0.85), 0.80, None).approve
    result = promotion.decide(_meta(0.79), 0.80, None)
    assert not result.approve and "below min_accuracy" in result.reason


def test_gate_compares_with_production_on_same_photos():
    assert promotion.decide(_meta(0.900, {"accuracy": 0.904}), 0.80, "p").approve  # 0.4 point below: fine
    assert promotion.decide(_meta(0.900, {"accuracy": 0.905}), 0.80, "p").approve  # exactly 0.5 point
    result = promotion.decide(_meta(0.900, {"accuracy": 0.906}), 0.80, "p")
    assert not result.approve and "0.5 point below" in result.reason
    assert promotion.decide(_meta(0.95, {"accuracy": 0.90}), 0.80, "p").approve


def test_gate_without_like_for_like_comparison():
    assert promotion.decide(_meta(0.9, {"skipped": "the production model has other classes"}), 0.8, "p").approve
    assert not promotion.decide(_meta(0.9), 0.8, "p").approve
    assert not promotion.decide({"metrics": {}}, 0.8, None).approve


def _gated(test, baseline=None):
    metrics = {"test": test}
    if baseline is not None:
        metrics["baseline"] = baseline
    return {"metrics": metrics}


def test_the_gate_wants_enough_test_photos_and_no_class_left_behind():
    enough = {"accuracy": 0.95, "count": 200, "evaluated_on": "test",
              "per_class": {"daisy": {"recall": 0.97}, "roses": {"recall": 0.80}}}
    tiny = promotion.decide(_gated({"accuracy": 1.0, "count": 1}), 0.8, None, min_test_images=50)
    assert not tiny.approve and "only 1 test photos" in tiny.reason and "min_test_images 50" in tiny.reason
    assert not promotion.decide(_gated({"accuracy": 1.0}), 0.8, None, min_test_images=50).approve  # count unknown
    assert promotion.decide(_gated(enough), 0.8, None, min_test_images=50).approve
    # Better on average than production, but roses fall 15 points: a person decides.
    baseline = {"accuracy": 0.93, "per_class_recall": {"daisy": 0.90, "roses": 0.95}}
    dropped = promotion.decide(_gated(enough, baseline), 0.8, "p", min_test_images=50, max_class_drop=0.10)
    assert not dropped.approve and "recall of roses falls from 0.950" in dropped.reason
    assert promotion.decide(_gated(enough, baseline), 0.8, "p", min_test_images=50, max_class_drop=0.20).approve
    baseline_ok = {"accuracy": 0.93, "per_class_recall": {"daisy": 0.90, "roses": 0.85}}
    assert promotion.decide(_gated(enough, baseline_ok), 0.8, "p", min_test_images=50, max_class_drop=0.10).approve


@pytest.mark.parametrize("metadata", [
    None, "text", [], {"metrics": None}, {"metrics": "x"}, {"metrics": {"test": None}}, {"metrics": {"test": "0.9"}},
    {"metrics": {"test": {"accuracy": "0.9", "count": "many"}}}, {"metrics": {"test": {"accuracy": True}}},
    {"metrics": {"test": {"accuracy": 0.9, "count": 100, "per_class": "x"}, "baseline": "y"}},
    {"metrics": {"test": {"accuracy": 0.9, "count": 100, "per_class": {"a": None}}, "baseline": {"accuracy": 0.8, "per_class_recall": []}}},
])
def test_the_gate_reads_metadata_of_any_shape_without_raising(metadata):
    result = promotion.decide(metadata, 0.8, "production", min_test_images=50)
    assert isinstance(result.approve, bool) and result.reason
