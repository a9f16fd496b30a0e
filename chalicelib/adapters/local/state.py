"""StateStore on SQLite: the same conditional writes as chalicelib/adapters/aws/dynamodb_state.py,
each inside one BEGIN IMMEDIATE transaction."""
from __future__ import annotations

import sqlite3
from typing import Any

from chalicelib.adapters.local.db import Database, Transaction, dumps, loads
from chalicelib.ports import BUSY, CLAIMED, VERSION_EXISTS
from chalicelib.pipeline.actors import OperatorAction, actions_from
from chalicelib.pipeline.records import Change, Outcome, DatasetState, Running, RunRecord, run_action


def _running(value: dict[str, Any] | None) -> Running | None:
    return Running.from_dict(value) if value else None


def _outcome(value: dict[str, Any] | None) -> Outcome | None:
    return Outcome.from_dict(value) if value else None


class SqliteStateStore:
    def __init__(self, db: Database):
        self._db = db

    @staticmethod
    def _ensure(tx: Transaction, dataset: str) -> sqlite3.Row:
        tx.execute("INSERT OR IGNORE INTO dataset_state (dataset) VALUES (?)", (dataset,))
        row = tx.one("SELECT * FROM dataset_state WHERE dataset = ?", (dataset,))
        assert row is not None  # inserted just above when it was missing
        return row

    # uploads --------------------------------------------------------------------------------
    def record_changes(self, dataset: str, changes: list[Change]) -> int:
        unique = list({c.change_id: c for c in changes}.values())
        with self._db.transaction() as tx:
            row = self._ensure(tx, dataset)
            new, latest = 0, row["last_change_at"]
            for change in unique:
                inserted = tx.execute(
                    "INSERT OR IGNORE INTO changes (dataset, change_id, key, kind, event_time) VALUES (?, ?, ?, ?, ?)",
                    (dataset, change.change_id, change.key, change.kind, change.event_time)).rowcount
                if inserted:
                    new += 1
                    latest = max(latest, change.event_time)  # events arrive in any order: keep the newest
            if new:
                tx.execute("UPDATE dataset_state SET pending_changes = pending_changes + ?, last_change_at = ? WHERE dataset = ?",
                           (new, latest, dataset))
        return new

    # runs -----------------------------------------------------------------------------------
    def dataset_state(self, dataset: str) -> DatasetState:
        row = self._db.one("SELECT * FROM dataset_state WHERE dataset = ?", (dataset,))
        if row is None:
            return DatasetState()
        return DatasetState(pending_changes=int(row["pending_changes"]), last_change_at=float(row["last_change_at"]),
                             running=_running(loads(row["running"])), dataset_version=row["dataset_version"],
                             last_outcome=_outcome(loads(row["last_outcome"])), listing_checked_at=float(row["listing_checked_at"]))

    def note_listing_check(self, dataset: str, at: float) -> None:
        with self._db.transaction() as tx:
            self._ensure(tx, dataset)
            tx.execute("UPDATE dataset_state SET listing_checked_at = ? WHERE dataset = ?", (at, dataset))

    def claim_run(self, dataset: str, running: Running, consumed: int) -> str:
        with self._db.transaction() as tx:
            row = self._ensure(tx, dataset)
            if row["running"]:
                return BUSY
            if tx.one("SELECT 1 FROM runs WHERE dataset = ? AND version = ? AND run_id = ?", (dataset, running.version, running.run_id)):
                return VERSION_EXISTS
            tx.execute("UPDATE dataset_state SET running = ?, dataset_version = ?, pending_changes = pending_changes - ? WHERE dataset = ?",
                       (dumps(running.as_dict()), running.version, consumed, dataset))
            action = run_action(running)
            tx.execute("INSERT INTO runs (dataset, version, run_id, job_name, status, created_at, actions) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (dataset, running.version, running.run_id, running.job_name, running.stage, running.started_at,
                        dumps([action.as_dict()] if action else [])))
        return CLAIMED

    def skip_pending(self, dataset: str, consumed: int, outcome: Outcome) -> bool:
        with self._db.transaction() as tx:
            row = self._ensure(tx, dataset)
            if row["running"]:
                return False
            tx.execute("UPDATE dataset_state SET last_outcome = ?, pending_changes = pending_changes - ? WHERE dataset = ?",
                       (dumps(outcome.as_dict()), consumed, dataset))
        return True

    def advance(self, dataset: str, job_name: str, from_stages: tuple[str, ...], /, **fields: Any) -> bool:
        with self._db.transaction() as tx:
            row = self._ensure(tx, dataset)
            running = loads(row["running"])
            if not running or running.get("job_name") != job_name or running.get("stage") not in from_stages:
                return False
            running.update(fields)
            tx.execute("UPDATE dataset_state SET running = ? WHERE dataset = ?", (dumps(running), dataset))
        return True

    def finish(self, dataset: str, job_name: str, outcome: Outcome, model: dict[str, Any] | None = None) -> bool:
        with self._db.transaction() as tx:
            row = self._ensure(tx, dataset)
            running = loads(row["running"])
            if not running or running.get("job_name") != job_name:
                return False
            tx.execute("UPDATE dataset_state SET running = NULL, last_outcome = ? WHERE dataset = ?", (dumps(outcome.as_dict()), dataset))
            sets, params = "status = ?, finished_at = ?, reason = ?", [outcome.status, outcome.at, outcome.reason]
            if model:
                sets += ", model = ?"
                params.append(dumps(model))
            tx.execute(f"UPDATE runs SET {sets} WHERE dataset = ? AND version = ? AND run_id = ?",
                       (*params, dataset, outcome.version, outcome.run_id))
        return True

    def note_action(self, dataset: str, version: str, run_id: str, action: OperatorAction) -> bool:
        with self._db.transaction() as tx:
            row = tx.one("SELECT actions FROM runs WHERE dataset = ? AND version = ? AND run_id = ?", (dataset, version, run_id))
            if row is None:
                return False
            tx.execute("UPDATE runs SET actions = ? WHERE dataset = ? AND version = ? AND run_id = ?",
                       (dumps([*loads(row["actions"], []), action.as_dict()]), dataset, version, run_id))
        return True

    def run(self, dataset: str, version: str) -> RunRecord | None:
        row = self._db.one("SELECT * FROM runs WHERE dataset = ? AND version = ? ORDER BY created_at DESC, rowid DESC LIMIT 1",
                           (dataset, version))
        return _record(row) if row else None

    def runs(self, dataset: str, limit: int = 50) -> list[RunRecord]:
        rows = self._db.query("SELECT * FROM runs WHERE dataset = ? ORDER BY created_at DESC, rowid DESC LIMIT ?", (dataset, limit))
        return [_record(row) for row in rows]


def _record(row: sqlite3.Row) -> RunRecord:
    return RunRecord(version=row["version"], job_name=row["job_name"], status=row["status"], created_at=float(row["created_at"]),
                     finished_at=float(row["finished_at"]), reason=row["reason"], model=loads(row["model"], {}),
                     run_id=row["run_id"], actions=actions_from(loads(row["actions"], [])))
