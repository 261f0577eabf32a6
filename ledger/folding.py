"""An aggregate folded straight from its stored facts, without the library's event objects.

Whole-ledger reads fold every subscription and every customer of the log. Building the
library's event objects for each entry, and letting its ``@event`` machinery match arguments to
parameters, cost more than the fold itself; a :class:`Fold` applies each entry's decoded
fields through the same functions the aggregate's event methods call, so that there is one
definition of what each event does. Tests compare both folds, entry positions included.

Commands record their events through the same functions (:meth:`Fold.create`,
:meth:`Fold.record`): the library's event object, built with every field, applied by the
applier and left pending — what the library's ``@event`` machinery does, without matching the
fields to the method's parameters for each event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.utils import get_topic

Folded = TypeVar("Folded")

#: ``(event class name, aggregate version, log position, fields)`` of one stored entry.
Fact = tuple[str, int, int, dict[str, Any]]


class DamagedHistory(ValueError):
    """Facts that cannot be folded into their aggregate: the log they came from is damaged."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(reason)
        self.position = position


class Fold:
    """How facts fold into an aggregate of one class: ``what`` names it in messages ("a
    subscription"); ``appliers`` apply one event's decoded fields to the aggregate, by event
    class name, the creating event first; ``noted`` is told which entry set which fact."""

    def __init__(self, what: str, appliers: Mapping[str, Callable[[Any, dict[str, Any]], None]],
                 noted: Callable[[Any, str, int], None] | None = None) -> None:
        self.what, self.appliers, self.noted = what, dict(appliers), noted
        self.creating = next(iter(self.appliers))

    def __call__(self, cls: type[Folded], aggregate_id: UUID, facts: Iterable[Fact],
                 created_on: datetime, modified_on: datetime) -> Folded:
        """The aggregate of class ``cls`` its facts give, in version order: the first is the
        creating event, at version 1. :class:`DamagedHistory`, naming the entry's position, if
        the versions do not follow each other, an event is not one of this aggregate's or
        cannot be applied where it stands."""
        what, appliers, noted, creating = self.what, self.appliers, self.noted, self.creating
        facts = iter(facts)
        name, version, position, fields = next(facts)
        if name != creating or version != 1:
            raise DamagedHistory(position, f"{what} starts with {creating} at version 1, not "
                                           f"{name} at version {version}")
        folded: Any = cls.__new__(cls)
        folded.__base_init__(aggregate_id, version, created_on)
        try:  # one handler for the whole fold: entering it costs nothing (Python 3.11)
            appliers[name](folded, fields)
            if noted is not None:
                noted(folded, name, position)
            for name, version, position, fields in facts:
                if version != folded._version + 1:
                    raise DamagedHistory(position, f"version {version} follows version "
                                                   f"{folded._version}")
                apply = appliers.get(name) if name != creating else None
                if apply is None:
                    raise DamagedHistory(position, f"{name} is not an event of {what}")
                apply(folded, fields)
                if noted is not None:
                    noted(folded, name, position)
                folded._version = version
        except DamagedHistory:
            raise
        except Exception as error:  # noqa: BLE001 - e.g. an activation before any order
            raise DamagedHistory(position, f"{name} cannot be applied here "
                                           f"({type(error).__name__}: {error})") from None
        folded._modified_on = modified_on
        return folded

    # Recording: what a command does, through the same appliers.

    def create(self, cls: type[Folded], aggregate_id: UUID, fields: dict[str, Any]) -> Folded:
        """A new aggregate of class ``cls`` with its creating event applied and pending: what
        calling the class does (``Subscription(domain=…)``), without the library's generic
        construction. See :func:`created`."""
        return created(cls, self.creating, aggregate_id, fields, self.appliers[self.creating])

    def record(self, aggregate: Any, name: str, fields: dict[str, Any]) -> None:
        """The event ``name`` with ``fields`` applied to ``aggregate`` and pending: what
        calling its ``@event`` method does. See :func:`recorded`."""
        recorded(aggregate, name, fields, self.appliers[name])


# An import records one or two events per line. The library's way — calling the class, or a
# method decorated with ``@event`` — looks up the aggregate's topic and matches the event's
# fields to the method's parameters, twice, for every event (a subscription made and
# activated: 36 µs that way, 15 µs this way; ``python -m benchmarks.micro``). These build the
# same event object (the library's class, with every field the method takes, as given) and
# apply it with the function the fold applies it with; ``tests/test_events.py`` checks that
# both ways give the same aggregate, the same pending events and the same stored entries.

def created(cls: type[Folded], name: str, aggregate_id: UUID, fields: dict[str, Any],
            apply: Callable[[Any, dict[str, Any]], None]) -> Folded:
    """A new aggregate of class ``cls``, created by its event class ``name`` (an attribute of
    ``cls``) with ``fields`` — every field the event has — applied by ``apply``, the event
    pending."""
    event_class = getattr(cls, name)
    new = event_class(originator_topic=get_topic(cls),
                      originator_id=aggregate_id, originator_version=1,
                      timestamp=event_class.create_timestamp(), **fields)
    aggregate: Any = cls.__new__(cls)
    aggregate.__base_init__(aggregate_id, 1, new.timestamp)
    apply(aggregate, fields)
    aggregate.pending_events.append(new)
    return aggregate


def recorded(aggregate: Any, name: str, fields: dict[str, Any],
             apply: Callable[[Any, dict[str, Any]], None]) -> None:
    """The event class ``name`` of ``aggregate``'s class, with ``fields`` — every field the
    event has — applied by ``apply`` as the next version, the event pending."""
    event_class = getattr(type(aggregate), name)
    new = event_class(originator_id=aggregate.id, originator_version=aggregate.version + 1,
                      timestamp=event_class.create_timestamp(), **fields)
    apply(aggregate, fields)  # before the version moves, as the library does
    aggregate.version = new.originator_version
    aggregate.modified_on = new.timestamp
    aggregate.pending_events.append(new)
