"""chalicelib/pipeline/retry.py: transient failures are retried with doubling waits, permanent ones are not."""
from __future__ import annotations


def test_failures_are_told_transient_or_permanent():
    from chalicelib.pipeline import retry

    for reason in ("CapacityError: Unable to provision requested ML compute capacity.",
                   "InternalServerError: We encountered an internal error. Please try again.",
                   "training job refused: ResourceLimitExceeded: The account-level service limit is exceeded",
                   "ThrottlingException: Rate exceeded", "Spot instance was interrupted",
                   "interrupted: flowers up stopped while it ran (kill, crash or Ctrl-C)"):
        assert retry.classify(reason) == retry.TRANSIENT, reason
    for reason in ("AlgorithmError: data set: too few images", "ClientError: Please ensure the data is valid",
                   "training job refused: ValidationException: bad role", "AccessDeniedException: no",
                   "ConversionError: no test photos", "training stopped: no reason given", "",
                   "interrupted: flowers up stopped while it ran; gave up after 3 attempts",
                   "something nobody has seen before"):
        assert retry.classify(reason) == retry.PERMANENT, reason


def test_transient_failures_retry_with_doubling_waits_up_to_the_limit():
    from chalicelib.pipeline import retry

    reason = "CapacityError: no capacity"
    assert [retry.decide(reason, attempt, 3, 300).wait_seconds for attempt in (1, 2)] == [300, 600]
    assert all(retry.decide(reason, attempt, 3, 300).again for attempt in (1, 2))
    final = retry.decide(reason, 3, 3, 300)
    assert not final.again and "3 of 3" in final.why
    assert not retry.decide("AlgorithmError: bad data", 1, 3, 300).again
