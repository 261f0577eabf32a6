"""What the log holds: entries waiting to be appended, and entries as stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from eventsourcing.persistence import Notification, OperationalError, StoredEvent

from eventstore.canonical import entry_bytes, leaf_hash, parse_time
from ledger.errors import LedgerError

#: The layout of the log tables; a store written with another layout is refused.
FORMAT = "1"


class LogFormatError(LedgerError):
    """A stored entry cannot be read by this version of the ledger."""


class StoreBusy(OperationalError, LedgerError):
    """Another writer held the store's write lock for longer than the wait allowed."""


class StoreReadOnly(OperationalError, LedgerError):
    """The store cannot be written (file permissions, a read-only role or database)."""


@dataclass(frozen=True)
class PendingEntry(StoredEvent):
    """An event ready to append: ``topic`` is its stable name, ``state`` its canonical data."""

    event_version: int = 1
    refs: tuple[str, ...] = ()


@dataclass(frozen=True)
class LogEntry(Notification):
    """A stored entry. ``id`` is its position; ``topic`` its event name; ``state`` its data;
    ``recorded_at_text`` its recorded time exactly as the entry's bytes hold it."""

    recorded_at_text: str
    event_version: int
    metadata: bytes
    leaf: bytes

    @property
    def position(self) -> int:
        return self.id

    @property
    def event(self) -> str:
        return self.topic

    @property
    def data(self) -> bytes:
        return self.state

    @property
    def recorded_at(self) -> datetime:
        return parse_time(self.recorded_at_text)

    def canonical_bytes(self) -> bytes:
        """The entry's canonical bytes, rebuilt from its stored fields."""
        return entry_bytes(
            position=self.id, recorded_at=self.recorded_at_text,
            aggregate_id=str(self.originator_id), aggregate_version=self.originator_version,
            event=self.topic, event_version=self.event_version, data=self.state,
            metadata=self.metadata)

    def computed_leaf(self) -> bytes:
        return leaf_hash(self.canonical_bytes())
