"""Billing runs and corrections: turn derived charges into issued, numbered documents."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from itertools import groupby
from typing import Any

import attrs
import orjson
from eventsourcing.persistence import IntegrityError

from commands.provenance import metadata
from eventstore.app import LedgerApplication
from eventstore.log import LogEntry
from ledger.categories import category
from ledger.customer import Customer
from ledger.dates import french_date
from ledger.errors import LedgerError
from ledger.events import REGISTRY
from ledger.identity import customer_id, subscription_id
from ledger.invoicing import (
    CREDIT_NOTE,
    FORMAT,
    INVOICE,
    Invoicing,
    build_document,
    invoicing_id,
    lean,
)
from ledger.money import format_amount, french_amount
from ledger.operator import Operator, operator_id
from ledger.tariffs import VAT_CATEGORIES
from projections.charges import Charge, charges_as_of, subscription_charges
from projections.history import (
    Known,
    aggregate_known_at,
    customers_known_at,
    iter_subscriptions_known_at,
    known_at,
    subscription_known_at,
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


@attrs.frozen
class BillingReport:
    """What a run issued (or, in a dry run, would issue), whom it skipped, what it left for later."""

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
        "other billing runs kept taking the next invoice numbers; this run stopped (what it "
        "had already saved stays issued) — run it again to continue")


#: Documents issued between two saves of a billing run: memory stays bounded however many
#: documents a run issues (each save continues the numbering; a run stopped half-way is
#: continued by running it again).
BATCH = 2000


def bill(app: LedgerApplication, through: date, issued_on: date, by: str | None = None,
         on_subscription: Callable[[], None] | None = None, *, in_advance: bool = False,
         dry_run: bool = False, format: int = FORMAT,
         note: dict[str, Any] | None = None, keep_documents: bool = True,
         on_issued: Callable[[dict[str, Any]], None] | None = None) -> BillingReport:
    """Invoice every charge dated on or before ``through`` that no invoice holds yet.

    One invoice per customer and charge date, numbered in series F of the issue
    year. A charge dated after the issue date is left for a later run unless
    ``in_advance``. A customer whose mandatory Chorus Pro reference for the charge's
    year is missing, or who has no postal address, gets no invoice in this run — the
    report says so. With ``dry_run`` nothing is recorded: the report shows exactly
    what the run would issue. Running it again issues nothing new. Every figure is
    derived from the log up to one position, recorded with each document, so that it
    can be derived again from exactly that history.

    The log is read one subscription at a time and documents are saved every
    :data:`BATCH`: ``on_issued`` is called with each document once it is saved (or, in a dry
    run, built), and ``keep_documents=False`` keeps none of them in the report.

    ``format``: of the documents (``ledger.invoicing.FORMAT``); an earlier one only
    reproduces how documents were issued before, for tests of the history they left.
    """
    def group_of(charge: Charge) -> tuple[bool, str]:
        return document_group(charge) if format >= 2 else (False, "")

    kept: list[dict[str, Any]] = []
    totals = {"count": 0, "amount": Decimal("0.00")}

    def attempt() -> BillingReport:
        upto = app.position()
        seller = _operator(app, upto)
        with lean():
            invoicing = invoicing_state(app)
        invoicing.check_open(issued_on)
        invoiced = invoicing.invoiced_keys
        schedules = tariffs_known_at(app, upto)
        due: list[Charge] = []
        later, later_amount = 0, Decimal("0.00")
        for subscription in iter_subscriptions_known_at(app, upto, on_subscription):
            for charge in subscription_charges(subscription, schedules):
                if charge.charge_date > through or charge.key in invoiced:
                    continue
                if not in_advance and charge.charge_date > issued_on:
                    later += 1
                    later_amount += charge.amount
                    continue
                due.append(charge)
        due.sort(key=lambda c: (c.charge_date, c.customer, group_of(c), c.key))
        customers = customers_known_at(app, upto, only={c.customer for c in due}) \
            if due else {}
        batch: list[dict[str, Any]] = []
        skipped: dict[tuple[str, str], Skipped] = {}

        def flush() -> None:
            if batch and not dry_run:
                with lean():
                    app.save(invoicing, metadata=metadata("bill", by, **(note or {})))
            for document in batch:
                totals["count"] += 1
                totals["amount"] += Decimal(document["total_ht"])
                if on_issued is not None:
                    on_issued(document)
                if keep_documents:
                    kept.append(document)
            batch.clear()

        for (charge_date, key, _), group in groupby(
                due, key=lambda c: (c.charge_date, c.customer, group_of(c))):
            group = list(group)
            customer = customers.get(key)
            if customer is None:
                raise LedgerError(f"customer {key!r} of a charge is not registered")
            reason = None
            missing = customer.references_for(charge_date.year).missing()
            if missing:
                reason = _missing_references(charge_date.year, missing)
            elif not customer.address:
                reason = ("the buyer has no postal address, which an invoice must carry "
                          "(update_customer with an address)")
            if reason is not None:
                previous = skipped.get((key, reason))
                amount = sum((c.amount for c in group), Decimal("0.00"))
                skipped[(key, reason)] = Skipped(
                    key, reason, len(group) + (previous.charges if previous else 0),
                    amount + (previous.amount if previous else Decimal("0.00")))
                continue
            document = build_document(
                kind=INVOICE, number=invoicing.next_number(INVOICE, issued_on),
                issued_on=issued_on, seller=seller,
                buyer=buyer_snapshot(customer, charge_date.year, format),
                lines=[charge_line(c, format) for c in group], format=format,
            )
            with lean():
                invoicing.issue(document, basis_position=upto)
            batch.append(document)
            if len(batch) >= BATCH:
                flush()
        flush()
        return BillingReport(tuple(kept), tuple(skipped.values()), later, later_amount,
                             dry_run, totals["count"], totals["amount"])

    return _retrying(attempt)


# Corrections ---------------------------------------------------------------------------------

@attrs.frozen
class Proposal:
    """A correction the ledger proposes for an issued invoice that late news made wrong."""

    id: str
    invoice: str
    customer: str
    old_total: Decimal
    new_total: Decimal
    new_lines: tuple[dict[str, Any], ...]
    cause: str

    @property
    def difference(self) -> Decimal:
        return self.new_total - self.old_total

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "invoice": self.invoice, "customer": self.customer,
            "old_total": format_amount(self.old_total), "new_total": format_amount(self.new_total),
            "difference": format_amount(self.difference), "cause": self.cause,
            "credit_note": format_amount(self.old_total),
            "new_invoice_lines": list(self.new_lines),
        }


def _comparable(lines) -> list[tuple[str, str, str, str]]:
    return sorted((line["key"], line["amount"], line["period_start"], line["period_end"])
                  for line in lines)


def charges_by_key(known: Known) -> dict[str, Charge]:
    """Every charge ``known`` gives rise to, whatever its date, by its stable key."""
    return {charge.key: charge for charge in charges_as_of(known, date.max)}


def lines_for(charges: dict[str, Charge], keys: set[str], format: int = FORMAT
              ) -> list[dict[str, Any]]:
    """The lines the given charge keys come to now (a charge no longer due is dropped)."""
    return [charge_line(charges[key], format) for key in sorted(keys) if key in charges]


#: What a late entry is, as the reason of a correction says it to a member.
_NEWS = {
    "subscription.termination_requested": "Résiliation reçue le {received_on}",
    "subscription.storage_added": "Commande de stockage {order} reçue le {received_on}",
    "subscription.service_activated": "Activation du service le {activated_on}",
    "subscription.order_signed": "Bon de commande {order} reçu le {received_on}",
}


def _effects(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[str]:
    """What changed, line by line, in French: « période réduite au 24/03/2027 »."""
    now = {line["key"]: line for line in new}
    effects = []
    for line in sorted(old, key=lambda line: line["key"]):
        after = now.get(line["key"])
        if after is None:
            effects.append(f"période du {french_date(line['period_start'])} au "
                           f"{french_date(line['period_end'])} annulée")
        elif after["period_end"] != line["period_end"]:
            effects.append(f"période réduite au {french_date(after['period_end'])}"
                           if after["period_end"] < line["period_end"]
                           else f"période prolongée au {french_date(after['period_end'])}")
        elif after["amount"] != line["amount"]:
            effects.append(f"montant de {french_amount(line['amount'])} porté à "
                           f"{french_amount(after['amount'])}")
    return effects


def late_news(app: LedgerApplication, domains: set[str], after: int, upto: int
              ) -> list[dict[str, Any]]:
    """What was recorded for these domains after position ``after`` and up to ``upto``: why an
    invoice changed. Each item: its position, recorded time, stable event name and a French
    phrase."""
    news = []
    for domain in sorted(domains):
        for event in app.events_of(subscription_id(domain), upto):
            if event.log_position > after:
                name = REGISTRY.by_class[type(event)].name
                fields = {key: french_date(value) if key.endswith("_on") else value
                          for key, value in vars(event).items()}
                recorded = app.recorder.recorded_at(event.log_position)
                news.append({
                    "position": event.log_position, "recorded_at": recorded.isoformat(),
                    "event": name, "domain": domain,
                    "what": _NEWS.get(name, "Écriture {name}").format(name=name, **fields)})
    return news


def _cause(app: LedgerApplication, domains: set[str], after: int, upto: int,
           old: list[dict[str, Any]], new: list[dict[str, Any]]) -> str:
    """Why an invoice changed, as a French sentence: what was recorded for these domains after
    position ``after``, when it was recorded, and what it does to the invoice."""
    news = [f"{item['what']} ({item['domain']}), enregistrée le "
            f"{french_date(item['recorded_at'][:10])}"
            for item in late_news(app, domains, after, upto)]
    if not news:
        news = ["Barème ou autre écriture enregistré après la facture"]
    effects = list(dict.fromkeys(_effects(old, new)))  # each effect once, in order
    return "; ".join(news) + (" : " + ", ".join(effects) if effects else "")


def customer_documents(app: LedgerApplication, customer: str, upto: int
                       ) -> tuple[dict[str, dict[str, Any]], dict[str, int], dict[str, str]]:
    """(documents, basis positions, credited) of one customer, through the log's index of
    references: the cost follows the customer's own documents, not every document issued."""
    issuing = {REGISTRY.name_of(Invoicing, "InvoiceIssued"),
               REGISTRY.name_of(Invoicing, "CreditNoteIssued")}
    documents, basis, credited = {}, {}, {}
    for position in app.recorder.positions_of(f"customer:{customer}", upto):
        entry = app.recorder.entry(position)
        if entry is None or entry.topic not in issuing:
            continue
        fields = app.mapper.fields(entry)
        document = fields["document"]
        documents[document["number"]] = document
        basis[document["number"]] = fields["basis_position"]
        if document["kind"] == CREDIT_NOTE:
            credited[document["refers_to"]] = document["number"]
    return documents, basis, credited


