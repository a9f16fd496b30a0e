"""Local mode's adapters without processes: the SQLite state store and registry (the same conditional
semantics as DynamoDB's and SageMaker's), the bucket watcher's crash safety, job recovery after a kill, the
home lock, and no TensorFlow in `flowers up`. Local settings: tests/unit/test_settings.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib import settings
from chalicelib.adapters.local.wiring import LocalAdapters
from chalicelib.adapters.local.jobs import INTERRUPTED, MAX_ATTEMPTS
from chalicelib.local_stack.stack import AlreadyRunning, HomeLock, holds_lock
from chalicelib.local_stack.watcher import BucketWatcher
from chalicelib.contract.vocabulary import Action
from chalicelib.pipeline.orchestrator import Orchestrator
from chalicelib.pipeline.run_result import RunResult
from chalicelib.ports import BUSY, CLAIMED, VERSION_EXISTS
from chalicelib.pipeline.records import Change, ModelEntry, Outcome, Running
from chalicelib.pipeline.s3_events import parse_bodies
from data_fixtures import ROOT


@pytest.fixture
def local(tmp_path):
    return LocalAdapters(settings.from_environ({"FLOWERS_MODE": "local", "FLOWERS_HOME": str(tmp_path / "home")}))


def test_state_store_is_conditional_like_dynamodb(local):
    store, ds = local.state, "bucket/"
    changes = [Change(f"id{i}", f"k{i}.jpg", "created", 100.0 + i) for i in range(5)]
    assert store.record_changes(ds, changes) == 5
    assert store.record_changes(ds, list(reversed(changes)) + changes[:2]) == 0  # replayed, reordered
    assert store.record_changes(ds, [Change("late", "x.jpg", "created", 50.0)]) == 1
    state = store.dataset_state(ds)
    assert state.pending_changes == 6 and state.last_change_at == 104.0  # an older event never moves the clock back
    running = Running("v1", "job-v1", "launching", 200.0, 200.0)
    assert store.claim_run(ds, running, 6) == CLAIMED
    assert store.claim_run(ds, Running("v2", "job-v2", "launching", 201.0, 201.0), 0) == BUSY
    assert store.dataset_state(ds).pending_changes == 0 and store.dataset_state(ds).running == running
    assert not store.advance(ds, "job-other", ("launching",), stage="training")
    assert store.advance(ds, "job-v1", ("launching",), stage="training", stage_at=210.0)
    assert not store.advance(ds, "job-v1", ("launching",), stage="converting")
    assert not store.skip_pending(ds, 0, Outcome("v", "", "skipped", "", 0))
    outcome = Outcome("v1", "job-v1", "registered", "ok", 300.0, "approved")
    assert not store.finish(ds, "job-other", outcome)
    assert store.finish(ds, "job-v1", outcome, {"sha256": "abc"})
    assert not store.finish(ds, "job-v1", outcome)  # a replay
    assert store.dataset_state(ds).running is None and store.dataset_state(ds).last_outcome == outcome
    assert store.claim_run(ds, Running("v1", "job-v1", "launching", 400.0, 400.0), 0) == VERSION_EXISTS
    (run,) = store.runs(ds)
    assert (run.status, run.reason, run.model) == ("registered", "ok", {"sha256": "abc"}) and store.run(ds, "v1") == run


def test_a_home_from_before_the_rename_keeps_its_state(tmp_path):
    """Homes made before the state table was renamed (pipeline -> dataset_state) keep their pending uploads."""
    import sqlite3

    from chalicelib.adapters.local.db import Database
    from chalicelib.adapters.local.state import SqliteStateStore

    path = tmp_path / "state.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE pipeline (dataset TEXT PRIMARY KEY, pending_changes INTEGER NOT NULL DEFAULT 0, "
                    "last_change_at REAL NOT NULL DEFAULT 0, running TEXT, dataset_version TEXT NOT NULL DEFAULT '', last_outcome TEXT)")
        old.execute("INSERT INTO pipeline (dataset, pending_changes, last_change_at, dataset_version) VALUES ('bucket/', 7, 12.5, 'abc')")
    state = SqliteStateStore(Database(path)).dataset_state("bucket/")
    assert (state.pending_changes, state.last_change_at, state.dataset_version) == (7, 12.5, "abc")
    tables = {row[0] for row in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "dataset_state" in tables and "pipeline" not in tables


def test_registry_serves_the_newest_approved(local):
    registry = local.registry
    for i, version in enumerate(("00000000000000a1", "00000000000000a2")):
        entry = registry.register(ModelEntry(version, "pending", 10.0 + i, sha256=f"sha{i}"), {"labels": ["a"]})
        assert registry.register(ModelEntry(version, "pending", 99.0), {}) == entry  # idempotent
    assert registry.production() is None and registry.production_id() == ""
    registry.set_status("00000000000000a1", "approved", "ok")
    registry.set_status("00000000000000a2", "approved", "ok")
    assert registry.production().version == "00000000000000a2" and [e.version for e in registry.list()] == ["00000000000000a2", "00000000000000a1"]
    before = registry.production_id()
    registry.set_status("00000000000000a2", "rejected", "rolled back")
    assert registry.production().version == "00000000000000a1" and registry.production_id() != before
    with pytest.raises(KeyError):
        registry.set_status("00000000000000ff", "approved", "no such version")


def test_watcher_delivers_s3_events_and_a_crash_between_delivery_and_record_counts_nothing_twice(local):
    bucket = local.bucket_folder
    (bucket / "roses").mkdir()
    (bucket / "roses" / "a.jpg").write_bytes(b"one")
    (bucket / "roses" / "b.jpg").write_bytes(b"two")
    (bucket / ".b.jpg.part-1").write_bytes(b"partial")  # our push's temporary name: not data
    delivered = []

    def deliver(event):
        parsed = parse_bodies([r["body"] for r in event["Records"]], "bucket", "")
        delivered.append(local.state.record_changes("bucket/", parsed.changes))

    def crash(event):
        deliver(event)
        raise RuntimeError("killed before the scan was recorded")

    watcher = BucketWatcher(local.db, local.objects, bucket, "bucket", crash)
    with pytest.raises(RuntimeError):
        watcher.scan_once()
    watcher = BucketWatcher(local.db, local.objects, bucket, "bucket", deliver)
    assert watcher.scan_once() == {"created": 2, "removed": 0, "failed": 0}
    assert delivered == [2, 0] and local.state.dataset_state("bucket/").pending_changes == 2
    assert watcher.scan_once() == {"created": 0, "removed": 0, "failed": 0}
    (bucket / "roses" / "a.jpg").unlink()
    assert watcher.scan_once() == {"created": 0, "removed": 1, "failed": 0} and local.state.dataset_state("bucket/").pending_changes == 3
    assert [o.key for o in local.objects.list("s3://bucket/")] == ["roses/b.jpg"]


def test_watcher_sends_again_only_what_a_partial_batch_response_returns(local):
    """Like SQS with ReportBatchItemFailures: the messages a delivery names in batchItemFailures are
    delivered again at the next scan, the others never again."""
    bucket = local.bucket_folder
    (bucket / "roses").mkdir()
    for name in ("a", "b", "c"):
        (bucket / "roses" / f"{name}.jpg").write_bytes(name.encode())
    sent: list[list[str]] = []

    def deliver(event, refuse=("roses/b.jpg",)):
        keys = [json.loads(r["body"])["Records"][0]["s3"]["object"]["key"] for r in event["Records"]]
        sent.append(sorted(keys))
        local.state.record_changes("bucket/", parse_bodies([r["body"] for r in event["Records"]
                                                            if json.loads(r["body"])["Records"][0]["s3"]["object"]["key"] not in refuse],
                                                           "bucket", "").changes)
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r, key in zip(event["Records"], keys) if key in refuse]}

    watcher = BucketWatcher(local.db, local.objects, bucket, "bucket", deliver)
    assert watcher.scan_once() == {"created": 2, "removed": 0, "failed": 1}
    assert watcher.scan_once() == {"created": 0, "removed": 0, "failed": 1}  # still refused: still sent
    watcher = BucketWatcher(local.db, local.objects, bucket, "bucket", lambda event: deliver(event, refuse=()))
    assert watcher.scan_once() == {"created": 1, "removed": 0, "failed": 0}
    assert watcher.scan_once() == {"created": 0, "removed": 0, "failed": 0}
    assert sent == [["roses/a.jpg", "roses/b.jpg", "roses/c.jpg"], ["roses/b.jpg"], ["roses/b.jpg"]]
    assert local.state.dataset_state("bucket/").pending_changes == 3


def test_interrupted_jobs_are_marked_failed_and_run_again(local):
    runner = local.jobs
    spec = {"job_name": "flowers-00000000000000b1", "dataset_uri": "s3://bucket/"}
    assert runner._create(spec["job_name"], "training", spec) and not runner._create(spec["job_name"], "training", spec)
    runner._queue.get_nowait()
    with local.db.transaction() as tx:  # as a kill -9 leaves it: attempt 1 running, its pid gone
        tx.execute("UPDATE jobs SET attempt = 1, pid = 999999, pid_start = 'x', started_at = 1 WHERE name = ?", (spec["job_name"],))
    notes = runner.recover()
    assert "running it again" in notes[0] and runner._queue.get_nowait() == spec["job_name"]
    job = runner.job(spec["job_name"])
    assert job["status"] == "InProgress" and job["earlier_attempts"][0]["reason"] == INTERRUPTED
    with local.db.transaction() as tx:
        tx.execute("UPDATE jobs SET attempt = ? WHERE name = ?", (MAX_ATTEMPTS, spec["job_name"]))
    runner.recover()
    status = runner.training_status(spec["job_name"])
    assert status.status == "Failed" and "gave up" in status.reason


def test_a_second_up_on_one_home_is_refused(tmp_path):
    first = HomeLock(tmp_path)
    first.acquire()
    assert holds_lock(tmp_path)
    with pytest.raises(AlreadyRunning, match=f"pid .* is using {tmp_path}"):
        HomeLock(tmp_path).acquire()
    first.release()
    assert not holds_lock(tmp_path)


def test_flowers_up_never_imports_tensorflow(tmp_path):
    code = f"""
