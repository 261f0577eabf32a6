"""Opening a store, and the application that reads and appends the log.

A store is named by a path (SQLite, the embedded default) or a
``postgresql://user@host:port/dbname`` URL. An operator (``--operator`` or
``$LEDGER_OPERATOR``) selects whose ledger it is: on PostgreSQL each operator's
log lives in its own schema, ``ledger_<operator>``; on SQLite in its own file,
``<name>.<operator>.sqlite3``. Operator names are checked against an
allow-list pattern before they reach any SQL.
"""

from __future__ import annotations

import os
import re
import sqlite3
from bisect import bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import UUID

import attrs
from eventsourcing.application import Application
from eventsourcing.persistence import PersistenceError

from eventstore.log import LogEntry, LogFormatError, StoreBusy, StoreReadOnly
from eventstore.mapper import LogMapper
from ledger.errors import LedgerError, StoreError

DEFAULT_STORE = "ledger.sqlite3"
STORE_VARIABLE = "LEDGER_STORE"
OPERATOR_VARIABLE = "LEDGER_OPERATOR"
OPERATOR_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,29}")


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
        """An aggregate as it stood at position ``upto``; ``None`` if it did not exist then."""
        return fold(self.events_of(aggregate_id, upto))

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

    def existing_ids(self, ids: list[UUID]) -> set[UUID]:
        return self.raw.existing_ids(ids)

    def positions_of(self, ref: str) -> list[int]:
        return self.raw.positions_of(ref)

    def entry(self, position: int) -> LogEntry | None:
        return self.raw.entry(position)


def lock_timeout() -> int:
    """Seconds a writer waits for another to finish: ``$LEDGER_LOCK_TIMEOUT``, else 30."""
    try:
        return max(1, int(os.environ.get("LEDGER_LOCK_TIMEOUT", "30")))
    except ValueError:
        return 30


@attrs.frozen
class StoreConfig:
    """Where a ledger lives: ``kind`` is ``sqlite`` or ``postgres``."""

    kind: str
    location: str  # SQLite file, or the URL without password
    operator: str | None
    schema: str | None
    env: dict[str, str] = attrs.field(repr=False)

    @property
    def description(self) -> str:
        who = f", operator {self.operator}" if self.operator else ""
        where = f" schema {self.schema}" if self.schema else ""
        return f"{self.kind} {self.location}{where}{who}"


def valid_operator(name: str) -> str:
    """An operator name: lower-case letter first, then letters, digits or '_' (30 at most)."""
    if not OPERATOR_PATTERN.fullmatch(name):
        raise StoreError(
            f"operator name {name!r} is not allowed: use a lower-case letter followed by "
            "lower-case letters, digits or '_' (30 characters at most), e.g. megalis"
        )
    return name


def store_path(store: str | None = None) -> str:
    """The store to use: the given one, else ``$LEDGER_STORE``, else ``ledger.sqlite3``."""
    return store or os.environ.get(STORE_VARIABLE) or DEFAULT_STORE


def store_config(store: str | None = None, operator: str | None = None) -> StoreConfig:
    """Resolve ``--store`` / ``--operator`` (or their environment variables) to a configuration."""
    location = store_path(store)
    operator = operator or os.environ.get(OPERATOR_VARIABLE) or None
    if operator is not None:
        valid_operator(operator)
    if location.startswith(("postgresql://", "postgres://")):
        return _postgres_config(location, operator)
    if location.startswith("file:"):
        # An SQLite URI, e.g. file:ledger.sqlite3?mode=ro to open a store read-only.
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": location,
               "SQLITE_LOCK_TIMEOUT": str(lock_timeout())}
        return StoreConfig("sqlite", location, operator, None, env)
    path = location
    if operator is not None and location != ":memory:":
        stem = Path(location)
        path = str(stem.with_name(f"{stem.stem}.{operator}{stem.suffix or '.sqlite3'}"))
    if path != ":memory:":
        parent = Path(path).expanduser().resolve().parent
        if not parent.is_dir():
            raise StoreError(f"cannot open store {path!r}: folder {str(parent)!r} does not exist")
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": path,
        "SQLITE_LOCK_TIMEOUT": str(lock_timeout()),
    }
    return StoreConfig("sqlite", path, operator, None, env)


def _postgres_config(url: str, operator: str | None) -> StoreConfig:
    parts = urlsplit(url)
    dbname = parts.path.lstrip("/")
    if not dbname or not parts.hostname:
        raise StoreError(
            f"cannot read store URL {url!r}: expected postgresql://user@host:port/dbname")
    schema = f"ledger_{operator or 'default'}"
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(dbname),
        "POSTGRES_HOST": parts.hostname,
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or os.environ.get("USER", "postgres")),
        "POSTGRES_PASSWORD": unquote(parts.password or os.environ.get("PGPASSWORD", "")),
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_CONNECT_TIMEOUT": "10",
        "POSTGRES_LOCK_TIMEOUT": str(lock_timeout()),
        # The library's default (5 s) ends a transaction whose client is busy for longer, e.g.
        # adapting a large batch between statements; a minute still frees abandoned ones.
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "60",
        "POSTGRES_POOL_SIZE": "1",
        "POSTGRES_MAX_OVERFLOW": "4",
        # POSTGRES_ENABLE_DB_FUNCTIONS stays off (see the notes on eventsourcing 9.5).
    }
    shown = f"postgresql://{env['POSTGRES_USER']}@{parts.hostname}:{env['POSTGRES_PORT']}/{dbname}"
    return StoreConfig("postgres", shown, operator or "default", schema, env)


def open_store(store: str | StoreConfig | None = None, operator: str | None = None, *,
               create: bool = True) -> LedgerApplication:
    """Open the store. A SQLite file is created on first use unless ``create`` is false;
    a PostgreSQL schema needs ``ledger db init`` first."""
    config = store if isinstance(store, StoreConfig) else store_config(store, operator)
    if config.kind == "sqlite" and not create and config.location != ":memory:" \
            and not config.location.startswith("file:") and not Path(config.location).exists():
        raise StoreError(f"store {config.location} does not exist (check --store, or create it "
                         "with `ledger db init`)")
    try:
        app = LedgerApplication(env=dict(config.env))
        app.description = f"store {config.description}"
        if config.kind == "sqlite":
            # Tables and triggers are (re)created only when missing: opening a store to read
            # it does not write to it.
            if not app.recorder.check_format() or app.recorder.missing_triggers():
                app.recorder.create_tables()
        else:
            app.recorder.check_format()
    except LedgerError as error:
        raise StoreError(f"cannot open store {config.description}: {error}") from None
    except (PersistenceError, sqlite3.Error, OSError) as error:
        raise StoreError(f"cannot open store {config.description}: {_reason(error)}") from None
    except Exception as error:  # psycopg's own errors
        if type(error).__module__.startswith("psycopg"):
            raise StoreError(f"cannot open store {config.description}: {error}") from None
        raise
    return app


def _reason(error: Exception) -> str:
    text = str(error)
    if "does not exist" in text and "schema" in text:
        return f"{text} — run `ledger db init` with an administrator's URL first"
    return text
