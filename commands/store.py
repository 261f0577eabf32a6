"""The event store: an ``eventsourcing`` application on SQLite or PostgreSQL, with orjson.

A store is named by a path (SQLite, the embedded default) or a
``postgresql://user@host:port/dbname`` URL. An operator (``--operator`` or
``$LEDGER_OPERATOR``) selects whose ledger it is: on PostgreSQL each operator's
events live in their own schema, ``ledger_<operator>``; on SQLite in their own
file, ``<name>.<operator>.sqlite3``. Operator names are checked against an
allow-list pattern before they reach any SQL.
"""

from __future__ import annotations

import os
import re
import sqlite3
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import attrs
import orjson
from eventsourcing.application import Application
from eventsourcing.persistence import PersistenceError, Transcoder

from ledger.errors import StoreError

DEFAULT_STORE = "ledger.sqlite3"
STORE_VARIABLE = "LEDGER_STORE"
OPERATOR_VARIABLE = "LEDGER_OPERATOR"
OPERATOR_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,29}")
EVENTS_TABLE = "ledger_events"  # the library names it <application name>_events

_TYPE, _DATA = "_type_", "_data_"


def _tag(obj: Any) -> dict[str, str]:
    # datetime first: it is a subclass of date. Subclasses (freezegun's FakeDatetime) are accepted.
    if isinstance(obj, datetime):
        return {_TYPE: "datetime_iso", _DATA: obj.isoformat()}
    if isinstance(obj, date):
        return {_TYPE: "date_iso", _DATA: obj.isoformat()}
    if isinstance(obj, Decimal):
        return {_TYPE: "decimal_str", _DATA: str(obj)}
    raise TypeError(f"cannot store a {type(obj).__name__} in an event")


_UNTAG = {
    "datetime_iso": datetime.fromisoformat,
    "date_iso": date.fromisoformat,
    "decimal_str": Decimal,
}


def _untag(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 2 and _TYPE in value and _DATA in value:
            return _UNTAG[value[_TYPE]](value[_DATA])
        return {key: _untag(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_untag(item) for item in value]
    return value


class OrjsonTranscoder(Transcoder):
    """Canonical JSON (sorted keys) through orjson; dates, datetimes and decimals are tagged.

    The tags use the same ``{"_type_": …, "_data_": …}`` shape as the library's
    JSONTranscoder, so stored events stay readable by either.
    """

    _OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=_tag, option=self._OPTIONS)

    def decode(self, data: bytes) -> Any:
        return _untag(orjson.loads(data))


class LedgerApplication(Application):
    """The ledger's event store and repository. Commands and projections go through it."""

    name = "Ledger"
    log_section_size = 1_000
    #: After saving this many events at once on SQLite, fold the write-ahead log back into the
    #: database file: readers of a large unfolded WAL were measured using ten times the memory.
    CHECKPOINT_AFTER = 1_000

    def construct_transcoder(self) -> Transcoder:
        return OrjsonTranscoder()

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        recordings = super().save(*objs, **kwargs)
        if len(recordings) >= self.CHECKPOINT_AFTER and not hasattr(self.recorder.datastore,
                                                                    "schema"):
            with self.recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return recordings


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
        "SQLITE_LOCK_TIMEOUT": "30",
        "CREATE_TABLE": "y",
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
        "POSTGRES_LOCK_TIMEOUT": "30",
        # The library's default (5 s) ends a transaction whose client is busy for longer, e.g.
        # validating a large file between statements; a minute still frees abandoned ones.
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "60",
        "POSTGRES_POOL_SIZE": "1",
        "POSTGRES_MAX_OVERFLOW": "4",
        # Tables are created by `ledger db init` only; the writer role may not create them.
        "CREATE_TABLE": "n",
        "APPLICATION_RECORDER_TOPIC": "commands.pgstore:LedgerPostgresRecorder",
        # POSTGRES_ENABLE_DB_FUNCTIONS stays off (see the notes on eventsourcing 9.5).
    }
    shown = f"postgresql://{env['POSTGRES_USER']}@{parts.hostname}:{env['POSTGRES_PORT']}/{dbname}"
    return StoreConfig("postgres", shown, operator or "default", schema, env)


def open_store(
    store: str | None = None, operator: str | None = None, *, create: bool = False
) -> LedgerApplication:
    """Open the store. SQLite files are created on first use; PostgreSQL needs ``ledger db init``."""
    config = store if isinstance(store, StoreConfig) else store_config(store, operator)
    env = dict(config.env)
    if create:
        env["CREATE_TABLE"] = "y"
    try:
        app = LedgerApplication(env=env)
    except (PersistenceError, sqlite3.Error, OSError) as error:
        raise StoreError(f"cannot open store {config.description}: {error}") from None
    except Exception as error:  # psycopg's own errors, when the driver is installed
        if type(error).__module__.startswith("psycopg"):
            raise StoreError(f"cannot open store {config.description}: {error}") from None
        raise
    if config.kind == "sqlite":
        _protect_sqlite(app, config)
    elif not create:
        _check_initialised(app, config)
    return app


