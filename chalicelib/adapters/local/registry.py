"""ModelRegistry on SQLite: one row per model version, in registration order.

Same contract as the SageMaker Model Registry adapter: register is idempotent per version,
the served model is the newest approved one.
"""
from __future__ import annotations

import builtins
import sqlite3
import time
from dataclasses import replace
from typing import Any, Callable

from chalicelib.adapters.local.db import Database, dumps, loads
from chalicelib.pipeline.records import APPROVED, ModelEntry


def _entry(row: sqlite3.Row) -> ModelEntry:
    values = loads(row["entry"], {})
    values.update(status=row["status"], package_version=int(row["seq"]), package_arn=f"local:models/{row['version']}")
    return ModelEntry(**values)


class SqliteModelRegistry:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time):
        self._db = db
        self._clock = clock

    def register(self, entry: ModelEntry, metadata: dict[str, Any]) -> ModelEntry:
        with self._db.transaction() as tx:
            if not tx.one("SELECT 1 FROM models WHERE version = ?", (entry.version,)):
                stored = replace(entry, created_at=entry.created_at or self._clock())
                tx.execute("INSERT INTO models (version, status, created_at, entry, metadata) VALUES (?, ?, ?, ?, ?)",
                           (entry.version, stored.status, stored.created_at, dumps(stored.as_dict()), dumps(metadata)))
        found = self.find(entry.version)
        assert found is not None
        return found

    def find(self, version: str) -> ModelEntry | None:
        row = self._db.one("SELECT * FROM models WHERE version = ?", (version,))
        return _entry(row) if row else None

    def list(self, limit: int = 50) -> list[ModelEntry]:
        return [_entry(r) for r in self._db.query("SELECT * FROM models ORDER BY seq DESC LIMIT ?", (limit,))]

    def approved(self, limit: int = 2) -> builtins.list[ModelEntry]:  # `list` here is the method above
        rows = self._db.query("SELECT * FROM models WHERE status = ? ORDER BY seq DESC LIMIT ?", (APPROVED, limit))
        return [_entry(r) for r in rows]

    def production(self) -> ModelEntry | None:
        found = self.approved(1)
        return found[0] if found else None

    def production_id(self) -> str:
        """Cheap identity of the served model (the predictor reloads when it changes)."""
        row = self._db.one("SELECT version, entry FROM models WHERE status = ? ORDER BY seq DESC LIMIT 1", (APPROVED,))
        return f"local:models/{row['version']}#{loads(row['entry'], {}).get('sha256', '')[:12]}" if row else ""

    def set_status(self, version: str, status: str, reason: str) -> ModelEntry:
        with self._db.transaction() as tx:
            row = tx.one("SELECT entry FROM models WHERE version = ?", (version,))
            if row is None:
                raise KeyError(version)
            entry = loads(row["entry"], {})
            entry.update(status=status, reason=reason[:1000])
            tx.execute("UPDATE models SET status = ?, entry = ? WHERE version = ?", (status, dumps(entry), version))
        found = self.find(version)
        assert found is not None
        return found

    def metadata(self, version: str) -> dict[str, Any] | None:
        row = self._db.one("SELECT metadata FROM models WHERE version = ?", (version,))
        return loads(row["metadata"], {}) if row else None
