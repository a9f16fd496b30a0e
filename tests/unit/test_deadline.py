"""chalicelib/pipeline/deadline.py: a Lambda stops starting new work when less than the margin remains; no deadline
where no Lambda runs the code (no context, or Chalice's own, whose 3 s limit is made up)."""
from __future__ import annotations

from chalice.local import LambdaContext

from chalicelib.pipeline import deadline


class Context:
    """A Lambda runtime's context, as far as the deadline reads it."""

    def __init__(self, remaining_ms):
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self):
        return self.remaining_ms


def test_the_deadline_passes_once_less_than_the_margin_remains():
    context = Context(60_000)
    time_left = deadline.of(context)
    assert not time_left.passed()
    context.remaining_ms = int(deadline.MARGIN_SECONDS * 1000)  # exactly the margin: still time
    assert not time_left.passed()
    context.remaining_ms -= 1
    assert time_left.passed()  # read afresh each time: the context's clock runs
    assert not deadline.of(Context(5_000), margin_seconds=4).passed() and deadline.of(Context(3_999), margin_seconds=4).passed()


def test_no_deadline_without_a_lambda_context():
    assert deadline.of(None) is deadline.NONE and not deadline.NONE.passed()
    assert deadline.of(object()) is deadline.NONE  # nothing to ask
    assert deadline.of(LambdaContext("on_upload", memory_size=1024, max_runtime_ms=1)) is deadline.NONE  # flowers up, chalice.test
