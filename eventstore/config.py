"""Where a ledger lives: a store named by a path (SQLite, the embedded default) or a
``postgresql://user@host:port/dbname`` URL, and an operator (``--operator`` or
``$LEDGER_OPERATOR``) selecting whose ledger it is — on PostgreSQL each operator's log lives in
its own schema, ``ledger_<operator>``; on SQLite in its own file, ``<name>.<operator>.sqlite3``.
Operator names are checked against an allow-list pattern before they reach any SQL."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import attrs

from ledger.errors import StoreError

DEFAULT_STORE = "ledger.sqlite3"


STORE_VARIABLE = "LEDGER_STORE"


OPERATOR_VARIABLE = "LEDGER_OPERATOR"


OPERATOR_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,29}")


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
    """The store to use: the given one, else ``$LEDGER_STORE``, else ``ledger.sqlite3``. An
    empty ``--store`` (``--store "$LEDGER_STORE"`` with the variable unset) is an error, not
    the default store: it would read, or write, a store the user did not mean."""
    if store is not None and not store.strip():
        raise StoreError("--store is empty: name a SQLite file or a postgresql:// URL (an "
                         "unset variable?)")
    return store or os.environ.get(STORE_VARIABLE) or DEFAULT_STORE


def store_config(store: str | None = None, operator: str | None = None) -> StoreConfig:
    """Resolve ``--store`` / ``--operator`` (or their environment variables) to a configuration."""
    location = store_path(store)
    operator = operator or os.environ.get(OPERATOR_VARIABLE) or None
    if operator is not None:
        valid_operator(operator)
    if location.startswith(("postgresql://", "postgres://")):
        return postgres_config(location, operator)
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


def postgres_config(url: str, operator: str | None) -> StoreConfig:
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
