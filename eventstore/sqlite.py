"""The log on SQLite: one file, one writer at a time, positions and times set by that writer.

A write transaction starts with ``BEGIN IMMEDIATE``, so writers queue on SQLite's
lock; inside it the writer reads the last position and recorded time, takes the
next positions and one recorded time for the whole transaction (now, or the last
recorded time if the clock went back), computes each entry's leaf hash and
inserts. Triggers refuse UPDATE and DELETE, and refuse an INSERT that does not
take the next position, goes back in time or reuses an aggregate version — which
also stops ``INSERT OR REPLACE``. SQLite has no roles: whoever can write the
file can drop triggers; ``ledger audit verify`` and signed checkpoints are what
catch that (docs/audit.md).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    OperationalError,
    PersistenceError,
)
from eventsourcing.sqlite import SQLiteDatastore

from eventstore.canonical import entry_bytes, entry_metadata, format_time, leaf_hash, parse_time
from eventstore.log import FORMAT, LogEntry, LogFormatError, PendingEntry, StoreBusy, StoreReadOnly

LOG, REFS, TREE, META = "ledger_log", "ledger_refs", "ledger_tree", "ledger_meta"
_COLUMNS = ("position, recorded_at, aggregate_id, aggregate_version, event, event_version, data, "
            "metadata, leaf")

SCHEMA = [
    f"""CREATE TABLE IF NOT EXISTS {LOG} (
        position INTEGER PRIMARY KEY,
        recorded_at TEXT NOT NULL,
        aggregate_id TEXT NOT NULL,
        aggregate_version INTEGER NOT NULL,
        event TEXT NOT NULL,
        event_version INTEGER NOT NULL,
        data BLOB NOT NULL,
        metadata BLOB NOT NULL,
        leaf BLOB NOT NULL,
        UNIQUE (aggregate_id, aggregate_version))""",
    f"CREATE TABLE IF NOT EXISTS {REFS} (ref TEXT NOT NULL, position INTEGER NOT NULL, "
    "PRIMARY KEY (ref, position)) WITHOUT ROWID",
    f"CREATE TABLE IF NOT EXISTS {TREE} (level INTEGER NOT NULL, idx INTEGER NOT NULL, "
    "hash BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID",
    f"CREATE TABLE IF NOT EXISTS {META} (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    f"INSERT OR IGNORE INTO {META} VALUES ('format', '{FORMAT}')",
    *(f"CREATE TRIGGER IF NOT EXISTS ledger_log_no_{op.lower()} BEFORE {op} ON {LOG} "
      f"BEGIN SELECT RAISE(ABORT, 'the ledger history is append-only: {op} refused'); END"
      for op in ("UPDATE", "DELETE")),
    f"""CREATE TRIGGER IF NOT EXISTS ledger_log_append BEFORE INSERT ON {LOG} BEGIN
        SELECT RAISE(ABORT, 'the ledger history is append-only: an entry takes the next position')
         WHERE NEW.position IS NOT (SELECT coalesce(max(position), 0) + 1 FROM {LOG});
        SELECT RAISE(ABORT, 'the ledger history is append-only: recorded times never go back')
         WHERE NEW.recorded_at < (SELECT recorded_at FROM {LOG} ORDER BY position DESC LIMIT 1);
        SELECT RAISE(ABORT, 'the ledger history is append-only: this version is already recorded')
         WHERE EXISTS (SELECT 1 FROM {LOG} WHERE aggregate_id = NEW.aggregate_id
                       AND aggregate_version = NEW.aggregate_version);
    END""",
]
TRIGGERS = ("ledger_log_append", "ledger_log_no_delete", "ledger_log_no_update")


def _error(error: sqlite3.Error) -> PersistenceError:
    text = str(error)
    if "readonly" in text or "read-only" in text:
        return StoreReadOnly(text)
    if "locked" in text or "busy" in text:
        return StoreBusy(text)
    if isinstance(error, sqlite3.IntegrityError):
        return IntegrityError(error)
    if isinstance(error, sqlite3.OperationalError):
        return OperationalError(error)
    return PersistenceError(error)


def _entry(row: Sequence[Any]) -> LogEntry:
    # The aggregate id stays text: the mapper makes a UUID only of the entries it decodes.
    return LogEntry(id=row[0], recorded_at_text=row[1], originator_id=row[2],
                    originator_version=row[3], topic=row[4], event_version=row[5], state=row[6],
                    metadata=row[7], leaf=row[8])


def _of_events(events: Iterable[str], upto: int | None) -> tuple[str, list[Any]]:
    """The WHERE clause (and its parameters) of a scan of some events up to a position."""
    names = sorted(events)
    clause, params = f"event IN ({','.join('?' * len(names))})", list(names)
    if upto is not None:
        clause, params = clause + " AND position <= ?", [*params, upto]
    return clause, params


def _select_aggregates(cursor: sqlite3.Cursor, ids: Sequence[UUID | str],
                       upto: int | None = None) -> list[LogEntry]:
    """The entries of several aggregates in (aggregate, version) order, 500 ids per query:
    for the log's readers and for a write session alike."""
    found: list[LogEntry] = []
    for start in range(0, len(ids), 500):
        chunk: list[Any] = [str(i) for i in ids[start:start + 500]]
        statement = (f"SELECT {_COLUMNS} FROM {LOG} WHERE aggregate_id IN "
                     f"({','.join('?' * len(chunk))})")
        if upto is not None:
            statement += " AND position <= ?"
            chunk.append(upto)
        found += map(_entry, cursor.execute(
            statement + " ORDER BY aggregate_id, aggregate_version", chunk))
    return found


