"""The read side: what GET /status, /models, /models/current and /models/{version}/photos answer.

Reads only: the state store's record of the data set and its runs, the registry, the artifact bucket (models'
metadata.json, runs' manifests), and the jobs through two ports (chalicelib/ports.py): ValidationReports (each
training job's validation.json) and, where the runtime runs the jobs itself (local mode), RuntimeView (a
running job's progress, GET /status's `local` section). The Orchestrator (orchestrator.py) changes what this reads.
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable

from chalicelib.contract import bucket_layout as layout
from chalicelib.contract.vocabulary import Command, DecidedBy
from chalicelib.pipeline import debounce, manifest
from chalicelib.pipeline import validation_report as reports
from chalicelib.pipeline.promotion import as_mapping as _mapping
from chalicelib.pipeline.records import ACTIVE_STAGES, CONVERTING, FAILED, WAITING, ModelEntry, RunRecord
from chalicelib.pipeline.refusals import NotFound
from chalicelib.ports import ModelRegistry, ObjectStore, RuntimeView, StateStore, ValidationReports
from chalicelib.settings import Settings
from chalicelib.timestamps import iso

OPERATOR_ACTIONS_SHOWN = 20  # GET /status's operator_actions: the newest
OPERATOR_ACTIONS_RUNS = 50  # read from the newest runs' records


class ReadModel:
    def __init__(self, settings: Settings, state: StateStore, objects: ObjectStore, registry: ModelRegistry,
                 reports: ValidationReports, runtime: RuntimeView | None = None, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.state = state
        self.objects = objects
        self.registry = registry
        self.reports = reports
        self.runtime = runtime
        self.clock = clock
        self.dataset = settings.dataset_id

    def status(self) -> dict[str, Any]:
        state = self.state.dataset_state(self.dataset)
        decision = debounce.decide(state, self.clock(), self.settings.quiet_period, self.settings.min_new_images)
        running = state.running
        running_job: dict[str, Any] | None = None
        if running is not None:
            running_job = {
                "version": running.version, "training_job": running.job_name, "stage": running.stage,
                "conversion_job": running.conversion_job or None, "started_at": iso(running.started_at),
                "attempt": running.attempt, "failed_attempts": list(running.failures),
                "retry_at": iso(running.retry_at) or None if running.stage == WAITING else None,
                "model_version": running.model_version,
                "requested_by": running.requested_by.as_dict() if running.requested_by else None,
                "request_reason": running.request_reason or None}
            converting = running.stage == CONVERTING and running.conversion_job
            progress = self.runtime.progress(running.conversion_job if converting else running.job_name) if self.runtime else None
            if progress is not None:
                running_job["progress"] = progress
        # The running job's report once its training has written it (in the cloud: once it has ended, SageMaker
        # uploads it then), else the last run's.
        shows_running = running is not None and (running.stage == CONVERTING or self.reports.while_training)
        status = {
            "dataset": {"uri": self.settings.dataset_uri, "version": state.dataset_version},
            "pending_uploads": state.pending_changes,
            "last_upload_at": iso(state.last_change_at) or None,
            "running_job": running_job,
            "last_outcome": None if state.last_outcome is None else dict(
                state.last_outcome.as_dict(), at=iso(state.last_outcome.at), model_version=state.last_outcome.model_version),
            "next_run": {"action": decision.action, "reason": decision.reason, "in_seconds": round(decision.wait_seconds)},
            "validation": self._validation(running.job_name if running is not None and shows_running else "",
                                           state.last_outcome.job_name if state.last_outcome else ""),
        }
        status["operator_actions"] = self.operator_actions()
        if self.runtime is not None:
            status["local"] = self.runtime.facts()
        return status

    def operator_actions(self, limit: int = OPERATOR_ACTIONS_SHOWN) -> list[dict[str, Any]]:
        """Who did what, newest first: the operator actions the newest runs' records keep (runs by hand, approve,
        reject, rollback), each with its run."""
        found = [(action, run) for run in self.state.runs(self.dataset, OPERATOR_ACTIONS_RUNS) for action in run.actions]
        found.sort(key=lambda pair: pair[0].at, reverse=True)
        return [dict(action.as_dict(), at=iso(action.at), dataset_version=run.version, training_job=run.job_name,
                     model_version=action.model_version or run.model_version) for action, run in found[:limit]]

    def _validation(self, *training_jobs: str) -> dict[str, Any] | None:
        """The validation report of the first of these training jobs that has one, as GET /status shows it."""
        for job in dict.fromkeys(j for j in training_jobs if j):
            report = self.reports.validation_report(job)
            if report is not None:
                return reports.summary(report, job)
        return None

    def models(self, limit: int = 50) -> list[dict[str, Any]]:
        """The model versions with operator detail (GET /models/detail): who asked for the run, a failed run's
        training job, the registry's full reason. GET /models answers model_rows.public_rows of these."""
        # By model version: a data set version run again by hand has more than one run, each with its model's version.
        runs = {r.model_version: r for r in self.state.runs(self.dataset, limit)}
        listed = []
        for entry in self.registry.list(limit):
            run = runs.pop(entry.version, None)
            detail = dict(run.model) if run else {}
            listed.append({
                "version": entry.version, "status": entry.status, "created_at": iso(entry.created_at),
                "package_version": entry.package_version, "reason": entry.reason or detail.get("reason", ""),
                "metrics": detail.get("metrics", {}), "sha256": detail.get("sha256", ""), "size_bytes": detail.get("size_bytes"),
                "dataset_version": entry.dataset_version or (run.version if run else entry.version),
                "requested_by": _requested_by(run), "decided_by": _decided_by(entry, run), "_t": entry.created_at,
            })
        for run in runs.values():  # runs that never became a model
            if run.status in (FAILED, *ACTIVE_STAGES):
                listed.append({"version": run.model_version, "status": FAILED if run.status == FAILED else run.status,
                               "created_at": iso(run.created_at), "reason": run.reason, "metrics": {},
                               "training_job": run.job_name, "dataset_version": run.version,
                               "requested_by": _requested_by(run), "decided_by": None, "_t": run.created_at})
        listed.sort(key=lambda m: m["_t"], reverse=True)
        for model in listed:
            del model["_t"]
        return listed[:limit]

    def current(self, link_seconds: int = 3600) -> dict[str, Any] | None:
        entry = self.registry.production()
        if entry is None:
            return None
        metadata = json.loads(self.objects.read(entry.metadata_uri))
        return {
            "version": entry.version,
            "created_at": iso(entry.created_at),  # the registry's, as GET /models and POST /predict give it
            "labels": metadata.get("labels", []),
            "input": metadata.get("input", {}),
            "preprocessing": metadata.get("preprocessing", {}),
            "quantization": metadata.get("quantization"),
            "preset": metadata.get("preset"),
            "sha256": entry.sha256,
            "size_bytes": entry.size_bytes,
            "metrics": headline_metrics(metadata),
            "dataset_version": entry.dataset_version,
            "download_url": self.objects.download_url(entry.model_uri, link_seconds),
            "download_expires_in": link_seconds,
            "labels_url": self.objects.download_url(entry.labels_uri, link_seconds),
            "metadata_url": self.objects.download_url(entry.metadata_uri, link_seconds),
            "manifest": {"uri": entry.manifest_uri, "sha256": entry.manifest_sha256} if entry.manifest_uri else None,
        }

    def photos(self, version: str, offset: int = 0, limit: int = 1000) -> dict[str, Any]:
        """The files a model was trained on (photos and .txt labels), from its run's manifest, a page at a
        time; a run that has no model yet (training, failed) answers too. Raises NotFound."""
        entry = self.registry.find(version)
        # A run with no model (yet): by its model's version, which is its data set version's but for a rerun.
        run = None if entry else next((r for r in self.state.runs(self.dataset) if r.model_version == version), None)
        if entry is None and run is None:
            raise NotFound(f"no model version {version!r}")
        recorded_uri = entry.manifest_uri if entry else ""
        dataset_version = (entry.dataset_version or version) if entry else run.version if run else version
        uri = recorded_uri or layout.manifest_record(self.settings.artifact_bucket, dataset_version)
        if not self.objects.exists(uri):
            raise NotFound(f"version {version} has no manifest: it was trained before runs recorded their photos")
        raw = self.objects.read(uri)
        record = manifest.parse(raw)
        files: list[dict[str, Any]] = record["files"]
        digest, recorded = manifest.sha256(raw), entry.manifest_sha256 if entry else ""
        end = offset + limit
        return {
            "version": version, "dataset_uri": record.get("dataset_uri", ""), "count": len(files), "bytes": record.get("bytes"),
            # recorded: the sha256 in the model's metadata.json and registry entry; matches: the manifest read now is that one
            "manifest": {"uri": uri, "sha256": digest, "recorded_sha256": recorded or None,
                         "matches": digest == recorded if recorded else None},
            "offset": offset, "limit": limit, "next_offset": end if end < len(files) else None,
            "files": files[offset:end],
        }