def _protect_sqlite(app: LedgerApplication, config: StoreConfig) -> None:
    """SQLite has no roles: triggers make the event table append-only for every writer."""
    statements = [
        f"CREATE TRIGGER IF NOT EXISTS ledger_no_{op.lower()} BEFORE {op} ON stored_events "
        f"BEGIN SELECT RAISE(ABORT, 'the ledger history is append-only: {op} refused'); END"
        for op in ("UPDATE", "DELETE")
    ]
    try:
        with app.recorder.datastore.transaction(commit=True) as cursor:
            for statement in statements:
                cursor.execute(statement)
    except (PersistenceError, sqlite3.Error) as error:
        raise StoreError(f"cannot open store {config.description}: {error}") from None


def _check_initialised(app: LedgerApplication, config: StoreConfig) -> None:
    try:
        app.recorder.max_notification_id()
    except Exception as error:  # noqa: BLE001 - the driver's error, reported to the user
        if "does not exist" in str(error):
            raise StoreError(
                f"store {config.description} is not initialised: run "
                f"`ledger db init --store URL --operator {config.operator}` with an "
                "administrator's URL first") from None
        raise StoreError(f"cannot open store {config.description}: {error}") from None


def existing_ids(app: LedgerApplication, ids: list) -> set:
    """Which of ``ids`` have events, in a few queries instead of one per id.

    An import checks many ids that do not exist yet (new customers, new
    subscriptions, every command's receipt); asking for them in bulk spares a
    round trip each. The table is the library's, read-only here.
    """
    found: set = set()
    recorder = app.recorder
    table = recorder.events_table_name
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        if hasattr(recorder.datastore, "schema"):  # PostgreSQL
            from psycopg.sql import SQL, Identifier

            statement = SQL("SELECT DISTINCT originator_id FROM {0}.{1} "
                            "WHERE originator_id = ANY(%s)").format(
                Identifier(recorder.datastore.schema), Identifier(table))
            with recorder.datastore.get_connection() as conn:
                rows = conn.execute(statement, (chunk,)).fetchall()
            found |= {row["originator_id"] for row in rows}
        else:
            marks = ",".join("?" * len(chunk))
            with recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(f"SELECT DISTINCT originator_id FROM {table} "
                               f"WHERE originator_id IN ({marks})", [i.hex for i in chunk])
                rows = cursor.fetchall()
            from uuid import UUID

            found |= {UUID(row[0]) for row in rows}
    return found


def stored_events_by_aggregate(app: LedgerApplication, topics: set[str]):
    """Every stored event whose topic is in ``topics``, grouped by aggregate, in one ordered scan.

    Yields one list of ``StoredEvent`` per aggregate, in version order. The scan
    follows the table's primary key (originator_id, originator_version), so one
    aggregate is held at a time: a full replay streams instead of loading the
    ledger whole. Read-only access to the library's table.
    """
    from uuid import UUID

    from eventsourcing.persistence import StoredEvent

    recorder = app.recorder
    table = recorder.events_table_name
    current: list[StoredEvent] = []
    current_id = None

    def rows():
        if hasattr(recorder.datastore, "schema"):  # PostgreSQL: a server-side cursor
            from psycopg.sql import SQL, Identifier

            statement = SQL("SELECT originator_id, originator_version, topic, state FROM {0}.{1} "
                            "WHERE topic = ANY(%s) "
                            "ORDER BY originator_id, originator_version").format(
                Identifier(recorder.datastore.schema), Identifier(table))
            with recorder.datastore.get_connection() as conn, conn.transaction(), \
                    conn.cursor(name="ledger_replay") as cursor:
                cursor.itersize = 5_000
                cursor.execute(statement, (sorted(topics),))
                for row in cursor:
                    yield (row["originator_id"], row["originator_version"], row["topic"],
                           bytes(row["state"]))
        else:
            marks = ",".join("?" * len(topics))
            with recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(f"SELECT originator_id, originator_version, topic, state "
                               f"FROM {table} WHERE topic IN ({marks}) "
                               f"ORDER BY originator_id, originator_version", sorted(topics))
                with cursor as raw:
                    for row in raw:
                        yield row[0], row[1], row[2], row[3]

    for originator_id, version, topic, state in rows():
        if originator_id != current_id:
            if current:
                yield current
            current, current_id = [], originator_id
            uuid = originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
        current.append(StoredEvent(originator_id=uuid, originator_version=version,
                                   topic=topic, state=state))
    if current:
        yield current
