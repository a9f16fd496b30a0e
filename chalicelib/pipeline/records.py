"""Plain values the pipeline passes between its logic and its ports (no AWS types here)."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from chalicelib.contract.vocabulary import JobState, ModelStatus, RunOutcome, Stage

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

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "failures": list(self.failures)}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Running:
        """From a stored dict: fields it lacks (stored before they existed) take their defaults."""
        known = {f.name: f for f in fields(cls)}
        kept = {k: v for k, v in value.items() if k in known}
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
    """One per data set version ever launched: the guard against a second job for it."""

    version: str
    job_name: str
    status: str
    created_at: float
    finished_at: float = 0.0
    reason: str = ""
    model: dict[str, Any] = field(default_factory=dict)  # once registered: ModelEntry.as_dict()


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
