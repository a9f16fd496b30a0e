"""Builds the adapters for the configured mode, once per container, on first use.

Each piece is created only when a handler needs it: the prediction path creates the S3 and
SageMaker clients, never DynamoDB's. Local mode (FLOWERS_MODE=local, chalicelib/adapters/local/) plugs
its folder / subprocess / SQLite adapters in here; the logic above the ports does not change.
"""
from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from chalicelib import settings as settings_module
from chalicelib.contract.vocabulary import Mode
from chalicelib.observability import Unit, configure, logger, metrics
from chalicelib.ports import EventPublisher, JobRunner, ModelRegistry, NoEvents, ObjectStore, StateStore
from chalicelib.pipeline.records import ModelEntry
from chalicelib.settings import Settings

if TYPE_CHECKING:  # the modules behind these import boto3 or local-only code: built on first use
    from boto3.session import Session
    from mypy_boto3_sagemaker import SageMakerClient

    from chalicelib.adapters.local.wiring import LocalAdapters
    from chalicelib.pipeline.orchestrator import Orchestrator
    from chalicelib.pipeline.read_model import ReadModel
    from chalicelib.serving.predictor import Predictor


class RegistryModelSource:
    """Predictor's ModelSource over the registry (newest approved) and the object store."""

    def __init__(self, registry: ModelRegistry, objects: ObjectStore):
        self._registry = registry
        self._objects = objects

    def production_id(self) -> str:
        return self._registry.production_id()

    def production(self) -> ModelEntry | None:
        return self._registry.production()

    def read(self, uri: str) -> bytes:
        return self._objects.read(uri)


def _report(what: str, exc: Exception) -> None:
    logger.error(what, extra={"error": f"{type(exc).__name__}: {exc}"})
    metrics.add_metric(name="ModelRefreshErrors", unit=Unit.Count, value=1)


class Services:
    def __init__(self, settings: Settings):
        self.settings = settings
        configure(settings.service_name, settings.metrics_namespace)

    @property
    def local_mode(self) -> bool:
        return self.settings.mode == Mode.LOCAL

    @cached_property
    def local(self) -> LocalAdapters:
        """Local mode's adapters (a folder, subprocesses, SQLite under FLOWERS_HOME)."""
        from chalicelib.adapters.local.wiring import LocalAdapters

        return LocalAdapters(self.settings)

    @cached_property
    def _session(self) -> Session:
        import boto3  # late: `import app` stays cheap for packaging and cold starts

        return boto3.session.Session()

    @cached_property
    def objects(self) -> ObjectStore:
        if self.local_mode:
            return self.local.objects
        from chalicelib.adapters.aws.s3_objects import S3ObjectStore

        return S3ObjectStore(self._session.client("s3"))

    @cached_property
    def _sagemaker(self) -> SageMakerClient:
        return self._session.client("sagemaker")

    @cached_property
    def jobs(self) -> JobRunner:
        if self.local_mode:
            return self.local.jobs
        from chalicelib.adapters.aws.sagemaker_jobs import SageMakerJobRunner

        return SageMakerJobRunner(self._sagemaker)

    @cached_property
    def registry(self) -> ModelRegistry:
        if self.local_mode:
            return self.local.registry
        from chalicelib.adapters.aws.sagemaker_registry import SageMakerModelRegistry

        return SageMakerModelRegistry(self._sagemaker, self.settings.model_package_group, self.settings.training_image_uri)

    @cached_property
    def state(self) -> StateStore:
        if self.local_mode:
            return self.local.state
        from chalicelib.adapters.aws.dynamodb_state import DynamoStateStore

        return DynamoStateStore(self._session.client("dynamodb"), self.settings.state_table)

    @cached_property
    def events(self) -> EventPublisher:
        """Where the domain events go: HOME/events.jsonl locally, the stack's EventBridge bus in the cloud."""
        if self.local_mode:
            return self.local.events
        if not self.settings.event_bus_name:
            return NoEvents()
        from chalicelib.adapters.aws.eventbridge_events import EventBridgePublisher

        return EventBridgePublisher(self._session.client("events"), self.settings.event_bus_name)

    @cached_property
    def orchestrator(self) -> Orchestrator:
        from chalicelib.pipeline.orchestrator import Orchestrator, RunPolicy

        policy = self.local.policy if self.local_mode else RunPolicy()
        return Orchestrator(self.settings, self.state, self.objects, self.jobs, self.registry, events=self.events, policy=policy)

    @cached_property
    def read_model(self) -> ReadModel:
        """What GET /status, /models, /models/current and /models/{version}/photos answer."""
        from chalicelib.pipeline.read_model import ReadModel

        if self.local_mode:  # the job runner's rows and folders show reports, progress and the runtime's facts
            view = self.local.job_view
            return ReadModel(self.settings, self.state, self.objects, self.registry, view, view)
        from chalicelib.pipeline.validation_report import ArchivedReports

        reports = ArchivedReports(self.objects, self.settings.artifact_bucket)
        return ReadModel(self.settings, self.state, self.objects, self.registry, reports)

    @cached_property
    def predictor(self) -> Predictor:
        from chalicelib.serving.predictor import Predictor

        return Predictor(RegistryModelSource(self.registry, self.objects), self.settings.model_refresh_seconds, on_error=_report)


_services: Services | None = None


def get() -> Services:
    global _services
    if _services is None:
        _services = Services(settings_module.get())
    return _services


def reset() -> None:
    """Drop the cached settings and adapters (tests switch environments between cases)."""
    global _services
    _services = None
    settings_module.reset()