import os, sys
os.environ.update(FLOWERS_MODE="local", FLOWERS_HOME={str(tmp_path)!r})
import flowers_cli.main, flowers_cli.push, flowers_cli.demo, app
from chalicelib import services
from chalicelib.local_stack.stack import LocalStack
svc = services.get()
svc.read_model.status(); svc.read_model.models(); svc.predictor.refresh()
assert "tensorflow" not in sys.modules and "keras" not in sys.modules, "TensorFlow imported"
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "KERAS_HOME")}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stdout + done.stderr


def test_demo_says_clearly_when_there_are_no_photos(tmp_path):
    import argparse

    from flowers_cli.demo import DemoError, find_data, sample

    args = argparse.Namespace(data=None)
    with pytest.raises(DemoError, match=r"no photos to train on: .* is not there and downloading http://127.0.0.1:9/x.tgz failed .*Pass --data DIR"):
        find_data(args, tmp_path, url="http://127.0.0.1:9/x.tgz", shared_root=tmp_path / "no-shared")
    with pytest.raises(DemoError, match="is not a folder"):
        find_data(argparse.Namespace(data=str(tmp_path / "missing")), tmp_path)
    for label in ("roses", "tulips"):
        for i in range(2):
            (tmp_path / f"{label}_{i}.jpg").write_bytes(b"x")
            (tmp_path / f"{label}_{i}.txt").write_text(label)
    assert [p.name for p in sample(tmp_path)] == ["roses_0.jpg", "tulips_0.jpg"]  # one per class, ModelArts layout too


