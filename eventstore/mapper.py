"""Domain events ↔ log entries, through the registry of ``ledger.events``.

Writing: the event's class gives its stable name and version; its fields are
encoded by their declared types into canonical JSON. Reading: the stored name
and version give the class and the upcasters to apply; dates come back as
dates; ``timestamp`` is the recorded time set by the store, and the entry's
position and metadata travel with the event (``log_position``,
``log_metadata``) for timelines and proofs.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import CanInitAggregate
from eventsourcing.persistence import JSONTranscoder, Mapper
from eventsourcing.utils import get_topic

from eventstore.canonical import NotCanonical, canonical_json
from eventstore.log import LogEntry, LogFormatError, PendingEntry
from ledger.events import REGISTRY, EventType, Registry

_LIBRARY_FIELDS = frozenset({"originator_id", "originator_version", "timestamp",
                             "originator_topic"})


def _encode(value: Any, kind: str, where: str) -> Any:
    if value is None:
        if kind.endswith("?"):
            return None
        raise TypeError(f"{where}: null is not allowed")
    kind = kind.rstrip("?")
    if kind == "date":
        if type(value) is not date:
            raise TypeError(f"{where}: expected a date, got {type(value).__name__}")
        return value.isoformat()
    if kind == "ints":
        if not all(type(item) is int for item in value):
            raise TypeError(f"{where}: expected whole numbers")
        return list(value)
    if kind == "text" and not isinstance(value, str) \
            or kind == "int" and type(value) is not int \
            or kind == "bool" and type(value) is not bool \
            or kind == "object" and not isinstance(value, dict):
        raise TypeError(f"{where}: expected {kind}, got {type(value).__name__}")
    return value


#: How a stored value of each declared type comes back (the others come back as stored).
_DECODERS = {"date": date.fromisoformat, "ints": tuple}


def _decoders(kind: EventType) -> tuple[tuple[str, Any], ...]:
    """Each field of an event type with the function that decodes its stored value (``None``:
    as stored), worked out once per type rather than per field of every entry read."""
    return tuple((name, _DECODERS.get(field_type.rstrip("?")))
                 for name, field_type in kind.fields.items())


class LogMapper(Mapper):
    """The library's ``Mapper`` interface over the ledger's own entry format."""

    def __init__(self, registry: Registry = REGISTRY) -> None:
        super().__init__(transcoder=JSONTranscoder())  # unused: entries are canonical JSON
        self.registry = registry
        # Each event type's class, and for events that create an aggregate the aggregate's
        # topic (the library resolves it on replay): found on the first entry of the type, so
        # that an aggregate is imported only when its events are read.
        self._classes: dict[str, tuple[type, str | None]] = {}
        self._decoding: dict[str, tuple[tuple[str, Any], ...]] = {}
        # The same decoders by (event, version) for entries of the current version of their
        # event: those need no upcasting, so a replay goes straight to decoding them.
        self._current: dict[tuple[str, int], tuple[tuple[str, Any], ...]] = {}
        # Entries of one aggregate come together in replays: its UUID is made once.
        self._last_id: tuple[str, UUID] = ("", UUID(int=0))

    def to_stored_event(self, domain_event: Any) -> PendingEntry:
        try:
            kind = self.registry.of_event(domain_event)
        except KeyError:
            raise TypeError(f"{type(domain_event).__qualname__} is not listed in "
                            "ledger/events.py: every stored event needs a stable name") from None
        state = vars(domain_event)
        unexpected = set(state) - _LIBRARY_FIELDS - set(kind.fields)
        if unexpected:
            raise TypeError(f"{kind.name} has fields {sorted(unexpected)} that ledger/events.py "
                            "does not list: bump its version and add an upcaster")
        data = {name: _encode(state[name], field_type, f"{kind.name}.{name}")
                for name, field_type in kind.fields.items()}
        try:
            encoded = canonical_json(data)
        except NotCanonical as error:
            raise TypeError(f"{kind.name}: {error}") from None
        refs = tuple(kind.refs(data)) if kind.refs is not None else ()
        return PendingEntry(originator_id=domain_event.originator_id,
                            originator_version=domain_event.originator_version,
                            topic=kind.name, state=encoded, event_version=kind.version, refs=refs)

    def event_type(self, entry: LogEntry) -> EventType:
        return self._kind(entry.topic, entry.id)

    def _kind(self, event: str, position: int) -> EventType:
        try:
            return self.registry.by_name[event]
        except KeyError:
            raise LogFormatError(
                f"entry {position} is a {event!r} event, which this version of the ledger "
                "does not know: it was written by another version") from None

    def upcast(self, event: str, version: int, data: bytes, position: int
               ) -> tuple[EventType, dict[str, Any]]:
        """An entry's event type and its data as stored (JSON values, dates as text), brought
        up to the current version of its event by the upcasters of ``ledger/events.py``."""
        kind = self._kind(event, position)
        found = orjson.loads(data)
        if version > kind.version:
            raise LogFormatError(
                f"entry {position} is {kind.name} version {version}; this version of the "
                f"ledger reads versions up to {kind.version}: upgrade the ledger")
        while version < kind.version:
            found = kind.upcasters[version](found)
            version += 1
        return kind, found

    def fields(self, entry: LogEntry) -> dict[str, Any]:
        """The entry's data brought up to the current version of its event, decoded."""
        decoding = self._current.get((entry.topic, entry.event_version))
        if decoding is None:  # not yet seen, or written by an earlier version of its event
            kind, data = self.upcast(entry.topic, entry.event_version, entry.state, entry.id)
            decoding = self._decoding.get(kind.name)
            if decoding is None:
                decoding = self._decoding[kind.name] = _decoders(kind)
                self._current[(kind.name, kind.version)] = decoding
        else:
            data = orjson.loads(entry.state)
        fields = {}
        try:
            for name, decode in decoding:
                value = data[name]
                fields[name] = value if decode is None or value is None else decode(value)
            return fields
        except KeyError as missing:
            raise LogFormatError(
                f"entry {entry.id} ({entry.topic} v{entry.event_version}) has no field {missing} "
                "and no upcaster provides it") from None

    def to_domain_event(self, stored_event: LogEntry) -> Any:  # type: ignore[override]
        kind = self.event_type(stored_event)
        state = self.fields(stored_event)
        originator_id = stored_event.originator_id
        if isinstance(originator_id, str):
            if self._last_id[0] != originator_id:
                self._last_id = (originator_id, UUID(originator_id))
            originator_id = self._last_id[1]
        state["originator_id"] = originator_id
        state["originator_version"] = stored_event.originator_version
        state["timestamp"] = stored_event.recorded_at
        try:
            cls, created = self._classes[kind.name]
        except KeyError:
            cls = kind.cls
            created = get_topic(kind.aggregate_class) \
                if issubclass(cls, CanInitAggregate) else None
            self._classes[kind.name] = cls, created
        if created is not None:
            state["originator_topic"] = created
        state["log_position"] = stored_event.id
        state["log_metadata"] = stored_event.metadata
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return event
