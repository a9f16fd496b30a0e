"""The Orchestrator: the run state machine, which moves each run along uploads -> debounced run -> training ->
conversion -> registry, and the operator commands that change state (approve, reject, rollback, retrain).

Every entry point is safe to call twice with the same input (events arrive at least once
and in any order): state changes are conditional, job names derive from the data set
version, and an event for a job that does not hold the data set is ignored.

What the jobs are given is job_specs.py's; what the API shows of all this, read_model.py's.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

from chalicelib.contract import bucket_layout as layout
from chalicelib.contract import hyperparameters as hp
from chalicelib.contract import training_job as contract
from chalicelib.contract.vocabulary import Action, Command
from chalicelib.contract.warm_start import StartFrom
from chalicelib.observability import Unit, logger, metrics
from chalicelib.pipeline import actors, debounce, job_names, manifest, preparation, promotion, relabel, retry
from chalicelib.pipeline.actors import Actor, OperatorAction
from chalicelib.pipeline import domain_events as domain
from chalicelib.pipeline.dataset_version import listing, version_of
from chalicelib.pipeline.deadline import NONE as NO_DEADLINE, Deadline
from chalicelib.pipeline.job_specs import JobSpecs
from chalicelib.pipeline.promotion import as_mapping as _mapping
from chalicelib.ports import BUSY, CLAIMED, EventPublisher, JobRejected, JobRunner, ModelRegistry, NoEvents, ObjectStore, StateStore
from chalicelib.pipeline.records import (
    APPROVED,
    CONVERTING,
    FAILED,
    JOB_COMPLETED,
    JOB_TERMINAL,
    JOB_UNSUCCESSFUL,
    LAUNCHING,
    PENDING,
    REGISTERED,
    REJECTED,
    SKIPPED,
    TRAINING,
    WAITING,
    Change,
    DatasetState,
    ConversionSpec,
    JobStatus,
    ModelEntry,
    ObjectInfo,
    Outcome,
    Running,
    RunRecord,
)
from chalicelib.pipeline.read_model import model_summary
from chalicelib.pipeline.refusals import Conflict, NotFound
from chalicelib.pipeline.run_result import RunResult
from chalicelib.settings import Settings

RELAUNCH_AFTER = 120  # s a run may sit in `launching` (crash between claim and CreateTrainingJob)
RECONCILE_AFTER = 900  # s without an event before the tick asks SageMaker itself


@dataclass(frozen=True)
class RunPolicy:
    """Where the runtime around the state machine differs; the defaults are the cloud's (local mode's:
    chalicelib/adapters/local/wiring.py)."""

    # When idle, list the data set now and then to find uploads whose notification never came (_heal_lost_uploads).
    heal_lost_uploads: bool = True
    # A run in `launching` whose job the runner has not recorded starts again at the next tick, not after RELAUNCH_AFTER.
    relaunch_unrecorded: bool = False


class Orchestrator:
    def __init__(self, settings: Settings, state: StateStore, objects: ObjectStore, jobs: JobRunner,
                 registry: ModelRegistry, clock: Callable[[], float] = time.time, events: EventPublisher | None = None,
                 policy: RunPolicy = RunPolicy()):
        self.settings = settings
        self.state = state
        self.objects = objects
        self.jobs = jobs
        self.registry = registry
        self.clock = clock
        self.events: EventPublisher = events or NoEvents()
        self.policy = policy
        self.specs = JobSpecs(settings, objects, jobs, registry)
        self.dataset = settings.dataset_id

    def dataset_state(self) -> DatasetState:
        return self.state.dataset_state(self.dataset)

    # domain events (chalicelib/pipeline/domain_events.py) ------------------------------------------------
    def _publish(self, *events: domain.DomainEvent) -> None:
        """After the state change they report is stored. A publisher that fails never undoes it, nor fails the
        handler (its event would come again and find the change made): logged and counted instead."""
        try:
            self.events.publish(list(events))
        except Exception as exc:
            logger.error("domain events not published", extra={"events": [e.as_dict() for e in events],
                                                                 "error": f"{type(exc).__name__}: {exc}"})
            metrics.add_metric(name="DomainEventsFailed", unit=Unit.Count, value=len(events))

    # uploads --------------------------------------------------------------------------------
    def record_uploads(self, changes: list[Change]) -> int:
        new = self.state.record_changes(self.dataset, changes) if changes else 0
        logger.info("uploads recorded", extra={"changes": len(changes), "new": new, "duplicates": len(changes) - new})
        return new

    # the scheduled tick ---------------------------------------------------------------------
    def tick(self, time_left: Deadline = NO_DEADLINE) -> RunResult:
        """`time_left`: the Lambda's (chalicelib/pipeline/deadline.py): a run it leaves no time to start waits for the next tick."""
        now = self.clock()
        state = self.dataset_state()
        if state.running is not None:
            return self._reconcile(state.running, now)
        decision = debounce.decide(state, now, self.settings.quiet_period, self.settings.min_new_images)
        if decision.start:
            return self._launch(state.pending_changes, now, time_left)
        if decision.action is Action.IDLE:
            healed = self._heal_lost_uploads(state, now)
            if healed is not None:
                return healed
        return RunResult(decision.action, decision.reason)

    def _heal_lost_uploads(self, state: DatasetState, now: float) -> RunResult | None:
        """An upload whose S3 notification never came (or came before the notification was set up)
        would never be trained on. At most every `listing_check_seconds`, when nothing is pending,
        list the data set: a version no run has had becomes one pending change, and a run follows
        after the quiet period. Other ticks list nothing."""
        if not self.policy.heal_lost_uploads:
            return None
        if state.pending_changes > 0 or now - state.listing_checked_at < self.settings.listing_check_seconds:
            return None
        self.state.note_listing_check(self.dataset, now)
        objects = self._listing()
        version = version_of(objects, "")
        if not objects or version == state.dataset_version or self.state.run(self.dataset, version) is not None:
            return None
        self.state.record_changes(self.dataset, [Change(f"listing#{version}", "(listing)", "created", now)])
        reason = (f"the data set (version {version}) differs from the last run's ({state.dataset_version or 'none'}) "
                  "with no upload event pending: an upload's notification was lost; a run follows")
        logger.warning("lost upload events healed", extra={"version": version, "last_run": state.dataset_version})
        return RunResult(Action.HEALED, reason, version=version)

    def _listing(self) -> list[ObjectInfo]:
        return listing(self.objects, self.settings.dataset_uri)

    def _launch(self, pending: int, now: float, time_left: Deadline = NO_DEADLINE) -> RunResult:
        objects = self._listing()
        if time_left.passed():  # the listing took the function's time; nothing is claimed yet: the next tick starts the run
            logger.warning("run deferred: the tick's time ran short after listing", extra={"files": len(objects)})
            return RunResult(Action.DEFERRED, f"listing the data set ({len(objects)} files) took the tick's time: the next tick starts the run")
        version = version_of(objects, "")
        job = job_names.training_job(self.settings.model_package_group, version)
        if not objects:
            self.state.skip_pending(self.dataset, pending, Outcome(version, "", SKIPPED, "the data set is empty", now))
            return RunResult(Action.SKIPPED, "the data set is empty")
        # Before the claim: a run that holds the data set always has its manifest (a relaunch reads it). One that
        # could not be written fails the run once it is claimed (its reason recorded, the data set let go).
        problem = self._write_manifest(version, objects)
        running = Running(version, job, LAUNCHING, now, now)
        claim = self.state.claim_run(self.dataset, running, pending)
        if claim == BUSY:
            return RunResult(Action.BUSY, "another run holds the data set")
        if claim != CLAIMED:
            reason = f"data set version {version} already had run {job}"
            self.state.skip_pending(self.dataset, pending, Outcome(version, job, SKIPPED, reason, now))
            logger.info("run skipped", extra={"version": version, "reason": reason})
            return RunResult(Action.SKIPPED, reason, version=version)
        if problem:
            return self._finish(running, FAILED, problem)
        return self._start_training(version, job, now)

    def _start_training(self, version: str, job: str, now: float, tell_start: bool = False) -> RunResult:
        """Start (or start again: a relaunch, a retry) the run's training job. `tell_start`: the answer says where
        the run starts from (POST /runs shows it; the tick's answers stay as they were)."""
        held = self.dataset_state().running
        running = held if held is not None and held.job_name == job else Running(version, job, LAUNCHING, now, now)
        # Before any job, so no instance is paid for; the reason is in GET /status. A failure to read what the spec is
        # made of fails the run too: relaunched, it would fail the same way every RELAUNCH_AFTER and hold the data set.
        try:
            hyperparameters = self.specs.run_hyperparameters()
            # A run forced full by hand says so in its state (Running.full): every spec built for it, a relaunch's
            # and a retry's too, starts from ImageNet.
            spec = self.specs.training(version, job, hyperparameters, full=running.full)
        except hp.HyperparameterProblem as exc:
            return self._finish(running, FAILED, str(exc))
        except preparation.PreparationFailed as exc:
            logger.error("preparing the run failed", extra={"job": job, "version": version, "error": str(exc)})
            return self._finish(running, FAILED, preparation.reason(exc))
        try:
            started = self.jobs.start_training(spec)
        except JobRejected as exc:  # the run lets go of the data set all the same (or retries)
            return self._failed(running, TRAINING, f"training job refused: {exc}")
        self.state.advance(self.dataset, job, (LAUNCHING,), stage=TRAINING, stage_at=now)
        logger.info("training started", extra={"job": job, "version": version, "replayed": not started})
        self._publish(domain.run_started(self.dataset, version, job, job_names.attempt_of(job), now, running.request_reason,
                                         running.requested_by, running.model_version))
        if not tell_start:
            return RunResult(Action.STARTED, job=job, version=version)
        decision = json.loads(spec.start_from)
        return RunResult(Action.STARTED, job=job, version=version, start_from=StartFrom(decision["kind"], decision["reason"]),
                         model_version=running.model_version)

    # failures and retries -------------------------------------------------------------------
    def _failed(self, running: Running, stage: str, reason: str) -> RunResult:
        """A job of the run failed: wait and try again when the reason is transient and attempts
        remain (retry.py), else the run fails with the reason."""
        attempt = 1 + sum(1 for f in running.failures if f.startswith(stage + ": "))
        decision = retry.decide(reason, attempt, self.settings.max_attempts, self.settings.retry_backoff)
        if not decision.again:
            return self._finish(running, FAILED, reason)
        now = self.clock()
        waiting = self.state.advance(self.dataset, running.job_name, (LAUNCHING, TRAINING, CONVERTING, WAITING), stage=WAITING,
                                     stage_at=now, retry_at=now + decision.wait_seconds, retry_stage=stage,
                                     failures=[*running.failures, f"{stage}: {reason}"])
        logger.warning("job failed, retrying", extra={"job": running.job_name, "reason": reason, "decision": decision.why})
        return RunResult(Action.RETRYING if waiting else Action.NOTED, f"{reason}; {decision.why}", version=running.version,
                         in_seconds=round(decision.wait_seconds))

    def _retry(self, running: Running, now: float) -> RunResult:
        """Start the next attempt of the stage that failed, with new job names (SageMaker keeps every name)."""
        attempt = running.attempt + 1
        group = self.settings.model_package_group
        if running.retry_stage == CONVERTING:
            production = self.registry.production()
            spec = self.specs.conversion(running, "", production, attempt)
            if not self.state.advance(self.dataset, running.job_name, (WAITING,), attempt=attempt):
                return RunResult(Action.BUSY, "another tick took the retry")
            return self._start_conversion(replace(running, attempt=attempt), spec, production, (WAITING,))
        job = job_names.training_job(group, running.version, attempt)
        if not self.state.advance(self.dataset, running.job_name, (WAITING,), stage=LAUNCHING, stage_at=now,
                                  attempt=attempt, job_name=job, conversion_job=""):
            return RunResult(Action.BUSY, "another tick took the retry")
        return self._start_training(running.version, job, now)

    def _reconcile(self, running: Running, now: float) -> RunResult:
        """Heal a lost event or a crash mid-launch, start a due retry; otherwise nothing to do while a
        run holds the data set."""
        age = now - running.stage_at
        if running.stage == WAITING:
            if now >= running.retry_at:
                return self._retry(running, now)
            return RunResult(Action.BUSY, f"run {running.job_name} retries in {running.retry_at - now:.0f} s")
        if running.stage == LAUNCHING and (age >= RELAUNCH_AFTER or self.policy.relaunch_unrecorded
                                           and self.jobs.training_status(running.job_name) is None):
            return self._start_training(running.version, running.job_name, now)
        if age >= RECONCILE_AFTER:
            if running.stage == TRAINING:
                status = self.jobs.training_status(running.job_name)
                if status and status.status in JOB_TERMINAL:
                    return self.on_training_state(status)
            elif running.stage == CONVERTING and running.conversion_job:
                status = self.jobs.conversion_status(running.conversion_job)
                if status and status.status in JOB_TERMINAL:
                    return self.on_conversion_state(status)
        return RunResult(Action.BUSY, f"run {running.job_name} is {running.stage}")

    # the run's manifest (chalicelib/pipeline/manifest.py) --------------------------------------------
    def _write_manifest(self, version: str, objects: list[ObjectInfo]) -> str:
        """Once per version: a replay, a relaunch or a forced run of the version keeps the first record
        (the same keys and ETags; only version ids could differ). The channel file first, so a record
        that exists always has its channel file. Both are written once and locked (chalicelib/pipeline/lineage.py):
        a writer that finds one there already (a redelivered event racing this one) leaves it and goes on. Returns ""
        when written (or there already), else the reason the run fails with (chalicelib/pipeline/preparation.py)."""
        s = self.settings
        uri = layout.manifest_record(s.artifact_bucket, version)
        channel = layout.manifest_channel(s.artifact_bucket, version)
        try:
            with preparation.step(f"reading {uri}"):
                if self.objects.exists(uri):
                    return ""
            raw = manifest.record(s.dataset_uri, version, objects)
            with preparation.step(f"writing {channel}"):
                self.objects.write_once(channel, manifest.channel(s.dataset_uri, objects), s.lineage_lock_days)
            with preparation.step(f"writing {uri}"):
                self.objects.write_once(uri, raw, s.lineage_lock_days)
        except preparation.PreparationFailed as exc:
            logger.error("manifest not written", extra={"version": version, "error": str(exc)})
            return preparation.reason(exc)
        logger.info("manifest written", extra={"version": version, "uri": uri, "files": len(objects), "sha256": manifest.sha256(raw)})
        return ""

    # SageMaker state changes ----------------------------------------------------------------
    def on_training_state(self, status: JobStatus) -> RunResult:
        running = self.dataset_state().running
        if running is None or running.job_name != status.name:
            logger.info("training event ignored", extra={"job": status.name, "status": status.status})
            return RunResult(Action.IGNORED, "the job does not hold the data set")
        now = self.clock()
        if status.status == JOB_COMPLETED and running.stage in (LAUNCHING, TRAINING, CONVERTING):
            production = self.registry.production()
            spec = self.specs.conversion(running, status.model_artifacts, production)
            return self._start_conversion(running, spec, production, (LAUNCHING, TRAINING))
        if status.status in JOB_UNSUCCESSFUL and running.stage in (LAUNCHING, TRAINING):
            return self._failed(running, TRAINING, f"training {status.status.lower()}: {status.reason or 'no reason given'}")
        if running.stage == LAUNCHING:
            self.state.advance(self.dataset, running.job_name, (LAUNCHING,), stage=TRAINING, stage_at=now)
        return RunResult(Action.NOTED, job_status=status.status)

    def _start_conversion(self, running: Running, spec: ConversionSpec, baseline: ModelEntry | None,
                          from_stages: tuple[str, ...]) -> RunResult:
        try:
            self.jobs.start_conversion(spec)  # a replayed event finds the job already there
        except JobRejected as exc:
            return self._failed(running, CONVERTING, f"conversion job refused: {exc}")
        self.state.advance(self.dataset, running.job_name, from_stages, stage=CONVERTING, stage_at=self.clock(),
                           conversion_job=spec.job_name, baseline_version=baseline.version if baseline else "")
        logger.info("conversion started", extra={"job": spec.job_name, "baseline": baseline.version if baseline else None})
        return RunResult(Action.CONVERTING, job=spec.job_name)

    def on_conversion_state(self, status: JobStatus) -> RunResult:
        running = self.dataset_state().running
        if running is None or running.stage != CONVERTING or running.conversion_job != status.name:
            logger.info("conversion event ignored", extra={"job": status.name, "status": status.status})
            return RunResult(Action.IGNORED, "the job does not hold the data set")
        if status.status == JOB_COMPLETED:
            return self._register(running)
        if status.status in JOB_UNSUCCESSFUL:
            return self._failed(running, CONVERTING, f"conversion {status.status.lower()}: {status.reason or 'no reason given'}")
        return RunResult(Action.NOTED, job_status=status.status)

    def _register(self, running: Running) -> RunResult:
        prefix = layout.model_folder(self.settings.artifact_bucket, running.model_version)
        uris = {name: prefix + name for name in (contract.MODEL_FILE, contract.LABELS_FILE, contract.METADATA_FILE)}
        try:
            # Looked for before reading: a missing key read is a 403 to a role that may list only some prefixes.
            missing = [uris[name] for name in (contract.METADATA_FILE, contract.MODEL_FILE) if not self.objects.exists(uris[name])]
            if missing:
                return self._finish(running, FAILED, f"conversion output missing: {', '.join(missing)}")
            metadata = json.loads(self.objects.read(uris[contract.METADATA_FILE]))
        except (OSError, ValueError) as exc:
            return self._finish(running, FAILED, f"conversion output unusable: {type(exc).__name__}: {exc}")
        except Exception as exc:  # botocore's NoSuchKey and friends
            if type(exc).__name__ not in ("NoSuchKey", "ClientError"):
                raise
            return self._finish(running, FAILED, f"conversion output missing: {exc}")
        # Locked before the registry points at them (chalicelib/pipeline/lineage.py); a replay extends the lock. A store
        # that refuses fails the run with why (a retrain tries again), never a model whose files stay unprotected.
        if self.settings.lineage_lock_days:
            try:
                self.objects.lock(prefix, self.settings.lineage_lock_days)
            except Exception as exc:
                if not preparation.is_environment_error(exc):
                    raise
                return self._finish(running, FAILED, f"locking the model's files failed: {preparation.describe(exc)}")
        # Whatever shape metadata.json has, the run ends: a run that raised here would hold the data
        # set for ever (the tick would call this again and again) and no later upload would train.
        try:
            entry = self._register_and_gate(running, uris, metadata)
            summary = model_summary(entry, metadata)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            return self._finish(running, FAILED, f"conversion output unreadable: metadata.json: {type(exc).__name__}: {exc}")
        return self._finish(running, REGISTERED, entry.reason, model_status=entry.status, model=summary)

    def _register_and_gate(self, running: Running, uris: dict[str, str], metadata: Any) -> ModelEntry:
        if not isinstance(metadata, dict) or not isinstance(metadata.get("model"), dict):
            raise TypeError("expected an object with a \"model\" object")
        model = metadata["model"]
        manifest_uri, manifest_sha256 = manifest.recorded(metadata)  # what the jobs read (chalicelib/pipeline/manifest.py)
        candidate = ModelEntry(
            version=running.model_version, status=PENDING, created_at=self.clock(),
            model_uri=uris[contract.MODEL_FILE], labels_uri=uris[contract.LABELS_FILE], metadata_uri=uris[contract.METADATA_FILE],
            sha256=str(model.get("sha256", "")), size_bytes=int(model.get("size_bytes", 0)),
            test_accuracy=promotion.candidate_accuracy(metadata), dataset_version=running.version,
            manifest_uri=manifest_uri, manifest_sha256=manifest_sha256, run_id=running.run_id,
        )
        entry = self.registry.register(candidate, metadata)
        if entry.status != PENDING or entry.reason:  # a replay finds the gate already applied
            return entry
        production = self.registry.production()
        gated = dict(metadata)
        if production and production.version != running.baseline_version:
            # The conversion scored another model than the one serving now: not like with like.
            gated["metrics"] = dict(_mapping(metadata.get("metrics")), baseline={
                "skipped": f"production changed from {running.baseline_version or 'none'} to {production.version} during the conversion"})
        s = self.settings
        result = promotion.decide(gated, s.min_accuracy, production.version if production else None,
                                  min_test_images=s.min_test_images, max_class_drop=s.max_class_drop)
        if production:  # a relabel, or other classes, must not win approval by itself (chalicelib/pipeline/relabel.py)
            result = relabel.gate(result, relabel.read_comparison(
                self.objects, s.artifact_bucket, production, manifest_uri or layout.manifest_record(s.artifact_bucket, running.version),
                metadata, s.max_relabel_share))
        return self.registry.set_status(running.model_version, APPROVED if result.approve else PENDING, result.reason)

    def _finish(self, running: Running, status: str, reason: str, model_status: str = "", model: dict[str, Any] | None = None) -> RunResult:
        if running.failures:  # the run history keeps what each attempt ran into
            reason = f"{reason} (after {len(running.failures)} failed attempt(s): {'; '.join(running.failures)})"[:2000]
        outcome = Outcome(running.version, running.job_name, status, reason, self.clock(), model_status, running.run_id)
        finished = self.state.finish(self.dataset, running.job_name, outcome, model)
        logger.info("run finished", extra={"outcome": outcome.as_dict(), "first_time": finished})
        if finished:
            self._publish(*self._finish_events(running, outcome, model))
        # A run that ended here (not a replay) lets the uploads that came in during it start the next one (after the
        # quiet period).
        return RunResult(Action(status), reason, version=running.version, model_status=model_status,
                         next=self.tick() if finished else None)

    def _finish_events(self, running: Running, outcome: Outcome, model: dict[str, Any] | None) -> list[domain.DomainEvent]:
        if outcome.status == FAILED:
            return [domain.run_failed(self.dataset, running.version, running.job_name, outcome.reason, outcome.at, running.failures)]
        if outcome.status != REGISTERED:
            return []
        accuracy = _mapping(_mapping(model).get("metrics")).get("test_accuracy")
        model_version = running.model_version
        events = [domain.model_registered(self.dataset, model_version, running.job_name, outcome.model_status, outcome.reason,
                                          outcome.at, accuracy if isinstance(accuracy, (int, float)) else None, running.version)]
        production = self.registry.production() if outcome.model_status == APPROVED else None
        if production is not None and production.version == model_version:
            events.append(domain.model_promoted(self.dataset, model_version, running.baseline_version, outcome.reason, outcome.at))
        return events

    # by hand: `by` is the caller, established by the edge that received the request (chalicelib/pipeline/actors.py) ----
    def approve(self, version: str, reason: str, by: Actor) -> ModelEntry:
        return self._set(version, APPROVED, reason, by, Command.APPROVE)

    def reject(self, version: str, reason: str, by: Actor) -> ModelEntry:
        return self._set(version, REJECTED, reason, by, Command.REJECT)

    def _set(self, version: str, status: str, reason: str, by: Actor, command: Command) -> ModelEntry:
        before = self.registry.production()
        try:
            entry = self.registry.set_status(version, status, actors.by_hand(reason, by))
        except KeyError:
            raise NotFound(f"no model version {version!r}") from None
        now = self.clock()
        self._note(entry, OperatorAction(command, by, reason, now, version))
        logger.info("model status set by hand", extra={"version": version, "status": status, "by": by.as_dict()})
        after = self.registry.production()
        served_before, served_now = before.version if before else "", after.version if after else ""
        if served_now != served_before:
            if status == APPROVED and served_now == version:
                self._publish(domain.model_promoted(self.dataset, version, served_before, reason, now, by))
            elif status == REJECTED and served_before == version:  # the served model rejected: the one before serves again
                self._publish(domain.model_rolled_back(self.dataset, version, served_now, reason, now, by))
        return entry

    def _note(self, entry: ModelEntry, action: OperatorAction) -> None:
        """Keep an action on a model with the run that made it (its record's key: records.model_version). A model with
        no run record (registered by an older release, or from another table) keeps it in its registry reason only.
        After the registry's change, as the events: a store that fails never undoes it nor fails the request (the
        registry's reason names the caller all the same); logged and counted instead."""
        try:
            noted = self.state.note_action(self.dataset, entry.dataset_version or entry.version, entry.run_id, action)
        except Exception as exc:
            logger.error("operator action not recorded", extra={"action": action.as_dict(), "error": f"{type(exc).__name__}: {exc}"})
            metrics.add_metric(name="OperatorActionsNotRecorded", unit=Unit.Count, value=1)
            return
        if not noted:
            logger.warning("no run record for the model's action", extra={"version": entry.version, "action": action.as_dict()})

    def rollback(self, reason: str, by: Actor) -> tuple[ModelEntry, ModelEntry]:
        """Reject the served model so the previous approved one serves again. Returns (old, new)."""
        approved = self.registry.approved(2)
        if len(approved) < 2:
            raise Conflict("there is no earlier approved model to roll back to")
        current, previous = approved
        rejected = self.registry.set_status(current.version, REJECTED, actors.by_hand(reason, by))
        now = self.clock()
        self._note(rejected, OperatorAction(Command.ROLLBACK, by, reason, now, current.version))
        self._publish(domain.model_rolled_back(self.dataset, current.version, previous.version, reason, now, by))
        return current, previous

    def retrain(self, reason: str, by: Actor, full: bool = False) -> RunResult:
        """Start a run for the data set as it is now (POST /runs, flowers retrain), even when its version ran before:
        after a failure, after its model was rejected, or to try again with the same photos. A version that ran before
        gets a run of its own (records.model_version): its own record, job names not used yet, and a model version of
        its own, so nothing of an earlier run is overwritten. Refused (Conflict) while a run holds the data set.
        `full`: this run starts from ImageNet whatever warm_start.choose would say (once: the run remembers it, the
        next run decides afresh). The reason and the caller are kept in the run record, the answer says where the run
        starts from."""
        now = self.clock()
        state = self.dataset_state()
        if state.running is not None:
            raise Conflict(f"run {state.running.job_name} is {state.running.stage}: wait for it to end")
        objects = self._listing()
        if not objects:
            raise Conflict("the data set is empty: upload photos first")
        version = version_of(objects, "")
        previous = self.state.run(self.dataset, version)
        attempt = self._unused_attempt(version, previous)
        job = job_names.training_job(self.settings.model_package_group, version, attempt)
        problem = self._write_manifest(version, objects)
        running = Running(version, job, LAUNCHING, now, now, attempt=attempt, full=full, run_id=job if previous else "",
                          requested_by=by, request_reason=reason)
        claim = self.state.claim_run(self.dataset, running, state.pending_changes)
        if claim != CLAIMED:
            raise Conflict("another run took the data set first" if claim == BUSY else f"another run of data set version {version} "
                           "was recorded first: try again")
        logger.info("run forced", extra={"version": version, "job": job, "reason": reason, "full": full, "by": by.as_dict(),
                                          "model_version": running.model_version})
        if problem:
            return self._finish(running, FAILED, problem)
        started = self._start_training(version, job, now, tell_start=True)
        # A run that started answers with the operator's reason; one that failed at once, with why it failed.
        return replace(started, reason=reason) if started.action is Action.STARTED else started

    def _unused_attempt(self, version: str, previous: RunRecord | None) -> int:
        """The first attempt number after the version's newest run's whose job names the job service has never seen
        (it keeps every name; a retry within a run used some)."""
        group = self.settings.model_package_group
        attempt = job_names.attempt_of(previous.job_name) + 1 if previous else 1
        while attempt < 99 and (self.jobs.training_status(job_names.training_job(group, version, attempt)) is not None
                                or self.jobs.conversion_status(job_names.conversion_job(group, version, attempt)) is not None):
            attempt += 1
        return attempt
