"""What the ledger knew at a point of its log, folded from the entries up to that point.

"Known at" is a log position: the entries at positions 1 … P, in commit order.
A recorded time T stands for the last position recorded at or before T
(:func:`resolve`). Reading everything up to one position gives a consistent
state even while other clerks keep appending. Folding reuses the aggregates'
own event appliers, which read nothing but the event.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Iterator
from datetime import datetime
from itertools import groupby
from typing import Any
from uuid import UUID

import attrs

from eventstore.app import LedgerApplication
from eventstore.log import LogEntry, LogFormatError
from eventstore.spool import Spool
from ledger.customer import Customer
from ledger.events import REGISTRY
from ledger.folding import DamagedHistory
from ledger.identity import customer_ids, subscription_id, tariff_book_id
from ledger.subscription import Subscription, ascii_spelling
from ledger.tariffs import Schedule

SUBSCRIPTION_EVENTS = REGISTRY.names(Subscription)
CUSTOMER_EVENTS = REGISTRY.names(Customer)
OPENED = REGISTRY.name_of(Subscription, "Opened")
ORDER_SIGNED = REGISTRY.name_of(Subscription, "OrderSigned")

Horizon = int | datetime | None


def resolve(app: LedgerApplication, at: Horizon = None) -> int:
    """The log position a query reads up to: the given one, the last recorded by a time, or
    the end of the log now."""
    if at is None:
        return app.position()
    if isinstance(at, datetime):
        return app.position_at(at)
    if at < 0:
        raise ValueError(f"log position {at} is negative")
    return at


def aggregate_known_at(app: LedgerApplication, aggregate_id: UUID, at: Horizon = None) -> Any:
    """Any aggregate folded from its entries up to ``at``; ``None`` if it did not exist then."""
    return app.aggregate(aggregate_id, resolve(app, at))


def subscription_known_at(app: LedgerApplication, domain: str, at: Horizon = None
                          ) -> Subscription | None:
    """One domain's subscription from its own entries only (cost follows its history); for a
    domain with accented labels, else the one an earlier version recorded under its ``xn--``
    spelling (:func:`ledger.subscription.ascii_spelling`)."""
    found = aggregate_known_at(app, subscription_id(domain), at)
    legacy = ascii_spelling(domain) if found is None else None
    return aggregate_known_at(app, subscription_id(legacy), at) if legacy is not None else found


def subscriptions_of(app: LedgerApplication, customer: str, at: Horizon = None
                     ) -> list[Subscription]:
    """The subscriptions a customer signed an order form for, found through the log's index
    of references (``customer:KEY``): the cost follows the customer's own history, not the
    size of the ledger."""
    upto = resolve(app, at)
    found: dict[str, Subscription] = {}
    for position in app.recorder.positions_of(f"customer:{customer}", upto):
        entry = app.recorder.entry(position)
        if entry is None or entry.topic != ORDER_SIGNED:
            continue
        originator = entry.originator_id if isinstance(entry.originator_id, UUID) \
            else UUID(str(entry.originator_id))
        subscription = app.aggregate(originator, upto)
        if subscription is not None:
            found[subscription.domain] = subscription
    return [found[domain] for domain in sorted(found)]


def tariffs_known_at(app: LedgerApplication, at: Horizon = None) -> tuple[Schedule, ...]:
    """The tariff schedules adopted by ``at`` (all of them without it)."""
    book = aggregate_known_at(app, tariff_book_id(), at)
    return book.schedules if book is not None else ()


@attrs.frozen
class Known:
    """What the ledger knew at a log position: subscriptions and the tariff schedules adopted."""

    subscriptions: Iterable[Subscription]  # a tuple sorted by domain, or Streamed
    schedules: tuple[Schedule, ...]
    position: int = 0

    def subscription(self, domain: str) -> Subscription | None:
        for subscription in self.subscriptions:
            if subscription.domain == domain:
                return subscription
        return None


def known_at(
    app: LedgerApplication,
    at: Horizon = None,
    *,
    domain: str | None = None,
    customer: str | None = None,
    on_subscription: Callable[[], None] | None = None,
    stream: bool = False,
) -> Known:
    """Fold the entries up to ``at`` (the whole log as it is now without it).

    With ``domain`` (or ``customer``), only that subscription's (or that customer's
    subscriptions') entries are read, so the cost follows its own history, not the size of
    the ledger. With ``stream``, every subscription is folded again each time the
    subscriptions are gone through (:class:`Streamed`), in the store's order, instead of being
    held sorted by domain.
    """
    upto = resolve(app, at)
    if domain is not None:
        one = subscription_known_at(app, domain, upto)
        subscriptions = (one,) if one is not None else ()
    elif customer is not None:
        subscriptions = tuple(subscriptions_of(app, customer, upto))
    elif stream:
        return Known(Streamed(app, upto), tariffs_known_at(app, upto), upto)
    else:
        subscriptions = tuple(sorted(iter_subscriptions_known_at(app, upto, on_subscription),
                                     key=lambda s: s.domain))
    return Known(subscriptions, tariffs_known_at(app, upto), upto)


def _subscriptions(app: LedgerApplication, entries: Iterable[LogEntry]
                   ) -> Iterator[Subscription]:
    """The subscriptions of ``entries`` (each aggregate's entries together, in version order),
    folded from their decoded fields by :meth:`Subscription.from_facts`: the same state as
    folding the library's event objects (``tests/test_streaming.py`` and
    ``tests/test_properties.py`` compare them), at a fraction of the cost on a full replay. An
    entry that cannot be applied (a damaged log) is reported by its position, as
    :func:`eventstore.app.fold` reports it."""
    return _folded(app, entries, Subscription)


def _customers(app: LedgerApplication, entries: Iterable[LogEntry]) -> Iterator[Customer]:
    """The customers of ``entries``, folded as :func:`_subscriptions` folds subscriptions
    (:meth:`Customer.from_facts`)."""
    return _folded(app, entries, Customer)


def _folded(app: LedgerApplication, entries: Iterable[LogEntry], cls: type) -> Iterator[Any]:
    fields, event_type = app.mapper.fields, app.mapper.event_type
    classes = {name: REGISTRY.by_name[name].event_class for name in REGISTRY.names(cls)}

    def event_class(entry: LogEntry) -> str:
        found = classes.get(entry.topic)
        return found if found is not None else event_type(entry).event_class  # says why not

    for _, group in groupby(entries, key=lambda entry: entry.originator_id):
        group = list(group)
        first, last = group[0], group[-1]
        originator = first.originator_id
        try:
            yield cls.from_facts(
                originator if isinstance(originator, UUID) else UUID(str(originator)),
                [(event_class(entry), entry.originator_version, entry.id, fields(entry))
                 for entry in group],
                first.recorded_at, last.recorded_at)
        except DamagedHistory as error:
            raise LogFormatError(
                f"the entry at position {error.position} cannot be applied to its aggregate "
                f"({error}): the log is damaged — run `ledger audit verify`") from None


def customers_known_at(app: LedgerApplication, at: Horizon = None,
                       only: set[str] | None = None) -> dict[str, Customer]:
    """Every customer known at ``at`` (or only those of ``only``), by key, in one scan of the
    log; the others are not kept."""
    entries = app.recorder.scan_by_aggregate(CUSTOMER_EVENTS, resolve(app, at))
    return {customer.key: customer for customer in _customers(app, entries)
            if only is None or customer.key in only}


def customers_of(app: LedgerApplication, keys: Iterable[str], at: Horizon = None
                 ) -> dict[str, Customer]:
    """The customers of ``keys`` known at ``at``, read by id in one query (a batch of a
    streamed projection: the cost follows the batch, not the ledger)."""
    upto = resolve(app, at)
    entries = app.recorder.select_aggregates(sorted(map(str, customer_ids(keys))), upto)
    return {customer.key: customer for customer in _customers(app, entries)}


def count_subscriptions(app: LedgerApplication, at: Horizon = None) -> int:
    """How many subscriptions the log holds (for progress bars)."""
    upto = resolve(app, at)
    return sum(1 for _ in app.recorder.scan(1, upto, {OPENED}))


def iter_subscriptions_known_at(
    app: LedgerApplication,
    at: Horizon = None,
    on_subscription: Callable[[], None] | None = None,
) -> Iterator[Subscription]:
    """Every subscription known at ``at``, folded one at a time, in one scan of the log.

    Streams: only one subscription is held at a time. The order is the store's
    (by aggregate id); sort what you collect.
    """
    entries = app.recorder.scan_by_aggregate(SUBSCRIPTION_EVENTS, resolve(app, at))
    for subscription in _subscriptions(app, entries):
        if on_subscription is not None:
            on_subscription()
        yield subscription


def subscriptions_by_customer(
    app: LedgerApplication,
    at: Horizon = None,
    batch: int = 2000,
    on_subscription: Callable[[], None] | None = None,
    only: Container[str] | None = None,
) -> Iterator[tuple[frozenset[str], list[Subscription]]]:
    """Every subscription known at ``at``, in batches of whole customers taken in key order:
    ``(customers, subscriptions)``, where ``subscriptions`` are those with an order form of one
    of ``customers``. A domain that passed from one customer to another comes in the batch of
    each. With ``only``, only those customers' batches (asked about in key order).

    One light scan finds who signed each subscription's order forms, spooled to a temporary
    SQLite file that hands them back in customer order; the subscriptions are then read back
    batch by batch. Memory holds one batch, whatever the size of the ledger.
    """
    upto = resolve(app, at)
    upcast = app.mapper.upcast

    def fetch(pending: list[tuple[str, list[str]]]) -> tuple[frozenset[str], list[Subscription]]:
        ids = sorted({one for _, ids in pending for one in ids})
        folded = list(_subscriptions(app, app.recorder.select_aggregates(ids, upto)))
        if on_subscription is not None:
            for _ in folded:
                on_subscription()
        return frozenset(customer for customer, _ in pending), folded

    # Who signed what, spooled and read back in customer order: held in a dictionary, it
    # grew with the ledger (50 MB at a million events).
    with Spool("CREATE TABLE signed (customer TEXT, subscription TEXT);",
               prefix="ledger-signed-") as spool:
        # Only the customer of each order form is needed: read from the stored data without
        # building or decoding whole entries (a third of the time of the spool).
        spool.add_all("signed", ((_customer(upcast(event, version, data, position), position),
                                  aggregate)
                                 for position, aggregate, event, version, data
                                 in app.recorder.scan_data({ORDER_SIGNED}, upto)))
        pending: list[tuple[str, list[str]]] = []
        size = 0
        for customer, group in groupby(spool.execute(
                "SELECT DISTINCT customer, subscription FROM signed "
                "ORDER BY customer, subscription"), key=lambda row: row[0]):
            if only is not None and customer not in only:
                continue
            ids = [subscription for _, subscription in group]
            pending.append((customer, ids))
            size += len(ids)
            if size >= batch:
                yield fetch(pending)
                pending, size = [], 0
        if pending:
            yield fetch(pending)


def _customer(upcast: tuple[Any, dict[str, Any]], position: int) -> str:
    """The customer of an order form's entry, upcast (``LogFormatError`` if it has none)."""
    kind, data = upcast
    try:
        return data["customer"]
    except KeyError:
        raise LogFormatError(f"entry {position} ({kind.name}) has no field 'customer' and no "
                             "upcaster provides it") from None


@attrs.frozen
class Streamed:
    """Every subscription known at a position, folded again at each iteration: for a projection
    that goes through them once or twice without holding the ledger in memory."""

    app: LedgerApplication
    upto: int

    def __iter__(self) -> Iterator[Subscription]:
        return iter_subscriptions_known_at(self.app, self.upto)


def all_subscriptions_known_at(app: LedgerApplication, at: Horizon = None) -> list[Subscription]:
    """Every subscription known at ``at``, sorted by domain."""
    return sorted(iter_subscriptions_known_at(app, at), key=lambda s: s.domain)
