"""JobRunner on subprocesses: `python -m training.train` and `python -m training.convert`.

A job is a row in SQLite (created once per name: a replayed start returns False, as
SageMaker refuses a second job of one name) and a child process. Its exit becomes the
documented SageMaker state-change event, handed to `emit`, which runs the same handler
the cloud's EventBridge rule invokes; the row is marked delivered once that succeeded.

Folders (s3://artifacts/ is FLOWERS_HOME/artifacts/; the prefixes are chalicelib/contract/bucket_layout.py's):
  training/<job>/input/config/hyperparameters.json (exactly the spec's), input/data/training/ (hard links to exactly
  the files the run's manifest lists, manifests/<version>.json: chalicelib/pipeline/manifest.py; each checked
  against its ETag), attempt-<n>/output/{model,data,failure}, log.txt
  checkpoints/<job>/ (kept across attempts: a rerun resumes), tensorboard/<job>/
  conversion/<job>/attempt-<n>/output/ -> moved to models/<version>/ on success, and its features/ (the feature
  cache's new entries the training job left in its model folder) into features/, as SageMaker uploads them

Crash safety: when `flowers up` dies (kill -9 included) its jobs die with it (orphan_guard);
on the next start `recover()` marks each interrupted attempt failed and runs the job again
(checkpoints make the rerun resume), and re-sends any exit event not yet handled.
"""
from __future__ import annotations

import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path, PurePosixPath
from typing import IO, Any, Callable

from chalicelib.contract import bucket_layout as layout
from chalicelib.contract import feature_cache

from chalicelib.pipeline import manifest
from chalicelib import settings as settings_module
from chalicelib.contract import training_job as contract
from chalicelib.adapters.local import events
from chalicelib.adapters.local.db import Database, dumps, loads
from chalicelib.adapters.local.objects import LocalObjectStore, scan
from chalicelib.contract.vocabulary import Channel
from chalicelib.contract.vocabulary import ContainerVariable as Variable
from chalicelib.pipeline.records import JOB_COMPLETED, JOB_FAILED, JOB_IN_PROGRESS, ConversionSpec, JobStatus, TrainingSpec
from chalicelib.settings import Settings
from chalicelib.contract.warm_start import START_FROM_ENV

MAX_ATTEMPTS = 3  # interrupted by a stop of `flowers up`: run again, at most this many times in all
INTERRUPTED = "interrupted: flowers up stopped while it ran (kill, crash or Ctrl-C)"
ROOT = Path(__file__).resolve().parents[3]  # the project (training/ and chalicelib/ live here): chalicelib/adapters/local/jobs.py

Emit = Callable[[str, events.Event], None]  # (function name, event) -> runs the handler; raises on failure
Say = Callable[[str], None]


def _proc_start(pid: int) -> str:
    """The kernel's start time of pid (field 22 of /proc/pid/stat): a pid plus this names one process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _snapshot(source: Path, target: Path) -> int:
    """Hard-link every data file of the bucket into target (copy across file systems).
    `flowers push` replaces files (new inode), so a snapshot never changes under a job."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    count = 0
    for relative, _ in scan(source):
        destination = partial / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source / relative, destination)
        except OSError:
            try:
                shutil.copy2(source / relative, destination)
            except FileNotFoundError:
                continue  # removed since the scan
        count += 1
    partial.mkdir(parents=True, exist_ok=True)
    os.replace(partial, target)
    return count


class SnapshotError(RuntimeError):
    """A file of the run's manifest is gone or changed since the run listed the data set."""


