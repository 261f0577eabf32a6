"""Billing rules of the Suite Territoriale order form, one small pure function each.

Every function here depends only on its arguments: no clock, no store. Each is
quoted against the French sentence of the order form it implements in
``docs/rules.md`` (R1 … R8).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from functools import lru_cache

import attrs

from ledger.dates import ONE_DAY, add_months, add_years, days_between, first_of_next_month
from ledger.errors import BusinessRuleViolation
from ledger.money import to_cents
from ledger.pricing import PriceRequest, quote
from ledger.tariff_book import offer_line, offer_volumes, schedule_in_force
from ledger.tariffs import Facts, NotEligible, Offer, Schedule

#: Lines of a tariff schedule that price this offer carry ``offer = "suite-territoriale"``; the
#: schedule's ``[[offers]]`` table of that id states who may order it and until when.
OFFER = "suite-territoriale"

#: R7 — notice length in months.
NOTICE_MONTHS = 2

#: Each rule's French title and the sentence of the order form it implements (docs/rules.md),
#: as explanations quote them to a member.
RULES: dict[str, tuple[str, str]] = {
    "R1": ("Éligibilité", "BON DE COMMANDE pour les communes / CCAS <= 3500 habitants et les "
           "EPCI / CIAS <= 15 000 habitants"),
    "R2": ("Un bon de commande par nom de domaine", "1 bon de commande par nom de domaine "
           "existant ou à créer."),
    "R3": ("Frais d'accès au service", "La facture relative au frais d'accès au service "
           "(investissement) sera émise à l'établissement à l'activation du service. En cas de "
           "résiliation, les frais d'accès aux services ne sont pas remboursés."),
    "R4": ("Go supplémentaires", "Il sera établi à l'établissement une facture pour 12 mois sur "
           "la base des Go supplémentaires commandés, le départ de la facturation est fixé au 1er "
           "du mois suivant la réception par Mégalis du bon de commande signé."),
    "R5": ("Période écourtée", "Les services souscrits sont conclus pour une durée d'un an "
           "renouvelable par tacite reconduction, jusqu'au 31/12/2028."),
    "R6": ("Durée", "Les services souscrits sont conclus pour une durée d'un an renouvelable par "
           "tacite reconduction, jusqu'au 31/12/2028."),
    "R7": ("Résiliation", "Après cette période minimale d'une année, l'établissement peut "
           "résilier son accès au(x) service(s) souscrit(s) en respectant un préavis de deux mois "
           "(le départ du préavis étant fixé au 1er du mois suivant la date de réception par le "
           "Syndicat mixte de la demande de résiliation). Si la résiliation intervient avant la "
           "durée minimale d'un an, la contribution restera due jusqu'à la date anniversaire de "
           "mise en service avec respect du préavis."),
    "R8": ("Pas de remboursement", "En cas de résiliation, les frais de fonctionnement facturés "
           "ne sont pas remboursés."),
}


def offer_terms(schedules: Iterable[Schedule], day: date) -> Offer:
    """The terms of the offer (eligibility, end of the contract) in the barème in force on
    ``day``: an order form is governed by the barème in force when it is received."""
    schedule = _index(schedules).in_force(day) if isinstance(schedules, tuple) \
        else schedule_in_force(schedules, day, OFFER)
    if schedule is None:
        raise TariffMissing(
            f"no tariff schedule of the Suite Territoriale is in force on {day}: "
            "adopt one first (ledger tariff adopt catalogues/megalis-suite-territoriale-2026.toml)"
        )
    terms = schedule.offer(OFFER)
    if terms is None or terms.ends_on is None:
        raise TariffMissing(f"schedule {schedule.id} in force on {day} does not state the terms "
                            f"of the offer {OFFER!r} ([[offers]] with ends_on)")
    return terms


def contract_end(schedules: Iterable[Schedule], received_on: date) -> date:
    """R6: the last day of the contract — « renouvelable par tacite reconduction, jusqu'au
    31/12/2028 » in the 2026 barème — as the barème in force on receipt of the order states."""
    return offer_terms(schedules, received_on).ends_on


def ineligibility_reason(schedules: Iterable[Schedule], day: date, facts: Facts) -> str | None:
    """R1: why a public body may not order this offer, or ``None`` if it may.

    Who may order is stated by the barème in force on ``day`` (the 2026 one: communes and
    CCAS up to 3 500 inhabitants, EPCI and CIAS up to 15 000). A fact it needs and that is
    missing is a reason too.
    """
    try:
        offer_terms(schedules, day).eligibility.check(facts, "the offer")
    except NotEligible as refusal:
        return str(refusal)
    return None


def has_ended(service_end: date | None, on: date, end: date) -> bool:
    """R2: whether a subscription whose last day of service is ``service_end`` has ended on ``on``.

    A subscription with no known end runs to the contract end ``end``, so it has not
    ended before it.
    """
    last_day = service_end if service_end is not None else end
    return on > last_day


@attrs.frozen
class Fee:
    """An amount and the schedule line that priced it."""

    amount: Decimal
    schedule: str
    line: str
    label: str = ""
    vat: str = "outside_scope"
    vat_reason: str | None = None
    budget: str = "fonctionnement"
    vat_reason_code: str | None = None
    deliberation: str = ""
    deliberation_date: date | None = None


class TariffMissing(BusinessRuleViolation):
    """No adopted schedule prices what is asked on that day."""


class NotEligibleForLine(BusinessRuleViolation):
    """The schedule prices the volume, but not for a body like this one."""


#: Prices already found, per tuple of schedules (a replay prices the same lines hundreds of
#: thousands of times). Keyed by the tuple's identity, which the entry keeps alive; a few
#: tuples at most. See :class:`_Index`.
_PRICED: dict[int, tuple[tuple[Schedule, ...], _Index]] = {}

#: Shapes whose amount depends on the body's facts (population, …).
_FACT_SHAPES = frozenset({"per_inhabitant", "population_bands", "formula", "ratio"})


class _Index:
    """What pricing needs of a tuple of schedules, computed once: the schedule in force on each
    day (remembered), and for each schedule whether the body's facts or the day can change a
    line's choice or price — when they cannot, a price is found once per component and volume,
    whatever the day of the period or the body."""

    def __init__(self, schedules: tuple[Schedule, ...]) -> None:
        self.schedules = tuple(s for s in schedules if any(line.offer == OFFER
                                                            for line in s.lines))
        self.by_day: dict[date, Schedule | None] = {}
        self.fees: dict[tuple, Fee] = {}
        self.facts_matter: dict[str, bool] = {}
        self.dated: dict[str, tuple] = {}
        for schedule in self.schedules:
            lines = [line for line in schedule.lines if line.offer == OFFER]
            self.facts_matter[schedule.id] = any(
                line.eligibility.any_of or line.shape in _FACT_SHAPES for line in lines)
            self.dated[schedule.id] = tuple(line for line in lines
                                            if line.available_from or line.available_until)

    def in_force(self, day: date) -> Schedule | None:
        try:
            return self.by_day[day]
        except KeyError:
            found = schedule_in_force(self.schedules, day, OFFER)
            self.by_day[day] = found
            return found

    def key(self, schedule: Schedule, day: date, component: str, gb: int, facts: Facts) -> tuple:
        dated = self.dated[schedule.id]
        return (schedule.id, component, gb,
                facts if self.facts_matter[schedule.id] else None,
                tuple(line.available_on(day) for line in dated) if dated else ())


def _index(schedules: tuple[Schedule, ...]) -> _Index:
    """The :class:`_Index` of a tuple of schedules, made on first use."""
    known = _PRICED.get(id(schedules))
    if known is None or known[0] is not schedules:
        if len(_PRICED) >= 8:
            _PRICED.clear()
        known = _PRICED[id(schedules)] = (schedules, _Index(schedules))
    return known[1]


def _priced(schedules: Iterable[Schedule], day: date, component: str, gb: int, what: str,
            facts: Facts) -> Fee:
    """Price one component of the offer with the schedule in force on ``day``.

    A pure function of its arguments; results are remembered per tuple of schedules.
    """
    if not isinstance(schedules, tuple):
        return _price(schedules, day, component, gb, what, facts)
    index = _index(schedules)
    schedule = index.in_force(day)
    if schedule is None:
        return _price(schedules, day, component, gb, what, facts)  # raises, saying why
    key = index.key(schedule, day, component, gb, facts)
    fee = index.fees.get(key)
    if fee is None:
        fee = index.fees[key] = _price((schedule,), day, component, gb, what, facts)
    return fee


def _price(schedules: Iterable[Schedule], day: date, component: str, gb: int, what: str,
           facts: Facts) -> Fee:
    """The line of the schedule in force on ``day`` for this component and volume, open to a
    body of these ``facts``, quoted."""
    schedule = schedule_in_force(schedules, day, OFFER)
    if schedule is None:
        raise TariffMissing(
            f"no tariff schedule of the Suite Territoriale is in force on {day}: "
            "adopt one first (ledger tariff adopt catalogues/megalis-suite-territoriale-2026.toml)"
        )
    try:
        line = offer_line(schedule, day, component, gb, facts)
    except NotEligible as refusal:
        raise NotEligibleForLine(f"{what} {gb} GB in schedule {schedule.id}: {refusal}") from None
    if line is None:
        offered = ", ".join(str(v) for v in offer_volumes(schedule, component))
        raise TariffMissing(
            f"unknown {what} {gb} GB: schedule {schedule.id} in force on {day} offers {offered} GB"
        )
    # Eligibility was settled by the choice of the line; the quote prices it.
    request = PriceRequest(category=facts.category, kind=facts.kind,
                           population=facts.population, workstations=facts.workstations)
    return Fee(quote(line, request).amount, schedule.id, line.id, line.label, line.vat,
               line.vat_reason, line.budget, line.vat_reason_code,
               schedule.deliberation_reference, schedule.deliberation_date)


def access_fee(schedules: Iterable[Schedule], storage_gb: int, received_on: date,
               facts: Facts = Facts()) -> Fee:
    """R3: access fee of a storage tier, priced by the schedule in force on the order's receipt,
    on the line open to a body of ``facts`` (as declared when the order form was received).

    The 2026 schedule prices 25 GB 600 €, 50 GB 1 000 €, 100 GB 1 500 €,
    150 GB 2 000 €, 200 GB 2 500 €, for every eligible body.
    """
    return _priced(schedules, received_on, "access", storage_gb, "storage tier", facts)


def access_fee_period(activated_on: date, end: date) -> tuple[date, date]:
    """R3: the access fee is charged on activation and covers activation → the contract end."""
    return activated_on, end


def pack_fee(schedules: Iterable[Schedule], pack_gb: int, period_start: date,
             facts: Facts = Facts()) -> Fee:
    """R4: yearly fee of one extra-storage pack, priced by the schedule in force on the period's
    first day, on the line open to a body of ``facts``.

    The 2026 schedule prices 10 GB 60 €, 20 GB 90 €, 50 GB 180 € a year.
    """
    return _priced(schedules, period_start, "extra_storage", pack_gb, "extra-storage pack",
                   facts)


def billing_start(received_on: date) -> date:
    """R4: billing of extra storage starts on the 1st of the month after receipt of the order form."""
    return first_of_next_month(received_on)


@lru_cache(maxsize=4096)
def yearly_periods(start: date, end: date) -> tuple[tuple[date, date], ...]:
    """R4: consecutive 12-month periods (first day, last day) from ``start``.

    Tacit renewal repeats them; only periods starting on or before the contract
    end ``end`` are produced. The last one is returned whole: cutting it is R5's job.
    (Remembered: a replay asks for the same few dozen starts and ends again and again.)
    """
    periods = []
    k = 0
    while True:
        first = add_months(start, 12 * k)
        if first > end:
            return tuple(periods)
        periods.append((first, add_months(start, 12 * (k + 1)) - ONE_DAY))
        k += 1


def termination_known(termination_received_on: date | None, period_start: date) -> bool:
    """R8: whether a termination request had been received by a period's first day.

    A period whose first day comes before the receipt is charged in full.
    """
    return termination_received_on is not None and termination_received_on <= period_start


def charged_end(period_end: date, known_service_end: date | None, end: date) -> date:
    """R5: last day charged for a period — cut by the contract end and by a known end of service."""
    last = min(period_end, end)
    if known_service_end is not None:
        last = min(last, known_service_end)
    return last


def prorated(fee: Decimal, first: date, last_charged: date, last_of_full_period: date) -> Decimal:
    """R5: ``fee × days covered ÷ days in the full period``, rounded half-up to the cent."""
    covered = days_between(first, last_charged)
    full = days_between(first, last_of_full_period)
    return to_cents(fee * covered / full)


def term(activated_on: date, on: date, end: date) -> tuple[int, date, date]:
    """R6: the term running on ``on`` as (number, first day, last day).

    Term k runs from activation + (k−1) years to the day before activation +
    k years; the last one is cut at 2028-12-31. ``on`` must not be before the
    activation date.
    """
    if on < activated_on:
        raise ValueError("no term runs before the activation date")
    k = on.year - activated_on.year + 1
    # Step back or forth so that term k really contains `on` (anniversaries clamp).
    while add_years(activated_on, k - 1) > on:
        k -= 1
    while add_years(activated_on, k) <= on:
        k += 1
    first = add_years(activated_on, k - 1)
    last = min(add_years(activated_on, k) - ONE_DAY, end)
    return k, first, last


def notice_start(termination_received_on: date) -> date:
    """R7: notice starts on the 1st of the month after receipt of the termination request."""
    return first_of_next_month(termination_received_on)


def minimum_term_end(activated_on: date) -> date:
    """R7: the first anniversary of activation, before which service cannot end."""
    return add_years(activated_on, 1)


def service_end(activated_on: date, termination_received_on: date, end: date) -> date:
    """R7: last day of service after a termination request.

    The day before max(notice start + 2 months, activation + 1 year), and
    never later than the contract end ``end``.
    """
    notice_over = add_months(notice_start(termination_received_on), NOTICE_MONTHS)
    ends_before = max(notice_over, minimum_term_end(activated_on))
    return min(ends_before - ONE_DAY, end)
