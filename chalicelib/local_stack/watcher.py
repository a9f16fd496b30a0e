"""Turns changes in the bucket folder into S3 event notifications (what S3 -> SQS delivers).

Each scan compares the folder with the last scan recorded in SQLite. New or changed files
become ObjectCreated records, vanished ones ObjectRemoved; the handler runs first, then the
scan is recorded. A crash in between re-sends the same records (their sequencer derives
from size and mtime, so the change ids are the same) and the state store counts each once.
That is also how uploads made while `flowers up` was down are picked up: the first scan
after a start finds them.

Like Lambda's SQS event source with ReportBatchItemFailures, a delivery may answer
`{"batchItemFailures": [{"itemIdentifier": messageId}, ...]}`: those messages' files are not
recorded as scanned, so the next scan sends them again (a delivery that raises fails its whole
batch, as an invocation error does); the rest of the scan is recorded.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from chalicelib.pipeline.batch_classify import is_inbox_photo
from chalicelib.pipeline.dataset_version import is_relevant
from chalicelib.adapters.local import events
from chalicelib.adapters.local.db import Database
from chalicelib.adapters.local.objects import LocalObjectStore, scan
from chalicelib.contract.vocabulary import WatchMode
from chalicelib.settings import WATCH_MODES

BATCH = 100  # the on_upload function's SQS batch size
POLL_SECONDS = 0.5  # poll mode: a full scan this often (and the least time between two scans in notify mode)
RESCAN_SECONDS = 60.0  # notify mode: a full scan at least this often, the safety net for a missed notification
RESCAN_SHARE = 0.01  # ... and no more often than keeps those rescans under 1 % of a core
SETTLE_SECONDS = 0.05  # after a notification, let the burst it belongs to arrive before scanning
# Writes, moves and deletions wake a scan; opening or reading a file (a training run reading its
# photos, a scan hashing them) does not, or every scan would wake the next.
_CHANGES = frozenset({"created", "modified", "moved", "deleted", "closed"})


def watched(key: str) -> bool:
    """The data set's files, and the photos under classify/ (batch classification: chalicelib/pipeline/batch_classify.py)."""
    return is_relevant(key, "") or is_inbox_photo(key)


class BucketWatcher:
    def __init__(self, db: Database, objects: LocalObjectStore, root: Path, bucket: str,
                 deliver: Callable[[events.Event], object], clock: Callable[[], float] = time.time):
        self._db = db
        self._objects = objects
        self._root = Path(root)
        self._bucket = bucket
        self._deliver = deliver
        self._clock = clock

    def scan_once(self) -> dict[str, int]:
        known = {row["key"]: (row["size"], row["mtime_ns"], row["etag"]) for row in self._db.query("SELECT * FROM objects")}
        now = self._clock()
        records: list[tuple[str, events.Event]] = []  # (key, S3 record)
        upserts, removals = [], []
        seen = set()
        for key, stat in scan(self._root, watched):
            seen.add(key)
            before = known.get(key)
            if before and before[0] == stat.st_size and before[1] == stat.st_mtime_ns:
                continue
            try:
                etag = self._objects.etag(self._root / key, stat)
            except OSError:
                continue  # gone already; the next scan sees it as never there
            sequencer = f"{stat.st_mtime_ns:020X}{stat.st_size:010X}"
            records.append((key, events.s3_record(self._bucket, key, "created", etag, stat.st_size, sequencer, now)))
            upserts.append((key, stat.st_size, stat.st_mtime_ns, etag))
        for key, (size, mtime_ns, etag) in known.items():
            if key not in seen:
                records.append((key, events.s3_record(self._bucket, key, "removed", etag, size, f"R{mtime_ns:020X}{size:010X}", now)))
                removals.append(key)
        failed: set[str] = set()  # keys whose message came back: not recorded, so sent again next scan
        error: Exception | None = None
        for start in range(0, len(records), BATCH):
            batch = records[start : start + BATCH]
            event = events.sqs_event([events.s3_notification(record) for _, record in batch])
            try:
                answer = self._deliver(event)
            except Exception as exc:  # the whole batch failed, as an invocation error fails it
                failed.update(key for key, _ in batch)
                error = error or exc
                continue
            returned = _batch_item_failures(answer)
            failed.update(key for (key, _), message in zip(batch, event["Records"]) if message["messageId"] in returned)
        upserts = [row for row in upserts if row[0] not in failed]
        removals = [key for key in removals if key not in failed]
        if upserts or removals:
            with self._db.transaction() as tx:
                for row in upserts:
                    tx.execute("INSERT OR REPLACE INTO objects (key, size, mtime_ns, etag) VALUES (?, ?, ?, ?)", row)
                for key in removals:
                    tx.execute("DELETE FROM objects WHERE key = ?", (key,))
        if error is not None:
            raise error
        # The data set's changes; photos under classify/ (batch classification) counted apart, when there are any.
        photos_to_classify = sum(1 for row in upserts if is_inbox_photo(row[0]))
        found = {"created": len(upserts) - photos_to_classify, "removed": len(removals) - sum(1 for k in removals if is_inbox_photo(k)),
                 "failed": len(failed)}
        return dict(found, to_classify=photos_to_classify) if photos_to_classify else found