def _snapshot_manifest(objects: LocalObjectStore, manifest_uri: str, source: Path, target: Path) -> int:
    """Hard-link exactly the files of the run's manifest (chalicelib/pipeline/manifest.py) into target, each
    checked against the ETag the listing recorded: an upload made after the listing is not in the
    snapshot, and a file replaced or removed since fails the job (the next run picks the change up)."""
    record = manifest.parse(objects.read(manifest_uri))
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    for entry in record["files"]:
        relative = PurePosixPath(entry["key"])
        if relative.is_absolute() or ".." in relative.parts:
            raise SnapshotError(f"manifest {manifest_uri}: key {entry['key']!r} leaves the data set folder")
        origin, destination = source / relative, partial / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            try:
                os.link(origin, destination)
            except FileNotFoundError:
                raise
            except OSError:  # another file system
                shutil.copy2(origin, destination)
        except FileNotFoundError:
            raise SnapshotError(f"{entry['key']} was removed after the run listed the data set") from None
        linked = destination.stat()
        try:
            same = os.path.samestat(linked, origin.stat())
        except OSError:
            same = False
        # The same inode as the bucket's file: its ETag is the store's cached one (no second read).
        if objects.etag(origin if same else destination, linked) != entry["etag"]:
            raise SnapshotError(f"{entry['key']} changed after the run listed the data set")
    partial.mkdir(parents=True, exist_ok=True)
    os.replace(partial, target)
    return len(record["files"])


