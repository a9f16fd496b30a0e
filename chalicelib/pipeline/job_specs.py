"""The training and conversion jobs' specs (records.TrainingSpec, ConversionSpec), which both JobRunners start
as they are: their hyperparameters, where they read and write (chalicelib/contract/bucket_layout.py), and where
a run starts from (the warm-start facts gathered here, decided by chalicelib/contract/warm_start.py).

A spec is the one place a job's hyperparameters come from: the settings', the deployment's, the data set's
training.json, then (locally) `flowers up -H` (Settings.extra_hyperparameters), in that order; the local job
runner writes exactly `spec.hyperparameters` into the job's hyperparameters.json, as SageMaker does.
"""
from __future__ import annotations

import json
from typing import Any

from chalicelib.contract import bucket_layout as layout
from chalicelib.contract import feature_cache as features
from chalicelib.contract import hyperparameters as hp
from chalicelib.contract import training_job as contract
from chalicelib.contract import warm_start as warm
from chalicelib.observability import logger
from chalicelib.pipeline import job_names, manifest
from chalicelib.pipeline.dataset_version import listing
from chalicelib.pipeline.manifest import Manifest
from chalicelib.pipeline.preparation import step
from chalicelib.pipeline.records import JOB_COMPLETED, ConversionSpec, ModelEntry, Running, TrainingSpec
from chalicelib.ports import JobRunner, ModelRegistry, ObjectStore
from chalicelib.settings import Settings

CONVERSION_MAX_RUNTIME = 3600


# Names the layers in a problem only their combination has (the preset from one, the weights from another).
COMBINED_SOURCE = f"this run's settings, defaults and {hp.FILE_NAME} together"


