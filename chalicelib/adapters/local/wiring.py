"""The local adapters of the ports, built from the settings (FLOWERS_HOME and its folders), and the run state
machine's local policy."""
from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from chalicelib.settings import Settings

if TYPE_CHECKING:  # at run time each adapter module is imported when first used
    from chalicelib.adapters.local.db import Database
    from chalicelib.adapters.local.event_log import EventLog
    from chalicelib.adapters.local.job_view import LocalJobView
    from chalicelib.adapters.local.jobs import SubprocessJobRunner
    from chalicelib.adapters.local.objects import LocalObjectStore
    from chalicelib.adapters.local.registry import SqliteModelRegistry
    from chalicelib.adapters.local.state import SqliteStateStore
    from chalicelib.pipeline.orchestrator import RunPolicy


class LocalAdapters:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.home = Path(settings.home)
        self.bucket_folder = self.home / "bucket"
        self.artifact_folder = self.home / "artifacts"
        for folder in (self.bucket_folder, self.artifact_folder):
            folder.mkdir(parents=True, exist_ok=True)

    @cached_property
    def db(self) -> Database:
        from chalicelib.adapters.local.db import Database

        return Database(self.home / (self.settings.state_table or "state.sqlite3"))

    @cached_property
    def objects(self) -> LocalObjectStore:
        from chalicelib.adapters.local.objects import LocalObjectStore

        return LocalObjectStore({self.settings.dataset_bucket: self.bucket_folder, self.settings.artifact_bucket: self.artifact_folder},
                                base_url=f"http://127.0.0.1:{self.settings.port}", public_bucket=self.settings.artifact_bucket)

    @cached_property
    def state(self) -> SqliteStateStore:
        from chalicelib.adapters.local.state import SqliteStateStore

        return SqliteStateStore(self.db)

    @cached_property
    def registry(self) -> SqliteModelRegistry:
        from chalicelib.adapters.local.registry import SqliteModelRegistry

        return SqliteModelRegistry(self.db)

    @cached_property
    def jobs(self) -> SubprocessJobRunner:
        from chalicelib.adapters.local.jobs import SubprocessJobRunner

        return SubprocessJobRunner(self.db, self.objects, self.settings)

    @cached_property
    def events(self) -> EventLog:
        from chalicelib.adapters.local.event_log import FILE_NAME, EventLog

        return EventLog(self.home / FILE_NAME)

    @cached_property
    def job_view(self) -> LocalJobView:
        """The read model's ValidationReports and RuntimeView: what the job runner's rows and folders show."""
        from chalicelib.adapters.local.job_view import LocalJobView

        return LocalJobView(self.jobs, self.objects, self.settings)

    @property
    def policy(self) -> RunPolicy:
        """How the Orchestrator runs here (chalicelib/pipeline/orchestrator.RunPolicy)."""
        from chalicelib.pipeline.orchestrator import RunPolicy

        return RunPolicy(
            # Nothing to heal: the watcher compares the bucket folder with its last scan twice a second, and a
            # listing here would race it (a push in progress looked like lost notifications).
            heal_lost_uploads=False,
            # The job runner records a job when it is started, in this process: a run in `launching` without one had
            # its launch cut short (a crash between the claim and the start), and starts again at the next tick
            # instead of after the cloud's two minutes.
            relaunch_unrecorded=True,
        )
