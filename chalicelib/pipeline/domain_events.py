"""The pipeline's own events, for other systems to automate on: what happened to runs and models.

Five types, chalicelib/contract/vocabulary.py's DomainEventType (EventBridge's detail-type; `source`
is EventSource.FLOWERS): a run started or failed; a model registered, promoted or rolled back. Those an
operator can cause (a run by hand, approve, reject, rollback) say who in `by` (null: the pipeline itself).

They are built here (pure functions, no AWS) and published through the EventPublisher port
(chalicelib/adapters/aws/eventbridge_events.py: an EventBridge bus; chalicelib/adapters/local/event_log.py:
HOME/events.jsonl) by the Orchestrator, after the state change they report is stored. Delivery is
at least once: the same state change always gives the same `id` (a hash of what it is about, never a
clock), so a consumer drops an id it has seen.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Sequence

from chalicelib.contract.vocabulary import DomainEventType, EventSource
from chalicelib.pipeline.actors import Actor
from chalicelib.timestamps import iso

SOURCE = EventSource.FLOWERS


@dataclass(frozen=True)
class DomainEvent:
    type: DomainEventType  # EventBridge's detail-type
    id: str  # the same for the same state change, however often it is published
    at: float  # when the state change happened (epoch seconds)
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The event's JSON: EventBridge's `detail`, and one line of HOME/events.jsonl."""
        return {"id": self.id, "type": self.type, "source": SOURCE, "time": iso(self.at), **self.detail}


def event_id(kind: DomainEventType, *about: str) -> str:
    return hashlib.sha256("\t".join((kind, *about)).encode()).hexdigest()[:32]


def _event(kind: DomainEventType, about: tuple[str, ...], at: float, detail: dict[str, Any]) -> DomainEvent:
    return DomainEvent(kind, event_id(kind, *about), at, detail)


def _by(by: Actor | None) -> dict[str, Any] | None:
    """`by`: who did it by hand (chalicelib/pipeline/actors.py), null when the pipeline did it on its own."""
    return by.as_dict() if by is not None else None


def run_started(dataset: str, version: str, job: str, attempt: int, at: float, reason: str = "",
                by: Actor | None = None, model_version: str = "") -> DomainEvent:
    """`reason`, `by`: a run started by hand (every attempt of it says so); `model_version`: the version its model will
    have (another than the data set version for a rerun)."""
    detail: dict[str, Any] = {"dataset": dataset, "version": version, "training_job": job, "attempt": attempt,
                              "model_version": model_version or version, "by": _by(by)}
    if reason:
        detail["reason"] = reason
    return _event(DomainEventType.RUN_STARTED, (dataset, job), at, detail)


def run_failed(dataset: str, version: str, job: str, reason: str, at: float, failed_attempts: Sequence[str]) -> DomainEvent:
    return _event(DomainEventType.RUN_FAILED, (dataset, job), at, {
        "dataset": dataset, "version": version, "training_job": job, "reason": reason, "failed_attempts": list(failed_attempts)})


def model_registered(dataset: str, version: str, job: str, status: str, reason: str, at: float,
                     test_accuracy: float | None, dataset_version: str = "") -> DomainEvent:
    """`version`: the model's; `dataset_version`: the data set version it was trained on (the same but for a rerun)."""
    return _event(DomainEventType.MODEL_REGISTERED, (dataset, version), at, {
        "dataset": dataset, "version": version, "dataset_version": dataset_version or version, "training_job": job,
        "status": status, "gate": reason, "test_accuracy": test_accuracy})


def model_promoted(dataset: str, version: str, previous: str, reason: str, at: float, by: Actor | None = None) -> DomainEvent:
    return _event(DomainEventType.MODEL_PROMOTED, (dataset, version, previous), at, {
        "dataset": dataset, "version": version, "previous": previous or None, "reason": reason, "by": _by(by)})


def model_rolled_back(dataset: str, rejected: str, current: str, reason: str, at: float, by: Actor | None = None) -> DomainEvent:
    return _event(DomainEventType.MODEL_ROLLED_BACK, (dataset, rejected, current), at, {
        "dataset": dataset, "rejected": rejected, "version": current or None, "reason": reason, "by": _by(by)})
