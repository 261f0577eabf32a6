"""Issued invoices and credit notes: numbered without gaps, never changed once issued.

French rules (CGI, annexe II, art. 242 nonies A): a unique number in a
chronological and continuous sequence per series and financial year. Series
``F`` for invoices, ``A`` for credit notes (avoirs): ``F-2027-000001``.

Every document is a plain JSON-able dict built by :func:`build_document` — a
pure function of its inputs — and recorded whole in the event that issues it,
with the SHA-256 of its canonical JSON.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import Aggregate, event

from ledger.errors import BusinessRuleViolation
from ledger.identity import invoicing_id
from ledger.money import format_amount, to_cents
from ledger.tariffs import VAT_CATEGORIES

INVOICE, CREDIT_NOTE = "invoice", "credit_note"
SERIES = {INVOICE: "F", CREDIT_NOTE: "A"}

#: Printed with lines outside the scope of VAT when the catalogue gives no reason.
DEFAULT_VAT_REASON = "Contribution hors du champ d'application de la TVA"


def digest(document: Mapping[str, Any]) -> str:
    """SHA-256 of a document's canonical JSON (orjson, sorted keys)."""
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def number(kind: str, year: int, sequence: int) -> str:
    return f"{SERIES[kind]}-{year}-{sequence:06d}"


def build_document(
    *,
    kind: str,
    number: str,
    issued_on: date,
    seller: Mapping[str, Any],
    buyer: Mapping[str, Any],
    lines: Iterable[Mapping[str, Any]],
    refers_to: str | None = None,
    cause: str | None = None,
) -> dict[str, Any]:
    """The document of an invoice or credit note: lines, VAT breakdown and totals.

    Line amounts are HT; VAT is computed per category on the sum of its lines
    and rounded once (EN 16931). Amounts are strings with two decimals.
    """
    lines = [dict(line) for line in lines]
    breakdown: dict[tuple[str, str], Decimal] = {}
    for line in lines:
        code, rate = VAT_CATEGORIES[line["vat"]]
        breakdown[(line["vat"], str(rate))] = (
            breakdown.get((line["vat"], str(rate)), Decimal(0)) + Decimal(line["amount"]))
    taxes = []
    for (category, rate), base in sorted(breakdown.items()):
        code, _ = VAT_CATEGORIES[category]
        taxes.append({
            "category": category, "code": code, "rate": rate,
            "base": format_amount(base), "amount": format_amount(base * Decimal(rate) / 100),
            "exemption_reason": None if code == "S" else DEFAULT_VAT_REASON,
        })
    total_ht = sum((Decimal(line["amount"]) for line in lines), Decimal(0))
    total_vat = sum((Decimal(t["amount"]) for t in taxes), Decimal(0))
    return {
        "kind": kind,
        "number": number,
        "issued_on": issued_on.isoformat(),
        "currency": "EUR",
        "seller": dict(seller),
        "buyer": dict(buyer),
        "lines": lines,
        "vat_breakdown": taxes,
        "total_ht": format_amount(total_ht),
        "total_vat": format_amount(total_vat),
        "total_ttc": format_amount(to_cents(total_ht + total_vat)),
        "refers_to": refers_to,
        "cause": cause,
    }


class Invoicing(Aggregate):
    """Every invoice and credit note issued, in issue order. One per store.

    Numbers are taken here, in one aggregate: two billing runs racing on the
    same store cannot both append the same version, so one of them fails and
    retries from fresh state — no gap, no duplicate.
    """

    @staticmethod
    def create_id() -> UUID:
        return invoicing_id()

    @event("Opened")
    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.digests: dict[str, str] = {}
        self.issued_by: dict[str, str | None] = {}
        self.counters: dict[tuple[str, int], int] = {}
        self.last_issued_on: dict[tuple[str, int], str] = {}
        self.invoiced_keys: set[str] = set()
        self.credited: dict[str, str] = {}  # invoice number → credit note number

    def next_number(self, kind: str, issued_on: date) -> str:
        """The number the next document of this kind issued on ``issued_on`` will take."""
        series = (SERIES[kind], issued_on.year)
        last = self.last_issued_on.get(series)
        if last is not None and issued_on.isoformat() < last:
            raise BusinessRuleViolation(
                f"series {series[0]}-{series[1]} already has a document issued on {last}: "
                f"numbers must follow dates, so nothing can be issued on {issued_on}"
            )
        return number(kind, issued_on.year, self.counters.get(series, 0) + 1)

    def issue(self, document: dict[str, Any], by: str | None = None) -> None:
        """Record an issued document; its number must be the next of its series."""
        issued_on = date.fromisoformat(document["issued_on"])
        expected = self.next_number(document["kind"], issued_on)
        if document["number"] != expected:
            raise BusinessRuleViolation(
                f"document {document['number']} is out of sequence (next is {expected})")
        if document["kind"] == CREDIT_NOTE:
            self._credit_note_issued(document=document, digest=digest(document), by=by)
        else:
            self._invoice_issued(document=document, digest=digest(document), by=by)

    @event("InvoiceIssued")
    def _invoice_issued(self, document: dict[str, Any], digest: str, by: str | None) -> None:
        self._record(document, digest, by)
        self.invoiced_keys |= {line["key"] for line in document["lines"]}

    @event("CreditNoteIssued")
    def _credit_note_issued(self, document: dict[str, Any], digest: str, by: str | None) -> None:
        self._record(document, digest, by)
        self.credited[document["refers_to"]] = document["number"]

    def _record(self, document: dict[str, Any], digest: str, by: str | None) -> None:
        # State is updated in place: a billing run may issue a hundred thousand documents.
        kind, issued_on = document["kind"], document["issued_on"]
        series = (SERIES[kind], int(issued_on[:4]))
        self.documents[document["number"]] = document
        self.digests[document["number"]] = digest
        self.issued_by[document["number"]] = by
        self.counters[series] = self.counters.get(series, 0) + 1
        self.last_issued_on[series] = issued_on