class SubprocessJobRunner:
    def __init__(self, db: Database, objects: LocalObjectStore, settings: Settings, clock: Callable[[], float] = time.time):
        self._db = db
        self._objects = objects
        self._settings = settings
        self._clock = clock
        self._emit: Emit | None = None
        self._say: Say = lambda line: None
        self._queue: "queue.Queue[str | None]" = queue.Queue()
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._launcher: threading.Thread | None = None

    # wiring (flowers up) ------------------------------------------------------------------------
    def start(self, emit: Emit, say: Say) -> None:
        """Begin running jobs. Without start() (the CLI reading a stopped home) jobs are only recorded."""
        self._emit, self._say = emit, say
        # One long-lived thread starts every child: PR_SET_PDEATHSIG fires when the *thread* that
        # forked a child ends, so a short-lived thread must never fork one.
        self._launcher = threading.Thread(target=self._launch_loop, name="flowers-jobs", daemon=True)
        self._launcher.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every running child; their rows stay InProgress, so the next start runs them again."""
        self._stopping.set()
        self._queue.put(None)
        with self._lock:
            children = list(self._children.values())
        for child in children:
            _signal_group(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(child.pid, signal.SIGKILL)

    # the port -----------------------------------------------------------------------------------
    def start_training(self, spec: TrainingSpec) -> bool:
        return self._create(spec.job_name, "training", spec.__dict__)

    def start_conversion(self, spec: ConversionSpec) -> bool:
        return self._create(spec.job_name, "conversion", spec.__dict__)

    def training_status(self, name: str) -> JobStatus | None:
        return self._status(name, "training")

    def conversion_status(self, name: str) -> JobStatus | None:
        return self._status(name, "conversion")

    def _status(self, name: str, kind: str) -> JobStatus | None:
        row = self._db.one("SELECT * FROM jobs WHERE name = ? AND kind = ?", (name, kind))
        if row is None:
            return None
        model = self._model_uri(row) if kind == "training" and row["status"] == JOB_COMPLETED else ""
        return JobStatus(name, row["status"], row["reason"], model)

    def _create(self, name: str, kind: str, spec: dict[str, Any]) -> bool:
        with self._db.transaction() as tx:
            if tx.one("SELECT 1 FROM jobs WHERE name = ?", (name,)):
                return False
            tx.execute("INSERT INTO jobs (name, kind, spec, status, created_at) VALUES (?, ?, ?, ?, ?)",
                       (name, kind, dumps(spec), JOB_IN_PROGRESS, self._clock()))
        self._queue.put(name)
        return True

    # what the API and the CLI show ------------------------------------------------------------
    def job(self, name: str) -> dict[str, Any] | None:
        row = self._db.one("SELECT * FROM jobs WHERE name = ?", (name,))
        if row is None:
            return None
        return {"name": name, "kind": row["kind"], "status": row["status"], "attempt": row["attempt"],
                "created_at": row["created_at"], "started_at": row["started_at"], "ended_at": row["ended_at"],
                "reason": row["reason"], "progress": loads(row["progress"], {}), "earlier_attempts": loads(row["attempts"], []),
                "log": str(self._job_dir(row["kind"], name) / "log.txt")}

    def validation_report(self, name: str) -> dict[str, Any] | None:
        """validation.json of the training job's latest attempt (every skipped photo and why)."""
        row = self._db.one("SELECT * FROM jobs WHERE name = ? AND kind = 'training'", (name,))
        if row is None or not row["attempt"]:
            return None
        path = self._attempt_dir(row) / "output" / "data" / contract.VALIDATION_REPORT
        try:
            report = loads(path.read_text(), None)
        except (OSError, ValueError):
            return None
        return report if isinstance(report, dict) else None

    def latest(self, kind: str) -> str:
        row = self._db.one("SELECT name FROM jobs WHERE kind = ? ORDER BY created_at DESC LIMIT 1", (kind,))
        return row["name"] if row else ""

    # folders -----------------------------------------------------------------------------------
    def _spec(self, row: sqlite3.Row) -> dict[str, Any]:
        spec: dict[str, Any] = loads(row["spec"], {})  # what _create stored: a spec's fields
        return spec

    def _job_dir(self, kind: str, name: str) -> Path:
        return self._objects.path(layout.local_job(self._settings.artifact_bucket, kind, name))

    def _attempt_dir(self, row: sqlite3.Row) -> Path:
        return self._job_dir(row["kind"], row["name"]) / f"attempt-{row['attempt']}"

    def _model_uri(self, row: sqlite3.Row) -> str:
        return f"{layout.local_job(self._settings.artifact_bucket, 'training', row['name'])}attempt-{row['attempt']}/output/model/"

    # start up -----------------------------------------------------------------------------------
    def recover(self) -> list[str]:
        """After a restart: interrupted jobs fail their attempt and run again; unhandled exits are re-sent."""
        notes: list[str] = []
        for row in self._db.query("SELECT * FROM jobs WHERE status = ? ORDER BY created_at", (JOB_IN_PROGRESS,)):
            name = row["name"]
            if row["pid"] and row["pid_start"] and _proc_start(row["pid"]) == row["pid_start"]:
                _signal_group(row["pid"], signal.SIGKILL)  # an orphan of the previous `flowers up`
            if row["attempt"] == 0:
                notes.append(f"{row['kind']} job {name} had not started: starting it")
                self._queue.put(name)
                continue
            history = loads(row["attempts"], []) + [{"attempt": row["attempt"], "status": JOB_FAILED, "reason": INTERRUPTED,
                                                     "started_at": row["started_at"], "ended_at": self._clock()}]
            if row["attempt"] >= MAX_ATTEMPTS:
                reason = f"{INTERRUPTED}; gave up after {row['attempt']} attempts"
                with self._db.transaction() as tx:
                    tx.execute("UPDATE jobs SET status = ?, reason = ?, ended_at = ?, attempts = ?, pid = NULL WHERE name = ?",
                               (JOB_FAILED, reason, self._clock(), dumps(history), name))
                notes.append(f"{row['kind']} job {name}: {reason}")
                continue
            with self._db.transaction() as tx:
                tx.execute("UPDATE jobs SET attempts = ?, pid = NULL, progress = '{}' WHERE name = ?", (dumps(history), name))
            notes.append(f"{row['kind']} job {name}: attempt {row['attempt']} failed ({INTERRUPTED}); running it again")
            self._queue.put(name)
        for row in self._db.query("SELECT * FROM jobs WHERE status != ? AND delivered = 0 ORDER BY ended_at", (JOB_IN_PROGRESS,)):
            notes.append(f"{row['kind']} job {row['name']} ended ({row['status']}) before its event was handled: sending it again")
            self._deliver(row["name"])
        return notes

    # launching -------------------------------------------------------------------------------
    def _launch_loop(self) -> None:
        while True:
            name = self._queue.get()
            if name is None or self._stopping.is_set():
                return
            try:
                self._launch(name)
            except Exception as exc:  # a job that cannot even start fails; the pipeline goes on
                self._finish(name, None, f"could not start the job: {type(exc).__name__}: {exc}")

    def _launch(self, name: str) -> None:
        row = self._db.one("SELECT * FROM jobs WHERE name = ?", (name,))
        if row is None or row["status"] != JOB_IN_PROGRESS:
            return
        spec, attempt = self._spec(row), row["attempt"] + 1
        job_dir = self._job_dir(row["kind"], name)
        attempt_dir = job_dir / f"attempt-{attempt}"
        shutil.rmtree(attempt_dir, ignore_errors=True)
        (attempt_dir / "output").mkdir(parents=True, exist_ok=True)
        if row["kind"] == "training":
            command, env = self._training_command(name, spec, job_dir, attempt_dir)
        else:
            command, env = self._conversion_command(spec, attempt_dir)
        log = open(job_dir / "log.txt", "ab")
        log.write(f"--- attempt {attempt} at {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        log.flush()
        guarded = [sys.executable, "-m", "chalicelib.local_stack.orphan_guard", str(os.getpid()), "--", *command]
        child = subprocess.Popen(guarded, cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        started = self._clock()
        with self._db.transaction() as tx:
            tx.execute("UPDATE jobs SET attempt = ?, pid = ?, pid_start = ?, started_at = ?, progress = '{}' WHERE name = ?",
                       (attempt, child.pid, _proc_start(child.pid), started, name))
        with self._lock:
            self._children[name] = child
        what = "training" if row["kind"] == "training" else "conversion"
        self._say(f"{what} job {name} started (attempt {attempt}, pid {child.pid}); log: {job_dir / 'log.txt'}")
        threading.Thread(target=self._follow, args=(name, row["kind"], child, log), name=f"job-{name[-8:]}", daemon=True).start()

    def _training_command(self, name: str, spec: dict[str, Any], job_dir: Path,
                          attempt_dir: Path) -> tuple[list[str], dict[str, str]]:
        data = job_dir / "input" / "data" / Channel.TRAINING
        if not data.is_dir():
            source = self._objects.path(spec["dataset_uri"])
            if spec.get("manifest_uri"):
                count = _snapshot_manifest(self._objects, spec["manifest_uri"], source, data)
                self._say(f"training job {name}: {count} files from the bucket, as its manifest lists them")
            else:  # a job recorded before runs had manifests
                count = _snapshot(source, data)
                self._say(f"training job {name}: {count} files from the bucket")
        config = job_dir / "input" / "config"
        config.mkdir(parents=True, exist_ok=True)
        # What SageMaker gives the job: the spec's hyperparameters as they are (flowers up -H's are in them already).
        (config / "hyperparameters.json").write_text(dumps(spec["hyperparameters"]))
        checkpoints = self._objects.path(spec["checkpoint_uri"])
        tensorboard = self._objects.path(spec["tensorboard_uri"]) / name
        features = self._objects.path(spec["feature_cache_uri"]) if spec.get("feature_cache_uri") else None
        if features is not None:  # what S3's lifecycle rule does in the cloud
            expired = feature_cache.expire(features, feature_cache.EXPIRE_DAYS, self._clock())
            if expired:
                self._say(f"feature cache: {expired} entries older than {feature_cache.EXPIRE_DAYS} days removed")
        env = settings_module.child_environment({
            Variable.INPUT_CONFIG_DIR: str(config), Variable.CHANNEL_TRAINING: str(data),
            Variable.MODEL_DIR: str(attempt_dir / "output" / "model"), Variable.OUTPUT_DIR: str(attempt_dir / "output"),
            Variable.OUTPUT_DATA_DIR: str(attempt_dir / "output" / "data"), Variable.CHECKPOINT_DIR: str(checkpoints),
            "TRAINING_JOB_NAME": name, "FLOWERS_TENSORBOARD_DIR": str(tensorboard),
            "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT),
            contract.MANIFEST_URI_ENV: spec.get("manifest_uri", ""), contract.MANIFEST_SHA256_ENV: spec.get("manifest_sha256", ""),
            # Where the run starts from (chalicelib/contract/warm_start.py): for a warm start, the production model's
            # training output folder, as SageMaker's production channel; "" for a full run.
            START_FROM_ENV: spec.get("start_from", ""),
            Variable.CHANNEL_PRODUCTION: str(self._objects.path(spec["warm_start_uri"])) if spec.get("warm_start_uri") else "",
            # backbone features of photos seen before (training/feature_cache.py): HOME/artifacts/features/; new ones
            # written into the model folder and handed on by the conversion job, as in the cloud
            feature_cache.FOLDER_ENV: str(features) if features is not None else "",
            feature_cache.NEW_ENV: str(attempt_dir / "output" / "model" / feature_cache.NEW_FOLDER) if features is not None else "",
        })
        return [sys.executable, "-m", "training.train"], env

    def _conversion_command(self, spec: dict[str, Any], attempt_dir: Path) -> tuple[list[str], dict[str, str]]:
        model = self._objects.path(spec["model_archive_uri"])
        # The photos the model was trained on: the training job's snapshot (the bucket may have moved on),
        # else one of its own from the run's manifest.
        snapshot = model.parents[2] / "input" / "data" / Channel.TRAINING
        data = snapshot if snapshot.is_dir() else self._objects.path(spec["dataset_uri"])
        if not snapshot.is_dir() and spec.get("manifest_uri"):
            data = attempt_dir.parent / "input" / "data" / "data"
            if not data.is_dir():
                _snapshot_manifest(self._objects, spec["manifest_uri"], self._objects.path(spec["dataset_uri"]), data)
        command = [sys.executable, "-m", "training.convert", str(model), str(attempt_dir / "output" / "model"),
                   "--data", str(data), "--quantize", self._settings.quantize]
        if spec.get("baseline_uri"):
            command += ["--baseline", str(self._objects.path(spec["baseline_uri"]))]
        if spec.get("feature_cache_uri"):
            command += ["--features-out", str(attempt_dir / "output" / feature_cache.NEW_FOLDER)]
        env = settings_module.child_environment({Variable.OUTPUT_DIR: str(attempt_dir / "output"), "PYTHONUNBUFFERED": "1",
                                                  "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)})
        return command, env

    # following a child -------------------------------------------------------------------------
    def _follow(self, name: str, kind: str, child: subprocess.Popen[bytes], log: IO[bytes]) -> None:
        tail: list[str] = []
        progress: dict[str, Any] = {}
        last_saved = 0.0
        try:
            assert child.stdout is not None  # started with stdout=PIPE
            for raw in child.stdout:
                log.write(raw)
                log.flush()
                line = raw.decode(errors="replace").rstrip()
                if not line:
                    continue
                tail = (tail + [line])[-20:]
                fields = _fields(line)
                if "epoch" in fields or "quantization" in fields or fields.get("result") == "final":
                    progress = dict(fields, line=line[:300], at=self._clock())
                    self._say(f"  {'train' if kind == 'training' else 'convert'} | {line[:200]}")
                    if time.monotonic() - last_saved > 0.5 or "epoch" not in fields:
                        self._save_progress(name, progress)
                        last_saved = time.monotonic()
                elif line.startswith(("ERROR", "dataset version=", "chosen quantization=", "model written")):
                    self._say(f"  {'train' if kind == 'training' else 'convert'} | {line[:300]}")
            code = child.wait()
        finally:
            log.close()
        if progress:
            self._save_progress(name, progress)
        with self._lock:
            self._children.pop(name, None)
        if self._stopping.is_set():
            return  # stopped by us: the row stays InProgress and the next start runs it again
        self._finish(name, code, _failure_reason(code, tail))

    def _save_progress(self, name: str, progress: dict[str, Any]) -> None:
        with self._db.transaction() as tx:
            tx.execute("UPDATE jobs SET progress = ? WHERE name = ?", (dumps(progress), name))

    def _finish(self, name: str, code: int | None, reason: str) -> None:
        row = self._db.one("SELECT * FROM jobs WHERE name = ?", (name,))
        if row is None or row["status"] != JOB_IN_PROGRESS:
            return
        status = JOB_COMPLETED if code == 0 else JOB_FAILED
        if row["attempt"]:
            failure = self._attempt_dir(row) / "output" / "failure"
            if status == JOB_FAILED and failure.exists():
                reason = failure.read_text(errors="replace").strip()[:1000] or reason
        if status == JOB_COMPLETED and row["kind"] == "conversion":
            try:
                self._publish(row)
            except OSError as exc:
                status, reason = JOB_FAILED, f"could not move the converted model into place: {exc}"
        with self._db.transaction() as tx:
            tx.execute("UPDATE jobs SET status = ?, reason = ?, ended_at = ?, pid = NULL WHERE name = ?",
                       (status, "" if status == JOB_COMPLETED else reason, self._clock(), name))
        self._say(f"{row['kind']} job {name} {status.lower()}" + ("" if status == JOB_COMPLETED else f": {reason}"))
        self._deliver(name)

    def _publish(self, row: sqlite3.Row) -> None:
        """models/<version>/ appears whole: moved from the attempt's folder in one rename. The feature cache's new
        entries go into its folder, as SageMaker uploads the conversion's `features` output to features/; the
        training job's copy of them goes (in the cloud it expires with model.tar.gz)."""
        spec = self._spec(row)
        source = self._attempt_dir(row) / "output" / "model"
        target = self._objects.path(spec["output_uri"])
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        os.replace(source, target)
        if spec.get("feature_cache_uri"):
            folder = self._objects.path(spec["feature_cache_uri"])
            try:
                moved = feature_cache.move_into(self._attempt_dir(row) / "output" / feature_cache.NEW_FOLDER, folder)
            except OSError as exc:  # a cache that cannot be written costs the next run time, never this model
                self._say(f"feature cache: cannot move the new entries into {folder}: {exc}")
                return
            shutil.rmtree(self._objects.path(spec["model_archive_uri"]) / feature_cache.NEW_FOLDER, ignore_errors=True)
            if moved > 1:  # the marker is always among them
                self._say(f"feature cache: {moved - 1} new entr(ies) in {folder}")

    def _deliver(self, name: str) -> None:
        row = self._db.one("SELECT * FROM jobs WHERE name = ?", (name,))
        if row is None or self._emit is None:
            return
        now = self._clock()
        if row["kind"] == "training":
            model = self._model_uri(row) if row["status"] == JOB_COMPLETED else ""
            event = events.training_state(name, row["status"], model, row["reason"], now)
        else:
            event = events.processing_state(name, row["status"], row["reason"], now)
        try:
            self._emit("on_sagemaker_job", event)
        except Exception as exc:  # the next start sends it again (delivered stays 0)
            self._say(f"handling the exit of {name} failed: {type(exc).__name__}: {exc}")
            return
        with self._db.transaction() as tx:
            tx.execute("UPDATE jobs SET delivered = 1 WHERE name = ?", (name,))


def _fields(line: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for token in line.split():
        key, sep, value = token.partition("=")
        if not sep or not key.isidentifier():
            continue
        try:
            found[key] = float(value) if key not in ("epoch", "phase", "result", "quantization", "version") else value
        except ValueError:
            found[key] = value
    return found


def _failure_reason(code: int | None, tail: list[str]) -> str:
    if code is None:
        return "the job did not start"
    errors = [line for line in tail if line.startswith("ERROR")]
    last = (errors or tail or [""])[-1][:500]
    if code < 0:
        return f"killed by signal {-code}" + (" (out of memory?)" if -code == signal.SIGKILL else "") + (f": {last}" if last else "")
    return f"exit code {code}" + (f": {last}" if last else "")


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the child leads its own session and group
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