def test_registry_keeps_the_manifest_of_each_model(local):
    entry = ModelEntry("00000000000000d1", "pending", 1.0, manifest_uri="s3://artifacts/manifests/00000000000000d1.json",
                       manifest_sha256="ab" * 32)
    local.registry.register(entry, {})
    found = local.registry.set_status("00000000000000d1", "approved", "ok")
    assert (found.manifest_uri, found.manifest_sha256) == (entry.manifest_uri, entry.manifest_sha256)
    assert local.registry.production().manifest_uri == entry.manifest_uri


def _local_orchestrator(local: LocalAdapters, now: float) -> Orchestrator:
    """The Orchestrator as `flowers up` runs it (services.py), at a fixed time."""
    return Orchestrator(local.settings, local.state, local.objects, local.jobs, local.registry, clock=lambda: now, policy=local.policy)


def test_the_job_snapshot_follows_the_runs_manifest_not_a_fresh_listing(local):
    """Local mode trains on what the cloud's ManifestFile channel would hold: the files the tick listed,
    each checked against its ETag; an upload made after the launch is not in the snapshot."""
    from chalicelib.contract import bucket_layout
    from chalicelib.pipeline import manifest
    from chalicelib.adapters.local.jobs import SnapshotError, _snapshot_manifest

    bucket = local.bucket_folder
    for key, body in (("daisy/a.jpg", b"a"), ("daisy/b.jpg", b"b"), ("roses/c.jpg", b"c"), ("roses/c.txt", b"roses")):
        (bucket / key).parent.mkdir(parents=True, exist_ok=True)
        (bucket / key).write_bytes(body)
    orchestrator = _local_orchestrator(local, 1000.0)
    launched = orchestrator._launch(0, 1000.0)  # jobs are recorded, not run (the runner is not started)
    version, job = launched.version, launched.job
    record_uri = bucket_layout.manifest_record("artifacts", version)
    raw = local.objects.read(record_uri)
    assert [f["key"] for f in manifest.parse(raw)["files"]] == ["daisy/a.jpg", "daisy/b.jpg", "roses/c.jpg", "roses/c.txt"]
    assert json.loads(local.objects.read(bucket_layout.manifest_channel("artifacts", version)))[1:] == [
        "daisy/a.jpg", "daisy/b.jpg", "roses/c.jpg", "roses/c.txt"]
    (bucket / "daisy" / "late.jpg").write_bytes(b"late")  # uploaded between the listing and the job's start

    spec = dict(local.jobs._spec(local.db.one("SELECT * FROM jobs WHERE name = ?", (job,))))
    assert (spec["manifest_uri"], spec["manifest_sha256"]) == (record_uri, manifest.sha256(raw))
    job_dir = local.jobs._job_dir("training", job)
    command, env = local.jobs._training_command(job, spec, job_dir, job_dir / "attempt-1")
    snapshot = job_dir / "input" / "data" / "training"
    assert sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()) == \
        ["daisy/a.jpg", "daisy/b.jpg", "roses/c.jpg", "roses/c.txt"]
    assert (env["FLOWERS_MANIFEST_URI"], env["FLOWERS_MANIFEST_SHA256"]) == (record_uri, manifest.sha256(raw))

    # A listed file replaced or removed since the listing fails the job, rather than train on other photos.
    (bucket / "daisy" / "b.jpg").unlink()
    (bucket / "daisy" / "b.jpg").write_bytes(b"another b")
    with pytest.raises(SnapshotError, match="daisy/b.jpg changed after the run listed"):
        _snapshot_manifest(local.objects, record_uri, bucket, local.home / "again")
    (bucket / "daisy" / "b.jpg").unlink()
    with pytest.raises(SnapshotError, match="daisy/b.jpg was removed"):
        _snapshot_manifest(local.objects, record_uri, bucket, local.home / "again")
    # The version's manifest is written once: a later launch of the same listing (here refused: the run
    # still holds the data set) leaves it as it was.
    (bucket / "daisy" / "b.jpg").write_bytes(b"b")
    (bucket / "daisy" / "late.jpg").unlink()
    before = (local.artifact_folder / "manifests" / f"{version}.json").stat().st_mtime_ns
    assert orchestrator._launch(0, 2000.0).action is Action.BUSY
    assert (local.artifact_folder / "manifests" / f"{version}.json").stat().st_mtime_ns == before


