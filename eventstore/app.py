"""Opening a store, and the application that reads and appends the log: one write transaction
at a time (``session``), reads by position and by aggregate. Where a store lives — path or URL,
operator — is :mod:`eventstore.config`.
"""

from __future__ import annotations

import sqlite3
from bisect import bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from itertools import groupby
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import PersistenceError

from eventstore.config import (
    StoreConfig,
    lock_timeout,
    store_config,
)
from eventstore.log import LogEntry, LogFormatError, StoreBusy, StoreReadOnly
from eventstore.mapper import LogMapper
from ledger.errors import LedgerError, StoreError


class LedgerApplication(Application):
    """The ledger's log and repository. Commands append through it; projections read it."""

    name = "Ledger"
    log_section_size = 5_000
    #: After saving this many events at once on SQLite, fold the write-ahead log back into the
    #: database file: readers of a large unfolded WAL were measured using ten times the memory.
    CHECKPOINT_AFTER = 1_000

    #: How the store is named in messages (set by :func:`open_store`).
    description = "the store"

    def construct_mapper(self) -> LogMapper:
        return LogMapper()

    def construct_recorder(self) -> Any:
        datastore = self.factory.datastore  # type: ignore[attr-defined]
        if hasattr(datastore, "schema"):
            from eventstore.postgres import PostgresLog

            return PostgresLog(datastore)
        from eventstore.sqlite import SQLiteLog

        return SQLiteLog(datastore)

    @property
    def log(self) -> Any:  # the library's deprecated alias, reused for the ledger's log
        return self.recorder

    def save(self, *objs: Any, metadata: dict[str, Any] | None = None,
             event_metadata: dict[tuple[UUID, int], dict[str, Any]] | None = None,
             **_: Any) -> list[int]:
        """Append the aggregates' new events in one transaction, with who did it and from where
        (``metadata``; ``event_metadata`` adds fields to particular events). Returns their
        positions."""
        with self.session() as session:
            return session.save(*objs, metadata=metadata, event_metadata=event_metadata)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One write transaction: saves and reads (which see the saves) until it ends; committed
        then, or rolled back if anything failed. An import of any size is one session."""
        try:
            with self.recorder.session() as raw:
                session = Session(self, raw)
                yield session
        except StoreBusy:
            raise StoreError(
                f"{self.description} is busy: another process kept writing to it for more than "
                f"{lock_timeout()} s (the wait allowed, $LEDGER_LOCK_TIMEOUT); nothing was "
                "stored — try again once it has finished") from None
        except StoreReadOnly as error:
            raise StoreError(
                f"{self.description} cannot be written ({error}); nothing was stored — check "
                "the file's permissions, or use the operator's writer role") from None
        if session.appended >= self.CHECKPOINT_AFTER:
            self.recorder.checkpoint_wal(session.appended)

    # Reading by position -------------------------------------------------------------------

    def position(self) -> int:
        """The last position of the log (0 when it is empty)."""
        return self.recorder.max_notification_id()

    def position_at(self, moment: datetime) -> int:
        """The last position recorded at or before ``moment`` (0 if none).

        Recorded times never decrease along the log, so this is a binary search.
        """
        return bisect_right(range(self.position()), moment,
                            key=lambda index: self.recorder.recorded_at(index + 1))

    def events_of(self, aggregate_id: UUID, upto: int | None = None) -> list[Any]:
        """One aggregate's events, decoded, up to log position ``upto`` (all without it)."""
        return [self.mapper.to_domain_event(entry)
                for entry in self.recorder.select_events(aggregate_id, upto=upto)]

    def aggregate(self, aggregate_id: UUID, upto: int | None = None) -> Any:
        """An aggregate as it stood at position ``upto``; ``None`` if it did not exist then.

        Its entries are read and decoded a page at a time, each let go once applied: folding
        the invoicing aggregate (one entry per document ever issued) in lean mode
        (``ledger.invoicing.lean``) holds its numbering state, not its whole history."""
        return fold(map(self.mapper.to_domain_event, self.entries_of(aggregate_id, upto)))

    #: Entries per read when folding one aggregate.
    PAGE = 1000

    def entries_of(self, aggregate_id: UUID, upto: int | None = None) -> Iterator[LogEntry]:
        """One aggregate's entries in version order, up to position ``upto``, read a page at a
        time (``PAGE``): each page picks up after the last version of the one before."""
        after = None
        while True:
            page = self.recorder.select_events(aggregate_id, gt=after, upto=upto,
                                               limit=self.PAGE)
            yield from page
            if len(page) < self.PAGE:
                return
            after = page[-1].originator_version

    def scan(self, start: int = 1, upto: int | None = None, events=None) -> Iterator[LogEntry]:
        return self.recorder.scan(start, upto, events)