def _requested_by(run: RunRecord | None) -> dict[str, Any] | None:
    """Who started the run by hand, and why (None: the pipeline started it on uploads)."""
    request = run.run_request if run else None
    return {"by": request.by.as_dict(), "reason": request.reason} if request else None


def _decided_by(entry: ModelEntry, run: RunRecord | None) -> DecidedBy | None:
    """Who set the model's status last: an operator whose action its run record keeps, else the promotion gate (it set
    the status when the run registered the model) unless the registry's reason, where the listing carries it (SageMaker's
    does not), differs from the one recorded then; None when the records do not say (no run record of it)."""
    if run is None or not run.model:
        return None
    if any(a.command != Command.RUN and a.model_version == entry.version for a in run.actions):
        return DecidedBy.OPERATOR
    return None if entry.reason and entry.reason != run.model.get("reason") else DecidedBy.GATE


def headline_metrics(metadata: dict[str, Any]) -> dict[str, Any]:
    """A model's metrics as GET /models/current shows them, and as its run record keeps them (the Orchestrator)."""
    metrics = _mapping(metadata.get("metrics"))
    test = _mapping(metrics.get("test"))
    return {"test_accuracy": test.get("accuracy"), "test_count": test.get("count"), "evaluated_on": test.get("evaluated_on"),
            "val_accuracy": metrics.get("val_accuracy"), "per_class": test.get("per_class"),
            "confused_pairs": test.get("confused_pairs"),
            "baseline": metrics.get("baseline"), "ece": test.get("ece"), "ece_uncalibrated": test.get("ece_uncalibrated"),
            "threshold": metadata.get("threshold") if isinstance(metadata.get("threshold"), (int, float)) else None}


def model_summary(entry: ModelEntry, metadata: dict[str, Any]) -> dict[str, Any]:
    """What a run record keeps of its registered model (GET /models shows it)."""
    return {"package_arn": entry.package_arn, "sha256": entry.sha256, "size_bytes": entry.size_bytes,
            "reason": entry.reason, "metrics": headline_metrics(metadata)}
