"""chalicelib/adapters/local/events.py: the events local mode makes have the documented shapes."""
from __future__ import annotations

import json

from chalicelib.adapters.local import events
from chalicelib.pipeline.s3_events import parse_bodies


def test_event_shapes_are_the_documented_ones():
    from chalicelib.api.handlers import job_status

    kind, status = job_status(events.training_state("flowers-00000000000000c1", "Failed", "", "boom", 0))
    assert kind == "training" and (status.status, status.reason) == ("Failed", "boom")
    kind, status = job_status(events.processing_state("flowers-00000000000000c1-convert", "Completed", "", 0))
    assert kind == "conversion" and status.status == "Completed"
    record = events.s3_record("bucket", "a b/c+d.jpg", "created", "e", 3, "0A", 0)
    (change,) = parse_bodies([json.dumps({"Records": [record]})], "bucket", "").changes
    assert change.key == "a b/c+d.jpg" and change.kind == "created"