def fold(events: Any) -> Any:
    """Apply events in order to rebuild an aggregate (``None`` if there are none).

    Same as the library's ``project_aggregate`` without its runtime protocol check,
    which costs more than the fold itself on a full replay. An event that cannot be
    applied (a damaged log) is reported with its position, not as a traceback.
    """
    aggregate = None
    for event in events:
        try:
            aggregate = event.mutate(aggregate)
            # An aggregate that explains its figures notes which entry set which fact.
            note = getattr(aggregate, "note_entry", None)
            if note is not None:
                note(event)
        except LedgerError:
            raise
        except Exception as error:  # noqa: BLE001 - the library's assertions included
            position = getattr(event, "log_position", "?")
            raise LogFormatError(
                f"the entry at position {position} cannot be applied to its aggregate "
                f"({type(error).__name__}: {error}): the log is damaged — run "
                "`ledger audit verify`") from None
    return aggregate


class Session:
    """Saves and reads inside one write transaction (:meth:`LedgerApplication.session`)."""

    def __init__(self, app: LedgerApplication, raw: Any) -> None:
        self.app, self.raw, self.appended = app, raw, 0

    def save(self, *objs: Any, metadata: dict[str, Any] | None = None,
             event_metadata: dict[tuple[UUID, int], dict[str, Any]] | None = None) -> list[int]:
        # The library's save checks every object against a runtime protocol and builds a
        # notification per event; an import of a hundred thousand aggregates spent more time
        # in that than in writing, so the ledger collects the events itself.
        events = [event for aggregate in objs if aggregate is not None
                  for event in aggregate.collect_events()]
        if not events:
            return []
        to_entry = self.app.mapper.to_stored_event
        positions = self.raw.append([to_entry(event) for event in events], metadata or {},
                                    event_metadata or {})
        self.appended += len(positions)
        return positions

    def aggregate(self, aggregate_id: UUID) -> Any:
        """An aggregate as this transaction sees it (its own saves included)."""
        return fold(map(self.app.mapper.to_domain_event, self.raw.select_events(aggregate_id)))

    def aggregates(self, ids: list[UUID]) -> list[Any]:
        """The aggregates of ``ids`` that exist, as this transaction sees them, read in one
        query (those that do not exist are not in the list)."""
        decode = self.app.mapper.to_domain_event
        return [fold(map(decode, group)) for _, group in groupby(
            self.raw.select_aggregates(ids), key=lambda entry: entry.originator_id)]

    def positions_of(self, ref: str) -> list[int]:
        return self.raw.positions_of(ref)

    def known_refs(self, refs: list[str]) -> set[str]:
        return self.raw.known_refs(refs)

    def entry(self, position: int) -> LogEntry | None:
        return self.raw.entry(position)


def open_store(store: str | StoreConfig | None = None, operator: str | None = None, *,
               create: bool = True) -> LedgerApplication:
    """Open the store. A SQLite file is created on first use unless ``create`` is false;
    a PostgreSQL schema needs ``ledger db init`` first. A file that is not a ledger store
    (another application's SQLite database) is refused, never written to."""
    config = store if isinstance(store, StoreConfig) else store_config(store, operator)
    if config.kind == "sqlite":
        _check_sqlite_file(config, create)
    else:
        _check_postgres_connection(config)
    try:
        app = LedgerApplication(env=dict(config.env))
        app.description = f"store {config.description}"
        if config.kind == "sqlite":
            # Tables and triggers are (re)created only when missing: opening a store to read
            # it does not write to it.
            has_log = app.recorder.check_format()
            if not has_log and not create and _sqlite_file(config.location) is not None:
                # An SQLite database with no table at all (a fresh `sqlite3 FILE` one).
                raise StoreError(f"store {config.location} is not a ledger store: it has no "
                                 "ledger log (check --store, or create it with `ledger db init`)")
            if not has_log or app.recorder.missing_triggers():
                app.recorder.create_tables()
        else:
            # Each of the pool's connections gets the URL's parameters itself (never the
            # process's environment, which another store of the same process would share).
            app.recorder.datastore.pool.kwargs.update(config.parameters)
            app.recorder.check_format()
    except LedgerError as error:
        if isinstance(error, StoreError):
            raise
        raise StoreError(f"cannot open store {config.description}: {error}") from None
    except (PersistenceError, sqlite3.Error, OSError) as error:
        raise StoreError(f"cannot open store {config.description}: {_reason(error)}") from None
    except Exception as error:  # psycopg's own errors
        if type(error).__module__.startswith("psycopg"):
            raise StoreError(f"cannot open store {config.description}: {error}") from None
        raise
    return app


