"""Where a ledger lives: a store named by a path (SQLite, the embedded default) or a
``postgresql://user@host:port/dbname`` URL (with, at most, libpq's TLS and time-out parameters
as its query: ``?sslmode=verify-full``), and an operator (``--operator`` or
``$LEDGER_OPERATOR``) selecting whose ledger it is — on PostgreSQL each operator's log lives in
its own schema, ``ledger_<operator>``; on SQLite in its own file, ``<name>.<operator>.sqlite3``.
Operator names are checked against an allow-list pattern before they reach any SQL."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

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
    #: libpq connection parameters from the URL's query (``sslmode`` …), PostgreSQL only.
    parameters: dict[str, str] = attrs.field(factory=dict)

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
            what = "is a file, not a folder" if parent.exists() else "does not exist"
            raise StoreError(f"cannot open store {path!r}: folder {str(parent)!r} {what}")
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": path,
        "SQLITE_LOCK_TIMEOUT": str(lock_timeout()),
    }
    return StoreConfig("sqlite", path, operator, None, env)


#: The query parameters a store URL may carry: libpq's own, passed to every connection the
#: ledger makes to the store (its pool's, the first check's, ``ledger db init``'s), never through
#: the process's environment.
URL_PARAMETERS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "connect_timeout",
                  "application_name")

#: libpq's values of ``sslmode``.
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

_FILE_PARAMETERS = ("sslrootcert", "sslcert", "sslkey", "sslcrl")


def redacted(url: str) -> str:
    """The URL as it may be shown: a password in it is replaced by ``***`` — up to the last
    ``@``, so that a password holding ``/``, ``?``, ``#`` or ``@`` (not percent-encoded) is not
    shown either."""
    scheme, separator, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not separator or not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


def _url_parameters(query: str, shown: str) -> dict[str, str]:
    """The URL's query checked: only parameters the ledger passes on to libpq, each once, with
    a value libpq accepts — never one silently dropped."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise StoreError(f"store URL {shown}: cannot read its query {query!r} (expected "
                         "?name=value&name=value)") from None
    parameters: dict[str, str] = {}
    for name, value in pairs:
        if name not in URL_PARAMETERS:
            raise StoreError(
                f"store URL {shown}: parameter {name!r} is not supported (the URL may carry "
                f"{', '.join(URL_PARAMETERS)})")
        if name in parameters:
            raise StoreError(f"store URL {shown}: parameter {name!r} is given twice")
        if not value:
            raise StoreError(f"store URL {shown}: parameter {name!r} has no value")
        if name == "sslmode" and value not in SSL_MODES:
            raise StoreError(f"store URL {shown}: sslmode {value!r} is not one of "
                             f"{', '.join(SSL_MODES)}")
        if name == "connect_timeout" and not (value.isdigit() and int(value) > 0):
            raise StoreError(f"store URL {shown}: connect_timeout {value!r} is not a whole "
                             "number of seconds above 0")
        if name in _FILE_PARAMETERS and not (name == "sslrootcert" and value == "system") \
                and not Path(value).expanduser().is_file():  # "system": libpq 16's own CAs
            # libpq would go on without a missing client certificate or key: say it instead.
            raise StoreError(f"store URL {shown}: {name} file {value!r} does not exist")
        parameters[name] = value
    return parameters


def postgres_config(url: str, operator: str | None) -> StoreConfig:
    """A PostgreSQL store's configuration from its URL, checked part by part: a malformed
    host, port, database name or query is a :class:`StoreError` naming that part (the URL is
    shown without its password)."""
    shown = redacted(url)
    expected = "expected postgresql://user@host:port/dbname"
    rest = url.partition("://")[2]
    credentials = rest.rpartition("@")[0]
    if any(mark in credentials for mark in "/?#"):
        # Read as the URL's path, query or fragment, the rest of such a password would be
        # taken for a port or a database, and named in the message.
        raise StoreError(f"cannot read store URL {shown}: a password holding '/', '?', '#' or "
                         "'@' must be percent-encoded (%2F, %3F, %23, %40); " + expected)
    try:
        parts = urlsplit(url)
    except ValueError as error:  # "Invalid IPv6 URL": an unclosed '[' around the host
        raise StoreError(f"cannot read store URL {shown}: its host is malformed ({error}; an "
                         f"IPv6 address is written [::1]); {expected}") from None
    try:
        port = parts.port
    except ValueError:
        host_port = parts.netloc.rpartition("@")[2]
        given = (host_port.partition("]")[2] if host_port.startswith("[")
                 else host_port).partition(":")[2]
        raise StoreError(f"store URL {shown}: port {given!r} is not a number from 1 to "
                         "65535") from None
    if port == 0:
        raise StoreError(f"store URL {shown}: port 0 is not a number from 1 to 65535")
    dbname = parts.path.lstrip("/")
    if not parts.hostname:
        raise StoreError(f"store URL {shown} names no host: {expected}")
    if not dbname:
        raise StoreError(f"store URL {shown} names no database: {expected}")
    if parts.fragment:
        raise StoreError(f"store URL {shown}: a '#' part ({parts.fragment!r}) means nothing in "
                         f"a store URL; {expected}")
    parameters = _url_parameters(parts.query, shown) if parts.query else {}
    schema = f"ledger_{operator or 'default'}"
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(dbname),
        "POSTGRES_HOST": parts.hostname,
        "POSTGRES_PORT": str(port or 5432),
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
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    query = "?" + "&".join(f"{k}={v}" for k, v in parameters.items()) if parameters else ""
    location = (f"postgresql://{env['POSTGRES_USER']}@{host}:{env['POSTGRES_PORT']}/{dbname}"
                f"{query}")
    return StoreConfig("postgres", location, operator or "default", schema, env, parameters)
