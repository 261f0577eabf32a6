"""The canonical bytes of a log entry, and its leaf hash.

An entry is an RFC 8785 (JSON Canonicalization Scheme) object with exactly
these members, in this order (RFC 8785 sorts keys)::

    {"aggregate_id":"<uuid>","aggregate_version":<int>,"data":<object>,
     "event":"<name>","event_version":<int>,"metadata":<object>,
     "position":<int>,"recorded_at":"YYYY-MM-DDTHH:MM:SS.ffffffZ"}

``data`` and ``metadata`` are themselves canonical JSON. Values are only
strings, integers (|n| < 2^53), booleans, null, arrays and objects — never
floats — so orjson with sorted keys writes exactly RFC 8785 (tested against the
reference ``rfc8785`` package). The leaf hash is ``SHA-256(0x00 || entry)``
(RFC 9162 §2.1.1). docs/audit.md gives the same definition for auditors.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
EVENT_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")


class NotCanonical(ValueError):
    """A value that has no canonical form here (a float, a huge integer, a non-text key)."""


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of a JSON value made of str, int, bool, None, list and dict."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError as error:
        raise NotCanonical(str(error)) from None


def is_canonical(data: bytes) -> bool:
    """Whether stored bytes are exactly the canonical form of what they encode.

    (The ledger never writes floats; one that a forger slipped in still has to be
    written the canonical way to pass, and then changes a leaf like anything else.)
    """
    try:
        return canonical_json(orjson.loads(data)) == data
    except (orjson.JSONDecodeError, NotCanonical):
        return False


def format_time(moment: datetime) -> str:
    """A recorded time as it appears in entries: UTC, microseconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """The inverse of :func:`format_time` (``fromisoformat`` reads the ``Z`` since Python 3.11)."""
    return datetime.fromisoformat(text)


def entry_bytes(*, position: int, recorded_at: str, aggregate_id: str, aggregate_version: int,
                event: str, event_version: int, data: bytes, metadata: bytes) -> bytes:
    """The canonical bytes of one log entry (see the module docstring).

    Built by concatenation so that ``data`` and ``metadata`` are embedded exactly as
    stored; PostgreSQL builds the very same bytes in SQL (eventstore/postgres.py).
    """
    return b"".join((
        b'{"aggregate_id":"', aggregate_id.encode("ascii"),
        b'","aggregate_version":', str(aggregate_version).encode("ascii"),
        b',"data":', data,
        b',"event":"', event.encode("ascii"),
        b'","event_version":', str(event_version).encode("ascii"),
        b',"metadata":', metadata,
        b',"position":', str(position).encode("ascii"),
        b',"recorded_at":"', recorded_at.encode("ascii"),
        b'"}',
    ))


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256 of 0x00 followed by the entry's bytes."""
    return hashlib.sha256(b"\x00" + entry).digest()


def entry_metadata(common: dict[str, Any], own: dict[tuple[Any, int], dict[str, Any]]
                   ) -> Callable[[Any], bytes]:
    """The canonical metadata of each entry a write appends: the write's ``common`` metadata
    (who, through what, from which file) and, where the entry has some, its ``own`` (the command
    and line that made it), keyed by (aggregate id, version)."""
    shared = canonical_json(common)

    def of(stored: Any) -> bytes:
        extra = own.get((stored.originator_id, stored.originator_version))
        return canonical_json({**common, **extra}) if extra else shared
    return of