_SQLITE_HEADER = b"SQLite format 3\x00"


def _sqlite_file(location: str) -> Path | None:
    """The file a SQLite store names (``None``: in memory)."""
    if location == ":memory:":
        return None
    if location.startswith("file:"):
        parts = urlsplit(location)
        if parts.path in ("", ":memory:") or "mode=memory" in parts.query:
            return None
        return Path(unquote(parts.path)).expanduser()
    return Path(location)


def _check_sqlite_file(config: StoreConfig, create: bool) -> None:
    """Refuse, before anything touches it, a file that is not a ledger store: reads and writes
    alike, so that a mistyped --store naming another application's SQLite database never gets
    the ledger's tables (nor the write-ahead-log mode) added to it. A missing or 0-byte file
    is refused for reads; a write (``create``) makes it a new store."""
    path = _sqlite_file(config.location)
    if path is None:
        return
    missing = "(check --store, or create it with `ledger db init`)"
    try:
        size = path.stat().st_size if path.exists() else None
        if size is None or size == 0:
            if create or config.location.startswith("file:") and size is None:
                return  # a file: URI's own mode says whether it may be created
            state = "does not exist" if size is None else "is an empty file, not a ledger store"
            raise StoreError(f"store {config.location} {state} {missing}")
        with path.open("rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
    except OSError as error:
        raise StoreError(f"cannot open store {config.location}: {error.strerror or error}"
                         ) from None
    if header != _SQLITE_HEADER:
        raise StoreError(f"cannot open store {config.location}: the file is not a database "
                         "(not a SQLite file), so not a ledger store; check --store")
    from eventstore.sqlite import LOG

    tables = _sqlite_tables(path)
    if tables is None:
        return  # unreadable: the ledger's own opening names the error
    wal = path.with_name(path.name + "-wal")
    if not tables and not create and not (wal.exists() and wal.stat().st_size):
        # No table, and no write-ahead log that could hold some yet: an empty SQLite database.
        raise StoreError(f"store {config.location} is not a ledger store: it has no ledger log "
                         f"{missing}")
    if tables and LOG not in tables and "stored_events" not in tables:
        listed = ", ".join(sorted(tables)[:5]) + (" …" if len(tables) > 5 else "")
        raise StoreError(f"store {config.location} is not a ledger store: it is another SQLite "
                         f"database (tables {listed}); nothing was written to it — check --store")


def _sqlite_tables(path: Path) -> set[str] | None:
    """The tables of a SQLite file, read without writing anything, not even a lock or a
    write-ahead-log file (``immutable``). What is still only in the file's write-ahead log is
    not seen: the ledger's own check, once the file is open, sees it. ``None`` if the file
    cannot be read."""
    uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
    try:
        connection = sqlite3.connect(uri, uri=True)
        try:
            return {row[0] for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")
                if not row[0].startswith("sqlite_")}
        finally:
            connection.close()
    except sqlite3.Error:
        return None


def _check_postgres_connection(config: StoreConfig) -> None:
    """Connect once, directly, before the library's pool does: when the server cannot be
    reached (a wrong port, no such database, a refused password, a TLS mode the server cannot
    meet), the pool would only say "couldn't get a connection after 10.00 sec", after 10 s.
    libpq's own reason is reported at once instead."""
    import psycopg

    env = config.env
    parameters = {"connect_timeout": env["POSTGRES_CONNECT_TIMEOUT"], **config.parameters}
    try:
        psycopg.connect(dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"],
                        port=env["POSTGRES_PORT"], user=env["POSTGRES_USER"],
                        password=env["POSTGRES_PASSWORD"] or None, **parameters).close()
    except psycopg.Error as error:
        reason = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        raise StoreError(f"cannot open store {config.description}: {reason}") from None


def _reason(error: Exception) -> str:
    text = str(error)
    if "does not exist" in text and "schema" in text:
        return f"{text} — run `ledger db init` with an administrator's URL first"
    return text
