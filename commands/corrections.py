"""Corrections: issued invoices whose lines differ from what the ledger now knows, the credit
notes and new invoices that set them right, and their causes (late news)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal
from typing import Any

import attrs

from commands.billing import (
    _customer,
    _operator,
    _retrying,
    buyer_snapshot,
    charges_by_key,
    invoicing_state,
    lines_for,
)
from commands.unit_of_work import record
from commands.verification import document_entry
from eventstore.app import LedgerApplication
from ledger.dates import french_date
from ledger.errors import BusinessRuleViolation, LedgerError, NotFound, UnknownCustomer
from ledger.events import REGISTRY
from ledger.identity import customer_id, subscription_id
from ledger.invoicing import (
    CREDIT_NOTE,
    INVOICE,
    Invoicing,
    build_document,
    lean,
)
from ledger.money import format_amount, french_amount
from ledger.tariffs import VAT_CATEGORIES
from projections.history import aggregate_known_at, known_at


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
                name = REGISTRY.of_event(event).name
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
        if aggregate_known_at(app, customer_id(customer), upto) is None:
            raise UnknownCustomer(customer)  # as `charges --customer` says
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
                     reissue: bool = False, note: dict[str, Any] | None = None,
                     also: Callable[[list[dict[str, Any]]], Iterable[Any]] | None = None
                     ) -> list[dict[str, Any]]:
    """Issue the credit note of a proposal and, where something is still due, new invoices
    (one per VAT scope and budget section), in one transaction. ``reissue``: the proposal is to
    credit invoice ``proposal_id`` and invoice its charges again (:func:`reissue_proposal`).
    ``also``: more aggregates to save in the same transaction, from the documents issued (an
    HTTP request's idempotency record)."""
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
            raise NotFound(f"no correction {proposal_id!r} is proposed (ledger corrections)")
        upto = app.position()
        with lean():  # the numbering state only: not every document ever issued
            invoicing = invoicing_state(app)
        invoicing.check_open(issued_on)
        original = document_entry(app, chosen.invoice)[1]["document"]
        if issued_on.isoformat() < original["issued_on"]:
            # A credit note dated before the invoice it credits (a typo in the year, most
            # often) would put the correction in an exercice the titre was never in.
            raise BusinessRuleViolation(
                f"{original['number']} was issued on {original['issued_on']}: its correction "
                f"cannot be issued before that (--issue-date {issued_on})")
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
        record(app, invoicing, *(also(issued) if also is not None else ()),
               via="corrections apply", by=by, **(note or {}))
        return issued

    return _retrying(attempt)


# Reproducibility -----------------------------------------------------------------------------
