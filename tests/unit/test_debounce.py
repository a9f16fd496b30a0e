"""chalicelib/pipeline/debounce.py: when a quiet data set starts a run."""
from __future__ import annotations

import pytest

from chalicelib.contract.vocabulary import Action
from chalicelib.pipeline import debounce
from chalicelib.pipeline.records import DatasetState, Running


def test_debounce_waits_for_quiet_then_starts():
    state = DatasetState(pending_changes=3, last_change_at=1000.0)
    assert debounce.decide(state, 1000.0 + 599, 600, 1).action == Action.WAIT
    assert debounce.decide(state, 1000.0 + 599, 600, 1).wait_seconds == pytest.approx(1)
    assert debounce.decide(state, 1000.0 + 600, 600, 1).start


def test_debounce_needs_enough_changes_and_no_run():
    assert debounce.decide(DatasetState(), 10_000, 600, 1).action == Action.IDLE
    assert debounce.decide(DatasetState(pending_changes=4, last_change_at=0), 10_000, 600, 5).action == Action.IDLE
    running = Running("v", "flowers-v", "training", 0, 0)
    assert debounce.decide(DatasetState(pending_changes=9, last_change_at=0, running=running), 10_000, 600, 1).action == Action.BUSY


def test_debounce_burst_gives_one_start():
    """3,000 uploads over 300 s, a tick every minute: one start, after the burst has been quiet."""
    starts, running = [], None
    for second in range(0, 1500, 60):  # ticks
        state = DatasetState(pending_changes=min(3000, second * 10), last_change_at=min(second, 300.0), running=running)
        if debounce.decide(state, float(second), 600, 1).start:
            starts.append(second)
            running = Running("v", "flowers-v", "training", second, second)
    assert starts == [900]  # the first tick 600 s after the last upload (t=300)
