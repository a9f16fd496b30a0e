"""chalicelib/pipeline/records.py: a running run remembers whether it was forced full, and reads old records."""
from __future__ import annotations

from chalicelib.pipeline.records import Running


def test_running_remembers_full_and_reads_old_and_odd_dicts():
    running = Running("v1", "job", "launching", 1.0, 1.0, full=True)
    assert running.as_dict()["full"] is True and Running.from_dict(running.as_dict()) == running
    stored_before = {k: v for k, v in running.as_dict().items() if k != "full"}  # a run stored before `full` existed
    assert Running.from_dict(stored_before).full is False
    for value, full in ((True, True), (1, True), ("true", True), ("True", True), (False, False), (0, False), ("false", False),
                        ("", False), (None, False)):
        assert Running.from_dict({**stored_before, "full": value}).full is full, value
