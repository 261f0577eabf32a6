"""The log on PostgreSQL: one schema per operator; the database sets position, time and leaf.

``ledger db init`` (as an administrator; :mod:`eventstore.postgres_schema`) creates, in the
operator's schema:

- ``ledger_log``, whose BEFORE INSERT trigger ``ledger_assign`` takes the writers'
  lock, then sets the entry's position (the last + 1), its recorded time (the
  database clock when the transaction first appends, never before the last
  entry's; every entry of one transaction gets the same time) and its leaf hash,
  computed in SQL from the same canonical bytes as ``eventstore.canonical``;
  whatever the inserting client wrote in those columns is overwritten;
- triggers refusing UPDATE, DELETE and TRUNCATE for every role, all ``ENABLE
  ALWAYS`` so that ``session_replication_role = replica`` does not switch them off;
- ``ledger_append(…)``, a SECURITY DEFINER function: the writer role's only way to
  add entries. The writer role may read the log but not INSERT into it.

What remains possible, and how it is caught, is in docs/audit.md: a superuser can
disable triggers or rewrite rows; ``ledger audit verify`` recomputes every leaf and
checks the tree against the signed checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder
from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Identifier

from eventstore.canonical import entry_metadata, format_time
from eventstore.log import FORMAT, LogEntry, LogFormatError, PendingEntry, StoreBusy, StoreReadOnly
from eventstore.postgres_schema import (
    LOG,
    META,
    REFS,
    TREE,
)

_COLUMNS = SQL("position, recorded_at, aggregate_id, aggregate_version, event, event_version, "
               "data, metadata, leaf")


def _select_aggregates(log: Any, ids: Sequence[UUID | str], upto: int | None = None
                       ) -> tuple[SQL, list[Any]]:
    """The query (and its parameters) of several aggregates' entries in (aggregate, version)
    order: for the log's readers and for a write session alike."""
    parts = [SQL("SELECT {0} FROM {1} WHERE aggregate_id = ANY(%s)").format(_COLUMNS, log)]
    params: list[Any] = [[i if isinstance(i, UUID) else UUID(str(i)) for i in ids]]
    if upto is not None:
        parts.append(SQL(" AND position <= %s"))
        params.append(upto)
    parts.append(SQL(" ORDER BY aggregate_id, aggregate_version"))
    return SQL("").join(parts), params


def _entry(row: dict[str, Any]) -> LogEntry:
    return LogEntry(id=row["position"], recorded_at_text=format_time(row["recorded_at"]),
                    originator_id=str(row["aggregate_id"]),
                    originator_version=row["aggregate_version"],
                    topic=row["event"], event_version=row["event_version"],
                    state=bytes(row["data"]), metadata=bytes(row["metadata"]),
                    leaf=bytes(row["leaf"]))


