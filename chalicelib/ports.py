"""The ports the Orchestrator talks to (four, and the EventPublisher of its domain events), and the two the read model
(chalicelib/pipeline/read_model.py) reads the jobs through. The AWS adapters live in chalicelib/adapters/aws/; local
mode (a folder, a subprocess, SQLite) implements the same protocols in chalicelib/adapters/local/.
mypy checks every adapter against its protocol where services.py builds it.

Locations are URIs ("s3://bucket/key" in AWS); the logic never splits them itself, so a
local adapter may use "file:///..." or plain folders.
"""
from __future__ import annotations

import builtins
from typing import Any, Iterator, Protocol

from chalicelib.pipeline.actors import OperatorAction
from chalicelib.pipeline.domain_events import DomainEvent
from chalicelib.pipeline.records import (
    Change,
    ConversionSpec,
    DatasetState,
    JobStatus,
    ModelEntry,
    ObjectInfo,
    Outcome,
    Running,
    RunRecord,
    TrainingSpec,
)

CLAIMED, BUSY, VERSION_EXISTS = "claimed", "busy", "version_exists"


class JobRejected(Exception):
    """The job service refused the job for good (bad role, quota, bad spec): retrying will not help."""


class ObjectStore(Protocol):
    def list(self, uri: str) -> Iterator[ObjectInfo]:
        """Every object under the prefix `uri` (its current version), keys relative to it."""

    def read(self, uri: str) -> bytes: ...

    def read_start(self, uri: str, size: int) -> bytes:
        """The object's first `size` bytes (>= 1), or all of it when it is smaller: a read bounded whatever was stored."""

    def write(self, uri: str, data: bytes) -> None:
        """Create or replace the object at `uri` whole (a reader never sees part of it)."""

    def write_once(self, uri: str, data: bytes, lock_days: int = 0) -> bool:
        """Create the object at `uri` whole unless one is there already: False when it was (left as it is: a replay).
        S3 refuses the overwrite itself (a conditional PutObject, If-None-Match: *), so two writers racing cannot both
        win. `lock_days` > 0: the new object is locked that long (S3 Object Lock, governance mode)."""

    def lock(self, uri: str, days: int) -> int:
        """Lock the current version of every object under the prefix `uri` for `days` from now (S3 Object Lock,
        governance mode: no version deleted or its lock shortened without s3:BypassGovernanceRetention); how many.
        A store that keeps no versions (local mode) locks nothing."""

    def restore_version(self, uri: str, version_id: str) -> None:
        """Make version `version_id` of the object the current one again (a copy of it: the versions after it stay).
        Raises OSError where the store keeps no earlier versions (local mode)."""

    def exists(self, uri: str) -> bool: ...

    def join(self, uri: str, *parts: str) -> str: ...

    def download_url(self, uri: str, seconds: int) -> str:
        """A URL a phone can fetch without credentials (presigned in AWS)."""


class JobRunner(Protocol):
    def start_training(self, spec: TrainingSpec) -> bool:
        """Start the job; False when a job of that name already exists (a replay). Raises JobRejected."""

    def start_conversion(self, spec: ConversionSpec) -> bool: ...

    def training_status(self, name: str) -> JobStatus | None: ...

    def conversion_status(self, name: str) -> JobStatus | None: ...


class ModelRegistry(Protocol):
    def register(self, entry: ModelEntry, metadata: dict[str, Any]) -> ModelEntry:
        """Add a version (pending); when `entry.version` is registered already, return that one."""

    def find(self, version: str) -> ModelEntry | None: ...

    def list(self, limit: int = 50) -> builtins.list[ModelEntry]:
        """Newest first."""

    def production(self) -> ModelEntry | None:
        """The served model: the newest approved version, with its URIs and sha256."""

    def production_id(self) -> str:
        """A cheap identity of the served model ("" when none): the predictor reloads when it changes."""

    def approved(self, limit: int = 2) -> builtins.list[ModelEntry]:
        """Approved versions, newest first."""

    def set_status(self, version: str, status: str, reason: str) -> ModelEntry:
        """Raises KeyError for an unknown version."""


class StateStore(Protocol):
    def record_changes(self, dataset: str, changes: list[Change]) -> int:
        """Count each change once however often it is delivered; return how many were new."""

    def dataset_state(self, dataset: str) -> DatasetState: ...

    def claim_run(self, dataset: str, running: Running, consumed: int) -> str:
        """Atomically: no run in progress and no record yet under the run's key (running.version and running.run_id:
        records.model_version) -> hold the data set, subtract `consumed` pending changes, create the run's record
        (with records.run_action for a run by hand). Returns CLAIMED, BUSY or VERSION_EXISTS (the key has a record)."""

    def skip_pending(self, dataset: str, consumed: int, outcome: Outcome) -> bool:
        """Forget `consumed` pending changes without a run (their data set version had one)."""

    def advance(self, dataset: str, job_name: str, from_stages: tuple[str, ...], /, **fields: Any) -> bool:
        """Update the running run's fields (its job_name too, for a retry) if it is `job_name` in one of `from_stages`."""

    def finish(self, dataset: str, job_name: str, outcome: Outcome, model: dict[str, Any] | None = None) -> bool:
        """Let go of the data set if `job_name` holds it; record the outcome on its run record (outcome.version and
        outcome.run_id)."""

    def note_action(self, dataset: str, version: str, run_id: str, action: OperatorAction) -> bool:
        """Append an operator action to a run record; False when there is no such record (a model registered before
        run records kept actions is still acted on, its action is in the registry's reason and the event)."""

    def note_listing_check(self, dataset: str, at: float) -> None:
        """Remember when the data set was last listed to heal lost upload events (DatasetState.listing_checked_at)."""

    def run(self, dataset: str, version: str) -> RunRecord | None:
        """The data set version's newest run record (its only one unless it was run again by hand)."""

    def runs(self, dataset: str, limit: int = 50) -> builtins.list[RunRecord]:
        """Newest first."""


class EventPublisher(Protocol):
    def publish(self, events: builtins.list[DomainEvent]) -> None:
        """Deliver each event (at least once: a consumer drops an id it has seen). Raises when any could not be sent."""


class NoEvents:
    """An EventPublisher for a deployment without an event bus: publishes nothing."""

    def publish(self, events: builtins.list[DomainEvent]) -> None:
        return None


class ValidationReports(Protocol):
    """Each training job's validation.json (chalicelib/pipeline/validation_report.py), as GET /status shows it. The
    cloud's reads the output.tar.gz SageMaker uploads at a job's end (validation_report.ArchivedReports); local
    mode's reads the job's folder, where training writes the report as soon as it has read the data
    (chalicelib/adapters/local/job_view.py)."""

    @property
    def while_training(self) -> bool:
        """Whether a training job can have its report before it ends (else it is looked for once the run converts)."""

    def validation_report(self, training_job: str) -> dict[str, Any] | None:
        """None while the job has none (not yet, or never: it stopped before writing one)."""


class RuntimeView(Protocol):
    """What a runtime that runs the jobs itself (local mode: chalicelib/adapters/local/job_view.py) adds to GET /status.
    The cloud has none: SageMaker's console and CloudWatch show a job's progress."""

    def progress(self, job_name: str) -> dict[str, Any] | None:
        """The job's progress (epoch, metrics: its process's metric lines) and attempts; None for a job it does not know."""

    def facts(self) -> dict[str, Any]:
        """GET /status's `local` section: the runtime's own settings and folders."""
