"""chalicelib/pipeline/model_rows.py: GET /models without operator data (issue 28, item 4)."""
from __future__ import annotations

import json

import pytest

from chalicelib.pipeline.model_rows import PUBLIC_FIELDS, public_reason, public_row

ARN = "arn:aws:sts::123456789012:assumed-role/Ops/alice"
METRICS = {"test_accuracy": 0.9}


def _row(status: str, reason: str, decided_by: str | None, **more) -> dict:
    """An operator's row as read_model.models() gives it."""
    return {"version": "0123456789abcdef", "status": status, "created_at": "2026-11-28T08:00:00+00:00",
            "package_version": 3, "reason": reason, "metrics": METRICS, "sha256": "ab" * 32, "size_bytes": 123,
            "dataset_version": "0123456789abcdef", "decided_by": decided_by,
            "requested_by": {"by": {"principal": ARN, "kind": "iam", "via": "cli"}, "reason": "tulips/t1.jpg looked odd"},
            **more}


OPERATOR_ROWS = {
    "approved by a person": _row("approved", f"roses were tulips (by {ARN} (iam, cli))", "operator"),
    "rejected by a person": _row("rejected", f"blurry (by {ARN} (iam, http))", "operator"),
    "held by the relabel gate": _row(
        "pending", "labels changed since production 00000000000000aa: 3 of 12 photos in both data sets relabelled "
                   "(25.0%), more than max_relabel_share 5%, e.g. roses/r0.jpg -> tulips/r0.jpg: roses -> tulips", "gate"),
    "failed": {"version": "0123456789abcdef", "status": "failed", "created_at": "t", "metrics": {},
               "reason": "training failed: AlgorithmError: /opt/ml/input/data/train/roses/r0.jpg: s3://data-bucket/x",
               "training_job": "flowers-0123456789abcdef-a1", "dataset_version": "0123456789abcdef",
               "requested_by": None, "decided_by": None},
}


@pytest.mark.parametrize("name", sorted(OPERATOR_ROWS))
def test_a_public_row_has_exactly_the_named_fields_and_no_principal_job_or_photo(name):
    row = OPERATOR_ROWS[name]
    public = public_row(row)
    assert set(public) == {*PUBLIC_FIELDS, "reason"} & {*row, "reason"}
    text = json.dumps(public)
    for secret in ("arn:", "alice", "roses/r0.jpg", "tulips/", "flowers-0123456789abcdef-a1", "s3://", "/opt/ml",
                   "AlgorithmError", "blurry", "roses were tulips"):
        assert secret not in text, (name, secret)
    assert public["reason"] and public["metrics"] == row["metrics"] and public["version"] == row["version"]


def test_the_public_reason_says_the_status_and_who_decided():
    assert public_row(OPERATOR_ROWS["approved by a person"])["reason"] == "approved by an operator"
    assert public_row(OPERATOR_ROWS["rejected by a person"])["reason"] == "rejected by an operator"
    assert public_row(OPERATOR_ROWS["held by the relabel gate"])["reason"] == "held by the promotion gate: an operator decides"
    assert public_row(OPERATOR_ROWS["failed"])["reason"] == "the run failed; operators see why"
    assert public_reason("approved", "gate") == "approved by the promotion gate"
    assert public_reason("approved", None) == "approved"  # the records do not say who (an older release's model)
    assert public_reason("training", None) == "the run is training"
    assert public_reason("something new", None) == ""  # a status this release does not know: no words invented


def test_a_field_added_to_the_operators_rows_stays_out():
    assert "later_secret" not in public_row(_row("approved", "x", "gate", later_secret="arn:aws:iam::1:user/bob"))
