"""The documents ``ledger audit verify`` finds in the log, spooled to a temporary SQLite file.

The scan keeps a few facts of every invoice and credit note (number, series, date, total, the
position it was derived from, its buyer) to check the number series, the closings and each
document derived again. Held in memory, they grew with every document ever issued (with the
versions of every aggregate, ``audit verify`` peaked at 417 MB at a million events and 287 000
documents, against 101 MB spooled: docs/performance.md); here each is written as the scan
finds it, and read back in the order each check needs: by position for the series and the
closings, by billing run and customer for the re-derivation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import attrs
import orjson

from eventstore.spool import Spool

#: Rows written to the spool at a time.
CHUNK = 2_000

_COLUMNS = ("position, event, number, kind, issued_on, digest_ok, basis, refers_to, total_ht, "
            "customer")


@attrs.frozen
class IssuedDocument:
    """What the scan keeps of a document: not the document itself, which is read again from
    its entry when it is derived."""

    position: int
    event: str
    number: str
    kind: str
    issued_on: str
    digest_ok: bool
    basis: int
    refers_to: str | None = None
    total_ht: str = "0.00"
    customer: str = ""


def _document(row: tuple[Any, ...]) -> IssuedDocument:
    return IssuedDocument(*row[:5], bool(row[5]), *row[6:])


class IssuedDocuments(Spool):
    """A temporary spool of the documents found in the log."""

    def __init__(self) -> None:
        super().__init__(
            "CREATE TABLE document (position INTEGER PRIMARY KEY, event TEXT, number TEXT,"
            " kind TEXT, issued_on TEXT, digest_ok INTEGER, basis INTEGER, refers_to TEXT,"
            " total_ht TEXT, customer TEXT);", prefix="ledger-verify-", chunk=CHUNK)
        self._indexed = False

    def add_document(self, document: IssuedDocument) -> None:
        d = document
        self.add("document", (d.position, d.event, d.number, d.kind, d.issued_on, d.digest_ok,
                              d.basis, d.refers_to, d.total_ht, d.customer))

    def _ready(self) -> None:
        self.flush()
        if not self._indexed:
            self.db.executescript(
                "CREATE INDEX document_number ON document (number, position);"
                "CREATE INDEX document_basis ON document (basis, customer, position);")
            self._indexed = True

    def count(self) -> int:
        self._ready()
        return self.db.execute("SELECT count(*) FROM document").fetchone()[0]

    def in_order(self) -> Iterator[IssuedDocument]:
        """Every document, in log order."""
        self._ready()
        return map(_document, self.db.execute(
            f"SELECT {_COLUMNS} FROM document ORDER BY position"))

    def position_of(self, number: str) -> int | None:
        """The position of the last document numbered ``number`` (None: there is none)."""
        self._ready()
        return self.db.execute("SELECT max(position) FROM document WHERE number = ?",
                               (number,)).fetchone()[0]

    def bases(self) -> list[tuple[int, int]]:
        """Each position documents were derived from, with how many were (only documents
        derived from a position before their own: the others cannot be derived again)."""
        self._ready()
        return self.db.execute("SELECT basis, count(*) FROM document WHERE basis < position "
                               "GROUP BY basis ORDER BY basis").fetchall()

    def of_basis(self, basis: int, customers: Iterable[str] | None = None
                 ) -> list[IssuedDocument]:
        """The documents derived from ``basis`` (of ``customers`` only, if given), by customer
        and position."""
        self._ready()
        if customers is None:
            rows = self.db.execute(f"SELECT {_COLUMNS} FROM document WHERE basis = ? AND "
                                   "basis < position ORDER BY customer, position", (basis,))
        else:
            rows = self.db.execute(
                f"SELECT {_COLUMNS} FROM document WHERE basis = ? AND basis < position AND "
                "customer IN (SELECT value FROM json_each(?)) ORDER BY customer, position",
                (basis, orjson.dumps(sorted(customers)).decode()))
        return list(map(_document, rows))

    def customers_of_basis(self, basis: int) -> Iterator[str]:
        """The customers of the documents derived from ``basis``, in key order."""
        self._ready()
        return (customer for (customer,) in self.db.execute(
            "SELECT DISTINCT customer FROM document WHERE basis = ? AND basis < position "
            "ORDER BY customer", (basis,)))

    def totals_before(self, position: int) -> Iterator[dict[str, Any]]:
        """Date, total and kind of every document before ``position`` (for closings)."""
        self._ready()
        for issued_on, total_ht, kind in self.db.execute(
                "SELECT issued_on, total_ht, kind FROM document WHERE position < ? "
                "ORDER BY position", (position,)):
            yield {"issued_on": issued_on, "total_ht": total_ht, "kind": kind}


class Ascending:
    """Membership in a sorted stream of keys, asked about in ascending order (a merge join, so
    that the keys are never all held): the keys never asked about are set aside."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = iter(keys)
        self._current: str | None = next(self._keys, None)
        self._asked = False
        self.passed: list[str] = []

    def __contains__(self, key: object) -> bool:
        while self._current is not None and self._current < str(key):
            if not self._asked:
                self.passed.append(self._current)
            self._current, self._asked = next(self._keys, None), False
        if self._current is not None and self._current == key:
            self._asked = True
            return True
        return False

    def never_asked(self) -> list[str]:
        """The keys passed over, and those after the last asked about."""
        rest = [] if self._current is None or self._asked else [self._current]
        return [*self.passed, *rest, *self._keys]