class SQLiteLog(ApplicationRecorder):
    """The ledger's log in a SQLite file (the library's datastore gives the connections)."""

    kind = "sqlite"

    def __init__(self, datastore: SQLiteDatastore) -> None:
        self.datastore = datastore

    # Set-up ----------------------------------------------------------------------------------

    def create_tables(self) -> None:
        with self._writing() as cursor:
            for statement in SCHEMA:
                cursor.execute(statement)

    def check_format(self) -> bool:
        """Refuse a file written in another layout, with a message saying what to do.
        ``False`` if the file has no log yet."""
        with self._reading() as cursor:
            tables = {row[0] for row in cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if LOG not in tables:
                if "stored_events" in tables:
                    raise LogFormatError(
                        "this store was written by a version of the ledger without the provable "
                        "log (table stored_events): its history cannot be read by this version; "
                        "re-import its command files into a new store")
                others = sorted(name for name in tables if not name.startswith("sqlite_"))
                if others:  # another application's database: never add the ledger's tables
                    raise LogFormatError(
                        "this file is not a ledger store: it is another SQLite database (tables "
                        f"{', '.join(others[:5])}{' …' if len(others) > 5 else ''}); check --store")
                return False
            row = cursor.execute(f"SELECT value FROM {META} WHERE key = 'format'").fetchone()
        if row is None or row[0] != FORMAT:
            raise LogFormatError(f"this store's log format is {row[0] if row else 'unknown'}; "
                                 f"this version of the ledger reads format {FORMAT}")
        return True

    def missing_triggers(self) -> set[str]:
        return set(TRIGGERS) - set(self.triggers())

    def triggers(self) -> list[str]:
        with self._reading() as cursor:
            return [row[0] for row in cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? "
                "ORDER BY name", (LOG,))]

    # Connections -----------------------------------------------------------------------------

    class _Transaction:
        def __init__(self, log: SQLiteLog, begin: str, commit: bool) -> None:
            self.log, self.begin, self.commit = log, begin, commit

        def __enter__(self) -> sqlite3.Cursor:
            self._context = self.log.datastore.get_connection(commit=self.commit)
            connection = self._context.__enter__()
            self._raw = connection._sqlite_conn  # the library's wrapper keeps the sqlite3 one
            try:
                self._raw.execute(self.begin)
            except sqlite3.Error as error:
                self._context.__exit__(None, None, None)
                raise _error(error) from None
            return self._raw.cursor()

        def __exit__(self, exc_type, exc, tb) -> None:
            try:
                if exc_type is None and self.commit:
                    try:
                        self._raw.execute("COMMIT")
                    except sqlite3.Error as error:
                        self._raw.execute("ROLLBACK")
                        raise _error(error) from None
                else:
                    self._raw.execute("ROLLBACK")
            finally:
                self._context.__exit__(None, None, None)
            if isinstance(exc, sqlite3.Error):
                raise _error(exc) from None

    def _writing(self) -> SQLiteLog._Transaction:
        return self._Transaction(self, "BEGIN IMMEDIATE", commit=True)

    def _reading(self) -> SQLiteLog._Transaction:
        return self._Transaction(self, "BEGIN", commit=False)

    # Appending -------------------------------------------------------------------------------

    def session(self) -> SQLiteSession:
        """One write transaction: appends and reads on one connection, committed at the end
        (rolled back if anything fails). Writers queue on SQLite's lock."""
        return SQLiteSession(self)

    def insert_events(self, stored_events: Sequence[PendingEntry], *,
                      metadata: dict[str, Any] | None = None,
                      event_metadata: dict[tuple[UUID, int], dict[str, Any]] | None = None,
                      **_: Any) -> Sequence[int]:
        """Append the events in one transaction; returns their positions."""
        with self.session() as session:
            return session.append(stored_events, metadata, event_metadata)

    # Reading ---------------------------------------------------------------------------------

    def select_events(self, originator_id: UUID | str, *, gt: int | None = None,
                      lte: int | None = None, desc: bool = False, limit: int | None = None,
                      upto: int | None = None) -> Sequence[LogEntry]:
        """One aggregate's entries in version order; ``upto``: only positions ≤ it."""
        statement = f"SELECT {_COLUMNS} FROM {LOG} WHERE aggregate_id = ?"
        params: list[Any] = [str(originator_id)]
        for clause, value in (("aggregate_version > ?", gt), ("aggregate_version <= ?", lte),
                              ("position <= ?", upto)):
            if value is not None:
                statement += f" AND {clause}"
                params.append(value)
        statement += " ORDER BY aggregate_version" + (" DESC" if desc else "")
        if limit is not None:
            statement += " LIMIT ?"
            params.append(limit)
        with self._reading() as cursor:
            return [_entry(row) for row in cursor.execute(statement, params)]

    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Sequence[str] = (), *, inclusive_of_start: bool = True
                             ) -> Sequence[LogEntry]:
        statement = f"SELECT {_COLUMNS} FROM {LOG} WHERE 1 = 1"
        params: list[Any] = []
        if start is not None:
            statement += " AND position >= ?" if inclusive_of_start else " AND position > ?"
            params.append(start)
        if stop is not None:
            statement += " AND position <= ?"
            params.append(stop)
        if topics:
            statement += f" AND event IN ({','.join('?' * len(topics))})"
            params += list(topics)
        statement += " ORDER BY position LIMIT ?"
        params.append(limit)
        with self._reading() as cursor:
            return [_entry(row) for row in cursor.execute(statement, params)]

    def max_notification_id(self) -> int:
        with self._reading() as cursor:
            return cursor.execute(f"SELECT coalesce(max(position), 0) FROM {LOG}").fetchone()[0]

    def subscribe(self, gt: int | None = None, topics: Sequence[str] = ()) -> Any:
        raise NotImplementedError("the ledger's SQLite log has no subscriptions")

    def entry(self, position: int) -> LogEntry | None:
        with self._reading() as cursor:
            row = cursor.execute(f"SELECT {_COLUMNS} FROM {LOG} WHERE position = ?",
                                 (position,)).fetchone()
        return _entry(row) if row else None

    def entries(self, positions: Sequence[int]) -> dict[int, LogEntry]:
        """The entries at several positions, in one read (those that exist)."""
        found: dict[int, LogEntry] = {}
        with self._reading() as cursor:
            for start in range(0, len(positions), 500):
                chunk = list(positions[start:start + 500])
                for row in cursor.execute(f"SELECT {_COLUMNS} FROM {LOG} WHERE position IN "
                                          f"({','.join('?' * len(chunk))})", chunk):
                    entry = _entry(row)
                    found[entry.id] = entry
        return found

    def recorded_at(self, position: int) -> datetime | None:
        with self._reading() as cursor:
            row = cursor.execute(f"SELECT recorded_at FROM {LOG} WHERE position = ?",
                                 (position,)).fetchone()
        return parse_time(row[0]) if row else None

    def scan(self, start: int = 1, upto: int | None = None, events: Iterable[str] | None = None
             ) -> Iterator[LogEntry]:
        """Entries in position order, streamed (one read transaction)."""
        statement = f"SELECT {_COLUMNS} FROM {LOG} WHERE position >= ?"
        params: list[Any] = [start]
        if upto is not None:
            statement += " AND position <= ?"
            params.append(upto)
        if events is not None:
            names = sorted(events)
            statement += f" AND event IN ({','.join('?' * len(names))})"
            params += names
        with self._reading() as cursor:
            for row in cursor.execute(statement + " ORDER BY position", params):
                yield _entry(row)

    def scan_by_aggregate(self, events: Iterable[str], upto: int | None = None
                          ) -> Iterator[LogEntry]:
        """Entries of the given events ordered by (aggregate, version): one aggregate after
        another, so that a replay holds one aggregate at a time."""
        clause, params = _of_events(events, upto)
        with self._reading() as cursor:
            for row in cursor.execute(f"SELECT {_COLUMNS} FROM {LOG} WHERE {clause} "
                                      "ORDER BY aggregate_id, aggregate_version", params):
                yield _entry(row)

    def scan_data(self, events: Iterable[str], upto: int | None = None
                  ) -> Iterator[tuple[int, str, str, int, bytes]]:
        """``(position, aggregate id, event, event version, data)`` of the entries of
        ``events``, in position order: a scan for one field of many entries, without building
        whole entries."""
        clause, params = _of_events(events, upto)
        with self._reading() as cursor:
            yield from cursor.execute(
                "SELECT position, aggregate_id, event, event_version, data FROM "
                f"{LOG} WHERE {clause} ORDER BY position", params)

    def select_aggregates(self, ids: Sequence[UUID | str], upto: int | None = None
                          ) -> list[LogEntry]:
        """The entries of several aggregates, ordered by (aggregate, version), in one read:
        a replay that needs its aggregates in an order of its own fetches them in batches."""
        with self._reading() as cursor:
            return _select_aggregates(cursor, ids, upto)

    def positions_of(self, ref: str, upto: int | None = None) -> list[int]:
        statement = f"SELECT position FROM {REFS} WHERE ref = ?"
        params: list[Any] = [ref]
        if upto is not None:
            statement += " AND position <= ?"
            params.append(upto)
        with self._reading() as cursor:
            return [row[0] for row in cursor.execute(statement + " ORDER BY position", params)]

    def leaves(self, lo: int, hi: int) -> list[bytes]:
        """Stored leaf hashes of tree indices ``[lo, hi)`` (positions lo + 1 … hi)."""
        with self._reading() as cursor:
            return [row[0] for row in cursor.execute(
                f"SELECT leaf FROM {LOG} WHERE position > ? AND position <= ? ORDER BY position",
                (lo, hi))]

    # The tree's node cache (not part of the history: recomputed and checked on use) ---------

    def tree_nodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        found: dict[tuple[int, int], bytes] = {}
        with self._reading() as cursor:
            for level, index in keys:
                row = cursor.execute(f"SELECT hash FROM {TREE} WHERE level = ? AND idx = ?",
                                     (level, index)).fetchone()
                if row:
                    found[(level, index)] = row[0]
        return found

    def put_tree_nodes(self, nodes: dict[tuple[int, int], bytes]) -> None:
        if not nodes:
            return
        with self._writing() as cursor:
            cursor.executemany(f"INSERT OR IGNORE INTO {TREE} VALUES (?, ?, ?)",
                               [(level, index, h) for (level, index), h in nodes.items()])

    def checkpoint_wal(self, appended: int = 0) -> None:
        """Fold the write-ahead log back into the file (readers of a large WAL use more memory)."""
        with self.datastore.get_connection(commit=True) as connection:
            connection._sqlite_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def settings(self) -> dict[str, str]:
        with self._reading() as cursor:
            journal = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            synchronous = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[
                cursor.execute("PRAGMA synchronous").fetchone()[0]]
        return {"journal_mode": journal, "synchronous": synchronous}


