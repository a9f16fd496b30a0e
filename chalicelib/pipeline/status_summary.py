"""GET /status/summary: the pipeline's status as the web page and clients with an API key may read it.

GET /status (read_model.py) is the operators' (IAM in the cloud: chalicelib/api/access.py): it names files of the
data set (skipped, likely mislabelled), training and conversion jobs, failure reasons (which quote S3 URIs and
errors) and the IAM principals who acted. The summary keeps what the page shows a visitor (how many photos wait,
whether a run is on and how far it is, when the next one starts, how the last one ended, counts of skipped photos
by reason, class balance) and none of that. It copies named fields only: a field added to /status later stays out
of the summary until someone decides it belongs here.
"""
from __future__ import annotations

from typing import Any, Mapping

_RUNNING = ("version", "stage", "started_at", "attempt", "retry_at", "model_version")
_PROGRESS = ("kind", "attempt", "phase", "epoch", "metrics")  # not last_line (a log line), not earlier attempts' reasons
_OUTCOME = ("version", "model_version", "status", "model_status", "at")  # not job_name, not reason
_NEXT_RUN = ("action", "in_seconds")  # not reason: the debounce's words may quote the data set
_VALIDATION = ("dataset_version", "usable_images", "skipped_count", "skipped_by_reason", "ignored_count")
_LABEL_ISSUES = ("count", "photos", "skipped")
_CLASS_BALANCE = ("status", "largest_to_smallest", "min_recommended", "warnings")  # warnings name classes only


def _pick(source: Any, names: tuple[str, ...]) -> dict[str, Any] | None:
    return {name: source[name] for name in names if name in source} if isinstance(source, Mapping) else None


def summary(status: Mapping[str, Any]) -> dict[str, Any]:
    """The read-only summary of a GET /status document (openapi.py, "StatusSummary")."""
    running = _pick(status.get("running_job"), _RUNNING)
    if running is not None and isinstance(status["running_job"].get("progress"), Mapping):
        running["progress"] = _pick(status["running_job"]["progress"], _PROGRESS)
    validation = _pick(status.get("validation"), _VALIDATION)
    if validation is not None:
        validation["label_issues"] = _pick(status["validation"].get("label_issues"), _LABEL_ISSUES)
        validation["class_balance"] = _pick(status["validation"].get("class_balance"), _CLASS_BALANCE)
    dataset = status.get("dataset")
    found: dict[str, Any] = {
        "dataset": {"version": dataset.get("version", "")} if isinstance(dataset, Mapping) else {"version": ""},
        "pending_uploads": status.get("pending_uploads", 0),
        "last_upload_at": status.get("last_upload_at"),
        "running_job": running,
        "last_outcome": _pick(status.get("last_outcome"), _OUTCOME),
        "next_run": _pick(status.get("next_run"), _NEXT_RUN),
        "validation": validation,
    }
    if isinstance(status.get("local"), Mapping):  # flowers up: where photos go, for whoever has the page open on this machine
        found["local"] = dict(status["local"])
    return found
