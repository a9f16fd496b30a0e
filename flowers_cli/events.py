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


def describe(event: dict[str, Any]) -> str:
    """One line for a person: time, type, model version, and what matters for that type."""
    kind = str(event.get("type", "?"))
    version = event.get("version") or "-"
    if kind == "Run Started":
        what = f"job {event.get('training_job')} (attempt {event.get('attempt')})"
    elif kind == "Run Failed":
        what = str(event.get("reason", ""))
    elif kind == "Model Registered":
        accuracy = event.get("test_accuracy")
        what = f"{event.get('status')}: {event.get('gate')}" + (f" (test accuracy {accuracy:.3f})" if isinstance(accuracy, (int, float)) else "")
    elif kind == "Model Promoted":
        what = f"serving, was {event.get('previous') or 'none'} ({event.get('reason')})"
    elif kind == "Model Rolled Back":
        what = f"{event.get('rejected')} rejected, serving {event.get('version') or 'none'} ({event.get('reason')})"
    else:
        what = ""
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
