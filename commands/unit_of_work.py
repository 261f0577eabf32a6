"""The unit of work, and the one way anything is written to the log.

Every write — an imported file, a billing run, a correction, a closing, a checkpoint, a PES
file's plan, an HTTP request, a token — ends in :func:`record` (or, for an import, in the
session of :class:`UnitOfWork`): one transaction, all or nothing, with who did it (``actor``),
through what (``via``) and the rest of its provenance recorded with every entry and covered by
its leaf hash.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from commands.provenance import metadata
from eventstore.app import LedgerApplication
from ledger.customer import Customer
from ledger.identity import customer_id, receipt_id, subscription_id, treasury_id
from ledger.operator import Operator, operator_id
from ledger.receipt import CommandReceipt
from ledger.subscription import Subscription, ascii_spelling
from ledger.tariff_book import TariffBook, tariff_book_id
from ledger.tariffs import Schedule
from ledger.treasury import Treasury


class _LogReader:
    """Reads of the committed log, for a unit of work outside a write session."""

    def __init__(self, app: LedgerApplication) -> None:
        self.app = app

    def aggregate(self, aggregate_id: UUID) -> Any:
        return self.app.aggregate(aggregate_id)

    def aggregates(self, ids: list[UUID]) -> list[Any]:
        return [a for a in map(self.app.aggregate, ids) if a is not None]

    def positions_of(self, ref: str) -> list[int]:
        return self.app.recorder.positions_of(ref)

    def known_refs(self, refs: list[str]) -> set[str]:
        return {ref for ref in refs if self.app.recorder.positions_of(ref)}

    def entry(self, position: int) -> Any:
        return self.app.recorder.entry(position)


def subscription_id_of(entry: Any) -> UUID:
    return entry.originator_id if isinstance(entry.originator_id, UUID) \
        else UUID(entry.originator_id)


class UnitOfWork:
    """Aggregates loaded or created while applying commands; saved together or not at all.

    Inside a write session (``session``), :meth:`flush` saves what changed so far within the
    session's transaction and forgets it, so that a file of any size is applied in bounded
    memory and still committed — or rolled back — as one.
    """

    def __init__(self, app: LedgerApplication, session: Any = None) -> None:
        self.app = app
        self.session = session
        self.reader = session if session is not None else _LogReader(app)
        self._reset()

    def _reset(self) -> None:
        singletons, changed = (tariff_book_id(), operator_id()), getattr(self, "_changed", {})
        kept = {key: value for key, value in getattr(self, "_loaded", {}).items()
                if key in singletons and key not in changed}
        self._loaded: dict[UUID, Aggregate | None] = kept
        self._changed: dict[UUID, Aggregate] = {}
        self._attributed: dict[UUID, int] = {}
        self._touched: dict[UUID, Aggregate] = {}
        self._orders: dict[str, str] = {}  # order reference → domain, not yet saved
        self._sirets: dict[str, str] = {}  # SIRET → customer key, not yet saved
        self._absent_refs: set[str] = set()  # index references known not to exist yet
        self.event_metadata: dict[tuple[UUID, int], dict[str, Any]] = {}

    def _get(self, aggregate_id: UUID) -> Any:
        if aggregate_id not in self._loaded:
            self._loaded[aggregate_id] = self.reader.aggregate(aggregate_id)
        return self._loaded[aggregate_id]

    def prefetch(self, ids: list[UUID], refs: list[str] = ()) -> None:
        """Read in bulk the aggregates of ``ids`` (learning which do not exist yet) and which
        index references of ``refs`` do not exist yet, so that looking them up while applying
        a batch of lines costs no query: on PostgreSQL each query is a round trip, and an
        import made three or four per line."""
        unknown = [i for i in dict.fromkeys(ids) if i not in self._loaded]
        for aggregate in self.reader.aggregates(unknown):
            self._loaded[aggregate.id] = aggregate
        for aggregate_id in unknown:
            self._loaded.setdefault(aggregate_id, None)
        asked = [ref for ref in dict.fromkeys(refs) if ref not in self._absent_refs]
        self._absent_refs.update(set(asked) - self.reader.known_refs(asked))

    def flush(self, metadata: dict[str, Any]) -> int:
        """Save everything changed so far in the session's transaction, and forget it."""
        if self.session is None:
            raise RuntimeError("flush needs a write session")
        count = len(self.session.save(*self._changed.values(), metadata=metadata,
                                      event_metadata=self.event_metadata))
        self._reset()
        return count

    def customer(self, key: str) -> Customer | None:
        return self._get(customer_id(key))

    def subscription(self, domain: str) -> Subscription | None:
        """The subscription of a domain (canonical form), or the one an earlier version
        recorded under its ``xn--`` spelling (:func:`ledger.subscription.ascii_spelling`)."""
        found = self._get(subscription_id(domain))
        legacy = ascii_spelling(domain) if found is None else None
        return self._get(subscription_id(legacy)) if legacy is not None else found

    def order_domain(self, order: str) -> str | None:
        """The domain an order form reference was already recorded for, if any."""
        if order in self._orders:
            return self._orders[order]
        entry = self._first_entry(f"order:{order}")
        if entry is None:
            return None
        subscription = self.reader.aggregate(subscription_id_of(entry))
        return subscription.domain if subscription is not None else "?"

    def use_order(self, order: str, domain: str) -> None:
        self._orders[order] = domain

    def siret_customer(self, siret: str) -> str | None:
        """The customer key already registered with this SIRET, if any."""
        if siret in self._sirets:
            return self._sirets[siret]
        entry = self._first_entry(f"siret:{siret}")
        return self.app.mapper.fields(entry)["key"] if entry is not None else None

    def _first_entry(self, ref: str) -> Any:
        """The first entry recorded under an index reference (``order:…``, ``siret:…``)."""
        if ref in self._absent_refs:
            return None
        for position in self.reader.positions_of(ref):
            entry = self.reader.entry(position)
            if entry is not None:
                return entry
        return None

    def receipt(self, command_id: str) -> CommandReceipt | None:
        return self._get(receipt_id(command_id))

    def operator(self) -> Operator | None:
        return self._get(operator_id())

    def treasury(self) -> Treasury | None:
        return self._get(treasury_id())

    def tariff_book(self) -> TariffBook | None:
        return self._get(tariff_book_id())

    def schedules(self) -> tuple[Schedule, ...]:
        book = self.tariff_book()
        return book.schedules if book is not None else ()

    def add(self, aggregate: Aggregate) -> None:
        self._loaded[aggregate.id] = aggregate
        self._changed[aggregate.id] = aggregate
        self._touched[aggregate.id] = aggregate

    def changed(self) -> list[Aggregate]:
        return list(self._changed.values())

    def attribute(self, **metadata: Any) -> None:
        """Record ``metadata`` (a command id, a line number) with every event produced since the
        last call, so that each entry says which command made it."""
        for aggregate_id, aggregate in self._touched.items():
            pending = aggregate.pending_events
            for event in pending[self._attributed.get(aggregate_id, 0):]:
                self.event_metadata[(event.originator_id, event.originator_version)] = metadata
            self._attributed[aggregate_id] = len(pending)
        self._touched.clear()


def record(app: LedgerApplication, *aggregates: Any, via: str, by: str | None = None,
           **provenance: Any) -> list[int]:
    """Append the aggregates' new events in one transaction, with who did it (``by``, else
    ``$LEDGER_ACTOR``, else the system user), through what (``via``: the command or route) and
    any other provenance (``None`` values left out). Returns the positions appended."""
    return app.save(*aggregates, metadata=metadata(via, by, **provenance))
