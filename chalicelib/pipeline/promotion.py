"""The promotion gate: approve a new model or leave it pending, with the reason. Pure.

Approve when the candidate's test accuracy is at least `min_accuracy`, it was measured on at
least `min_test_images` photos (on a handful, 1.0 means little), it is not more than
`tolerance` (0.5 point) below the production model scored on the *same* test photos (the
conversion job scores it: metadata["metrics"]["baseline"]), and no class's recall falls more
than `max_class_drop` below production's on those photos (a better average must not hide a
class the new model no longer sees). When the production model has other classes there is
nothing like-for-like to compare, so the floors alone decide here (and relabel.py, applied after
this gate, leaves such a model to a person: its classes changed); when the comparison is missing
for any other reason a person decides. Metadata of any shape is read without raising: what is
missing or malformed leaves the model pending with the reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

TOLERANCE = 0.005  # 0.5 accuracy point


@dataclass(frozen=True)
class GateResult:
    approve: bool
    reason: str


def as_mapping(value: object) -> Mapping[str, Any]:
    """The value when it is a mapping, else an empty one: metadata of any shape reads without raising."""
    return value if isinstance(value, Mapping) else {}


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def candidate_test(metadata: Mapping[str, Any]) -> Mapping[str, Any]:
    return as_mapping(as_mapping(as_mapping(metadata).get("metrics")).get("test"))


def candidate_accuracy(metadata: Mapping[str, Any]) -> float | None:
    return _number(candidate_test(metadata).get("accuracy"))


def _recalls(per_class: object, key: str | None) -> dict[str, float]:
    """{label: recall} from {label: {"recall": r}} (key "recall") or from {label: r} (key None)."""
    found = {}
    for label, value in as_mapping(per_class).items():
        recall = _number(as_mapping(value).get(key) if key else value)
        if recall is not None:
            found[str(label)] = recall
    return found


def worst_class_drop(metadata: Mapping[str, Any]) -> tuple[str, float, float] | None:
    """(label, production's recall, the candidate's) for the class that falls most, or None."""
    candidate = _recalls(candidate_test(metadata).get("per_class"), "recall")
    production = _recalls(as_mapping(as_mapping(as_mapping(metadata).get("metrics")).get("baseline")).get("per_class_recall"), None)
    drops = [(production[label] - candidate[label], label) for label in candidate.keys() & production.keys()]
    if not drops:
        return None
    drop, label = max(drops)
    return label, production[label], candidate[label]


def decide(
    metadata: Mapping[str, Any],
    min_accuracy: float,
    production_version: str | None,
    tolerance: float = TOLERANCE,
    min_test_images: int = 0,
    max_class_drop: float = 1.0,
) -> GateResult:
    accuracy = candidate_accuracy(metadata)
    if accuracy is None:
        return GateResult(False, "metadata.json has no test accuracy")
    test = candidate_test(metadata)
    count = _number(test.get("count"))
    photos = f"{int(count) if count is not None else '?'} {test.get('evaluated_on', 'test')} photos"
    if count is None or count < min_test_images:
        return GateResult(False, f"test accuracy {accuracy:.4f} on only {photos}, fewer than min_test_images "
                                 f"{min_test_images}: a person decides")
    if accuracy < min_accuracy:
        return GateResult(False, f"test accuracy {accuracy:.4f} is below min_accuracy {min_accuracy:.2f} ({photos})")
    if not production_version:
        return GateResult(True, f"first model: test accuracy {accuracy:.4f} >= {min_accuracy:.2f} ({photos})")
    baseline = as_mapping(as_mapping(metadata.get("metrics")).get("baseline"))
    base = _number(baseline.get("accuracy"))
    if base is not None:
        if accuracy + 1e-9 < base - tolerance:
            return GateResult(False, f"test accuracy {accuracy:.4f} is more than {tolerance * 100:.1f} point below production "
                                     f"{production_version} ({base:.4f}) on the same {photos}")
        worst = worst_class_drop(metadata)
        if worst is not None and worst[1] - worst[2] > max_class_drop + 1e-9:
            label, before, after = worst
            return GateResult(False, f"recall of {label} falls from {before:.3f} (production {production_version}) to "
                                     f"{after:.3f}, more than max_class_drop {max_class_drop:.2f}, on the same {photos}")
        return GateResult(True, f"test accuracy {accuracy:.4f} vs production {production_version} {base:.4f} on the same {photos}")
    skipped = str(baseline.get("skipped", ""))
    if "other classes" in skipped:
        return GateResult(True, f"test accuracy {accuracy:.4f} >= {min_accuracy:.2f}; production {production_version} has other classes, no comparison")
    why = skipped or "the conversion did not score the production model"
    return GateResult(False, f"cannot compare with production {production_version} on the same photos: {why}")