def proposals(app: LedgerApplication, customer: str | None = None) -> list[Proposal]:
    """Issued invoices whose lines differ from what the ledger now knows they should hold (of
    one customer, read through the index, when ``customer`` is given)."""
    upto = app.position()
    if customer is not None:
        documents, bases, credited = customer_documents(app, customer, upto)
        now = charges_by_key(known_at(app, upto, customer=customer))
    else:
        invoicing = invoicing_state(app, upto)
        documents, bases, credited = invoicing.documents, invoicing.basis, invoicing.credited
        now = charges_by_key(known_at(app, upto))
    found = []
    for number_, document in documents.items():
        if document["kind"] != INVOICE or number_ in credited:
            continue
        keys = {line["key"] for line in document["lines"]}
        current = lines_for(now, keys)
        if _comparable(current) == _comparable(document["lines"]):
            continue
        domains = {line["domain"] for line in document["lines"]}
        found.append(Proposal(
            id=number_, invoice=number_, customer=document["buyer"]["customer"],
            old_total=Decimal(document["total_ht"]),
            new_total=sum((Decimal(line["amount"]) for line in current), Decimal("0.00")),
            new_lines=tuple(current),
            cause=_cause(app, domains, bases[number_], upto, document["lines"], current),
        ))
    return found


REISSUE_CAUSE = ("Facture remplacée par des documents conformes : lignes hors du champ de la "
                 "TVA et lignes soumises, fonctionnement et investissement, sur des documents "
                 "distincts")


