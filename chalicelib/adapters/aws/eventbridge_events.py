"""The EventPublisher port on an EventBridge bus (the stack's "<stack>-events"): chalicelib/pipeline/domain_events.py's
events as `source` "flowers", `detail-type` the event's type, `detail` its JSON (with its `id`)."""
from __future__ import annotations

import json
from typing import Any

from chalicelib.pipeline.domain_events import SOURCE, DomainEvent
from chalicelib.timestamps import iso

MAX_ENTRIES = 10  # PutEvents takes at most 10 entries a call


class EventBridgePublisher:
    def __init__(self, client: Any, bus_name: str):
        self._events = client  # boto3's "events" client
        self.bus_name = bus_name

    def publish(self, events: list[DomainEvent]) -> None:
        for start in range(0, len(events), MAX_ENTRIES):
            batch = events[start : start + MAX_ENTRIES]
            entries = [{"Source": SOURCE, "DetailType": e.type, "Detail": json.dumps(e.as_dict()), "EventBusName": self.bus_name,
                        "Time": iso(e.at)} for e in batch]
            answer = self._events.put_events(Entries=entries)
            if answer.get("FailedEntryCount"):
                problems = [f"{e.type} {e.id}: {r.get('ErrorCode')} {r.get('ErrorMessage')}"
                            for e, r in zip(batch, answer.get("Entries", [])) if r.get("ErrorCode")]
                raise RuntimeError(f"EventBridge refused {answer['FailedEntryCount']} event(s): {'; '.join(problems)}")
