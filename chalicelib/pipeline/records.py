"""Plain values the pipeline passes between its logic and its ports (no AWS types here)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from chalicelib.contract.vocabulary import Command, JobState, ModelStatus, RunOutcome, Stage
from chalicelib.pipeline.actors import Actor, OperatorAction

# The pipeline's short names for words chalicelib/contract/vocabulary.py defines.
# Run stages while a run holds the data set (at most one at a time).
LAUNCHING, TRAINING, CONVERTING, WAITING = Stage.LAUNCHING, Stage.TRAINING, Stage.CONVERTING, Stage.WAITING
ACTIVE_STAGES = tuple(Stage)
# Outcomes once it has let go.
REGISTERED, FAILED, SKIPPED = RunOutcome.REGISTERED, RunOutcome.FAILED, RunOutcome.SKIPPED

# A job's status, in SageMaker's words (its state-change events and Describe* calls); local jobs use the same.
JOB_IN_PROGRESS, JOB_STOPPING = JobState.IN_PROGRESS, JobState.STOPPING
JOB_COMPLETED, JOB_FAILED, JOB_STOPPED = JobState.COMPLETED, JobState.FAILED, JobState.STOPPED
JOB_TERMINAL = (JOB_COMPLETED, JOB_FAILED, JOB_STOPPED)
JOB_UNSUCCESSFUL = (JOB_FAILED, JOB_STOPPED)

# Model status as the API shows it.
APPROVED, PENDING, REJECTED = ModelStatus.APPROVED, ModelStatus.PENDING, ModelStatus.REJECTED


# A data set version may run more than once (POST /runs, flowers retrain: after a reject, or to try again with the same
# photos). Its first run has the run id "": its record is keyed by the version alone (as every record stored before
# reruns existed), which is what keeps the tick from starting a second run of a version on its own, and its model's
# version is the data set version. A rerun's id is the name of its first training job (unique: the job service keeps
# every name), its record has a key of its own and its model a version of its own (model_version), so nothing of an
# earlier run is overwritten.
def model_version(dataset_version: str, run_id: str) -> str:
    """The version of the model a run makes: the data set version for its first run; for a rerun 16 hexadecimal
    characters of a hash of both (the format every model version has: the API's pattern, models/<version>/, the
    registry's description), the same on every replay, so registering stays idempotent."""
    if not run_id:
        return dataset_version
    return hashlib.sha256(f"{dataset_version}\n{run_id}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Change:
    """One object created or removed under the data set prefix, as an S3 event reported it."""

    change_id: str  # stable across redeliveries of the same event: the idempotency key
    key: str
    kind: str  # "created" | "removed"
    event_time: float  # epoch seconds


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str
    size: int
    version_id: str = ""  # S3's version id in a versioned bucket ("" when the listing gives none)


@dataclass(frozen=True)
class Running:
    """The run that holds the data set now."""

    version: str
    job_name: str
    stage: str
    started_at: float
    stage_at: float
    conversion_job: str = ""
    baseline_version: str = ""
    attempt: int = 1  # of the current stage's job; a retry or a forced run names its jobs after it
    retry_at: float = 0.0  # WAITING: when to start the next attempt
    retry_stage: str = ""  # WAITING: TRAINING or CONVERTING, the stage to try again
    failures: tuple[str, ...] = ()  # the reasons of the attempts that failed so far
    # Forced full by hand (flowers retrain --full, POST /runs {"full": true}): kept with the run, not passed along,
    # so that every job spec built for it (a relaunch, a retry) starts from ImageNet too, and the next run does not.
    full: bool = False
    run_id: str = ""  # "" for the version's first run, else a rerun's (model_version above)
    requested_by: Actor | None = None  # who started it by hand (None: the pipeline, on uploads)
    request_reason: str = ""  # and why

    @property
    def model_version(self) -> str:
        return model_version(self.version, self.run_id)

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "failures": list(self.failures),
                "requested_by": self.requested_by.as_dict() if self.requested_by else None}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Running:
        """From a stored dict: fields it lacks (stored before they existed) take their defaults."""
        known = {f.name: f for f in fields(cls)}
        kept = {k: v for k, v in value.items() if k in known}
        kept["requested_by"] = Actor.from_dict(kept.get("requested_by"))
        for name in ("started_at", "stage_at", "retry_at"):
            if name in kept:
                kept[name] = float(kept[name])
        if "attempt" in kept:
            kept["attempt"] = int(kept["attempt"])
        kept["failures"] = tuple(str(f) for f in kept.get("failures") or ())
        kept["full"] = kept.get("full") is True or str(kept.get("full", "")).lower() in ("1", "true")
        return cls(**kept)


@dataclass(frozen=True)
class Outcome:
    version: str
    job_name: str
    status: str  # registered | failed | skipped
    reason: str
    at: float
    model_status: str = ""  # approved | pending, for a registered model
    run_id: str = ""  # which run of the version (model_version above)

    @property
    def model_version(self) -> str:
        return model_version(self.version, self.run_id)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Outcome:
        known = {f.name for f in fields(cls)}
        kept = {k: v for k, v in value.items() if k in known}
        kept["at"] = float(kept.get("at", 0))
        return cls(**{"version": "", "job_name": "", "status": "", "reason": "", **kept})


@dataclass(frozen=True)
class DatasetState:
    pending_changes: int = 0
    last_change_at: float = 0.0
    running: Running | None = None
    dataset_version: str = ""  # of the last run launched
    last_outcome: Outcome | None = None
    listing_checked_at: float = 0.0  # when the tick last listed the data set to heal lost upload events


@dataclass(frozen=True)
class RunRecord:
    """One per run ever launched: the version's first (run_id "") is the guard against the tick starting a second job
    for it; each rerun by hand has its own (model_version above), so an earlier run's record is never overwritten."""

    version: str
    job_name: str  # the run's first training job
    status: str
    created_at: float
    finished_at: float = 0.0
    reason: str = ""
    model: dict[str, Any] = field(default_factory=dict)  # once registered: ModelEntry.as_dict()
    run_id: str = ""
    # Operator actions on the run (a run by hand: its first) and on its model (approve, reject, rollback), oldest first.
    actions: tuple[OperatorAction, ...] = ()

    @property
    def model_version(self) -> str:
        return model_version(self.version, self.run_id)

    @property
    def run_request(self) -> OperatorAction | None:
        """The action that started the run by hand; None for a run the pipeline started on uploads."""
        return next((a for a in self.actions if a.command == Command.RUN), None)


def run_action(running: Running) -> OperatorAction | None:
    """What a run by hand records as its first action (None for a run the pipeline started)."""
    if running.requested_by is None:
        return None
    return OperatorAction(Command.RUN, running.requested_by, running.request_reason, running.started_at)


@dataclass(frozen=True)
class ModelEntry:
    """A model version in the registry, with what serving and the API need to know about it."""

    version: str
    status: str  # approved | pending | rejected
    created_at: float
    package_arn: str = ""
    package_version: int = 0
    model_uri: str = ""
    labels_uri: str = ""
    metadata_uri: str = ""
    sha256: str = ""
    size_bytes: int = 0
    test_accuracy: float | None = None
    dataset_version: str = ""
    reason: str = ""  # why the gate (or a person) chose the status
    manifest_uri: str = ""  # the photos it was trained on (chalicelib/pipeline/manifest.py), as its metadata.json names them
    manifest_sha256: str = ""
    run_id: str = ""  # the run that made it: with dataset_version, its run record's key ("" for a version's first run)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class JobStatus:
    name: str
    status: str  # one of the JOB_* values
    reason: str = ""
    model_artifacts: str = ""


@dataclass(frozen=True)
class TrainingSpec:
    """What to train; a job runner turns it into CreateTrainingJob or a local subprocess."""

    job_name: str
    image_uri: str
    role_arn: str
    dataset_uri: str
    output_uri: str
    checkpoint_uri: str
    tensorboard_uri: str
    instance_type: str
    use_spot: bool
    max_runtime_seconds: int
    hyperparameters: dict[str, str]
    metric_definitions: list[dict[str, str]]
    tags: dict[str, str]
    # The run's manifest (chalicelib/pipeline/manifest.py): the channel reads exactly its keys, and training
    # writes the record's URI and sha256 into metadata.json. "" for a run launched without one.
    manifest_uri: str = ""
    manifest_sha256: str = ""
    channel_manifest_uri: str = ""
    # Where the run starts from (chalicelib/contract/warm_start.py): the production model's training output for a warm
    # start ("" for a full run), and the decision as JSON for the job's environment (metadata.json keeps it).
    warm_start_uri: str = ""
    start_from: str = ""
    # The feature cache (chalicelib/contract/feature_cache.py): its prefix in the artifacts bucket, and whether it holds
    # entries yet (the cloud's `features` channel is given only then).
    feature_cache_uri: str = ""
    feature_cache_ready: bool = False


@dataclass(frozen=True)
class ConversionSpec:
    job_name: str
    image_uri: str
    role_arn: str
    model_archive_uri: str  # the training job's model.tar.gz
    dataset_uri: str
    output_uri: str  # ARTIFACT/models/<version>/
    baseline_uri: str  # the production model's folder, "" when there is none
    instance_type: str
    max_runtime_seconds: int
    tags: dict[str, str]
    manifest_uri: str = ""  # as TrainingSpec: the data input reads the run's manifest, not the live prefix
    channel_manifest_uri: str = ""
    # The feature cache's prefix (chalicelib/contract/feature_cache.py): the new entries the training job left in its
    # model folder are handed on there ("": not at all).
    feature_cache_uri: str = ""