class JobSpecs:
    """Builds the specs from the settings and what the stores hold (the run's manifest, the production model)."""

    def __init__(self, settings: Settings, objects: ObjectStore, jobs: JobRunner, registry: ModelRegistry):
        self.settings = settings
        self.objects = objects
        self.jobs = jobs
        self.registry = registry

    def run_hyperparameters(self) -> dict[str, str]:
        """The settings', then the deployment's defaults, then training.json's beside the data set
        (chalicelib/contract/hyperparameters.py), then `flowers up -H`'s (none in the cloud; checked with the
        settings). Raises HyperparameterProblem, or PreparationFailed when training.json cannot be read."""
        uri = self.objects.join(self.settings.dataset_uri, hp.FILE_NAME)
        with step(f"reading {uri}"):
            raw = self.objects.read(uri) if self.objects.exists(uri) else None
        from_file = hp.parse_file(raw) if raw is not None else {}
        run = hp.for_run(self.settings.preset, self.settings.max_training_time, self.settings.hyperparameters, from_file)
        return hp.combined({**run, **self.settings.extra_hyperparameters}, COMBINED_SOURCE)

    def manifest_of(self, version: str) -> Manifest | None:
        """The version's manifest; None for a run launched before manifests were written. Raises PreparationFailed."""
        bucket = self.settings.artifact_bucket
        uri = layout.manifest_record(bucket, version)
        with step(f"reading {uri}"):
            raw = self.objects.read(uri) if self.objects.exists(uri) else None
        if raw is None:
            return None
        return Manifest(uri, manifest.sha256(raw), layout.manifest_channel(bucket, version))

    def training(self, version: str, job: str, hyperparameters: dict[str, str], full: bool = False) -> TrainingSpec:
        """`hyperparameters`: run_hyperparameters(); `full`: the run was forced full by hand (Running.full). Raises
        PreparationFailed when what the spec is made of cannot be read."""
        s = self.settings
        bucket = s.artifact_bucket
        lineage = self.manifest_of(version)
        start = self.start_from(version, lineage, hyperparameters.get("warm_start", ""), forced_full=full)
        marker = layout.uri(bucket, features.MARKER)
        with step(f"reading {marker}"):
            feature_cache_ready = self.objects.exists(marker)
        hyperparameters = warm.training_hyperparameters(hyperparameters, full)
        return TrainingSpec(
            job_name=job,
            image_uri=s.training_image_uri,
            role_arn=s.sagemaker_role_arn,
            dataset_uri=s.dataset_uri,
            output_uri=layout.training_output(bucket),
            checkpoint_uri=layout.checkpoints(bucket, job),
            tensorboard_uri=layout.tensorboard(bucket),
            instance_type=s.training_instance_type,
            use_spot=s.use_spot,
            max_runtime_seconds=int(hyperparameters.get("max_training_time", s.max_training_time)),
            hyperparameters=dict(hyperparameters),
            metric_definitions=[dict(d) for d in contract.METRIC_DEFINITIONS],
            tags={"dataset_version": version, "dataset": s.dataset_id[:256], "app": "flowers"},
            manifest_uri=lineage.uri if lineage else "",
            manifest_sha256=lineage.sha256 if lineage else "",
            channel_manifest_uri=lineage.channel_uri if lineage else "",
            warm_start_uri=start.model_uri,
            start_from=start.as_json(),
            feature_cache_uri=layout.features(bucket),
            feature_cache_ready=feature_cache_ready,
        )

    def start_from(self, version: str, lineage: Manifest | None = None, warm_start_hyperparameter: str = "",
                   forced_full: bool = False) -> warm.StartFrom:
        """Production's weights or ImageNet's for this run (chalicelib/contract/warm_start.py decides; this gathers the facts)."""
        if lineage is not None:
            with step(f"reading {lineage.uri}"):
                raw = self.objects.read(lineage.uri)
            keys = [str(entry["key"]) for entry in manifest.parse(raw)["files"]]
        else:
            with step(f"listing {self.settings.dataset_uri}"):
                keys = [o.key for o in listing(self.objects, self.settings.dataset_uri)]
        with step("reading the model registry's production model"):
            production = self.registry.production()
        metadata: dict[str, Any] | None = None
        model_uri = ""
        if production is not None and self.settings.full_retrain_every > 1 and not forced_full:  # else the weights are not needed
            document: object = None
            with step(f"reading {production.metadata_uri}"):
                raw_metadata = self.objects.read(production.metadata_uri) if production.metadata_uri and self.objects.exists(
                    production.metadata_uri) else None
            if raw_metadata is not None:
                try:
                    document = json.loads(raw_metadata)
                except ValueError:
                    document = None
            metadata = document if isinstance(document, dict) else None
            source_job = str(metadata.get("source_job") or "") if metadata else ""
            with step(f"asking for training job {source_job}'s status"):
                status = self.jobs.training_status(source_job) if source_job else None
            model_uri = status.model_artifacts if status is not None and status.status == JOB_COMPLETED else ""
            # still there (the artifacts bucket's lifecycle expires job outputs): a folder by its model.keras
            weights = self.objects.join(model_uri, contract.KERAS_FILE) if model_uri.endswith("/") else model_uri
            with step(f"reading {weights}"):
                if model_uri and not self.objects.exists(weights):
                    model_uri = ""
        decision = warm.choose(warm.dataset_classes(keys), production.version if production else "", metadata, model_uri,
                               self.settings.full_retrain_every, warm_start_hyperparameter, forced_full=forced_full)
        logger.info("run starts from", extra={"version": version, "kind": decision.kind, "reason": decision.reason})
        return decision

    def conversion(self, running: Running, model_archive: str, baseline: ModelEntry | None,
                   attempt: int | None = None) -> ConversionSpec:
        """`model_archive`: the training job's model as its completion event names it ("": where SageMaker puts it)."""
        s = self.settings
        lineage = self.manifest_of(running.version)
        return ConversionSpec(
            job_name=job_names.conversion_job(s.model_package_group, running.version, attempt or running.attempt),
            image_uri=s.training_image_uri,
            role_arn=s.conversion_role_arn,  # not the training jobs' role: it writes models/ and nothing they read
            model_archive_uri=model_archive or layout.model_archive(s.artifact_bucket, running.job_name),
            dataset_uri=s.dataset_uri,
            output_uri=layout.model_folder(s.artifact_bucket, running.model_version),  # a rerun's model: a folder of its own
            baseline_uri=baseline.model_uri.rsplit("/", 1)[0] + "/" if baseline and baseline.model_uri else "",
            instance_type=s.conversion_instance_type,
            max_runtime_seconds=CONVERSION_MAX_RUNTIME,
            tags={"dataset_version": running.version, "model_version": running.model_version, "app": "flowers"},
            manifest_uri=lineage.uri if lineage else "",
            channel_manifest_uri=lineage.channel_uri if lineage else "",
            feature_cache_uri=layout.features(s.artifact_bucket),
        )
