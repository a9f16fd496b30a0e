"""chalicelib/pipeline/s3_events.py: S3 notifications parsed, filtered and deduplicated."""
from __future__ import annotations

import json

import pytest

from chalicelib.pipeline.s3_events import parse_bodies
from pipeline_fixtures import s3_body, s3_record, s3_test_event_body


def test_parse_s3_events_filters_and_dedupes_ids():
    record = s3_record("flowers-data", "datasets/flowers/daisy/a b.jpg", 1000.0, sequencer="00AA")
    bodies = [
        s3_body(record),
        s3_body(record),  # redelivered
        s3_body(s3_record("flowers-data", "datasets/flowers/daisy/a b.jpg", 1001.0, "removed", sequencer="00AB")),
        s3_body(s3_record("other-bucket", "datasets/flowers/x.jpg", 1000.0)),
        s3_body(s3_record("flowers-data", "elsewhere/x.jpg", 1000.0)),
        s3_body(s3_record("flowers-data", "datasets/flowers/daisy/", 1000.0)),
        s3_test_event_body("flowers-data"),
        "not json",
        json.dumps({"Type": "Notification", "Message": s3_body(s3_record("flowers-data", "datasets/flowers/roses/r.png", 5.0))}),
    ]
    parsed = parse_bodies(bodies, "flowers-data", "datasets/flowers/")
    assert [c.kind for c in parsed.changes] == ["created", "created", "removed", "created"]
    assert parsed.changes[0].key == "datasets/flowers/daisy/a b.jpg"  # URL-decoded
    assert parsed.changes[0].change_id == parsed.changes[1].change_id != parsed.changes[2].change_id
    assert parsed.changes[0].event_time == pytest.approx(1000.0)
    assert parsed.test_events == 1 and parsed.ignored == 3 and len(parsed.malformed) == 1
