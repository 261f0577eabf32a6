"""The charges a billing run is to invoice, spooled to a temporary SQLite file.

A run must number its documents in the order of (charge date, customer, document group, charge
key), so it cannot issue them while it derives the charges, subscription by subscription. Held in
memory, the due charges and the customers they bill grew with the ledger (1.4 GB at a million
events); here each due charge is written as it is derived — its invoice line already built —
each buyer's snapshot (or the reason it cannot be invoiced) once per customer and year, and
SQLite hands them back sorted, one document's group at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from itertools import groupby
from typing import Any

import attrs
import orjson

from eventstore.spool import Spool

#: Rows written to the spool at a time.
CHUNK = 1_000


@attrs.frozen
class DueGroup:
    """The charges of one future document: one customer, one charge date, one group."""

    charge_date: str
    customer: str
    lines: list[dict[str, Any]]
    amount: Decimal
    buyer: dict[str, Any] | None  # the snapshot, or None when the customer cannot be invoiced
    reason: str | None  # why not (None: it can); both None: the customer is not registered


class DueCharges(Spool):
    """A temporary spool of due charges and buyers."""

    def __init__(self) -> None:
        super().__init__(
            "CREATE TABLE due (charge_date TEXT, customer TEXT, grp TEXT, key TEXT,"
            " amount TEXT, line BLOB);"
            "CREATE TABLE buyer (customer TEXT, year INTEGER, reason TEXT, snapshot BLOB,"
            " PRIMARY KEY (customer, year));", prefix="ledger-bill-", chunk=CHUNK)

    def add_due(self, charge_date: str, customer: str, group: tuple[bool, str], key: str,
                amount: Decimal, line: dict[str, Any]) -> None:
        """One due charge and its invoice line. ``group``: what must not share a document
        (``commands.billing.document_group``), kept in the order it sorts in."""
        self.add("due", (charge_date, customer, ("1" if group[0] else "0") + group[1], key,
                         str(amount), orjson.dumps(line)))

    def buyers_needed(self) -> Iterator[dict[str, list[int]]]:
        """Each customer billed, with the years of its charges: ``CHUNK`` customers at a time,
        in key order (held all at once, they grew with the ledger: one per customer billed)."""
        batch = CHUNK
        rows = self.execute(
            "SELECT DISTINCT customer, CAST(substr(charge_date, 1, 4) AS INTEGER) FROM due "
            "ORDER BY 1, 2")
        needed: dict[str, list[int]] = {}
        for customer, group in groupby(rows, key=lambda row: row[0]):
            needed[customer] = [year for _, year in group]
            if len(needed) >= batch:
                yield needed
                needed = {}
        if needed:
            yield needed

    def add_buyer(self, customer: str, year: int, snapshot: dict[str, Any] | None,
                  reason: str | None) -> None:
        self.add("buyer", (customer, year, reason,
                           None if snapshot is None else orjson.dumps(snapshot)))

    def groups(self) -> Iterator[DueGroup]:
        """The due charges, one future document at a time, in numbering order."""
        rows = self.execute(
            "SELECT d.charge_date, d.customer, d.grp, d.amount, d.line, b.reason, b.snapshot"
            " FROM due d LEFT JOIN buyer b ON b.customer = d.customer"
            " AND b.year = CAST(substr(d.charge_date, 1, 4) AS INTEGER)"
            " ORDER BY d.charge_date, d.customer, d.grp, d.key")
        for (charge_date, customer, _), group in groupby(rows, key=lambda r: r[:3]):
            group = list(group)
            reason, snapshot = group[0][5], group[0][6]
            yield DueGroup(
                charge_date, customer, [orjson.loads(row[4]) for row in group],
                sum((Decimal(row[3]) for row in group), Decimal("0.00")),
                None if snapshot is None else orjson.loads(snapshot), reason)
