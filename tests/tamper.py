"""What a forger with direct access to the database can do, on either store.

Each change runs with the log's triggers switched off (dropped on SQLite, disabled
by a superuser on PostgreSQL) and restored afterwards, as a careful forger would.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any
from uuid import UUID

from eventstore.canonical import entry_bytes, format_time, leaf_hash, parse_time

COLUMNS = ("position", "recorded_at", "aggregate_id", "aggregate_version", "event",
           "event_version", "data", "metadata", "leaf")


def recomputed_leaf(row: dict[str, Any]) -> bytes:
    return leaf_hash(entry_bytes(
        position=row["position"], recorded_at=format_time(row["recorded_at"]),
        aggregate_id=str(row["aggregate_id"]), aggregate_version=row["aggregate_version"],
        event=row["event"], event_version=row["event_version"], data=row["data"],
        metadata=row["metadata"]))


class Raw:
    """Rows of the log, and changes that bypass the ledger."""

    def __init__(self, backend: str, store: str, operator: str | None) -> None:
        self.backend, self.store, self.operator = backend, store, operator

    # Reading -----------------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        if self.backend == "sqlite":
            with sqlite3.connect(self.store) as conn:
                rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM ledger_log "
                                    "ORDER BY position").fetchall()
            return [dict(zip(COLUMNS, row, strict=True),
                         recorded_at=parse_time(row[1]), aggregate_id=UUID(row[2]))
                    for row in rows]
        with self._pg() as conn:
            rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM ledger_log "
                                "ORDER BY position").fetchall()
        return [{**dict(zip(COLUMNS, row, strict=True)), "data": bytes(row[6]),
                 "metadata": bytes(row[7]), "leaf": bytes(row[8])} for row in rows]

    def row(self, position: int) -> dict[str, Any]:
        return next(r for r in self.rows() if r["position"] == position)

    def find(self, event: str, occurrence: int = 0) -> dict[str, Any]:
        return [r for r in self.rows() if r["event"] == event][occurrence]

    # Changing ----------------------------------------------------------------------------

    def update(self, at: int, **changes: Any) -> None:
        """Rewrite columns of the entry at position ``at`` (``leaf=...`` to forge its hash)."""
        assignments = ", ".join(f"{name} = {self._mark}" for name in changes)
        self._run([(f"UPDATE ledger_log SET {assignments} WHERE position = {self._mark}",
                    [self._value(k, v) for k, v in changes.items()] + [at])])

    def delete(self, position: int) -> None:
        self._run([(f"DELETE FROM ledger_log WHERE position = {self._mark}", [position])])

    def insert(self, row: dict[str, Any]) -> None:
        marks = ", ".join([self._mark] * len(COLUMNS))
        self._run([(f"INSERT INTO ledger_log ({', '.join(COLUMNS)}) VALUES ({marks})",
                    [self._value(k, row[k]) for k in COLUMNS])])

    def replace(self, row: dict[str, Any]) -> None:
        """SQLite's INSERT OR REPLACE; on PostgreSQL, the same effect by UPDATE."""
        if self.backend == "sqlite":
            marks = ", ".join("?" * len(COLUMNS))
            self._run([(f"INSERT OR REPLACE INTO ledger_log ({', '.join(COLUMNS)}) "
                        f"VALUES ({marks})", [self._value(k, row[k]) for k in COLUMNS])])
        else:
            changes = {k: v for k, v in row.items() if k != "position"}
            self.update(row["position"], **changes)

    def swap(self, first: int, second: int) -> None:
        """Exchange the contents of two positions (an entry moved in the history)."""
        a, b = self.row(first), self.row(second)
        parking = -1
        self._run([
            (f"UPDATE ledger_log SET position = {self._mark} WHERE position = {self._mark}",
             [parking, first]),
            (f"UPDATE ledger_log SET position = {self._mark} WHERE position = {self._mark}",
             [first, second]),
            (f"UPDATE ledger_log SET position = {self._mark} WHERE position = {self._mark}",
             [second, parking]),
        ])
        assert self.row(first)["data"] == b["data"] and self.row(second)["data"] == a["data"]

    # Plumbing ----------------------------------------------------------------------------

    @property
    def _mark(self) -> str:
        return "?" if self.backend == "sqlite" else "%s"

    def _value(self, name: str, value: Any) -> Any:
        if self.backend == "sqlite":
            if isinstance(value, datetime):
                return format_time(value)
            if isinstance(value, UUID):
                return str(value)
        return value

    def _pg(self):
        import psycopg

        from tests.conftest import POSTGRES_ADMIN

        conn = psycopg.connect(POSTGRES_ADMIN)
        conn.execute(f"SET search_path TO ledger_{self.operator}")
        return conn

    def _run(self, statements: list[tuple[str, list[Any]]]) -> None:
        if self.backend == "sqlite":
            conn = sqlite3.connect(self.store)
            triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                                    "AND tbl_name = 'ledger_log'").fetchall()
            for name, _ in triggers:
                conn.execute(f"DROP TRIGGER {name}")
            for statement, params in statements:
                conn.execute(statement, params)
            for _, sql in triggers:  # restored: nothing shows they were ever dropped
                conn.execute(sql)
            conn.commit()
            conn.close()
            return
        with self._pg() as conn:
            conn.execute("ALTER TABLE ledger_log DISABLE TRIGGER USER")
            for statement, params in statements:
                conn.execute(statement, params)
            for name in ("ledger_assign", "ledger_append_only", "ledger_no_truncate"):
                conn.execute(f"ALTER TABLE ledger_log ENABLE ALWAYS TRIGGER {name}")