def test_cli_retrain_reaches_post_runs_and_says_why_not(tmp_path):
    from local_fixtures import flowers

    (tmp_path / "home").mkdir()
    done = flowers(tmp_path / "home", "retrain", "--reason", "try again")
    assert done.returncode == 1 and done.stderr.strip().endswith("error: conflict: the data set is empty: upload photos first"), done.stderr


def test_local_mode_never_heals_by_listing_the_watcher_does(local):
    """A push in progress is not a lost notification: locally the watcher delivers every change."""
    orchestrator = _local_orchestrator(local, 1e9)
    (local.bucket_folder / "roses").mkdir(parents=True)
    (local.bucket_folder / "roses" / "a.jpg").write_bytes(b"photo")
    assert orchestrator.tick().action is Action.IDLE
    assert orchestrator.dataset_state().pending_changes == 0 and orchestrator.dataset_state().listing_checked_at == 0
    # The cloud's policy, on the same home, lists the data set and heals.
    cloud = Orchestrator(local.settings, local.state, local.objects, local.jobs, local.registry, clock=lambda: 1e9)
    assert cloud.tick().action is Action.HEALED


def test_local_mode_relaunches_a_launch_cut_short_at_the_next_tick(local):
    """A run claimed whose job the runner never recorded (a crash between the claim and the start) starts at the next
    tick locally, where the job runner is in the process; the cloud waits RELAUNCH_AFTER for a launch in flight."""
    (local.bucket_folder / "roses").mkdir(parents=True)
    (local.bucket_folder / "roses" / "a.jpg").write_bytes(b"photo")
    job = "flowers-00000000000000a1"
    assert local.state.claim_run(local.settings.dataset_id, Running("00000000000000a1", job, "launching", 1000.0, 1000.0), 0) == CLAIMED
    cloud = Orchestrator(local.settings, local.state, local.objects, local.jobs, local.registry, clock=lambda: 1001.0)
    assert cloud.tick() == RunResult(Action.BUSY, f"run {job} is launching")
    assert local.jobs.training_status(job) is None
    assert _local_orchestrator(local, 1001.0).tick() == RunResult(Action.STARTED, job=job, version="00000000000000a1")
    assert local.jobs.training_status(job) is not None  # recorded now: the runner starts it


