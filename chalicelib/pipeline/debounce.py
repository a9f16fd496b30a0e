"""When to start a training run: a pure function of the pipeline state and the clock.

A run starts when uploads have been quiet for `quiet_period`, at least `min_new_images`
objects changed since the last run was launched, and no run holds the data set. Uploads
during a run keep `pending_changes` above zero, so exactly one further run follows it; a
burst of 3,000 uploads keeps pushing `last_change_at` forward, so it gives one run.
"""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.contract.vocabulary import Action
from chalicelib.pipeline.records import DatasetState


@dataclass(frozen=True)
class Decision:
    action: Action  # START | WAIT | IDLE | BUSY
    reason: str
    wait_seconds: float = 0.0

    @property
    def start(self) -> bool:
        return self.action is Action.START


def decide(state: DatasetState, now: float, quiet_period: int, min_new_images: int) -> Decision:
    if state.running is not None:
        return Decision(Action.BUSY, f"run {state.running.job_name} is {state.running.stage}")
    if state.pending_changes < max(1, min_new_images):
        return Decision(Action.IDLE, f"{state.pending_changes} changed object(s), need {max(1, min_new_images)}")
    quiet_for = now - state.last_change_at
    if quiet_for < quiet_period:
        return Decision(Action.WAIT, f"last upload {quiet_for:.0f}s ago, quiet period {quiet_period}s", quiet_period - quiet_for)
    return Decision(Action.START, f"{state.pending_changes} changed object(s), quiet for {quiet_for:.0f}s")
