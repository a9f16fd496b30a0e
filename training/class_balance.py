"""Class imbalance: inverse-frequency class weights and the report's warnings.

When the largest class has more than `IMBALANCE_RATIO` times the training photos of the smallest,
each class's loss is weighted by n / (k * n_class) (n photos, k classes: the weights average 1
over the photos), so a rare class counts as much as a common one; the `class_weights`
hyperparameter (true by default) turns it off. Whatever the weights, a class with fewer than
`MIN_RECOMMENDED` photos (all splits) gets a warning in validation.json: too few to learn from,
and too few to measure on.
"""
from __future__ import annotations

from typing import Any

IMBALANCE_RATIO = 2.0
MIN_RECOMMENDED = 30  # photos of a class, all splits together


def weights(train_counts: list[int]) -> dict[int, float] | None:
    """Keras' class_weight for these per-class training counts; None when balanced enough (or a class has none)."""
    if len(train_counts) < 2 or min(train_counts) <= 0 or max(train_counts) <= IMBALANCE_RATIO * min(train_counts):
        return None
    total, k = sum(train_counts), len(train_counts)
    return {i: round(total / (k * n), 4) for i, n in enumerate(train_counts)}


def report(class_names: list[str], train_counts: list[int], total_counts: list[int], enabled: bool) -> dict[str, Any]:
    """validation.json's "class_balance": the ratio, the weights used (or why none), and a warning per small class."""
    chosen = weights(train_counts)
    positive = [n for n in train_counts if n > 0]
    ratio = max(positive) / min(positive) if positive else 0.0
    warnings = [f"{name}: {n} photos, fewer than the {MIN_RECOMMENDED} recommended; add photos of this class"
                for name, n in zip(class_names, total_counts) if n < MIN_RECOMMENDED]
    if chosen is None:
        status = f"balanced enough: largest / smallest class {ratio:.2f} <= {IMBALANCE_RATIO:g}"
    elif enabled:
        status = f"weighted by inverse frequency: largest / smallest class {ratio:.2f} > {IMBALANCE_RATIO:g}"
    else:
        status = f"not weighted (class_weights=false) although largest / smallest class {ratio:.2f} > {IMBALANCE_RATIO:g}"
    return {"largest_to_smallest": round(ratio, 3), "status": status,
            "class_weights": {class_names[i]: w for i, w in chosen.items()} if chosen and enabled else None,
            "min_recommended": MIN_RECOMMENDED, "warnings": warnings}
