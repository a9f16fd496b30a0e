"""When a Lambda stops starting new work: its remaining time (the context's get_remaining_time_in_millis())
below MARGIN_SECONDS. Pure.

A function that runs past its timeout is killed mid-step: an SQS delivery then comes back whole (every message,
even those done) and counts one receive towards the dead-letter queue, and an asynchronous tick is retried and,
in the end, sent to the events' dead-letter queue. Stopping between steps instead hands back exactly what is
left: the upload function answers the messages it did not get to as `batchItemFailures` (SQS retries them, the
rest are done), a classify batch writes the lines of the photos it classified, and the tick leaves a run it
could not start in time to the next tick.

No deadline where no Lambda runs the code: without a context (a direct call), or with Chalice's own
(`chalice.local.LambdaContext`, which `flowers up` and `chalice.test.Client` pass, with a made-up 3 s limit,
not the function's timeout).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

# Seconds kept for what follows the last step started: writing a classify batch's answers (one PutObject),
# answering SQS, the metrics. The functions' timeouts are 120 s (infra/flowers_infra/chalice_app.py).
MARGIN_SECONDS = 10.0


@dataclass(frozen=True)
class Deadline:
    """`remaining_ms`: the Lambda context's get_remaining_time_in_millis, None: no deadline."""

    remaining_ms: Callable[[], int] | None = None
    margin_seconds: float = MARGIN_SECONDS

    def passed(self) -> bool:
        """True once no new step should start: less than the margin remains."""
        return self.remaining_ms is not None and self.remaining_ms() < self.margin_seconds * 1000


NONE = Deadline()


def of(context: object, margin_seconds: float = MARGIN_SECONDS) -> Deadline:
    """The deadline of an invocation, from the context Lambda passed (NONE without one: see the module's text)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining) or type(context).__module__.startswith("chalice."):
        return NONE
    return Deadline(remaining, margin_seconds)
