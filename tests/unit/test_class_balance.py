"""training/class_balance.py: class weights past twice the smallest class, and the report."""
from training import class_balance


def test_class_weights_only_past_twice_the_smallest_class():
    assert class_balance.weights([100, 60, 50]) is None  # exactly 2x: balanced enough
    weights = class_balance.weights([100, 20, 30])
    assert weights == {0: 0.5, 1: 2.5, 2: 1.6667}
    # every photo counted by its weight: each class contributes the same total
    assert {round(n * weights[i]) for i, n in enumerate([100, 20, 30])} == {50}
    assert class_balance.weights([10, 0]) is None and class_balance.weights([7]) is None

    report = class_balance.report(["a", "b", "c"], [100, 20, 30], [125, 25, 38], enabled=True)
    assert report["class_weights"] == {"a": 0.5, "b": 2.5, "c": 1.6667} and report["largest_to_smallest"] == 5.0
    assert report["warnings"] == ["b: 25 photos, fewer than the 30 recommended; add photos of this class"]
    off = class_balance.report(["a", "b", "c"], [100, 20, 30], [125, 25, 38], enabled=False)
    assert off["class_weights"] is None and "class_weights=false" in off["status"]