class SQLiteSession:
    """A write transaction on the SQLite log (``BEGIN IMMEDIATE``: the writers' lock is taken
    first, so positions and the recorded time read at the start stay the log's own)."""

    def __init__(self, log: SQLiteLog) -> None:
        self.log = log
        self._transaction = log._writing()
        self._position = 0
        self._recorded_at = ""

    def __enter__(self) -> SQLiteSession:
        self.cursor = self._transaction.__enter__()
        last = self.cursor.execute(f"SELECT position, recorded_at FROM {LOG} "
                                   "ORDER BY position DESC LIMIT 1").fetchone()
        self._position, last_time = (last[0], last[1]) if last else (0, "")
        # One recorded time for the whole transaction, read once the lock is held; never
        # before the last entry's, whatever the clock says.
        self._recorded_at = max(format_time(datetime.now(UTC)), last_time)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._transaction.__exit__(exc_type, exc, tb)

    def append(self, stored_events: Sequence[PendingEntry],
               metadata: dict[str, Any] | None = None,
               event_metadata: dict[tuple[UUID, int], dict[str, Any]] | None = None
               ) -> list[int]:
        metadata_of = entry_metadata(metadata or {}, event_metadata or {})
        recorded_at = self._recorded_at
        rows, refs, positions = [], [], []
        position = self._position
        for stored in stored_events:
            position += 1
            aggregate = str(stored.originator_id)
            meta = metadata_of(stored)
            leaf = leaf_hash(entry_bytes(
                position=position, recorded_at=recorded_at, aggregate_id=aggregate,
                aggregate_version=stored.originator_version, event=stored.topic,
                event_version=stored.event_version, data=stored.state, metadata=meta))
            rows.append((position, recorded_at, aggregate, stored.originator_version,
                         stored.topic, stored.event_version, stored.state, meta, leaf))
            refs += [(ref, position) for ref in stored.refs]
            positions.append(position)
        try:
            self.cursor.executemany(f"INSERT INTO {LOG} ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
                                    rows)
            self.cursor.executemany(f"INSERT OR IGNORE INTO {REFS} VALUES (?, ?)", refs)
        except sqlite3.Error as error:
            raise _error(error) from None
        self._position = position
        return positions

    # Reads within the transaction see its own appends.

    def select_events(self, originator_id: UUID | str) -> list[LogEntry]:
        return [_entry(row) for row in self.cursor.execute(
            f"SELECT {_COLUMNS} FROM {LOG} WHERE aggregate_id = ? ORDER BY aggregate_version",
            (str(originator_id),))]

    def positions_of(self, ref: str) -> list[int]:
        return [row[0] for row in self.cursor.execute(
            f"SELECT position FROM {REFS} WHERE ref = ? ORDER BY position", (ref,))]

    def known_refs(self, refs: list[str]) -> set[str]:
        """Which of ``refs`` the index holds, as this transaction sees it."""
        found: set[str] = set()
        for start in range(0, len(refs), 500):
            chunk = refs[start:start + 500]
            found |= {row[0] for row in self.cursor.execute(
                f"SELECT DISTINCT ref FROM {REFS} WHERE ref IN ({','.join('?' * len(chunk))})",
                chunk)}
        return found

    def select_aggregates(self, ids: list[UUID]) -> list[LogEntry]:
        """The entries of several aggregates, by (aggregate, version), as this transaction
        sees them."""
        return _select_aggregates(self.cursor, ids)

    def entry(self, position: int) -> LogEntry | None:
        row = self.cursor.execute(f"SELECT {_COLUMNS} FROM {LOG} WHERE position = ?",
                                  (position,)).fetchone()
        return _entry(row) if row else None
