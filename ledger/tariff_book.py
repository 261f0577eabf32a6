"""The tariff schedules adopted in this ledger, and which one prices what on a given day."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.identity import tariff_book_id
from ledger.tariffs import CatalogueError, PriceLine, Schedule, check_no_same_day, parse_schedule


class TariffBook(Aggregate):
    """Every schedule adopted by deliberation, in adoption order. One per store."""

    @staticmethod
    def create_id() -> UUID:
        return tariff_book_id()

    @event("Opened")
    def __init__(self) -> None:
        self.schedules: tuple[Schedule, ...] = ()

    def adopt(self, schedule: Schedule) -> bool:
        """Record the adoption of ``schedule``. ``False`` if this very schedule was already adopted."""
        for other in self.schedules:
            if other.id == schedule.id:
                if dict(other.document) == dict(schedule.document):
                    return False
                raise CatalogueError(
                    schedule.source, None,
                    f"schedule {schedule.id!r} was already adopted with other content; "
                    "a revision is a new schedule with its own id and a later effective_from",
                )
        check_no_same_day(list(self.schedules), schedule)
        self._adopted(document=dict(schedule.document))
        return True

    @event("TariffScheduleAdopted")
    def _adopted(self, document: dict[str, Any]) -> None:
        self.schedules = (*self.schedules, parse_schedule(document))


def schedule_in_force(schedules: Iterable[Schedule], day: date, offer: str) -> Schedule | None:
    """The schedule that prices ``offer`` on ``day``: of those in force that day, the last to take effect.

    A revision replaces the schedule it revises for the whole offer: a line it
    leaves out is no longer offered from its effective date.
    """
    candidates = [
        schedule for schedule in schedules
        if schedule.in_force_on(day) and any(line.offer == offer for line in schedule.lines)
    ]
    return max(candidates, key=lambda s: s.effective_from, default=None)


def offer_line(schedule: Schedule, day: date, component: str, volume_gb: int) -> PriceLine | None:
    """The line of ``schedule`` pricing one component (``access``, ``extra_storage``) of a volume."""
    for line in schedule.lines:
        if (line.component, line.volume_gb) == (component, volume_gb) and line.offer is not None \
                and (line.available_until is None or day <= line.available_until):
            return line
    return None


def offer_volumes(schedule: Schedule, component: str) -> list[int]:
    """Volumes (GB) a schedule prices for a component, for messages."""
    return sorted({line.volume_gb for line in schedule.lines
                   if line.component == component and line.volume_gb is not None})
