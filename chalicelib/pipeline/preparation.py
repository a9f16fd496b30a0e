"""Preparing a run, before its training job is asked for: what counts as the world around the pipeline failing
(an AWS answer such as AccessDenied, a file locally), and the plain words a failed run's reason gives for it.

A run whose preparation met such an error fails at once with that reason (chalicelib/pipeline/orchestrator.py):
left in `launching`, the tick would relaunch it every RELAUNCH_AFTER seconds, fail the same way each time, and
hold the data set, so nothing would train again. A programming error (TypeError, KeyError...) is not the
world's: it propagates as before, and its traceback is logged where it happened.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

# botocore's two roots, named rather than imported: the pipeline's rooms know no cloud (the adapters do).
BOTOCORE_ERRORS = ("ClientError", "BotoCoreError")

PREFIX = "preparing the run failed: "


class PreparationFailed(Exception):
    """Reading or writing what a run's job spec is made of failed; str() says what and why."""


def is_environment_error(exc: BaseException) -> bool:
    """An error of the stores around the pipeline, not of its code: botocore's ClientError (AccessDenied,
    throttling, NoSuchBucket...) or BotoCoreError (no credentials, no connection), or an OSError (local mode)."""
    if isinstance(exc, OSError):
        return True
    return any(c.__module__.startswith("botocore") and c.__name__ in BOTOCORE_ERRORS for c in type(exc).__mro__)


def describe(exc: BaseException) -> str:
    """`AccessDenied (GetObject): Access Denied` for an AWS answer; the type and message otherwise."""
    response = getattr(exc, "response", None)
    error = response.get("Error") if isinstance(response, dict) else None
    if isinstance(error, dict) and error.get("Code"):
        operation = getattr(exc, "operation_name", "")
        return f"{error['Code']}{f' ({operation})' if operation else ''}: {error.get('Message') or 'no message'}"
    return f"{type(exc).__name__}: {exc}"


def reason(failure: PreparationFailed) -> str:
    """The failed run's reason, as GET /status and the Run Failed event give it."""
    return PREFIX + str(failure)


@contextmanager
def step(what: str) -> Iterator[None]:
    """Around one read or write of the preparation (`what`: "reading s3://.../training.json"): its environment
    error becomes PreparationFailed naming the step; any other exception passes unchanged."""
    try:
        yield
    except Exception as exc:
        if not is_environment_error(exc):
            raise
        raise PreparationFailed(f"{what}: {describe(exc)}") from exc
