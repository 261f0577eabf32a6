"""What the ledger answers to a read, as data: one function per question, used by the CLI's
``--json`` and by the HTTP API alike (the same document either way)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from eventstore.app import LedgerApplication
from ledger.errors import NotFound, UnknownCustomer, UnknownDomain
from ledger.identity import customer_id
from ledger.subscription import canonical_domain
from projections.charges import Charge, charges_as_of, iter_charges_as_of
from projections.history import (
    aggregate_known_at,
    known_at,
    subscription_known_at,
    tariffs_known_at,
)
from projections.status import status_as_of


def charges(app: LedgerApplication, as_of: date, upto: int, *, customer: str | None = None,
            domain: str | None = None, uninvoiced: bool = False,
            on_subscription=None) -> list[dict[str, Any]]:
    """``ledger charges --json``."""
    return list(iter_charges(app, as_of, upto, customer=customer, domain=domain,
                             uninvoiced=uninvoiced, on_subscription=on_subscription))


def iter_charges(app: LedgerApplication, as_of: date, upto: int, *,
                 customer: str | None = None, domain: str | None = None,
                 uninvoiced: bool = False, on_subscription=None) -> Iterator[dict[str, Any]]:
    """:func:`charges`, one at a time: all of them are derived a batch of customers at a time
    and never held together."""
    return (charge.to_json() for charge in charge_objects(
        app, as_of, upto, customer=customer, domain=domain, uninvoiced=uninvoiced,
        on_subscription=on_subscription))


def charge_objects(app: LedgerApplication, as_of: date, upto: int, *,
                   customer: str | None = None, domain: str | None = None,
                   uninvoiced: bool = False, on_subscription=None) -> Iterator[Charge]:
    """The charges of :func:`iter_charges`, as :class:`Charge` objects. A customer or a domain
    that the ledger does not know is an error raised at once, before any output."""
    domain = canonical_domain(domain) if domain else None
    if customer and aggregate_known_at(app, customer_id(customer), upto) is None:
        raise UnknownCustomer(customer)
    if domain:
        found_domain = subscription_known_at(app, domain, upto)
        if found_domain is None:
            raise UnknownDomain(domain)
        if customer and all(c.customer != customer for c in found_domain.contracts):
            # Not "no charge": the two never went together (a domain mistyped for another).
            raise NotFound(f"domain {domain!r} has no order form of customer {customer!r} "
                           f"(its customers: "
                           f"{', '.join(sorted({c.customer for c in found_domain.contracts}))})")
    if domain is None and customer is None:
        found: Iterable[Charge] = iter_charges_as_of(app, upto, as_of,
                                                     tariffs_known_at(app, upto),
                                                     on_subscription)
    else:
        known = known_at(app, upto, domain=domain, customer=customer if domain is None else None)
        found = charges_as_of(known, as_of, customer=customer)
    if uninvoiced:
        from commands.billing import invoicing_state

        invoiced = invoicing_state(app, upto).invoiced_keys
        found = (c for c in found if c.key not in invoiced)
    return iter(found)


def subscription(app: LedgerApplication, domain: str, as_of: date, upto: int) -> dict[str, Any]:
    """``ledger subscription DOMAIN --json``."""
    domain = canonical_domain(domain)
    return status_as_of(subscription_known_at(app, domain, upto), domain, as_of).to_json()


def customers(app: LedgerApplication, upto: int) -> list[dict[str, Any]]:
    """``ledger customers --json``."""
    from projections.history import all_subscriptions_known_at, customers_known_at

    domains: dict[str, list[str]] = {}
    for one in all_subscriptions_known_at(app, upto):
        for contract in one.contracts:
            domains.setdefault(contract.customer, [])
            if one.domain not in domains[contract.customer]:
                domains[contract.customer].append(one.domain)
    return [{"customer": c.key, "name": c.name, "siret": c.siret, "category": c.category,
             "kind": c.kind, "category_label": c.category_label, "member": c.member,
             "member_communes": c.member_communes, "population": c.population,
             "address": c.address, "domains": domains.get(c.key, [])}
            for c in sorted(customers_known_at(app, upto).values(), key=lambda c: c.key)]


def subscriptions(app: LedgerApplication, as_of: date, upto: int) -> list[dict[str, Any]]:
    """``ledger subscriptions --json``."""
    from projections.history import all_subscriptions_known_at

    rows = []
    for one in all_subscriptions_known_at(app, upto):
        try:
            rows.append(status_as_of(one, one.domain, as_of).to_json())
        except UnknownDomain:
            continue  # no order form received by that date
    return rows


def history(app: LedgerApplication, subject: str, upto: int) -> list[dict[str, Any]]:
    """``ledger history SUBJECT --json``."""
    from projections.timeline import history as timeline

    return [moment.to_json() for moment in timeline(app, subject, upto)]


def invoices(app: LedgerApplication, upto: int | None = None) -> list[dict[str, Any]]:
    """``ledger invoices list --json``."""
    from commands.billing import invoicing_state

    invoicing = invoicing_state(app, upto)
    return [{"number": d["number"], "kind": d["kind"], "issued_on": d["issued_on"],
             "customer": d["buyer"]["customer"], "total_ht": d["total_ht"],
             "refers_to": d["refers_to"], "credited_by": invoicing.credited.get(d["number"])}
            for d in invoicing.documents.values()]


def invoice(app: LedgerApplication, number: str) -> dict[str, Any]:
    """``ledger invoice show NUMBER --json``."""
    from commands.verification import verify

    check = verify(app, number)
    return {"document": check.document, "sha256": check.recorded_digest,
            "position": check.position, "basis_position": check.basis_position,
            "recorded_at": check.recorded_at.isoformat(), "issued_by": check.issued_by,
            "rederived": check.rederived, "rederived_identical": check.identical}


def explain(app: LedgerApplication, number: str) -> dict[str, Any]:
    """``ledger explain NUMBER --json``."""
    from exports.explain import explain_document

    return explain_document(app, number)


def forecast(app: LedgerApplication, start: str, end: str, upto: int, *, by: str = "month",
             key: str | None = None, assume: str = "renew",
             customer: str | None = None) -> list[dict[str, str]]:
    """``ledger forecast --json`` (without a draft)."""
    from projections.forecast import forecast_charges, group, month_bounds
    from projections.history import customers_known_at

    first, last = month_bounds(start, end)
    known = known_at(app, upto, customer=customer, stream=customer is None)
    categories = ({k: c.category for k, c in customers_known_at(app, upto).items()}
                  if key == "category" else None)
    return group(forecast_charges(known.subscriptions, known.schedules, first, last, assume,
                                  customer), by, key, categories)