def _batch_item_failures(answer: object) -> set[str]:
    """The message ids of a partial batch response (SQS's ReportBatchItemFailures shape)."""
    if not isinstance(answer, dict):
        return set()
    failures = answer.get("batchItemFailures") or []
    return {str(f["itemIdentifier"]) for f in failures if isinstance(f, dict) and f.get("itemIdentifier")}


class _Wake(FileSystemEventHandler):
    def __init__(self, changed: threading.Event):
        self._changed = changed

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _CHANGES:
            self._changed.set()


class Watch:
    """When to scan: on a notification (no sooner than POLL_SECONDS after the last scan), and on the safety-net
    rescan; in poll mode every POLL_SECONDS. `scan` is BucketWatcher.scan_once's caller; `run` blocks until `stop`."""

    def __init__(self, root: Path, scan: Callable[[], None], mode: str = WatchMode.NOTIFY,
                 say: Callable[[str], None] = lambda _: None, clock: Callable[[], float] = time.monotonic):
        if mode not in WATCH_MODES:
            raise ValueError(f"watch mode {mode!r} is not one of {', '.join(WATCH_MODES)}")
        self._root = Path(root)
        self._scan = scan
        self._say = say
        self._clock = clock
        self.changed = threading.Event()
        self.mode = mode
        self.scans = 0
        self._observer: BaseObserver | None = None
        self.rescan_every = RESCAN_SECONDS

    def start(self) -> None:
        """Subscribe to notifications (notify mode); where the OS refuses (inotify's watch limit), poll instead."""
        if self.mode != WatchMode.NOTIFY:
            return
        observer = Observer()
        try:
            observer.schedule(_Wake(self.changed), str(self._root), recursive=True)
            observer.start()
        except OSError as exc:
            self._say(f"bucket: no file-system notifications ({exc}); rescanning every {POLL_SECONDS}s instead")
            self.mode = WatchMode.POLL
            return
        self._observer = observer

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5)
            self._observer = None

    def next_wait(self, since_last_scan: float) -> float:
        """Seconds to sleep before the next scan unless a notification comes first."""
        every = POLL_SECONDS if self.mode == WatchMode.POLL else self.rescan_every
        return max(0.0, every - since_last_scan)

    def scan_now(self) -> None:
        started = self._clock()
        try:
            self._scan()
        finally:
            self.scans += 1
            took = self._clock() - started
            self.rescan_every = max(RESCAN_SECONDS, took / RESCAN_SHARE)

    def run(self, stop: threading.Event) -> None:
        last = self._clock()
        while not stop.is_set():
            notified = self.changed.wait(self.next_wait(self._clock() - last))
            if stop.is_set():
                return
            if notified:
                # one scan per burst, and no closer to the last one than poll mode's period
                if stop.wait(max(SETTLE_SECONDS, POLL_SECONDS - (self._clock() - last))):
                    return
                self.changed.clear()  # before the scan: a change during it wakes the next one
            elif self.mode == WatchMode.NOTIFY and self._clock() - last < self.rescan_every:
                continue
            last = self._clock()
            try:
                self.scan_now()
            except Exception as exc:  # keep going: the next scan tries again
                self._say(f"flowers-watch: {type(exc).__name__}: {exc}")
                if self.mode == WatchMode.NOTIFY:
                    self.changed.set()  # what failed is sent again in POLL_SECONDS, as poll mode would
