"""What a new barème changes: line by line, and for each current customer (before a vote)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from ledger import rules
from ledger.money import format_amount
from ledger.tariffs import PriceLine, Schedule, summary


def _describe(line: PriceLine) -> str:
    parts = [summary(line), line.timing]
    if line.eligibility.any_of:
        parts.append(f"for {line.eligibility.describe()}")
    if line.available_from or line.available_until:
        parts.append(f"available {line.available_from or '…'} → {line.available_until or '…'}")
    if line.locked_years:
        parts.append(f"fixed for {line.locked_years} years from adhesion")
    return "; ".join(parts)


def line_changes(old: Schedule, new: Schedule) -> list[dict[str, Any]]:
    """Lines removed, added, and changed (price, timing, who may buy, availability)."""
    before = {line.id: line for line in old.lines}
    after = {line.id: line for line in new.lines}
    changes: list[dict[str, Any]] = []
    for line_id in sorted(before.keys() | after.keys()):
        a, b = before.get(line_id), after.get(line_id)
        if b is None:
            changes.append({"line": line_id, "change": "removed", "before": _describe(a)})
        elif a is None:
            changes.append({"line": line_id, "change": "added", "after": _describe(b)})
        elif _describe(a) != _describe(b) or a.vat != b.vat or a.label != b.label:
            changes.append({"line": line_id, "change": "changed", "before": _describe(a),
                            "after": _describe(b)})
    for offer_id in sorted({o.id for o in old.offers} | {o.id for o in new.offers}):
        a, b = old.offer(offer_id), new.offer(offer_id)
        described = [None if o is None else f"until {o.ends_on}; for {o.eligibility.describe()}"
                     for o in (a, b)]
        if described[0] != described[1]:
            changes.append({"line": f"offer {offer_id}", "change": "terms",
                            "before": described[0], "after": described[1]})
    return changes


def customer_comparison(app: Any, old: Schedule, new: Schedule,
                        on: date | None = None) -> list[dict[str, str]]:
    """For every subscription running now, its yearly packs and its tier's access fee priced by
    each schedule (as if each were the one in force), side by side."""
    from projections.history import all_subscriptions_known_at

    rows = []
    for subscription in all_subscriptions_known_at(app):
        contract = subscription.current
        amounts = []
        for schedule in (old, new):
            day = on or schedule.effective_from
            try:
                access = rules.access_fee([schedule], contract.storage_gb, day,
                                          contract.facts).amount
            except (rules.TariffMissing, rules.NotEligibleForLine):
                access = None
            yearly = Decimal(0)
            for storage_order in contract.storage_orders:
                for gb in storage_order.packs:
                    try:
                        yearly += rules.pack_fee([schedule], gb, day, contract.facts).amount
                    except (rules.TariffMissing, rules.NotEligibleForLine):
                        pass
            amounts.append((yearly, access))
        (old_yearly, old_access), (new_yearly, new_access) = amounts
        rows.append({
            "customer": contract.customer, "domain": subscription.domain,
            "yearly_old": format_amount(old_yearly), "yearly_new": format_amount(new_yearly),
            "yearly_difference": format_amount(new_yearly - old_yearly),
            "access_fee_old": "—" if old_access is None else format_amount(old_access),
            "access_fee_new": "—" if new_access is None else format_amount(new_access),
        })
    return sorted(rows, key=lambda r: (r["customer"], r["domain"]))