def test_jobs_run_this_checkout_s_training_code():
    """The job runner starts `python -m training.train` / `training.convert` in the project's root (cwd and
    PYTHONPATH): that folder must hold them, or an installed copy elsewhere would run instead."""
    from chalicelib.adapters.local import jobs

    assert (jobs.ROOT / "training" / "train.py").is_file() and (jobs.ROOT / "training" / "convert.py").is_file()
    assert (jobs.ROOT / "chalicelib" / "adapters" / "local" / "jobs.py").resolve() == Path(jobs.__file__).resolve()


def test_the_job_runner_expires_old_feature_cache_entries_before_a_training_job(local):
    """S3's lifecycle rule on features/, locally: entries written more than EXPIRE_DAYS ago (and part files a
    crash left) go before each training job; newer ones stay, and the job is pointed at the folder."""
    from chalicelib.contract import feature_cache

    bucket = local.bucket_folder
    for key in ("daisy/a.jpg", "roses/b.jpg"):
        (bucket / key).parent.mkdir(parents=True, exist_ok=True)
        (bucket / key).write_bytes(key.encode())
    folder = local.artifact_folder / "features"
    now = 1_000_000_000.0
    entries = {"old": folder / "ab" / "ab01.f32", "new": folder / "cd" / "cd02.f32", "part": folder / "ab" / ".ab03.f32.1.2.part"}
    for name, path in entries.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"entry")
        age_days = 2 if name == "new" else feature_cache.EXPIRE_DAYS + 1
        os.utime(path, (now - age_days * 86_400, now - age_days * 86_400))
    orchestrator = _local_orchestrator(local, now)
    job = orchestrator._launch(0, now).job
    local.jobs._clock = lambda: now
    spec = dict(local.jobs._spec(local.db.one("SELECT * FROM jobs WHERE name = ?", (job,))))
    job_dir = local.jobs._job_dir("training", job)
    _, env = local.jobs._training_command(job, spec, job_dir, job_dir / "attempt-1")
    assert env[feature_cache.FOLDER_ENV] == str(folder)
    # new entries go into the job's model folder, as in the cloud (its conversion hands them on to the folder)
    assert env[feature_cache.NEW_ENV] == str(job_dir / "attempt-1" / "output" / "model" / "features")
    assert [name for name, path in entries.items() if path.exists()] == ["new"]
    assert feature_cache.expire(folder / "missing", 30, now) == 0  # no cache yet: nothing to do


def test_a_run_whose_manifest_cannot_be_written_fails_once_locally(local):
    """Local mode relaunches a run left in `launching` at every tick: one whose preparation fails on the disk (here
    `manifests` is a file, so no manifest can be written beneath it) fails once, with the OSError in its reason,
    and the next tick after the cause is gone trains (chalicelib/pipeline/preparation.py)."""
    (local.bucket_folder / "roses").mkdir(parents=True)
    (local.bucket_folder / "roses" / "a.jpg").write_bytes(b"photo")
    local.artifact_folder.mkdir(parents=True, exist_ok=True)
    (local.artifact_folder / "manifests").write_bytes(b"in the way")
    orchestrator = _local_orchestrator(local, 1000.0)
    orchestrator.record_uploads([Change("id1", "roses/a.jpg", "created", 0.0)])
    failed = orchestrator.tick()
    assert failed.action is Action.FAILED and failed.reason is not None
    assert failed.reason.startswith("preparing the run failed: writing ") and "manifests/" in failed.reason
    assert "FileExistsError" in failed.reason or "NotADirectoryError" in failed.reason
    state = orchestrator.dataset_state()
    assert state.running is None and state.last_outcome is not None and state.last_outcome.reason == failed.reason
    assert orchestrator.tick().action is Action.IDLE  # not relaunched
    (local.artifact_folder / "manifests").unlink()
    (local.bucket_folder / "roses" / "b.jpg").write_bytes(b"photo")
    orchestrator.record_uploads([Change("id2", "roses/b.jpg", "created", 0.0)])
    assert orchestrator.tick().action is Action.STARTED
