"""What the ledger will bill: charges by charge date over a range of months, and year-end
accruals — for the budget (docs/forecast.md).

A forecast is the charges projection run forward: from the history as known at a log position,
tacit renewals continue to the contract end (R6) unless an assumption says otherwise, and
terminations already received apply (R7). With the default assumption its monthly totals are
exactly what ``ledger charges`` reports for the same months with the same knowledge.

What-ifs never write: a draft barème is priced as if adopted on a date, hypothetical commands
are applied to aggregates in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import attrs

from ledger import rules
from ledger.money import format_amount
from ledger.subscription import Contract, Subscription
from ledger.tariffs import Schedule
from projections.charges import Charge, contract_charges
from projections.history import Known

ASSUMPTIONS = ("renew", "notice-given", "end-of-term")


def month_bounds(first: str, last: str) -> tuple[date, date]:
    """The first day of month ``first`` and the last day of month ``last`` (YYYY-MM)."""
    from ledger.dates import add_months
    from ledger.errors import LedgerError

    try:
        start = date.fromisoformat(f"{first}-01")
        end = add_months(date.fromisoformat(f"{last}-01"), 1)
    except ValueError:
        raise LedgerError(f"months are written YYYY-MM between 1900-01 and 2199-12 "
                          f"(got {first} to {last})") from None
    if not (1900 <= start.year <= 2199 and 1900 <= end.year <= 2200):
        raise LedgerError(f"months are written YYYY-MM between 1900-01 and 2199-12 "
                          f"(got {first} to {last})")
    return start, date.fromordinal(end.toordinal() - 1)


def assumed(contract: Contract, assumption: str, on: date) -> Contract:
    """The contract as the assumption sees it from ``on``.

    ``renew``: as it is (tacit renewal to the contract end, terminations received apply);
    ``notice-given``: as if every member still subscribed gave notice on ``on`` (R7);
    ``end-of-term``: as if none renewed after the term running on ``on`` (R6).
    """
    if assumption == "renew" or contract.activated_on is None \
            or contract.termination_received_on is not None:
        return contract
    if assumption == "notice-given":
        if on < contract.received_on:
            return contract
        received = max(on, contract.activated_on)
        return attrs.evolve(contract, termination_received_on=received)
    if assumption == "end-of-term":
        if on > contract.ends_on:
            return contract
        _, _, term_end = rules.term(contract.activated_on, max(on, contract.activated_on),
                                    contract.ends_on)
        return attrs.evolve(contract, ends_on=term_end)
    raise ValueError(f"assumption must be one of {', '.join(ASSUMPTIONS)} (got {assumption!r})")


def forecast_charges(subscriptions: Iterable[Subscription], schedules: Sequence[Schedule],
                     start: date, end: date, assumption: str = "renew",
                     customer: str | None = None) -> Iterator[Charge]:
    """Every charge dated from ``start`` to ``end``, one subscription at a time."""
    for subscription in subscriptions:
        for contract in subscription.contracts:
            if customer is not None and contract.customer != customer:
                continue
            seen = assumed(contract, assumption, start)
            for charge in contract_charges(subscription.domain, seen, schedules):
                if start <= charge.charge_date <= end:
                    yield charge


def period_of(day: date, by: str) -> str:
    return f"{day.year}" if by == "year" else f"{day.year}-{day.month:02d}"


def group(charges: Iterable[Charge], by: str, key: str | None = None,
          categories: dict[str, str] | None = None) -> list[dict[str, str]]:
    """Rows ``{"period", [customer|line|category], "amount"}``, sorted, amounts as text."""
    totals: dict[tuple[str, str], Decimal] = {}
    for charge in charges:
        what = ""
        if key == "customer":
            what = charge.customer
        elif key == "line":
            what = charge.line
        elif key == "category":
            what = (categories or {}).get(charge.customer, "")
        slot = (period_of(charge.charge_date, by), what)
        totals[slot] = totals.get(slot, Decimal(0)) + charge.amount
    rows = []
    for (period, what), amount in sorted(totals.items()):
        row = {"period": period}
        if key is not None:
            row[key] = what
        row["amount"] = format_amount(amount)
        rows.append(row)
    return rows


def with_draft(schedules: Sequence[Schedule], draft: Schedule, draft_from: date | None
               ) -> tuple[Schedule, ...]:
    """The schedules as if ``draft`` were adopted, in force from ``draft_from`` (default: its
    own ``effective_from``)."""
    if draft_from is not None:
        draft = attrs.evolve(draft, effective_from=draft_from)
    return (*(s for s in schedules if s.id != draft.id), draft)


def hypothetical(known: Known, subscriptions: Iterable[Subscription]) -> Known:
    """``known`` with some subscriptions replaced or added (hypothetical commands)."""
    changed = {s.domain: s for s in subscriptions}
    if isinstance(known.subscriptions, tuple):
        kept = [s for s in known.subscriptions if s.domain not in changed]
        return Known(tuple(sorted([*kept, *changed.values()], key=lambda s: s.domain)),
                     known.schedules, known.position)
    return Known(_Replaced(known.subscriptions, changed), known.schedules, known.position)


@attrs.frozen
class _Replaced:
    """Streamed subscriptions with some replaced or added, still streamed: each iteration goes
    through the ledger again (the order differs from a sorted tuple's; every total is a sum)."""

    subscriptions: Iterable[Subscription]
    changed: dict[str, Subscription]

    def __iter__(self) -> Iterator[Subscription]:
        for subscription in self.subscriptions:
            if subscription.domain not in self.changed:
                yield subscription
        yield from self.changed.values()


# Year-end accruals ----------------------------------------------------------------------------

def accrual_rows(charges: Iterable[Charge], at: date, invoiced: dict[str, str]
                 ) -> list[dict[str, Any]]:
    """For every charge whose period straddles ``at`` (starts on or before it, ends after it):
    the part earned through ``at`` and the part deferred (produit constaté d'avance), pro rata
    of days with the ledger's one rounding rule."""
    rows = []
    for charge in charges:
        if not charge.period_start <= at < charge.period_end:
            continue
        earned = rules.prorated(charge.amount, charge.period_start, at, charge.period_end)
        rows.append({
            "customer": charge.customer, "domain": charge.domain, "line": charge.line,
            "section": charge.budget, "key": charge.key, "period_start": charge.period_start.isoformat(),
            "period_end": charge.period_end.isoformat(), "amount": format_amount(charge.amount),
            "earned": format_amount(earned), "deferred": format_amount(charge.amount - earned),
            "invoiced_by": invoiced.get(charge.key),
        })
    return rows
