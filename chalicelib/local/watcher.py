"""Turns changes in the bucket folder into S3 event notifications (what S3 -> SQS delivers).

Each scan compares the folder with the last scan recorded in SQLite. New or changed files
become ObjectCreated records, vanished ones ObjectRemoved; the handler runs first, then the
scan is recorded. A crash in between re-sends the same records (their sequencer derives
from size and mtime, so the change ids are the same) and the state store counts each once.
That is also how uploads made while `flowers up` was down are picked up: the first scan
after a start finds them.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from chalicelib.local import events
from chalicelib.local.db import Database
from chalicelib.local.objects import LocalObjectStore, scan

BATCH = 100  # the on_upload function's SQS batch size


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
        records, upserts, removals = [], [], []
        seen = set()
        for key, stat in scan(self._root):
            seen.add(key)
            before = known.get(key)
            if before and before[0] == stat.st_size and before[1] == stat.st_mtime_ns:
                continue
            try:
                etag = self._objects.etag(self._root / key, stat)
            except OSError:
                continue  # gone already; the next scan sees it as never there
            sequencer = f"{stat.st_mtime_ns:020X}{stat.st_size:010X}"
            records.append(events.s3_record(self._bucket, key, "created", etag, stat.st_size, sequencer, now))
            upserts.append((key, stat.st_size, stat.st_mtime_ns, etag))
        for key, (size, mtime_ns, etag) in known.items():
            if key not in seen:
                records.append(events.s3_record(self._bucket, key, "removed", etag, size, f"R{mtime_ns:020X}{size:010X}", now))
                removals.append(key)
        for start in range(0, len(records), BATCH):
            self._deliver(events.sqs_event([events.s3_notification(r) for r in records[start : start + BATCH]]))
        if upserts or removals:
            with self._db.transaction() as tx:
                for row in upserts:
                    tx.execute("INSERT OR REPLACE INTO objects (key, size, mtime_ns, etag) VALUES (?, ?, ?, ?)", row)
                for key in removals:
                    tx.execute("DELETE FROM objects WHERE key = ?", (key,))
        return {"created": len(upserts), "removed": len(removals)}
