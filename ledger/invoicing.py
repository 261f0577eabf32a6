"""Issued invoices and credit notes: numbered without gaps, never changed once issued.

French rules (CGI, annexe II, art. 242 nonies A): a unique number in a
chronological and continuous sequence per series and financial year. Series
``F`` for invoices, ``A`` for credit notes (avoirs): ``F-2027-000001``.

Every document is a plain JSON-able dict built by :func:`build_document` — a
pure function of its inputs — and recorded whole in the event that issues it,
with the SHA-256 of its canonical JSON.
"""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, timedelta
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


#: The format of the documents issued now. Each document records its format, and is derived
#: again by the rules of that format: 1 (before 2026-11) printed English line texts and no
#: payment terms; 2 speaks French, states its due date, payment terms, order forms and budget
#: section, and the reasons (and VATEX codes) of VAT exemptions.
FORMAT = 2

#: EN 16931 BT-121 codes (CEF VATEX list) of the categories whose code does not depend on the
#: article of law: outside the scope of VAT. An exempt line states its own (catalogue).
VATEX_OUTSIDE_SCOPE = "VATEX-EU-O"
#: The délai global de paiement of French public buyers (Code de la commande publique,
#: R2192-10): the default when the operator states none.
PAYMENT_DAYS = 30


def payment_terms(seller: Mapping[str, Any], kind: str) -> str:
    """EN 16931 BT-20, in French: the operator's own text, else how many days and how."""
    if seller.get("payment_terms"):
        return str(seller["payment_terms"])
    if kind == CREDIT_NOTE:
        return "Montant déduit des sommes dues, ou remboursé par le comptable public"
    days = int(seller.get("payment_days") or PAYMENT_DAYS)
    return f"Paiement à {days} jours à compter de la date d'émission"