class PostgresLog(ApplicationRecorder):
    """The ledger's log in one operator's PostgreSQL schema."""

    kind = "postgres"
    #: Events per call of ledger_append. One call for a whole 73 000-event import kept the
    #: transaction idle on the server while the client adapted the parameters for too long.
    INSERT_CHUNK = 5_000

    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore
        self.schema = datastore.schema
        s = Identifier(self.schema)
        self._log = SQL("{0}.{1}").format(s, Identifier(LOG))
        self._refs = SQL("{0}.{1}").format(s, Identifier(REFS))
        self._tree = SQL("{0}.{1}").format(s, Identifier(TREE))
        self._meta = SQL("{0}.{1}").format(s, Identifier(META))
        self._append = SQL("SELECT {0}.ledger_append(%s, %s, %s, %s, %s, %s, %s, %s) AS first"
                           ).format(s)

    def check_format(self) -> None:
        with self.datastore.get_connection() as conn:
            tables = {row["tablename"] for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (self.schema,))}
            if LOG not in tables:
                if tables:
                    raise LogFormatError(
                        f"schema {self.schema} was set up by a version of the ledger without the "
                        "provable log: create a new operator schema with `ledger db init` and "
                        "re-import its command files")
                raise LogFormatError(
                    f"schema {self.schema} is not initialised: run `ledger db init` with an "
                    "administrator's URL and the same --operator first")
            row = conn.execute(SQL("SELECT value FROM {0} WHERE key = 'format'").format(
                self._meta)).fetchone()
        if row is None or row["value"] != FORMAT:
            raise LogFormatError(f"this store's log format is {row['value'] if row else 'unknown'}"
                                 f"; this version of the ledger reads format {FORMAT}")

    def triggers(self) -> list[str]:
        with self.datastore.get_connection() as conn:
            rows = conn.execute(
                "SELECT tgname, tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND "
                "c.relname = %s AND NOT t.tgisinternal ORDER BY tgname",
                (self.schema, LOG)).fetchall()
        return [row["tgname"] + ("" if row["tgenabled"] == "A" else " (not ALWAYS)")
                for row in rows]

    # Appending -------------------------------------------------------------------------------

    def session(self) -> PostgresSession:
        """One write transaction: appends (through ledger_append) and reads on one connection,
        committed at the end, rolled back if anything fails."""
        return PostgresSession(self)

    def insert_events(self, stored_events: Sequence[PendingEntry], *,
                      metadata: dict[str, Any] | None = None,
                      event_metadata: dict[tuple[UUID, int], dict[str, Any]] | None = None,
                      **_: Any) -> Sequence[int]:
        with self.session() as session:
            return session.append(stored_events, metadata, event_metadata)

    # Reading ---------------------------------------------------------------------------------

    def _rows(self, statement: SQL, params: Sequence[Any]) -> list[LogEntry]:
        with self.datastore.get_connection() as conn:
            return [_entry(row) for row in conn.execute(statement, params).fetchall()]

    def select_events(self, originator_id: UUID | str, *, gt: int | None = None,
                      lte: int | None = None, desc: bool = False, limit: int | None = None,
                      upto: int | None = None) -> Sequence[LogEntry]:
        parts = [SQL("SELECT {0} FROM {1} WHERE aggregate_id = %s").format(_COLUMNS, self._log)]
        params: list[Any] = [originator_id]
        for clause, value in (("aggregate_version > %s", gt), ("aggregate_version <= %s", lte),
                              ("position <= %s", upto)):
            if value is not None:
                parts.append(SQL(" AND " + clause))
                params.append(value)
        parts.append(SQL(" ORDER BY aggregate_version DESC" if desc
                         else " ORDER BY aggregate_version"))
        if limit is not None:
            parts.append(SQL(" LIMIT %s"))
            params.append(limit)
        return self._rows(SQL("").join(parts), params)

    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Sequence[str] = (), *, inclusive_of_start: bool = True
                             ) -> Sequence[LogEntry]:
        parts = [SQL("SELECT {0} FROM {1} WHERE true").format(_COLUMNS, self._log)]
        params: list[Any] = []
        if start is not None:
            parts.append(SQL(" AND position >= %s" if inclusive_of_start
                             else " AND position > %s"))
            params.append(start)
        if stop is not None:
            parts.append(SQL(" AND position <= %s"))
            params.append(stop)
        if topics:
            parts.append(SQL(" AND event = ANY(%s)"))
            params.append(list(topics))
        parts.append(SQL(" ORDER BY position LIMIT %s"))
        params.append(limit)
        return self._rows(SQL("").join(parts), params)

    def max_notification_id(self) -> int:
        with self.datastore.get_connection() as conn:
            row = conn.execute(SQL("SELECT coalesce(max(position), 0) AS last FROM {0}").format(
                self._log)).fetchone()
        return row["last"]

    def subscribe(self, gt: int | None = None, topics: Sequence[str] = ()) -> Any:
        raise NotImplementedError("the ledger reads its log by position, without subscriptions")

    def entry(self, position: int) -> LogEntry | None:
        rows = self._rows(SQL("SELECT {0} FROM {1} WHERE position = %s").format(
            _COLUMNS, self._log), [position])
        return rows[0] if rows else None

    def entries(self, positions: Sequence[int]) -> dict[int, LogEntry]:
        """The entries at several positions, in one read (those that exist)."""
        rows = self._rows(SQL("SELECT {0} FROM {1} WHERE position = ANY(%s)").format(
            _COLUMNS, self._log), [list(positions)])
        return {entry.id: entry for entry in rows}

    def recorded_at(self, position: int) -> datetime | None:
        with self.datastore.get_connection() as conn:
            row = conn.execute(SQL("SELECT recorded_at FROM {0} WHERE position = %s").format(
                self._log), (position,)).fetchone()
        return row["recorded_at"].astimezone(UTC) if row else None

    def _stream(self, statement: SQL, params: Sequence[Any]) -> Iterator[LogEntry]:
        with self.datastore.get_connection() as conn, conn.transaction(), \
                conn.cursor(name="ledger_scan") as cursor:
            cursor.itersize = 5_000
            cursor.execute(statement, params)
            for row in cursor:
                yield _entry(row)

    def scan(self, start: int = 1, upto: int | None = None, events: Iterable[str] | None = None
             ) -> Iterator[LogEntry]:
        parts = [SQL("SELECT {0} FROM {1} WHERE position >= %s").format(_COLUMNS, self._log)]
        params: list[Any] = [start]
        if upto is not None:
            parts.append(SQL(" AND position <= %s"))
            params.append(upto)
        if events is not None:
            parts.append(SQL(" AND event = ANY(%s)"))
            params.append(sorted(events))
        parts.append(SQL(" ORDER BY position"))
        return self._stream(SQL("").join(parts), params)

    def scan_by_aggregate(self, events: Iterable[str], upto: int | None = None
                          ) -> Iterator[LogEntry]:
        parts = [SQL("SELECT {0} FROM {1} WHERE event = ANY(%s)").format(_COLUMNS, self._log)]
        params: list[Any] = [sorted(events)]
        if upto is not None:
            parts.append(SQL(" AND position <= %s"))
            params.append(upto)
        parts.append(SQL(" ORDER BY aggregate_id, aggregate_version"))
        return self._stream(SQL("").join(parts), params)

    def scan_data(self, events: Iterable[str], upto: int | None = None
                  ) -> Iterator[tuple[int, str, str, int, bytes]]:
        """``(position, aggregate id, event, event version, data)`` of the entries of
        ``events``, in position order, streamed."""
        parts = [SQL("SELECT position, aggregate_id, event, event_version, data FROM {0} "
                     "WHERE event = ANY(%s)").format(self._log)]
        params: list[Any] = [sorted(events)]
        if upto is not None:
            parts.append(SQL(" AND position <= %s"))
            params.append(upto)
        parts.append(SQL(" ORDER BY position"))
        with self.datastore.get_connection() as conn, conn.transaction(), \
                conn.cursor(name="ledger_scan_data") as cursor:
            cursor.itersize = 5_000
            cursor.execute(SQL("").join(parts), params)
            for row in cursor:
                yield (row["position"], str(row["aggregate_id"]), row["event"],
                       row["event_version"], bytes(row["data"]))

    def select_aggregates(self, ids: Sequence[UUID | str], upto: int | None = None
                          ) -> list[LogEntry]:
        """The entries of several aggregates, ordered by (aggregate, version), in one read."""
        return self._rows(*_select_aggregates(self._log, ids, upto))

    def positions_of(self, ref: str, upto: int | None = None) -> list[int]:
        parts = [SQL("SELECT position FROM {0} WHERE ref = %s").format(self._refs)]
        params: list[Any] = [ref]
        if upto is not None:
            parts.append(SQL(" AND position <= %s"))
            params.append(upto)
        parts.append(SQL(" ORDER BY position"))
        with self.datastore.get_connection() as conn:
            return [row["position"] for row in
                    conn.execute(SQL("").join(parts), params).fetchall()]

    def leaves(self, lo: int, hi: int) -> list[bytes]:
        with self.datastore.get_connection() as conn:
            rows = conn.execute(SQL("SELECT leaf FROM {0} WHERE position > %s AND position <= %s "
                                    "ORDER BY position").format(self._log), (lo, hi)).fetchall()
        return [bytes(row["leaf"]) for row in rows]

    def tree_nodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        if not keys:
            return {}
        with self.datastore.get_connection() as conn:
            rows = conn.execute(
                SQL("SELECT t.level, t.idx, t.hash FROM {0} t JOIN unnest(%s::integer[], "
                    "%s::bigint[]) AS k(level, idx) ON t.level = k.level AND t.idx = k.idx"
                    ).format(self._tree),
                ([k[0] for k in keys], [k[1] for k in keys])).fetchall()
        return {(row["level"], row["idx"]): bytes(row["hash"]) for row in rows}

    def put_tree_nodes(self, nodes: dict[tuple[int, int], bytes]) -> None:
        if not nodes:
            return
        items = list(nodes.items())
        with self.datastore.get_connection() as conn, conn.transaction():
            conn.execute(
                SQL("INSERT INTO {0} (level, idx, hash) SELECT * FROM unnest(%s::integer[], "
                    "%s::bigint[], %s::bytea[]) ON CONFLICT DO NOTHING").format(self._tree),
                ([k[0] for k, _ in items], [k[1] for k, _ in items], [h for _, h in items]))

    #: Analyze once this share of the log has been appended since the last time (autovacuum's
    #: default threshold, but at once rather than up to a minute later).
    ANALYZE_SHARE = 0.1
    ANALYZE_MINIMUM = 10_000

    def checkpoint_wal(self, appended: int = 0) -> None:
        """After a large write: refresh the planner's statistics once a tenth of the log is new.

        Measured (docs/performance.md): right after importing and billing 100 k events, reads of
        one customer took 9× longer until autovacuum had analyzed the tables, because the
        planner still saw the small log of before. ``ledger_analyze`` runs as the schema's owner;
        a store set up by an earlier version has none until ``ledger db init`` runs again, and
        is left to autovacuum."""
        from eventsourcing.persistence import ProgrammingError

        self._appended_since_analyze = getattr(self, "_appended_since_analyze", 0) + appended
        if self._appended_since_analyze < max(self.ANALYZE_MINIMUM,
                                              self.ANALYZE_SHARE * self.max_notification_id()):
            return
        try:
            with self.datastore.get_connection() as conn, conn.transaction():
                conn.execute(SQL("SELECT {0}.ledger_analyze()").format(Identifier(self.schema)))
        except ProgrammingError as error:  # the library's wrapper of psycopg's UndefinedFunction
            if "ledger_analyze" not in str(error):
                raise
        self._appended_since_analyze = 0

    def settings(self) -> dict[str, str]:
        with self.datastore.get_connection() as conn:
            values = {name: str(conn.execute(f"SHOW {name}").fetchone()[name])
                      for name in ("server_version", "synchronous_commit", "fsync")}
            values["connected_as"] = str(conn.execute("SELECT current_user AS u").fetchone()["u"])
        return values


