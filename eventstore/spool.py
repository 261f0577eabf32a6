"""A temporary SQLite file that rows are written to in chunks and read back sorted.

What a pass over the whole ledger must remember of every entry, subscription or document
(billing's due charges, ``audit verify``'s versions and documents, who signed what) goes to
one of these instead of memory: SQLite sorts it on disk and hands it back in the order the
next step needs. The file lives in a folder of its own under ``$TMPDIR`` and is removed on
:meth:`Spool.close` (docs/operations.md says how much room it takes).
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: Rows buffered per table before they are written.
CHUNK = 1_000


class Spool:
    """A temporary SQLite database with the tables of ``schema`` (SQL statements)."""

    def __init__(self, schema: str, prefix: str = "ledger-", chunk: int = CHUNK) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix=prefix)
        self.db = sqlite3.connect(Path(self._folder.name) / "spool.sqlite3")
        self.db.executescript("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;" + schema)
        self.chunk = chunk
        self._pending: dict[str, list[tuple[Any, ...]]] = {}

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        rows = self._pending.setdefault(table, [])
        rows.append(row)
        if len(rows) >= self.chunk:
            self._write(table, rows)

    def add_all(self, table: str, rows: Iterable[tuple[Any, ...]]) -> None:
        for row in rows:
            self.add(table, row)

    def _write(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            self.db.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
            rows.clear()

    def flush(self) -> None:
        for table, rows in self._pending.items():
            self._write(table, rows)

    def execute(self, statement: str, parameters: Iterable[Any] = ()) -> sqlite3.Cursor:
        """A statement over everything added so far."""
        self.flush()
        return self.db.execute(statement, tuple(parameters))

    def close(self) -> None:
        self.db.close()
        self._folder.cleanup()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
