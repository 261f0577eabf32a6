"""The tariff schedules adopted in this ledger, and which one prices what on a given day."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.identity import tariff_book_id
from ledger.tariff_parser import check_no_same_day, parse_schedule
from ledger.tariff_plain import from_plain, to_plain
from ledger.tariffs import CatalogueError, Facts, NotEligible, PriceLine, Schedule


class TariffBook(Aggregate):
    """Every schedule adopted by deliberation, in adoption order. One per store."""

    @staticmethod
    def create_id() -> UUID:
        return tariff_book_id()

    @event("Opened")
    def __init__(self) -> None:
        self.schedules: tuple[Schedule, ...] = ()

    def adopt(self, schedule: Schedule) -> bool:
        """Record the adoption of ``schedule``. ``False`` if this very schedule was already adopted.

        What is recorded is the schedule as checked (its normalised form) beside the document
        as written: replaying reads the former and never runs the catalogue's checks again.
        """
        for other in self.schedules:
            if other.id == schedule.id:
                if _content(other) == _content(schedule):  # whatever the file was named
                    return False
                raise CatalogueError(
                    schedule.source, None,
                    f"schedule {schedule.id!r} was already adopted with other content; "
                    "a revision is a new schedule with its own id and a later effective_from",
                )
        check_no_same_day(list(self.schedules), schedule)
        self._adopted(document=dict(schedule.document), schedule=to_plain(schedule))
        return True

    @event("TariffScheduleAdopted")
    def _adopted(self, document: dict[str, Any], schedule: dict[str, Any] | None) -> None:
        adopted = from_plain(schedule, document) if schedule is not None \
            else parse_schedule(document, stored=True)
        self.schedules = (*self.schedules, adopted)


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


def offer_line(schedule: Schedule, day: date, component: str, volume_gb: int,
               facts: Facts | None = None) -> PriceLine | None:
    """The line of ``schedule`` pricing one component (``access``, ``extra_storage``) of a volume
    for a body of these ``facts``.

    A barème may price the same volume differently for different bodies (a line for EPCI beside
    one for communes): the line chosen is the one whose eligibility the facts meet. With
    ``facts=None`` eligibility is not looked at (the first available line).
    Raises :class:`NotEligible` when lines price the volume but none is open to the body; the
    reason (or the missing fact) is the one of the first such line.
    """
    candidates = [line for line in schedule.lines
                  if (line.component, line.volume_gb) == (component, volume_gb)
                  and line.offer is not None and line.available_on(day)]
    if facts is None or not candidates:
        return candidates[0] if candidates else None
    refusals: list[NotEligible] = []
    for line in candidates:
        try:
            line.eligibility.check(facts, f"line {line.id!r}")
        except NotEligible as refusal:
            refusals.append(refusal)
            continue
        return line
    missing = [r for r in refusals if r.missing]
    raise (missing or refusals)[0]


def line_in_force(schedules: Iterable[Schedule], line_id: str, day: date,
                  adhesion_on: date | None = None) -> tuple[Schedule, PriceLine]:
    """The schedule and line that price ``line_id`` on ``day``.

    A line whose price is fixed for N years from the body's adhesion (``locked_years``,
    « fixée pour une durée de 5 ans ») is priced, during those years, by the schedule that
    was in force on the day of adhesion — whatever revisions say since.
    """
    schedules = list(schedules)
    holding = [s for s in schedules if s.in_force_on(day) and _has(s, line_id)]
    if not holding:
        raise CatalogueError(line_id, None, f"no schedule adopted in force on {day} has a "
                             f"line {line_id!r}")
    current = max(holding, key=lambda s: s.effective_from)
    line = current.line(line_id)
    if adhesion_on is not None and line.locked_years:
        from ledger.dates import add_years

        at_adhesion = [s for s in schedules if s.in_force_on(adhesion_on) and _has(s, line_id)]
        if at_adhesion:
            first = max(at_adhesion, key=lambda s: s.effective_from)
            locked = first.line(line_id)
            if locked.locked_years and day < add_years(adhesion_on, locked.locked_years):
                return first, locked
    return current, line


def _has(schedule: Schedule, line_id: str) -> bool:
    return any(line.id == line_id for line in schedule.lines)


def offer_volumes(schedule: Schedule, component: str) -> list[int]:
    """Volumes (GB) a schedule prices for a component, for messages."""
    return sorted({line.volume_gb for line in schedule.lines
                   if line.component == component and line.volume_gb is not None})


def _content(schedule: Schedule) -> dict:
    """What a schedule says, without the name of the file it was read from."""
    plain = to_plain(schedule)
    plain.pop("source", None)
    return plain
