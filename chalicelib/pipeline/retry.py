"""Which failed jobs are worth another try, and when. Pure.

A job that failed for a reason of the cloud's (no capacity for the instance, a spot instance
taken back, an internal error, throttling, a quota of concurrent jobs) may well succeed later
with the same data: it is retried, with a new job name (SageMaker never reuses one) and a
doubling wait, up to `max_attempts` in all. A failure of ours or of the data (the training
code's error, a bad request, a missing permission, a job someone stopped) would fail the same
way again: the run fails with the reason at once. What we cannot place counts as permanent:
a retry of an unknown failure costs GPU hours and rarely helps.
"""
from __future__ import annotations

from dataclasses import dataclass

TRANSIENT, PERMANENT = "transient", "permanent"

# Matched in the failure reason (SageMaker's FailureReason, an API error's code, a local job's reason).
_PERMANENT_MARKERS = (
    "algorithmerror",  # our training or conversion code exited with an error (the data, the code)
    "clienterror",  # SageMaker's word for a problem with the request or the input data
    "validationexception", "accessdenied", "resourcenotfound", "conversionerror", "too few",
    "gave up",  # a local job already retried its interruptions

)
_TRANSIENT_MARKERS = (
    "capacityerror", "insufficientcapacity", "insufficient capacity", "insufficientinstancecapacity",
    "internalservererror", "internal server error", "internalfailure", "serviceunavailable", "service unavailable",
    "throttling", "throttled", "requestlimitexceeded", "toomanyrequests", "slowdown",
    "resourcelimitexceeded",  # a quota of concurrent jobs or instances: frees up when other jobs end
    "spot", "interrupted",  # a spot instance reclaimed; a local job whose `flowers up` stopped
)


@dataclass(frozen=True)
class Retry:
    again: bool
    wait_seconds: float
    why: str


def classify(reason: str) -> str:
    """TRANSIENT or PERMANENT for a failed job's reason. A job stopped by hand says nothing
    transient, so it is not retried."""
    text = reason.lower()
    text = text + " " + text.replace(" ", "")
    if any(marker in text for marker in _PERMANENT_MARKERS):
        return PERMANENT
    if any(marker in text for marker in _TRANSIENT_MARKERS):
        return TRANSIENT
    return PERMANENT


def decide(reason: str, attempt: int, max_attempts: int, backoff_seconds: float) -> Retry:
    """After attempt number `attempt` (1 for the first) failed: try again, and after how long?"""
    kind = classify(reason)
    if kind == PERMANENT:
        return Retry(False, 0.0, "permanent: retrying would fail the same way")
    if attempt >= max_attempts:
        return Retry(False, 0.0, f"transient, but {attempt} of {max_attempts} attempts are used")
    wait = backoff_seconds * 2 ** (attempt - 1)
    return Retry(True, wait, f"transient: attempt {attempt + 1} of {max_attempts} in {wait:.0f} s")
