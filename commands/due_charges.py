"""The charges a billing run is to invoice, spooled to a temporary SQLite file.

A run must number its documents in the order of (charge date, customer, document group, charge
key), so it cannot issue them while it derives the charges, subscription by subscription. Held in
memory, the due charges and the customers they bill grew with the ledger (1.4 GB at a million
events); here each due charge is written as it is derived — its invoice line already built —
each buyer's snapshot (or the reason it cannot be invoiced) once per customer and year, and
SQLite hands them back sorted, one document's group at a time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from itertools import groupby
from pathlib import Path
from typing import Any

import attrs
import orjson

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


class DueCharges:
    """A temporary spool of due charges and buyers (``path``: a file in a temporary folder)."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path)
        self.db.executescript(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
            "CREATE TABLE due (charge_date TEXT, customer TEXT, grp TEXT, key TEXT,"
            " amount TEXT, line BLOB);"
            "CREATE TABLE buyer (customer TEXT, year INTEGER, reason TEXT, snapshot BLOB,"
            " PRIMARY KEY (customer, year));")
        self._due: list[tuple[Any, ...]] = []
        self._buyers: list[tuple[Any, ...]] = []

    def close(self) -> None:
        self.db.close()

    def add(self, charge_date: str, customer: str, group: tuple[bool, str], key: str,
            amount: Decimal, line: dict[str, Any]) -> None:
        """One due charge and its invoice line. ``group``: what must not share a document
        (``commands.billing.document_group``), kept in the order it sorts in."""
        self._due.append((charge_date, customer, ("1" if group[0] else "0") + group[1], key,
                          str(amount), orjson.dumps(line)))
        if len(self._due) >= CHUNK:
            self._write_due()

    def _write_due(self) -> None:
        self.db.executemany("INSERT INTO due VALUES (?, ?, ?, ?, ?, ?)", self._due)
        self._due.clear()

    def buyers_needed(self) -> Iterator[dict[str, list[int]]]:
        """Each customer billed, with the years of its charges: ``CHUNK`` customers at a time,
        in key order (held all at once, they grew with the ledger: one per customer billed)."""
        self._write_due()
        batch = CHUNK
        rows = self.db.execute(
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
        self._buyers.append((customer, year, reason,
                             None if snapshot is None else orjson.dumps(snapshot)))
        if len(self._buyers) >= CHUNK:
            self._write_buyers()

    def _write_buyers(self) -> None:
        self.db.executemany("INSERT INTO buyer VALUES (?, ?, ?, ?)", self._buyers)
        self._buyers.clear()

    def groups(self) -> Iterator[DueGroup]:
        """The due charges, one future document at a time, in numbering order."""
        self._write_due()
        self._write_buyers()
        rows = self.db.execute(
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
