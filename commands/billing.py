"""Billing runs: turn derived charges into issued, numbered documents (corrections in
:mod:`commands.corrections`, checks of issued documents in :mod:`commands.verification`)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from datetime import date
from decimal import Decimal
from typing import Any

import attrs
import orjson
from eventsourcing.persistence import IntegrityError

from commands.due_charges import DueCharges
from commands.provenance import metadata
from eventstore.app import LedgerApplication
from ledger.categories import category
from ledger.customer import Customer
from ledger.errors import LedgerError
from ledger.identity import customer_id
from ledger.invoicing import (
    FORMAT,
    INVOICE,
    Invoicing,
    build_document,
    invoicing_id,
    lean,
)
from ledger.money import format_amount
from ledger.operator import Operator, operator_id
from ledger.subscription import Subscription
from ledger.tariffs import VAT_CATEGORIES
from projections.charges import Charge, charges_as_of, subscription_charges
from projections.history import (
    Known,
    aggregate_known_at,
    customers_of,
    iter_subscriptions_known_at,
    tariffs_known_at,
)

#: How often a run retries when another writer took the next numbers first.
ATTEMPTS = 5


class NoOperator(LedgerError):
    def __init__(self) -> None:
        super().__init__(
            "the operator (the seller on invoices) is not registered: import a "
            "register_operator command first (docs/commands.md)")


@attrs.frozen
class Skipped:
    """A customer left out of a run, and why (what to record so that the next run bills it)."""

    customer: str
    reason: str
    charges: int = 1
    amount: Decimal = Decimal("0.00")

    def __str__(self) -> str:
        return (f"{self.customer}: no invoice for {self.charges} charge(s), "
                f"{format_amount(self.amount)} € HT — {self.reason}")


def _missing_references(year: int, missing: list[str]) -> str:
    return (f"the {' and '.join(missing)} that Chorus Pro requires for {year} is missing "
            "(set_billing_references)")


def _cannot_invoice(customer: Customer, year: int) -> str | None:
    """Why the customer cannot be sent an invoice for charges of ``year`` (``None``: it can)."""
    missing = customer.references_for(year).missing()
    if missing:
        return _missing_references(year, missing)
    if not customer.address:
        return ("the buyer has no postal address, which an invoice must carry "
                "(update_customer with an address)")
    return None


@attrs.frozen
class BillingReport:
    """What a run issued (or, in a dry run, would issue), whom it skipped, what it left."""

    issued: tuple[dict[str, Any], ...]
    skipped: tuple[Skipped, ...]
    deferred: int = 0  # charges dated after the issue date, left for a later run
    deferred_amount: Decimal = Decimal("0.00")
    dry_run: bool = False
    #: How many documents, and their total HT (``issued`` may be empty when the run was told
    #: not to keep them: ``keep_documents=False``).
    count: int = 0
    total: Decimal = Decimal("0.00")

    @property
    def complete(self) -> bool:
        """Whether every charge due through the date was invoiced (no customer skipped)."""
        return not self.skipped


def charge_line(charge: Charge, format: int = FORMAT) -> dict[str, Any]:
    """An invoice line for a charge: what it is, for which period, how it was priced.

    ``format``: that of the document the line is on (``ledger.invoicing.FORMAT``).
    """
    line = {
        "key": charge.key,
        "customer": charge.customer,
        "domain": charge.domain,
        "order": charge.order,
        "kind": charge.kind,
        "description": f"{charge.label} — {charge.domain}, {charge.basis}",
        "charge_date": charge.charge_date.isoformat(),
        "period_start": charge.period_start.isoformat(),
        "period_end": charge.period_end.isoformat(),
        "amount": format_amount(charge.amount),
        "rule": charge.rule,
        "schedule": charge.schedule,
        "line": charge.line,
        "vat": charge.vat,
        "vat_reason": charge.vat_reason,
    }
    if format >= 2:
        line.update(description=f"{charge.label} — {charge.domain}, {charge.basis_fr}",
                    contract=charge.contract, budget=charge.budget,
                    vat_reason_code=charge.vat_reason_code)
    return line


def buyer_snapshot(customer: Customer, year: int, format: int = FORMAT) -> dict[str, Any]:
    """The buyer as it stands now, with its Chorus Pro references of ``year`` (and, from
    format 2, its category and kind: what a titre de recette says of the debtor)."""
    references = customer.references_for(year)
    snapshot = {
        "customer": customer.key,
        "name": customer.name,
        "siret": customer.siret,
        "address": customer.address,
        "code_service": references.code_service,
        "engagement_number": references.engagement_number,
    }
    if format >= 2:
        snapshot["category"] = category(customer.category).id
        snapshot["kind"] = customer.kind
    return snapshot


def document_group(charge: Charge) -> tuple[bool, str]:
    """What must not share a document with what: lines outside the scope of VAT apart from the
    others (EN 16931 BR-O-11, BR-O-12), and each section of the budget apart (a titre de recette
    is fonctionnement or investissement)."""
    return VAT_CATEGORIES[charge.vat][0] == "O", charge.budget


def _operator(app: LedgerApplication, at: int | None = None) -> dict[str, Any]:
    operator: Operator | None = aggregate_known_at(app, operator_id(), at)
    if operator is None or operator.profile is None:
        raise NoOperator
    return operator.profile


def invoicing_state(app: LedgerApplication, at: int | None = None) -> Invoicing:
    """Every document issued up to log position ``at`` (all of them without it)."""
    return aggregate_known_at(app, invoicing_id(), at) or Invoicing()


def _customer(app: LedgerApplication, key: str, at: int | None = None) -> Customer:
    customer = aggregate_known_at(app, customer_id(key), at)
    if customer is None:
        raise LedgerError(f"customer {key!r} of a charge is not registered")
    return customer


def _retrying(attempt: Callable[[], Any]) -> Any:
    for _ in range(ATTEMPTS):
        try:
            return attempt()
        except IntegrityError:
            continue  # another writer issued documents meanwhile: start again from fresh state
    raise LedgerError(
        "other billing runs kept taking the next invoice numbers; this run stopped and "
        "nothing of it was stored — run it again once they have finished")


#: Documents issued between two saves of a billing run, inside its one transaction: memory
#: stays bounded however many documents a run issues, and the run is still all or nothing.
BATCH = 2000


def _received_on(subscription: Subscription) -> dict[str, date]:
    """When each order form of a subscription (its contracts' and their packs') was received;
    the earliest, for a reference recorded twice."""
    found: dict[str, date] = {}
    for contract in subscription.contracts:
        for order, received in ((contract.order, contract.received_on),
                                *((o.order, o.received_on) for o in contract.storage_orders)):
            found[order] = min(received, found.get(order, received))
    return found


def bill(app: LedgerApplication, through: date, issued_on: date, by: str | None = None,
         on_subscription: Callable[[], None] | None = None, *, in_advance: bool = False,
         dry_run: bool = False, format: int = FORMAT,
         note: dict[str, Any] | None = None, keep_documents: bool = True,
         on_issued: Callable[[dict[str, Any]], None] | None = None,
         also: Callable[[BillingReport], Iterable[Any]] | None = None) -> BillingReport:
    """Invoice every charge dated on or before ``through`` that no invoice holds yet.

    One invoice per customer and charge date, numbered in series F of the issue
    year. A charge dated after the issue date is left for a later run unless
    ``in_advance``. A customer whose mandatory Chorus Pro reference for the charge's
    year is missing, or who has no postal address, gets no invoice in this run — the
    report says so. With ``dry_run`` nothing is recorded: the report shows exactly
    what the run would issue. Running it again issues nothing new. Every figure is
    derived from the log up to one position, recorded with each document, so that it
    can be derived again from exactly that history.

    The run is one transaction: every document is stored, or none (a failure half-way, or
    another writer taking the next numbers first, leaves the log as it was). The log is read
    one subscription at a time and documents are saved every :data:`BATCH` inside that
    transaction, and spooled to a temporary file: ``on_issued`` is called with each document
    once the transaction is committed (in a dry run, once all are built), so that nothing is
    shown as issued that was not; ``keep_documents=False`` keeps none of them in the report.
    ``also``: more aggregates to save in the same transaction, from the run's report (an HTTP
    request's idempotency record).

    ``format``: of the documents (``ledger.invoicing.FORMAT``); an earlier one only
    reproduces how documents were issued before, for tests of the history they left.
    """
    def group_of(charge: Charge) -> tuple[bool, str]:
        return document_group(charge) if format >= 2 else (False, "")

    def attempt() -> BillingReport:
        upto = app.position()
        seller = _operator(app, upto)
        with lean():
            invoicing = invoicing_state(app)
        invoicing.check_open(issued_on)
        with DueCharges() as due:
            later, later_amount = _spool_due(due, invoicing.invoiced_keys, upto)
            invoicing.issue_only()  # what is due is decided: the keys are not read again
            return _issue(due, invoicing, upto, seller, later, later_amount)

    def _spool_due(due: DueCharges, invoiced: set[str], upto: int) -> tuple[int, Decimal]:
        """Spool every charge due in this run, and each buyer's snapshot; count those left
        for a later run."""
        schedules = tariffs_known_at(app, upto)
        later, later_amount = 0, Decimal("0.00")
        for subscription in iter_subscriptions_known_at(app, upto, on_subscription):
            received: dict[str, date] | None = None
            for charge in subscription_charges(subscription, schedules):
                if charge.charge_date > through or charge.key in invoiced:
                    continue
                if charge.charge_date > issued_on:
                    # In advance, a charge is invoiced only if its order form had been
                    # received by the issue date (an issue date typed decades early would
                    # otherwise open a series of invoices older than what they bill).
                    if in_advance and received is None:
                        received = _received_on(subscription)
                    if not in_advance or received[charge.order] > issued_on:
                        later += 1
                        later_amount += charge.amount
                        continue
                due.add_due(charge.charge_date.isoformat(), charge.customer, group_of(charge),
                            charge.key, charge.amount, charge_line(charge, format))
        for needed in due.buyers_needed():  # a batch of customers billed, and their years
            for customer in customers_of(app, needed, upto).values():
                for year in needed[customer.key]:
                    reason = _cannot_invoice(customer, year)
                    due.add_buyer(customer.key, year, None if reason else
                                  buyer_snapshot(customer, year, format), reason)
        return later, later_amount

    def _issue(due: DueCharges, invoicing: Invoicing, upto: int, seller: dict[str, Any],
               later: int, later_amount: Decimal) -> BillingReport:
        """Number and save a document per group of due charges, in one transaction."""
        skipped: dict[tuple[str, str], Skipped] = {}
        kept: list[dict[str, Any]] = []
        count, total, pending = 0, Decimal("0.00"), 0
        common = metadata("bill", by, **(note or {}))
        with tempfile.TemporaryFile() as spool:
            with nullcontext() if dry_run else app.session() as session:

                def save() -> None:
                    nonlocal pending
                    if pending and session is not None:
                        with lean():
                            session.save(invoicing, metadata=common)
                    pending = 0

                for group in due.groups():
                    key = group.customer
                    if group.buyer is None and group.reason is None:
                        raise LedgerError(f"customer {key!r} of a charge is not registered")
                    if group.reason is not None:
                        previous = skipped.get((key, group.reason))
                        skipped[(key, group.reason)] = Skipped(
                            key, group.reason,
                            len(group.lines) + (previous.charges if previous else 0),
                            group.amount + (previous.amount if previous else Decimal("0.00")))
                        continue
                    document = build_document(
                        kind=INVOICE, number=invoicing.next_number(INVOICE, issued_on),
                        issued_on=issued_on, seller=seller, buyer=group.buyer,
                        lines=group.lines, format=format,
                    )
                    with lean():
                        invoicing.issue(document, basis_position=upto)
                    count += 1
                    total += Decimal(document["total_ht"])
                    if on_issued is not None:
                        spool.write(orjson.dumps(document) + b"\n")
                    if keep_documents:
                        kept.append(document)
                    pending += 1
                    if pending >= BATCH:
                        save()
                save()
                report = BillingReport(tuple(kept), tuple(skipped.values()), later,
                                       later_amount, dry_run, count, total)
                if session is not None and also is not None:
                    session.save(*also(report), metadata=common)
            # Committed (or, in a dry run, all built): now the documents may be shown.
            if on_issued is not None:
                spool.seek(0)
                for line in spool:
                    on_issued(orjson.loads(line))
        return report

    return _retrying(attempt)


# Corrections ---------------------------------------------------------------------------------

def charges_by_key(known: Known) -> dict[str, Charge]:
    """Every charge ``known`` gives rise to, whatever its date, by its stable key."""
    return {charge.key: charge for charge in charges_as_of(known, date.max)}


def lines_for(charges: dict[str, Charge], keys: set[str], format: int = FORMAT
              ) -> list[dict[str, Any]]:
    """The lines the given charge keys come to now (a charge no longer due is dropped)."""
    return [charge_line(charges[key], format) for key in sorted(keys) if key in charges]