def reissue_proposal(app: LedgerApplication, number_: str) -> Proposal:
    """A correction of an invoice that is right but cannot be sent as it is (issued before
    billing split VAT scopes and budget sections): credit it, invoice the same charges again."""
    invoicing = invoicing_state(app)
    document = invoicing.documents.get(number_)
    if document is None or document["kind"] != INVOICE:
        raise LedgerError(f"no invoice {number_} was issued (ledger invoices list)")
    if number_ in invoicing.credited:
        raise LedgerError(f"{number_} was already credited by {invoicing.credited[number_]}")
    now = charges_by_key(known_at(app, app.position()))
    lines = lines_for(now, {line["key"] for line in document["lines"]})
    if _comparable(lines) != _comparable(document["lines"]):
        raise LedgerError(f"what {number_} should hold changed since it was issued: apply the "
                          "correction the ledger proposes for it (ledger corrections)")
    groups = {(VAT_CATEGORIES[line["vat"]][0] == "O", line["budget"]) for line in lines}
    if len(groups) < 2 and document.get("format", 1) >= 2:
        raise LedgerError(f"{number_} can be sent as it is: nothing to reissue")
    return Proposal(id=number_, invoice=number_, customer=document["buyer"]["customer"],
                    old_total=Decimal(document["total_ht"]),
                    new_total=sum((Decimal(line["amount"]) for line in lines), Decimal("0.00")),
                    new_lines=tuple(lines), cause=REISSUE_CAUSE)