class PostgresSession:
    """A write transaction on one operator's log. The writers' lock is taken by the database
    on the first append and held until the end."""

    def __init__(self, log: PostgresLog) -> None:
        self.log = log

    def __enter__(self) -> PostgresSession:
        self._connection = self.log.datastore.get_connection()
        self.conn = self._connection.__enter__()
        self._transaction = self.conn.transaction()
        self._transaction.__enter__()
        self.conn.execute(SQL("SET LOCAL lock_timeout = '{0}s'").format(
            self.log.datastore.lock_timeout or 30))
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._transaction.__exit__(exc_type, exc, tb)
        finally:
            self._connection.__exit__(exc_type, exc, tb)

    def append(self, stored_events: Sequence[PendingEntry],
               metadata: dict[str, Any] | None = None,
               event_metadata: dict[tuple[UUID, int], dict[str, Any]] | None = None
               ) -> list[int]:
        metadata_of = entry_metadata(metadata or {}, event_metadata or {})
        positions: list[int] = []
        for start in range(0, len(stored_events), self.log.INSERT_CHUNK):
            chunk = stored_events[start:start + self.log.INSERT_CHUNK]
            refs, items, metas = [], [], []
            for number, stored in enumerate(chunk, start=1):
                refs += stored.refs
                items += [number] * len(stored.refs)
                metas.append(metadata_of(stored))
            try:
                first = self.conn.execute(self.log._append, (
                    [s.originator_id for s in chunk], [s.originator_version for s in chunk],
                    [s.topic for s in chunk], [s.event_version for s in chunk],
                    [s.state for s in chunk], metas, refs, items)).fetchone()["first"]
            except Exception as error:
                raise _translated(error) from None
            positions += range(first, first + len(chunk))
        return positions

    def select_events(self, originator_id: UUID | str) -> list[LogEntry]:
        return [_entry(row) for row in self.conn.execute(
            SQL("SELECT {0} FROM {1} WHERE aggregate_id = %s ORDER BY aggregate_version").format(
                _COLUMNS, self.log._log), (originator_id,)).fetchall()]

    def positions_of(self, ref: str) -> list[int]:
        return [row["position"] for row in self.conn.execute(
            SQL("SELECT position FROM {0} WHERE ref = %s ORDER BY position").format(
                self.log._refs), (ref,)).fetchall()]

    def known_refs(self, refs: list[str]) -> set[str]:
        """Which of ``refs`` the index holds, as this transaction sees it (one round trip)."""
        if not refs:
            return set()
        return {row["ref"] for row in self.conn.execute(
            SQL("SELECT DISTINCT ref FROM {0} WHERE ref = ANY(%s)").format(self.log._refs),
            (refs,)).fetchall()}

    def select_aggregates(self, ids: list[UUID]) -> list[LogEntry]:
        """The entries of several aggregates, by (aggregate, version), as this transaction
        sees them (one round trip)."""
        if not ids:
            return []
        return [_entry(row) for row in self.conn.execute(
            *_select_aggregates(self.log._log, ids)).fetchall()]

    def entry(self, position: int) -> LogEntry | None:
        row = self.conn.execute(SQL("SELECT {0} FROM {1} WHERE position = %s").format(
            _COLUMNS, self.log._log), (position,)).fetchone()
        return _entry(row) if row else None


def _translated(error: Exception) -> Exception:
    """psycopg's errors for a busy or read-only store, as the ledger's; others unchanged."""
    import psycopg
    from eventsourcing.persistence import IntegrityError

    first_line = (str(error).splitlines() or [""])[0]  # without the server's CONTEXT lines
    if isinstance(error, psycopg.errors.LockNotAvailable):
        return StoreBusy(first_line)
    if isinstance(error, psycopg.errors.InsufficientPrivilege
                  | psycopg.errors.ReadOnlySqlTransaction):
        return StoreReadOnly(first_line)
    if isinstance(error, psycopg.IntegrityError):
        return IntegrityError(str(error))
    return error
