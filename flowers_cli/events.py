"""`flowers events [--follow] [--json]`: the local pipeline's domain events (HOME/events.jsonl, written by
chalicelib/adapters/local/event_log.py), one line each; --follow waits for more, as `tail -f` does.

In the cloud the same events go to the stack's EventBridge bus (README, "Domain events"): rules, not this
command, consume them there."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, TextIO

from chalicelib.contract.vocabulary import DomainEventType
from flowers_cli.output import actor

POLL_SECONDS = 0.5


def read_from(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """The events of the complete lines after byte `offset`, and the offset after them (a line being
    written is left for the next read). A line that is not a JSON object is skipped."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    events = []
    for line in data[:end].splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events, offset + end


def _test_accuracy(event: dict[str, Any]) -> str:
    accuracy = event.get("test_accuracy")
    return f" (test accuracy {accuracy:.3f})" if isinstance(accuracy, (int, float)) else ""


# What matters about each type of event (chalicelib/contract/vocabulary.py's DomainEventType), after its version.
WHAT: dict[str, Callable[[dict[str, Any]], str]] = {
    DomainEventType.RUN_STARTED: lambda e: f"job {e.get('training_job')} (attempt {e.get('attempt')})",
    DomainEventType.RUN_FAILED: lambda e: str(e.get("reason", "")),
    DomainEventType.MODEL_REGISTERED: lambda e: f"{e.get('status')}: {e.get('gate')}" + _test_accuracy(e),
    DomainEventType.MODEL_PROMOTED: lambda e: f"serving, was {e.get('previous') or 'none'} ({e.get('reason')})",
    DomainEventType.MODEL_ROLLED_BACK: lambda e: f"{e.get('rejected')} rejected, serving {e.get('version') or 'none'} ({e.get('reason')})",
}


def describe(event: dict[str, Any]) -> str:
    """One line for a person: time, type, model version, what matters for that type, and who, when a person did it."""
    kind = str(event.get("type", "?"))
    version = event.get("version") or "-"
    what = WHAT[kind](event) if kind in WHAT else ""
    if isinstance(event.get("by"), dict):
        what += f" by {actor(event['by'])}"
    return f"{event.get('time', '')} {kind:<17} {version:<16} {what}".rstrip()


def show(path: Path, follow: bool = False, as_json: bool = False, out: TextIO | None = None,
         keep_going: Callable[[], bool] = lambda: True) -> int:
    out = out or sys.stdout
    if not follow and not path.exists():
        print(f"no events yet ({path} does not exist: `flowers up` writes it)", file=sys.stderr)
        return 0
    offset = 0
    while True:
        events, offset = read_from(path, offset)
        for event in events:
            out.write((json.dumps(event, sort_keys=True) if as_json else describe(event)) + "\n")
        out.flush()
        if not follow or not keep_going():
            return 0
        time.sleep(POLL_SECONDS)