def apply_correction(app: LedgerApplication, proposal_id: str, by: str, issued_on: date, *,
                     reissue: bool = False, note: dict[str, Any] | None = None
                     ) -> list[dict[str, Any]]:
    """Issue the credit note of a proposal and, where something is still due, new invoices
    (one per VAT scope and budget section). ``reissue``: the proposal is to credit invoice
    ``proposal_id`` and invoice its charges again (:func:`reissue_proposal`)."""
    if not by.strip():
        raise LedgerError("say who applies the correction (--by NAME)")

    def attempt() -> list[dict[str, Any]]:
        if reissue:
            chosen = reissue_proposal(app, proposal_id)
        else:
            try:  # a proposal's id is its invoice's number: read that customer's only
                owner = document_entry(app, proposal_id)[1]["document"]["buyer"]["customer"]
            except LedgerError:
                owner = None
            chosen = None if owner is None else next(
                (p for p in proposals(app, owner) if p.id == proposal_id), None)
        if chosen is None:
            raise LedgerError(f"no correction {proposal_id!r} is proposed (ledger corrections)")
        upto = app.position()
        with lean():  # the numbering state only: not every document ever issued
            invoicing = invoicing_state(app)
        invoicing.check_open(issued_on)
        original = document_entry(app, chosen.invoice)[1]["document"]
        credit = build_document(
            kind=CREDIT_NOTE, number=invoicing.next_number(CREDIT_NOTE, issued_on),
            issued_on=issued_on, seller=original["seller"], buyer=original["buyer"],
            lines=original["lines"], refers_to=original["number"], cause=chosen.cause,
            refers_to_issued_on=original["issued_on"],
        )
        with lean():
            invoicing.issue(credit, basis_position=upto)
        issued = [credit]
        if chosen.new_lines:
            customer = _customer(app, chosen.customer, upto)
            year = date.fromisoformat(chosen.new_lines[0]["charge_date"]).year
            # What is still due, on as many documents as it takes (see document_group).
            groups: dict[tuple[bool, str], list[dict[str, Any]]] = {}
            for line in chosen.new_lines:
                group = (VAT_CATEGORIES[line["vat"]][0] == "O", line["budget"])
                groups.setdefault(group, []).append(line)
            for group in sorted(groups):
                replacement = build_document(
                    kind=INVOICE, number=invoicing.next_number(INVOICE, issued_on),
                    issued_on=issued_on, seller=_operator(app, upto),
                    buyer=buyer_snapshot(customer, year),
                    lines=groups[group], refers_to=original["number"], cause=chosen.cause,
                    refers_to_issued_on=original["issued_on"],
                )
                with lean():
                    invoicing.issue(replacement, basis_position=upto)
                issued.append(replacement)
        app.save(invoicing, metadata=metadata("corrections apply", by, **(note or {})))
        return issued

    return _retrying(attempt)


# Reproducibility -----------------------------------------------------------------------------

@attrs.frozen
class Verification:
    """An issued document as recorded, and the same document derived again from the log up
    to the position it was derived from."""

    document: dict[str, Any]
    recorded_digest: str
    rederived: dict[str, Any]
    position: int
    basis_position: int
    recorded_at: datetime
    issued_by: str | None

    @property
    def identical(self) -> bool:
        from ledger.invoicing import digest

        return digest(self.rederived) == self.recorded_digest == digest(self.document)


def document_entry(app: LedgerApplication, number_: str, upto: int | None = None
                   ) -> tuple[LogEntry, dict[str, Any]]:
    """The log entry that issued document ``number_``, and its decoded fields."""
    issuing = {REGISTRY.name_of(Invoicing, "InvoiceIssued"),
               REGISTRY.name_of(Invoicing, "CreditNoteIssued")}
    for position in app.recorder.positions_of(f"document:{number_}", upto):
        entry = app.recorder.entry(position)
        if entry is None or entry.topic not in issuing:
            continue
        fields = app.mapper.fields(entry)
        if fields["document"].get("number") == number_:
            return entry, fields
    raise LedgerError(f"no invoice or credit note numbered {number_!r}")


