"""The cloud's Orchestrator, plus what only a local run can show and heal at once.

- status(): the running job's progress (epoch, accuracy: the metric lines of the training
  subprocess) and its attempts, so `flowers status`, GET /status and the web page can show them;
  the validation report is read from the job's folder as soon as the job writes it;
- a run stuck in `launching` whose job was never recorded (a crash between the claim and the
  start) is started again at the next tick instead of after the cloud's two minutes.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from chalicelib.pipeline import validation_report
from chalicelib.adapters.local.jobs import SubprocessJobRunner
from chalicelib.adapters.local.objects import LocalObjectStore
from chalicelib.pipeline.orchestrator import Orchestrator
from chalicelib.ports import EventPublisher, ModelRegistry, StateStore
from chalicelib.pipeline.records import CONVERTING, LAUNCHING, DatasetState, Running
from chalicelib.settings import Settings
from chalicelib.timestamps import iso

class LocalOrchestrator(Orchestrator):
    """Takes the local adapters themselves, not just their ports: it reads job progress and folders."""

    jobs: SubprocessJobRunner
    objects: LocalObjectStore

    def __init__(self, settings: Settings, state: StateStore, objects: LocalObjectStore, jobs: SubprocessJobRunner,
                 registry: ModelRegistry, clock: Callable[[], float] = time.time, events: EventPublisher | None = None):
        super().__init__(settings, state, objects, jobs, registry, clock, events)

    def _heal_lost_uploads(self, state: DatasetState, now: float) -> dict[str, Any] | None:
        """Nothing to heal: the watcher compares the bucket folder with its last scan twice a second,
        and a listing here would race it (a push in progress looked like lost notifications)."""
        return None

    def _reconcile(self, running: Running, now: float) -> dict[str, Any]:
        if running.stage == LAUNCHING and self.jobs.training_status(running.job_name) is None:
            return self._start_training(running.version, running.job_name, now)
        return super()._reconcile(running, now)

    def validation_report(self, training_job: str) -> dict[str, Any] | None:
        return self.jobs.validation_report(training_job)  # the latest attempt's file, as it is written

    def status(self) -> dict[str, Any]:
        status = super().status()
        runner = self.jobs
        running = status.get("running_job")
        if running:
            name = running["conversion_job"] if running["stage"] == CONVERTING and running["conversion_job"] else running["training_job"]
            job = runner.job(name)
            if job:
                running["progress"] = _progress(job)
        if running and running["stage"] != CONVERTING:  # a local job writes its report as soon as its data is read
            report = self.validation_report(running["training_job"])
            if report is not None:
                status["validation"] = validation_report.summary(report, running["training_job"])
        status["local"] = {"bucket_folder": str(self.objects.path(self.settings.dataset_uri)),
                           "quiet_period": self.settings.quiet_period, "preset": self.settings.preset}
        return status


def _progress(job: dict[str, Any]) -> dict[str, Any]:
    progress = dict(job["progress"])
    progress.pop("at", None)
    return {
        "kind": job["kind"], "attempt": job["attempt"], "process_started_at": iso(job["started_at"]) or None,
        "process_started_epoch": job["started_at"] or None,
        "phase": progress.get("phase"), "epoch": progress.get("epoch"),
        "metrics": {k: v for k, v in progress.items() if isinstance(v, float)},
        "last_line": progress.get("line", ""),
        "earlier_attempts": [{"attempt": a.get("attempt"), "status": a.get("status"), "reason": a.get("reason")}
                             for a in job["earlier_attempts"]],
        "log": job["log"],
    }
