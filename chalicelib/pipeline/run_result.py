"""What a step of the run state machine did (chalicelib/pipeline/orchestrator.py): the tick's, a SageMaker event's
and POST /runs' answer. Callers decide on `action`; `as_dict()` gives the answer the Lambdas return and log and
POST /runs sends (OpenAPI's RunStarted), only at that edge.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.contract.vocabulary import Action
from chalicelib.contract.warm_start import StartFrom


@dataclass(frozen=True)
class RunResult:
    """None: a field this kind of result does not have, left out of the answer ("" is a value: a failed run's
    model_status, a registry's empty reason)."""

    action: Action
    reason: str | None = None
    job: str | None = None  # the job that started: training (STARTED) or conversion (CONVERTING)
    version: str | None = None  # the data set version of the run
    model_version: str | None = None  # a run started by hand (POST /runs): its model's version (records.model_version)
    start_from: StartFrom | None = None  # a forced run (POST /runs): where it starts from, and why
    job_status: str | None = None  # NOTED: the job's status in the event (JobState's words), the answer's "status"
    in_seconds: int | None = None  # RETRYING: the wait before the next attempt
    model_status: str | None = None  # a run that ended: its model's status ("" when it made none)
    next: RunResult | None = None  # a run that ended: what the tick after it did (the next run starts, or why not)

    def as_dict(self) -> dict[str, Any]:
        """The answer, with the keys in the order the answers have always had: the reason follows the action, but
        where a job started it comes last (a forced run's reason, after what started)."""
        answer: dict[str, Any] = {"action": self.action.value}
        if self.reason is not None and self.job is None:
            answer["reason"] = self.reason
        if self.job is not None:
            answer["job"] = self.job
        if self.version is not None:
            answer["version"] = self.version
        if self.model_version is not None:
            answer["model_version"] = self.model_version
        if self.start_from is not None:
            answer["start_from"] = {"kind": self.start_from.kind, "reason": self.start_from.reason}
        if self.job_status is not None:
            answer["status"] = self.job_status
        if self.in_seconds is not None:
            answer["in_seconds"] = self.in_seconds
        if self.model_status is not None:
            answer["model_status"] = self.model_status
        if self.next is not None:
            answer["next"] = self.next.as_dict()
        if self.reason is not None and self.job is not None:
            answer["reason"] = self.reason
        return answer
