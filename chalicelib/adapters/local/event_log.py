"""The EventPublisher port in local mode: one JSON line per event, appended to HOME/events.jsonl
(`flowers events --follow` reads it). Each line is written whole under an OS lock, so readers and
other writers never see half a line."""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from chalicelib.pipeline.domain_events import DomainEvent

FILE_NAME = "events.jsonl"


class EventLog:
    def __init__(self, path: Path):
        self.path = Path(path)

    def publish(self, events: list[DomainEvent]) -> None:
        if not events:
            return
        data = "".join(json.dumps(e.as_dict(), sort_keys=True) + "\n" for e in events).encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock
