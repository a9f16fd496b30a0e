"""`flowers up`: the whole pipeline on one machine, through the Chalice app's own functions.

Every event goes to the function the cloud wires it to, with the documented event shape:
the bucket folder's changes to `on_upload` (S3 notifications in SQS records), a scheduled
event to `tick` twice a second, job exits to `on_sagemaker_job`. HTTP requests go through
Chalice's API Gateway emulation to the app's routes (local_stack/http.py). One lock serialises
the invocations, as one Lambda container runs one at a time.

Start-up order, for "kill -9 at any moment loses nothing": take HOME/lock (a second
`flowers up` refuses), serve the approved model at once, recover the jobs (interrupted
ones run again, unhandled exits are re-sent), scan the bucket (uploads made while down),
then serve and watch.
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, TextIO

from chalice.config import Config
from chalice.local import CustomLocalChalice, LambdaContext, LocalChalice, LocalGateway

from chalicelib import services
from chalicelib.adapters.local import events
from chalicelib.contract.vocabulary import Action
from chalicelib.local_stack import guard
from chalicelib.local_stack.http import GatewayServer
from chalicelib.local_stack.watcher import BucketWatcher, Watch

TICK_SECONDS = 0.5


class AlreadyRunning(RuntimeError):
    pass


class HomeLock:
    """An OS lock on HOME/lock: released by the kernel when the process dies, kill -9 included."""

    def __init__(self, home: Path):
        self.path = Path(home) / "lock"
        self._handle: TextIO | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise AlreadyRunning(f"another `flowers up` ({holder}) is using {self.path.parent}; stop it first, "
                                 f"or give this one another home (--home DIR or FLOWERS_HOME)") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def holds_lock(home: Path) -> bool:
    """True when a `flowers up` is running on this home."""
    path = Path(home) / "lock"
    if not path.exists():
        return False
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


class LocalStack:
    def __init__(self, say: Callable[[str], None] = print, host: str = "127.0.0.1"):
        import app as chalice_app  # the Chalice app itself: same routes, same functions

        self.app = chalice_app.app
        self.svc = services.get()
        if not self.svc.local_mode:
            raise RuntimeError("flowers up needs FLOWERS_MODE=local")
        self.settings = self.svc.settings
        self.local = self.svc.local
        self.home = Path(self.settings.home)
        self.host = host
        self._say = say
        self._lock = HomeLock(self.home)
        self._invoke_lock = threading.RLock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._watch: Watch | None = None
        self.server: GatewayServer | None = None
        self.port = 0
        self.served_version = ""
        self._token = ""
        warnings.filterwarnings("ignore", message=".*is not a supported in local mode.*")

    # console --------------------------------------------------------------------------------
    def say(self, line: str) -> None:
        self._say(f"{time.strftime('%H:%M:%S')} {line}")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def operator_link(self) -> str:
        """The page, with the operator token in the fragment (never sent to a server; the page keeps it for the tab)."""
        return f"{self.url}#token={self._token}"

    # invoking the app's functions -------------------------------------------------------------
    def invoke(self, function: str, event: events.Event) -> Any:
        with self._invoke_lock:
            return self.app.handler_map[function](event, LambdaContext(function, memory_size=1024))

    def _on_job_event(self, function: str, event: events.Event) -> None:
        result = self.invoke(function, event)
        self._report(result)
        if isinstance(result, dict) and result.get("action") == Action.REGISTERED:
            self._refresh_model()

    def _report(self, result: Any) -> None:
        """`result`: a function's answer as the Lambda returns it (RunResult.as_dict())."""
        if not isinstance(result, dict):
            return
        action = result.get("action")
        if action == Action.STARTED:
            self.say(f"training run for data set version {result['version']} (job {result['job']})")
        elif action == Action.CONVERTING:
            self.say(f"training done; converting to TFLite (job {result['job']})")
        elif action == Action.REGISTERED:
            self.say(f"model {result['version']} registered: {result.get('model_status') or 'pending'} ({result.get('reason')})")
        elif action == Action.FAILED:
            self.say(f"run for {result.get('version')} failed: {result.get('reason')}; still serving {self.served_version or 'no model'}")
        elif action == Action.SKIPPED:
            self.say(f"no run: {result.get('reason')}")
        if isinstance(result.get("next"), dict):
            self._report(result["next"])

    def _refresh_model(self) -> None:
        with self._invoke_lock:
            self.svc.predictor.refresh()
            model = self.svc.predictor.model
        version = model.entry.version if model else ""
        if version != self.served_version:
            self.served_version = version
            self.say(f"serving model {version}" if version else "no approved model yet: predictions answer 503")

    # start and stop -----------------------------------------------------------------------
    def start(self, port: int | None = None) -> None:
        self._lock.acquire()
        try:
            self._start(self.settings.port if port is None else port)
        except BaseException:
            self.stop()
            raise

    def _start(self, port: int) -> None:
        self.say(f"home {self.home} (bucket: {self.local.bucket_folder})")
        self._refresh_model()  # the approved model, served again at once after a restart
        if not self.served_version:
            self.say("no approved model yet: predictions answer 503 until the first run is approved")
        jobs = self.local.jobs
        jobs.start(emit=self._on_job_event, say=self.say)
        for note in jobs.recover():
            self.say(note)
        self._serve(port)
        self.local.objects.serve_downloads_from(self.url)
        watcher = BucketWatcher(self.local.db, self.local.objects, self.local.bucket_folder, self.settings.dataset_bucket,
                                self._deliver_uploads)
        self._watcher = watcher
        self._watch = Watch(self.local.bucket_folder, self._scan, self.settings.watch, self.say)
        self._watch.start()  # notifications first: a file written during the first scan still wakes the next
        self._watch.scan_now()  # uploads that arrived while flowers up was down
        thread = threading.Thread(target=self._watch.run, args=(self._stop,), name="flowers-watch", daemon=True)
        thread.start()
        self._threads.append(thread)
        self._loop("flowers-tick", TICK_SECONDS, self._tick)
        (self.home / "server.json").write_text(json.dumps({"pid": os.getpid(), "url": self.url, "port": self.port,
                                                            "started_at": time.time()}))
        self.say(f"serving the API and the web page on {self.url}  (quiet period {self.settings.quiet_period}s, "
                 f"preset {self.settings.preset}; Ctrl-C stops)")
        self.say(f"operator link (the page with operator data; keep it to yourself): {self.operator_link}")

    def _serve(self, port: int) -> None:
        if not isinstance(self.app, LocalChalice):  # what chalice.local.create_local_server does: a per-thread current_request
            CustomLocalChalice.__bases__ = (LocalChalice, self.app.__class__)
            self.app.__class__ = CustomLocalChalice
        gateway = LocalGateway(self.app, Config.create(chalice_stage="local", app_name="flowers"))
        self._token = guard.ensure_token(self.home)  # the operator routes' (local_stack/guard.py)
        self.server = GatewayServer((self.host, port), gateway, self._invoke_lock, self.local.artifact_folder, self._token)
        self.port = self.server.port
        thread = threading.Thread(target=self.server.serve_forever, name="flowers-http", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _loop(self, name: str, every: float, step: Callable[[], None]) -> None:
        def run() -> None:
            while not self._stop.wait(every):
                try:
                    step()
                except Exception as exc:  # keep going: the next round tries again
                    self.say(f"{name}: {type(exc).__name__}: {exc}")

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _scan(self) -> None:
        found = self._watcher.scan_once()
        if found["failed"]:
            self.say(f"bucket: {found['failed']} file(s) could not be recorded; the next scan sends them again")
        if found["created"] or found["removed"]:
            state = self.svc.orchestrator.dataset_state()
            self.say(f"bucket: {found['created']} new or changed, {found['removed']} removed file(s); {state.pending_changes} pending; "
                     + ("a run is in progress: another follows it" if state.running else f"training starts after {self.settings.quiet_period}s of quiet"))

    def _deliver_uploads(self, event: events.Event) -> Any:
        result = self.invoke("on_upload", event)  # its batchItemFailures go back to the "queue": the next scan
        classified = result.get("classified") if isinstance(result, dict) else None
        if isinstance(classified, dict) and classified.get("action") == Action.CLASSIFIED:
            self.say(f"classified {classified['photos']} photo(s) under classify/ with the served model: {classified['output']}"
                     + (f" ({classified['errors']} could not be)" if classified.get("errors") else ""))
        return result

    def _tick(self) -> None:
        result = self.invoke("tick", events.scheduled_event(time.time()))
        self._report(result)

    def wait(self) -> None:
        """Block until Ctrl-C / SIGTERM."""
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        while not stop.wait(0.5):
            pass

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        self.local.jobs.stop()
        try:
            (self.home / "server.json").unlink()
        except FileNotFoundError:
            pass
        self._lock.release()
