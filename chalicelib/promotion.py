"""The promotion gate: approve a new model or leave it pending, with the reason. Pure.

Approve when the candidate's test accuracy is at least `min_accuracy` and not more than
`tolerance` (0.5 point) below the production model scored on the *same* test photos (the
conversion job scores it: metadata["metrics"]["baseline"]). When the production model has
other classes there is nothing like-for-like to compare, so the floor alone decides; when
the comparison is missing for any other reason a person decides.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

TOLERANCE = 0.005  # 0.5 accuracy point


@dataclass(frozen=True)
class GateResult:
    approve: bool
    reason: str


def candidate_accuracy(metadata: Mapping[str, Any]) -> float | None:
    value = (metadata.get("metrics") or {}).get("test", {}).get("accuracy")
    return float(value) if isinstance(value, (int, float)) else None


def decide(
    metadata: Mapping[str, Any],
    min_accuracy: float,
    production_version: str | None,
    tolerance: float = TOLERANCE,
) -> GateResult:
    accuracy = candidate_accuracy(metadata)
    if accuracy is None:
        return GateResult(False, "metadata.json has no test accuracy")
    test = metadata["metrics"]["test"]
    photos = f"{test.get('count', '?')} {test.get('evaluated_on', 'test')} photos"
    if accuracy < min_accuracy:
        return GateResult(False, f"test accuracy {accuracy:.4f} is below min_accuracy {min_accuracy:.2f} ({photos})")
    if not production_version:
        return GateResult(True, f"first model: test accuracy {accuracy:.4f} >= {min_accuracy:.2f} ({photos})")
    baseline = (metadata.get("metrics") or {}).get("baseline") or {}
    base = baseline.get("accuracy")
    if isinstance(base, (int, float)):
        if accuracy + 1e-9 >= float(base) - tolerance:
            return GateResult(True, f"test accuracy {accuracy:.4f} vs production {production_version} {float(base):.4f} on the same {photos}")
        return GateResult(False, f"test accuracy {accuracy:.4f} is more than {tolerance * 100:.1f} point below production "
                                 f"{production_version} ({float(base):.4f}) on the same {photos}")
    skipped = str(baseline.get("skipped", ""))
    if "other classes" in skipped:
        return GateResult(True, f"test accuracy {accuracy:.4f} >= {min_accuracy:.2f}; production {production_version} has other classes, no comparison")
    why = skipped or "the conversion did not score the production model"
    return GateResult(False, f"cannot compare with production {production_version} on the same photos: {why}")
