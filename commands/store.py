"""The event store: an ``eventsourcing`` application on SQLite, with an orjson transcoder."""

from __future__ import annotations

import os
import sqlite3
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from eventsourcing.application import Application
from eventsourcing.persistence import PersistenceError, Transcoder

DEFAULT_STORE = "ledger.sqlite3"
STORE_VARIABLE = "LEDGER_STORE"

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

    def construct_transcoder(self) -> Transcoder:
        return OrjsonTranscoder()


def store_path(store: str | None = None) -> str:
    """The store to use: the given path, else ``$LEDGER_STORE``, else ``ledger.sqlite3``."""
    return store or os.environ.get(STORE_VARIABLE) or DEFAULT_STORE


def open_store(store: str | None = None) -> LedgerApplication:
    """Open (creating if needed) the SQLite store at ``store``."""
    from ledger.errors import StoreError

    path = store_path(store)
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
    try:
        return LedgerApplication(env=env)
    except (PersistenceError, sqlite3.Error) as error:
        raise StoreError(f"cannot open store {path!r}: {error}") from None
