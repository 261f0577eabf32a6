"""Entry-level checks of a log, in one pass: what ``ledger audit verify`` asks of every entry.

- positions run 1, 2, 3 … with no gap;
- recorded times never go back;
- each aggregate's versions run 1, 2, 3 … in log order (checked at the end, from a temporary
  SQLite spool of every entry's aggregate, version and position: a dictionary of the last version
  of every aggregate grew with the log — 700 000 aggregates at a million events);
- data and metadata are canonical JSON, the event name is well formed;
- the stored leaf equals the hash of the entry rebuilt from its content;
- the tree of the first n entries has the root that each checkpoint signed.

A :class:`Failure` names the first position where something does not hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import groupby

import attrs

from eventstore.canonical import EVENT_NAME, is_canonical
from eventstore.log import LogEntry
from eventstore.merkle import CompactRange
from eventstore.spool import Spool


@attrs.frozen(order=True)
class Failure:
    position: int
    event: str = attrs.field(order=False)
    reason: str = attrs.field(order=False)

    def __str__(self) -> str:
        what = f" ({self.event})" if self.event else ""
        return f"position {self.position}{what}: {self.reason}"


class LogChecker:
    """Feed entries in position order; collects failures and the root of each wanted size."""

    def __init__(self, roots_wanted: Iterable[int] = ()) -> None:
        self.tree = CompactRange()
        self.failures: list[Failure] = []
        self.roots: dict[int, bytes] = {}
        self._wanted = set(roots_wanted)
        self._versions = VersionSpool()
        self._last_time = None
        self._last_position = 0
        if 0 in self._wanted:
            self.roots[0] = self.tree.root()

    def fail(self, entry: LogEntry, reason: str) -> None:
        self.failures.append(Failure(entry.id, entry.topic, reason))

    def add(self, entry: LogEntry) -> None:
        expected = self._last_position + 1
        self._last_position = max(entry.id, self._last_position)
        if entry.id != expected:
            missing = (f"entries {expected}–{entry.id - 1} are missing" if entry.id > expected + 1
                       else f"entry {expected} is missing")
            self.failures.append(Failure(expected, "", f"{missing}: the log has a gap"))
        # Recorded times are fixed-width UTC text: comparing the text compares the times.
        if self._last_time is not None and entry.recorded_at_text < self._last_time:
            self.fail(entry, f"recorded at {entry.recorded_at_text}, before the entry ahead of it "
                             f"({self._last_time}): recorded times never go back")
        self._last_time = entry.recorded_at_text
        self._versions.add_entry(entry)
        if not EVENT_NAME.fullmatch(entry.topic):
            self.fail(entry, f"event name {entry.topic!r} is malformed")
        if not is_canonical(entry.state):
            self.fail(entry, "its data is not canonical JSON")
        if not is_canonical(entry.metadata):
            self.fail(entry, "its metadata is not canonical JSON")
        leaf = entry.computed_leaf()
        if leaf != entry.leaf:
            self.fail(entry, "its stored leaf hash is not the hash of its content: the entry (or "
                             "its hash) was changed after it was written")
        # The tree is built from the leaves the content gives, never from stored hashes.
        self.tree.append(leaf)
        if self.tree.size in self._wanted:
            self.roots[self.tree.size] = self.tree.root()

    def finish(self) -> None:
        """The checks that need every entry: each aggregate's versions in log order."""
        self.failures += self._versions.failures()

    def close(self) -> None:
        self._versions.close()

    @property
    def size(self) -> int:
        return self.tree.size


class VersionSpool(Spool):
    """Each entry's aggregate, version and position, spooled as the log is read, then read
    back one aggregate at a time in log order: each aggregate's versions must run 1, 2, 3 …
    (after a wrong one, counting goes on from the larger)."""

    def __init__(self) -> None:
        super().__init__("CREATE TABLE version (aggregate TEXT, version INTEGER,"
                         " position INTEGER, event TEXT);", prefix="ledger-verify-",
                         chunk=10_000)

    def add_entry(self, entry: LogEntry) -> None:
        self.add("version", (str(entry.originator_id), entry.originator_version, entry.id,
                             entry.topic))

    def failures(self) -> Iterator[Failure]:
        rows = self.execute("SELECT aggregate, version, position, event FROM version "
                            "ORDER BY aggregate, position")
        for aggregate, group in groupby(rows, key=lambda row: row[0]):
            last = 0
            for _, version, position, event in group:
                if version != last + 1:
                    yield Failure(position, event, f"aggregate {aggregate} version {version} "
                                                   f"where version {last + 1} was expected next")
                last = max(last + 1, version)