class Basis:
    """The log up to one position, read as needed: what documents are derived from.

    With ``whole``, every subscription and customer is read in one scan (for a
    billing run's thousands of documents); otherwise each domain and customer is
    read on its own (for one document).
    """

    def __init__(self, app: LedgerApplication, position: int, *, whole: bool = False,
                 keys: set[str] | None = None, customers: set[str] | None = None) -> None:
        self.app, self.position, self.whole, self.keys = app, position, whole, keys
        self.wanted_customers = customers
        self._schedules: tuple | None = None
        self._seller: dict[str, Any] | None = None
        self._customers: dict[str, Customer] | None = None
        self._charges: dict[str, Charge] = {}
        self._domains: set[str] = set()

    def seller(self) -> dict[str, Any]:
        if self._seller is None:
            self._seller = _operator(self.app, self.position)
        return self._seller

    def customer(self, key: str) -> Customer:
        if self.whole:
            if self._customers is None:
                self._customers = customers_known_at(self.app, self.position,
                                                     only=self.wanted_customers)
            if key not in self._customers:
                raise LedgerError(f"customer {key!r} of a charge is not registered")
            return self._customers[key]
        return _customer(self.app, key, self.position)

    def charges(self, domains: set[str], *, explain: bool = False) -> dict[str, Charge]:
        if explain:  # with their derivations, computed afresh for these domains
            subscriptions = tuple(s for d in sorted(domains)
                                  if (s := subscription_known_at(self.app, d, self.position)))
            schedules = self._schedules or tariffs_known_at(self.app, self.position)
            return {c.key: c for c in charges_as_of(Known(subscriptions, schedules,
                                                          self.position), date.max,
                                                    explain=True)}
        if self.whole and not self._domains:
            # One scan, one subscription at a time; only the charges asked for are kept.
            schedules = tariffs_known_at(self.app, self.position)
            self._charges = {
                charge.key: charge
                for subscription in iter_subscriptions_known_at(self.app, self.position)
                for charge in subscription_charges(subscription, schedules)
                if self.keys is None or charge.key in self.keys}
            self._domains = {"*"}
        elif not self.whole:
            if self._schedules is None:
                self._schedules = tariffs_known_at(self.app, self.position)
            subscriptions = tuple(s for d in sorted(domains - self._domains)
                                  if (s := subscription_known_at(self.app, d, self.position)))
            self._charges.update(charges_by_key(Known(subscriptions, self._schedules,
                                                      self.position)))
            self._domains |= domains
        return self._charges


def rederive(app: LedgerApplication, document: dict[str, Any], basis: int | Basis,
             originals: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Derive a document again from the log up to its basis position, as the run that issued
    it did. A credit note repeats the invoice it cancels (from ``originals`` if given)."""
    if isinstance(basis, int):
        basis = Basis(app, basis)
    format_ = document.get("format", 1)  # documents of format 1 did not record it
    if document["kind"] == CREDIT_NOTE:
        refers_to = document["refers_to"]
        if originals is not None and refers_to in originals:
            original = originals[refers_to]
        else:
            original = document_entry(app, refers_to)[1]["document"]
        seller, buyer, lines = original["seller"], original["buyer"], original["lines"]
    else:
        keys = {line["key"] for line in document["lines"]}
        domains = {line["domain"] for line in document["lines"]}
        lines = lines_for(basis.charges(domains), keys, format_)
        year = date.fromisoformat(lines[0]["charge_date"]).year if lines else 0
        seller = basis.seller()
        buyer = buyer_snapshot(basis.customer(document["buyer"]["customer"]), year, format_)
    return build_document(
        kind=document["kind"], number=document["number"],
        issued_on=date.fromisoformat(document["issued_on"]), seller=seller, buyer=buyer,
        lines=lines, refers_to=document["refers_to"], cause=document["cause"],
        refers_to_issued_on=document.get("refers_to_issued_on"), format=format_,
    )


def verify(app: LedgerApplication, number_: str) -> Verification:
    """An issued document, and the same document derived again at its basis position."""
    entry, fields = document_entry(app, number_)
    document, basis = fields["document"], fields["basis_position"]
    by = orjson.loads(entry.metadata).get("actor")
    return Verification(document, fields["digest"], rederive(app, document, basis), entry.id,
                        basis, entry.recorded_at, by)
