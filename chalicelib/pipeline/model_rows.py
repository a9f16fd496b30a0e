"""GET /models: the model versions as the web page and clients with an API key may read them.

The read model's rows (read_model.py `models()`) are the operators' (GET /models/detail, IAM in the cloud:
chalicelib/api/access.py): who started a run by hand (`requested_by`: IAM principal ARNs), a failed run's
`training_job`, and the registry's `reason`, free text that may name the principal who approved or rejected
("... (by arn:aws:sts::...:assumed-role/Ops/alice (iam, cli))", actors.by_hand), relabelled photos' keys (the relabel
gate's examples) or a failure's S3 URIs and errors. A key caller's row copies named fields only (a field added to the
operators' rows later stays out until someone decides it belongs here), and its `reason` is not that text cleaned
(a filter misses the next shape of leak) but a short sentence chosen from the row's structured facts: its status and
who decided it (`decided_by`).
"""
from __future__ import annotations

from typing import Any, Mapping

from chalicelib.contract.vocabulary import DecidedBy, ModelStatus, RunOutcome, Stage

PUBLIC_FIELDS = ("version", "status", "created_at", "package_version", "metrics", "sha256", "size_bytes",
                 "dataset_version", "decided_by")  # and `reason`, from public_reason

_BY_DECIDER: dict[tuple[str, str | None], str] = {
    (ModelStatus.APPROVED, DecidedBy.OPERATOR): "approved by an operator",
    (ModelStatus.APPROVED, DecidedBy.GATE): "approved by the promotion gate",
    (ModelStatus.REJECTED, DecidedBy.OPERATOR): "rejected by an operator",
    (ModelStatus.PENDING, DecidedBy.GATE): "held by the promotion gate: an operator decides",
}
_BY_STATUS: dict[str, str] = {
    ModelStatus.APPROVED: "approved",
    ModelStatus.PENDING: "waiting for an operator's decision",
    ModelStatus.REJECTED: "rejected",
    RunOutcome.FAILED: "the run failed; operators see why",
    Stage.LAUNCHING: "the run is starting",
    Stage.TRAINING: "the run is training",
    Stage.CONVERTING: "the run is converting its model",
    Stage.WAITING: "the run waits to try again",
}


def public_reason(status: str, decided_by: str | None) -> str:
    """The reason a key caller reads: from the status and who decided it, never from the registry's words."""
    return _BY_DECIDER.get((status, decided_by)) or _BY_STATUS.get(status, "")


def public_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """One row of GET /models (openapi.py, "Model") from the operators' row (GET /models/detail, "ModelDetail")."""
    found = {name: row[name] for name in PUBLIC_FIELDS if name in row}
    found["reason"] = public_reason(str(row.get("status", "")), row.get("decided_by"))
    return found


def public_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [public_row(row) for row in rows]
