"""The local SQLite file: the data set's state, model registry, jobs and the bucket's last scan.

WAL journal, `synchronous=FULL` (a commit survives kill -9 and power loss), and every
state change inside one `BEGIN IMMEDIATE` transaction, so the conditional writes of the
state store are as atomic here as DynamoDB's transactions are in the cloud.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

Params = tuple[object, ...]  # the values of a statement's ? placeholders

SCHEMA = """
CREATE TABLE IF NOT EXISTS dataset_state (
    dataset TEXT PRIMARY KEY,
    pending_changes INTEGER NOT NULL DEFAULT 0,
    last_change_at REAL NOT NULL DEFAULT 0,
    running TEXT,                 -- JSON of records.Running, NULL when no run holds the data set
    dataset_version TEXT NOT NULL DEFAULT '',
    last_outcome TEXT,            -- JSON of records.Outcome
    listing_checked_at REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS runs (
    dataset TEXT NOT NULL,
    version TEXT NOT NULL,
    job_name TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '{}',
    run_id TEXT NOT NULL DEFAULT '',  -- '' for a version's first run, else a rerun's (records.model_version)
    actions TEXT NOT NULL DEFAULT '[]',  -- JSON: operator actions on the run and its model (actors.OperatorAction)
    PRIMARY KEY (dataset, version, run_id)
);
CREATE TABLE IF NOT EXISTS changes (
    dataset TEXT NOT NULL,
    change_id TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    event_time REAL NOT NULL,
    PRIMARY KEY (dataset, change_id)
);
CREATE TABLE IF NOT EXISTS models (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    version TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    entry TEXT NOT NULL,          -- JSON of records.ModelEntry
    metadata TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,           -- training | conversion
    spec TEXT NOT NULL,           -- JSON of the TrainingSpec / ConversionSpec
    status TEXT NOT NULL,         -- InProgress | Completed | Failed | Stopped
    attempt INTEGER NOT NULL DEFAULT 0,
    pid INTEGER,
    pid_start TEXT,               -- /proc/<pid>/stat start time: the pid still names our process
    created_at REAL NOT NULL,
    started_at REAL NOT NULL DEFAULT 0,   -- when the current attempt's process started
    ended_at REAL NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    progress TEXT NOT NULL DEFAULT '{}',
    attempts TEXT NOT NULL DEFAULT '[]',  -- earlier attempts: [{attempt, status, reason, ...}]
    delivered INTEGER NOT NULL DEFAULT 0  -- 1 once the orchestrator handled the terminal event
);
CREATE TABLE IF NOT EXISTS objects (
    key TEXT PRIMARY KEY,         -- relative to the bucket folder
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    etag TEXT NOT NULL
);
"""


class Database:
    """One connection shared by the threads of one process, serialised by a lock."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        with self.transaction() as db:
            _rename_legacy_tables(db)
            db.executescript_in_tx(SCHEMA)
            _key_runs_by_run(db)
            _add_new_columns(db)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class Transaction:
    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn

    def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    def one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._conn.execute(sql, params).fetchone()  # row_factory is sqlite3.Row
        return row

    def executescript_in_tx(self, script: str) -> None:
        for statement in script.split(";"):
            if statement.strip():
                self._conn.execute(statement)


# Tables renamed since a release that homes in ~/.flowers may still have: old name -> new name.
_RENAMED = {"pipeline": "dataset_state"}


def _rename_legacy_tables(db: Transaction) -> None:
    for old, new in _RENAMED.items():
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}
        if old in names and new not in names:
            db.execute(f"ALTER TABLE {old} RENAME TO {new}")


# Columns added since a release whose homes may still be around: table -> (column, its definition).
_ADDED = {"dataset_state": [("listing_checked_at", "REAL NOT NULL DEFAULT 0")], "runs": [("actions", "TEXT NOT NULL DEFAULT '[]'")]}


def _key_runs_by_run(db: Transaction) -> None:
    """A home from before reruns kept its runs under (dataset, version); a primary key cannot be altered, so the table
    is copied into one keyed by (dataset, version, run_id), each old record as its version's first run."""
    present = {row[1] for row in db.execute("PRAGMA table_info(runs)").fetchall()}
    if "run_id" in present:
        return
    db.execute("ALTER TABLE runs RENAME TO runs_by_version")
    db.executescript_in_tx(SCHEMA)  # the runs table as it is now (the others exist)
    db.execute("INSERT INTO runs (dataset, version, job_name, status, created_at, finished_at, reason, model) "
               "SELECT dataset, version, job_name, status, created_at, finished_at, reason, model FROM runs_by_version")
    db.execute("DROP TABLE runs_by_version")


def _add_new_columns(db: Transaction) -> None:
    for table, columns in _ADDED.items():
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})").fetchall()}
        for name, definition in columns:
            if name not in present:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def loads(text: str | None, default: Any = None) -> Any:
    return json.loads(text) if text else default
