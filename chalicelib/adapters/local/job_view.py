"""What only a local run shows, for the read model (chalicelib/pipeline/read_model.py) through its two ports
(chalicelib/ports.ValidationReports, RuntimeView):

- a training job's validation report, read from the job's folder as soon as the job writes it (the cloud's
  appears only with the archive SageMaker uploads at the job's end);
- the running job's progress (epoch, accuracy: the metric lines of its subprocess) and its attempts, so
  `flowers status`, GET /status and the web page can show them;
- GET /status's `local` section: the bucket folder, the quiet period and the preset.
"""
from __future__ import annotations

from typing import Any

from chalicelib.adapters.local.jobs import SubprocessJobRunner
from chalicelib.adapters.local.objects import LocalObjectStore
from chalicelib.settings import Settings
from chalicelib.timestamps import iso


class LocalJobView:
    """Reads what the job runner records (its SQLite rows, its job folders)."""

    while_training = True  # training writes validation.json into the job's folder as soon as it has read the data

    def __init__(self, jobs: SubprocessJobRunner, objects: LocalObjectStore, settings: Settings):
        self._jobs = jobs
        self._objects = objects
        self._settings = settings

    def validation_report(self, training_job: str) -> dict[str, Any] | None:
        return self._jobs.validation_report(training_job)  # the latest attempt's file, as it is written

    def progress(self, job_name: str) -> dict[str, Any] | None:
        job = self._jobs.job(job_name)
        return None if job is None else _progress(job)

    def facts(self) -> dict[str, Any]:
        return {"bucket_folder": str(self._objects.path(self._settings.dataset_uri)),
                "quiet_period": self._settings.quiet_period, "preset": self._settings.preset}


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
