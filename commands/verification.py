"""An issued document checked against the ledger: its entry, its digest, and the same document
derived again from what the ledger knew at its basis position (``ledger invoice show``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import attrs
import orjson

from commands.billing import (
    _customer,
    _operator,
    buyer_snapshot,
    charges_by_key,
    lines_for,
)
from eventstore.app import LedgerApplication
from eventstore.log import LogEntry
from ledger.customer import Customer
from ledger.errors import LedgerError
from ledger.events import REGISTRY
from ledger.invoicing import (
    CREDIT_NOTE,
    Invoicing,
    build_document,
)
from projections.charges import Charge, charges_as_of
from projections.history import (
    Known,
    subscription_known_at,
    tariffs_known_at,
)


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

    Each domain and customer is read on its own (for one document); a billing run's thousands
    of documents are checked a batch of customers at a time, each batch's charges and customers
    derived together (:meth:`of_batch`).
    """

    def __init__(self, app: LedgerApplication, position: int) -> None:
        self.app, self.position = app, position
        self._schedules: tuple | None = None
        self._seller: dict[str, Any] | None = None
        self._customers: dict[str, Customer] | None = None  # a batch's, when given
        self._charges: dict[str, Charge] = {}
        self._domains: set[str] = set()
        self._batch = False

    @classmethod
    def of_batch(cls, app: LedgerApplication, position: int, charges: dict[str, Charge],
                 customers: dict[str, Customer]) -> Basis:
        """The log up to ``position`` as a batch of customers sees it: their charges and
        themselves, already derived (:func:`commands.audit_verify.whole_basis_batches`)."""
        basis = cls(app, position)
        basis._charges, basis._customers, basis._batch = charges, customers, True
        return basis

    def seller(self) -> dict[str, Any]:
        if self._seller is None:
            self._seller = _operator(self.app, self.position)
        return self._seller

    def customer(self, key: str) -> Customer:
        if self._customers is not None:
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
        if not self._batch:
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