def _exemption(category: str, lines: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """(reason, VATEX code) of a VAT category on a format-2 document."""
    code, _ = VAT_CATEGORIES[category]
    if code == "S":
        return None, None
    reasons = sorted({line["vat_reason"] for line in lines
                      if line["vat"] == category and line.get("vat_reason")})
    codes = sorted({line["vat_reason_code"] for line in lines
                    if line["vat"] == category and line.get("vat_reason_code")})
    if code == "O":
        return "; ".join(reasons) or DEFAULT_VAT_REASON, codes[0] if codes else \
            VATEX_OUTSIDE_SCOPE
    return "; ".join(reasons) or None, codes[0] if codes else None


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
    refers_to_issued_on: str | None = None,
    format: int = FORMAT,
) -> dict[str, Any]:
    """The document of an invoice or credit note: lines, VAT breakdown and totals.

    Line amounts are HT; VAT is computed per category on the sum of its lines
    and rounded once (EN 16931). Amounts are strings with two decimals. A pure
    function of its arguments: a document is derived again, byte for byte, from
    the same inputs and ``format``.
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
        tax = {
            "category": category, "code": code, "rate": rate,
            "base": format_amount(base), "amount": format_amount(base * Decimal(rate) / 100),
            "exemption_reason": None if code == "S" else DEFAULT_VAT_REASON,
        }
        if format >= 2:
            tax["exemption_reason"], tax["exemption_code"] = _exemption(category, lines)
        taxes.append(tax)
    total_ht = sum((Decimal(line["amount"]) for line in lines), Decimal(0))
    total_vat = sum((Decimal(t["amount"]) for t in taxes), Decimal(0))
    document = {
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
    if format >= 2:
        days = int(seller.get("payment_days") or PAYMENT_DAYS)
        budgets = sorted({line.get("budget") or "fonctionnement" for line in lines})
        document.update({
            "format": format,
            # BT-9: what an invoice asks to be paid by; a credit note asks nothing.
            "due_on": _due_on(issued_on, days).isoformat() if kind == INVOICE else None,
            "payment_terms": payment_terms(seller, kind),
            # BT-12: the order forms (bons de commande) the lines come from.
            "order_forms": sorted({line.get("contract") or line["order"] for line in lines}),
            "budget": budgets[0] if len(budgets) == 1 else None,
            # BT-26, beside BT-25: the issue date of the invoice this one credits or replaces.
            "refers_to_issued_on": refers_to_issued_on,
        })
    return document


def _due_on(issued_on: date, days: int) -> date:
    """The day an invoice issued on ``issued_on`` is due, ``days`` later."""
    try:
        return issued_on + timedelta(days=days)
    except OverflowError:
        raise BusinessRuleViolation(
            f"an invoice issued on {issued_on} would be due {days} days later, after the last "
            "day a date can be written (9999-12-31): check the issue date") from None


#: While set, the Invoicing aggregate keeps its numbering state (counters, dates, invoiced
#: charge keys, credits) but not the documents themselves: what a billing run needs, in memory
#: that does not grow with every document ever issued (:func:`lean`).
LEAN: ContextVar[bool] = ContextVar("lean_invoicing", default=False)


@contextmanager
def lean() -> Iterator[None]:
    token = LEAN.set(True)
    try:
        yield
    finally:
        LEAN.reset(token)


class Invoicing(Aggregate):
    """Every invoice and credit note issued, in issue order, and the periods closed. One per store.

    Numbers are taken here, in one aggregate: two billing runs racing on the
    same store cannot both append the same version, so one of them fails and
    retries from fresh state — no gap, no duplicate. Each document records the
    log position its figures were derived from (``basis_position``), so that it
    can be derived again from exactly the same history.
    """

    #: Whether a document issued adds its charge keys to :attr:`invoiced_keys`. A billing run
    #: turns it off on the aggregate it issues with (:meth:`issue_only`); a fold, a correction
    #: or any other reader gets every key.
    keeps_issued_keys = True

    @staticmethod
    def create_id() -> UUID:
        return invoicing_id()

    def issue_only(self) -> None:
        """From now on, this object records the documents it issues without adding their
        charge keys to :attr:`invoiced_keys`: for a billing run, which read the keys invoiced
        before it started and does not read them again (they were what still grew with the
        run: 33 MB of 287 000 invoices). The log keeps them; a fold has them all."""
        self.keeps_issued_keys = False

    @event("Opened")
    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.digests: dict[str, str] = {}
        self.basis: dict[str, int] = {}
        self.counters: dict[tuple[str, int], int] = {}
        self.last_issued_on: dict[tuple[str, int], str] = {}
        self.invoiced_keys: set[str] = set()
        self.credited: dict[str, str] = {}  # invoice number → credit note number
        self.closings: list[dict[str, Any]] = []
        self.closed_through: date | None = None

    def check_open(self, issued_on: date) -> None:
        """Refuse an issue date in a closed period."""
        if self.closed_through is not None and issued_on <= self.closed_through:
            raise BusinessRuleViolation(
                f"the books are closed through {self.closed_through} "
                f"(ledger audit close): nothing can be issued on {issued_on}")

    def next_number(self, kind: str, issued_on: date) -> str:
        """The number the next document of this kind issued on ``issued_on`` will take."""
        self.check_open(issued_on)
        series = (SERIES[kind], issued_on.year)
        last = self.last_issued_on.get(series)
        if last is not None and issued_on.isoformat() < last:
            raise BusinessRuleViolation(
                f"series {series[0]}-{series[1]} already has a document issued on {last}: "
                f"numbers must follow dates, so nothing can be issued on {issued_on}"
            )
        return number(kind, issued_on.year, self.counters.get(series, 0) + 1)

    def issue(self, document: dict[str, Any], basis_position: int) -> None:
        """Record an issued document, derived from the log up to ``basis_position``.

        Its number must be the next of its series.
        """
        issued_on = date.fromisoformat(document["issued_on"])
        expected = self.next_number(document["kind"], issued_on)
        if document["number"] != expected:
            raise BusinessRuleViolation(
                f"document {document['number']} is out of sequence (next is {expected})")
        kind = self.CreditNoteIssued if document["kind"] == CREDIT_NOTE else self.InvoiceIssued
        self.trigger_event(kind, document=document, digest=digest(document),
                           basis_position=basis_position)

    # The two events of issuing are classes of their own, not ``@event`` methods: a billing
    # run triggers one per document, and the decorator's argument matching per call was a
    # tenth of a run of 287 000 invoices.

    class InvoiceIssued(Aggregate.Event):
        document: dict[str, Any]
        digest: str
        basis_position: int

        def apply(self, aggregate: Invoicing) -> None:
            aggregate._record(self.document, self.digest, self.basis_position)
            if aggregate.keeps_issued_keys:
                aggregate.invoiced_keys |= {line["key"] for line in self.document["lines"]}

    class CreditNoteIssued(Aggregate.Event):
        document: dict[str, Any]
        digest: str
        basis_position: int

        def apply(self, aggregate: Invoicing) -> None:
            aggregate._record(self.document, self.digest, self.basis_position)
            aggregate.credited[self.document["refers_to"]] = self.document["number"]

    def _record(self, document: dict[str, Any], digest: str, basis_position: int) -> None:
        # State is updated in place: a billing run may issue a hundred thousand documents.
        kind, issued_on = document["kind"], document["issued_on"]
        series = (SERIES[kind], int(issued_on[:4]))
        if not LEAN.get():
            self.documents[document["number"]] = document
            self.digests[document["number"]] = digest
            self.basis[document["number"]] = basis_position
        self.counters[series] = self.counters.get(series, 0) + 1
        self.last_issued_on[series] = issued_on

    # Closings (clôtures) ------------------------------------------------------------------

    def close(self, period: str, today: date) -> dict[str, Any]:
        """Close a month (``2027-01``) or a year (``2027``): record its totals, and refuse any
        document dated on or before its last day from then on. Returns the closing."""
        kind, start, end = period_bounds(period)
        if end >= today:
            raise BusinessRuleViolation(
                f"{kind} {period} has not ended yet (it ends on {end}): it cannot be closed "
                "before its last day is over")
        for closing in self.closings:
            if closing["period"] == period:
                raise BusinessRuleViolation(f"{kind} {period} was already closed")
        if kind == "month" and self.closed_through is not None and end <= self.closed_through:
            raise BusinessRuleViolation(
                f"the books are already closed through {self.closed_through}, which includes "
                f"month {period}")
        if kind == "year" and self.closed_through is not None and end < self.closed_through:
            # A year is closed once its months are (its last day may be the last one closed);
            # one that ended before a later closing is a period skipped, or a mistyped year.
            raise BusinessRuleViolation(
                f"the books are already closed through {self.closed_through}, after the end of "
                f"year {period}: periods are closed in order")
        closing = closing_totals(self.documents.values(), kind, period, start, end)
        self._period_closed(**closing)
        return closing

    @event("PeriodClosed")
    def _period_closed(self, kind: str, period: str, start: date, end: date, documents: int,
                       invoiced: str, credited: str, net: str, cumulative_invoiced: str,
                       cumulative_credited: str, cumulative_net: str) -> None:
        self.closings.append({
            "kind": kind, "period": period, "start": start, "end": end, "documents": documents,
            "invoiced": invoiced, "credited": credited, "net": net,
            "cumulative_invoiced": cumulative_invoiced,
            "cumulative_credited": cumulative_credited, "cumulative_net": cumulative_net,
        })
        if self.closed_through is None or end > self.closed_through:
            self.closed_through = end


def period_bounds(period: str) -> tuple[str, date, date]:
    """``("month", first day, last day)`` of ``2027-01``, or ``("year", …)`` of ``2027``."""
    try:
        if len(period) == 7 and period[4] == "-":
            year, month = int(period[:4]), int(period[5:])
            return "month", date(year, month, 1), date(year, month,
                                                       calendar.monthrange(year, month)[1])
        if len(period) == 4:
            year = int(period)
            return "year", date(year, 1, 1), date(year, 12, 31)
    except ValueError:
        pass
    raise BusinessRuleViolation(
        f"{period!r} is not a period: give a month such as 2027-01 or a year such as 2027")


def closing_totals(documents: Iterable[Mapping[str, Any]], kind: str, period: str, start: date,
                   end: date) -> dict[str, Any]:
    """A closing's figures: the period's documents (by issue date) and the cumulative totals
    of every document dated up to the period's end. Credit notes count negatively in net."""
    zero = Decimal("0.00")
    invoiced = credited = all_invoiced = all_credited = zero
    count = 0
    first, last = start.isoformat(), end.isoformat()
    for document in documents:
        issued_on = document["issued_on"]
        if issued_on > last:
            continue
        amount = Decimal(document["total_ht"])
        credit = document["kind"] == CREDIT_NOTE
        if credit:
            all_credited += amount
        else:
            all_invoiced += amount
        if issued_on >= first:
            count += 1
            if credit:
                credited += amount
            else:
                invoiced += amount
    return {
        "kind": kind, "period": period, "start": start, "end": end, "documents": count,
        "invoiced": format_amount(invoiced), "credited": format_amount(credited),
        "net": format_amount(invoiced - credited),
        "cumulative_invoiced": format_amount(all_invoiced),
        "cumulative_credited": format_amount(all_credited),
        "cumulative_net": format_amount(all_invoiced - all_credited),
    }
