"""What changed in the charges between two states of knowledge, and why.

The question behind every correction and every dispute: the ledger at log position P1 derived
these charges, at P2 those; which differ, and which entries recorded between P1 and P2 explain
each difference (a termination letter, more storage, an activation, a new barème).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from eventstore.app import LedgerApplication
from ledger.dates import french_date
from ledger.errors import UnknownCustomer
from ledger.events import REGISTRY
from ledger.identity import customer_id, subscription_id, tariff_book_id
from ledger.money import format_amount
from projections.charges import Charge, charges_as_of
from projections.history import aggregate_known_at, known_at

#: What an entry is, in French, by its stable name.
_WHAT = {
    "subscription.order_signed": "bon de commande {order} reçu le {received_on}",
    "subscription.service_activated": "service activé le {activated_on}",
    "subscription.storage_added": "commande de stockage {order} reçue le {received_on}",
    "subscription.termination_requested": "demande de résiliation reçue le {received_on}",
}


def _side(charge: Charge | None) -> dict[str, str] | None:
    if charge is None:
        return None
    return {"amount": format_amount(charge.amount), "period_start": charge.period_start.isoformat(),
            "period_end": charge.period_end.isoformat(), "rule": charge.rule,
            "schedule": charge.schedule}


def _entries_between(app: LedgerApplication, domain: str, first: int, second: int
                     ) -> list[dict[str, Any]]:
    found = []
    for event in app.events_of(subscription_id(domain), second):
        if event.log_position <= first:
            continue
        name = REGISTRY.of_event(event).name
        if name not in _WHAT:
            continue
        fields = {k: (french_date(v) if isinstance(v, date) else v)
                  for k, v in vars(event).items()}
        found.append({"position": event.log_position, "event": name,
                      "recorded_at": app.recorder.recorded_at(event.log_position).isoformat(),
                      "what": _WHAT[name].format(**fields)})
    return found


def _adoptions_between(app: LedgerApplication, first: int, second: int) -> list[dict[str, Any]]:
    found = []
    for event in app.events_of(tariff_book_id(), second):
        if event.log_position <= first or not hasattr(event, "document"):
            continue
        schedule_id = (getattr(event, "schedule", None) or event.document).get("id")
        found.append({"position": event.log_position, "event": "tariffs.schedule_adopted",
                      "recorded_at": app.recorder.recorded_at(event.log_position).isoformat(),
                      "what": f"barème {schedule_id} adopté", "schedule": schedule_id})
    return found


def charges_diff(app: LedgerApplication, first: int, second: int, *, as_of: date | None = None,
                 customer: str | None = None) -> dict[str, Any]:
    """Charges added, removed and changed between positions ``first`` and ``second``, each with
    the entries recorded in between that explain it."""
    if customer is not None and aggregate_known_at(app, customer_id(customer),
                                                   max(first, second)) is None:
        raise UnknownCustomer(customer)  # as `charges --customer` says
    day = as_of or date.max
    before = {c.key: c for c in charges_as_of(known_at(app, first), day, customer)}
    after = {c.key: c for c in charges_as_of(known_at(app, second), day, customer)}
    adoptions = _adoptions_between(app, first, second)
    cache: dict[str, list[dict[str, Any]]] = {}
    changes = []
    net = Decimal("0.00")
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if old is not None and new is not None and _side(old) == _side(new):
            continue
        change = "added" if old is None else "removed" if new is None else "changed"
        charge = new or old
        if charge.domain not in cache:
            cache[charge.domain] = _entries_between(app, charge.domain, first, second)
        because = list(cache[charge.domain])
        schedules = {side.schedule for side in (old, new) if side is not None}
        because += [a for a in adoptions if a["schedule"] in schedules]
        net += (new.amount if new else Decimal(0)) - (old.amount if old else Decimal(0))
        changes.append({"key": key, "customer": charge.customer, "domain": charge.domain,
                        "change": change, "before": _side(old), "after": _side(new),
                        "because": sorted(because, key=lambda e: e["position"])})
    return {"from_position": first, "to_position": second,
            "as_of": as_of.isoformat() if as_of else None, "customer": customer,
            "changes": changes, "net": format_amount(net)}
