"""An aggregate folded straight from its stored facts, without the library's event objects.

Whole-ledger reads fold every subscription and every customer of the log. Building the
library's event objects for each entry, and letting its ``@event`` machinery match arguments to
parameters, cost more than the fold itself; :func:`fold_facts` applies each entry's decoded
fields through the same functions the aggregate's event methods call, so that there is one
definition of what each event does. Tests compare both folds, entry positions included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

Folded = TypeVar("Folded")

#: ``(event class name, aggregate version, log position, fields)`` of one stored entry.
Fact = tuple[str, int, int, dict[str, Any]]


class DamagedHistory(ValueError):
    """Facts that cannot be folded into their aggregate: the log they came from is damaged."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(reason)
        self.position = position


def fold_facts(cls: type[Folded], what: str, aggregate_id: UUID, facts: Iterable[Fact],
               created_on: datetime, modified_on: datetime, *,
               appliers: Mapping[str, Callable[..., None]],
               noted: Callable[[Any, str, int], None] | None = None) -> Folded:
    """The aggregate of class ``cls`` (``what`` names it in messages: "a subscription") that
    its facts give, in version order: the first is the event that creates it, at version 1.
    ``appliers`` apply each event's fields to the aggregate, by event class name (the creating
    one included); ``noted`` is told which entry set which fact. :class:`DamagedHistory`,
    naming the entry's position, if the versions do not follow each other, an event is not one
    of this aggregate's or cannot be applied where it stands."""
    facts = iter(facts)
    name, version, position, fields = next(facts)
    creating = next(iter(appliers))
    if name != creating or version != 1:
        raise DamagedHistory(position, f"{what} starts with {creating} at version 1, not "
                                       f"{name} at version {version}")
    self: Any = cls.__new__(cls)
    self.__base_init__(aggregate_id, version, created_on)
    _apply(self, appliers, noted, name, position, fields)
    for name, version, position, fields in facts:
        if version != self._version + 1:
            raise DamagedHistory(position, f"version {version} follows version "
                                           f"{self._version}")
        if name == creating or name not in appliers:
            raise DamagedHistory(position, f"{name} is not an event of {what}")
        _apply(self, appliers, noted, name, position, fields)
        self._version = version
    self._modified_on = modified_on
    return self


def _apply(aggregate: Any, appliers: Mapping[str, Callable[..., None]],
           noted: Callable[[Any, str, int], None] | None, name: str, position: int,
           fields: dict[str, Any]) -> None:
    try:
        appliers[name](aggregate, **fields)
        if noted is not None:
            noted(aggregate, name, position)
    except Exception as error:  # noqa: BLE001 - e.g. an activation before any order
        raise DamagedHistory(position, f"{name} cannot be applied here "
                                       f"({type(error).__name__}: {error})") from None
