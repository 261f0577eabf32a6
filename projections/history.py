"""Subscriptions as they were known at a recorded time, folded from stored events.

"Known at T" keeps only events whose timestamp (the library's recorded time)
is at or before T. Folding reuses the aggregates' own event appliers, which
read nothing but the event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from itertools import takewhile
from typing import Any
from uuid import UUID

import attrs
from eventsourcing.utils import get_topic

from commands.store import LedgerApplication, stored_events_by_aggregate
from ledger.customer import Customer
from ledger.identity import subscription_id
from ledger.subscription import Subscription
from ledger.tariff_book import tariff_book_id
from ledger.tariffs import Schedule

SUBSCRIPTION_TOPICS = [
    get_topic(cls)
    for cls in (
        Subscription.Opened,
        Subscription.OrderSigned,
        Subscription.ServiceActivated,
        Subscription.StorageAdded,
        Subscription.TerminationRequested,
    )
]

#: Notifications read per query when scanning the whole log.
PAGE = 5_000


def _fold(events: Iterable[Any]) -> Any:
    """Apply events in order to rebuild an aggregate (``None`` if there are none).

    Same as the library's ``project_aggregate`` without its runtime protocol check,
    which costs more than the fold itself on a full replay.
    """
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def _known(events: Iterable[Any], known_at: datetime | None) -> Iterable[Any]:
    if known_at is None:
        return events
    return takewhile(lambda e: e.timestamp <= known_at, events)


def subscription_known_at(
    app: LedgerApplication, domain: str, known_at: datetime | None = None
) -> Subscription | None:
    """One domain's subscription from its own events only (cost follows its history)."""
    events = app.events.get(subscription_id(domain))
    return _fold(_known(events, known_at))


@attrs.frozen
class Known:
    """What the ledger knew at a recorded time: subscriptions and the tariff schedules adopted."""

    subscriptions: tuple[Subscription, ...]
    schedules: tuple[Schedule, ...]

    def subscription(self, domain: str) -> Subscription | None:
        for subscription in self.subscriptions:
            if subscription.domain == domain:
                return subscription
        return None


def known_at(
    app: LedgerApplication,
    at: datetime | None = None,
    *,
    domain: str | None = None,
    on_subscription: Callable[[], None] | None = None,
) -> Known:
    """Fold the events recorded up to ``at`` (all of them without it).

    With ``domain``, only that subscription's events are read, so the cost
    follows its own history, not the size of the ledger.
    """
    if domain is not None:
        one = subscription_known_at(app, domain, at)
        subscriptions = (one,) if one is not None else ()
    else:
        subscriptions = tuple(sorted(iter_subscriptions_known_at(app, at, on_subscription),
                                     key=lambda s: s.domain))
    return Known(subscriptions, tariffs_known_at(app, at))


def aggregate_known_at(app: LedgerApplication, aggregate_id: UUID, at: datetime | None = None):
    """Any aggregate folded from its events recorded up to ``at``; ``None`` if it did not exist."""
    return _fold(_known(app.events.get(aggregate_id), at))


def tariffs_known_at(app: LedgerApplication, known_at: datetime | None = None) -> tuple[Schedule, ...]:
    """The tariff schedules adopted by ``known_at`` (all of them without it)."""
    book = aggregate_known_at(app, tariff_book_id(), known_at)
    return book.schedules if book is not None else ()


OPENED_TOPIC = get_topic(Subscription.Opened)
CUSTOMER_TOPICS = [get_topic(cls) for cls in (Customer.CustomerRegistered, Customer.CustomerUpdated,
                                              Customer.BillingReferencesSet)]


def customers_known_at(app: LedgerApplication, at: datetime | None = None) -> dict[str, Customer]:
    """Every customer known at ``at``, by key, in one scan of the store."""
    decode = app.mapper.to_domain_event
    customers = {}
    for stored in stored_events_by_aggregate(app, set(CUSTOMER_TOPICS)):
        customer = _fold(_known(map(decode, stored), at))
        if customer is not None:
            customers[customer.key] = customer
    return customers


def count_subscriptions(app: LedgerApplication) -> int:
    """How many subscriptions the store holds (for progress bars)."""
    return sum(len(page) for page in _pages(app, [OPENED_TOPIC]))


def iter_subscriptions_known_at(
    app: LedgerApplication,
    known_at: datetime | None = None,
    on_subscription: Callable[[], None] | None = None,
) -> Iterator[Subscription]:
    """Every subscription known at ``known_at``, folded one at a time, in one scan of the store.

    Streams: only one subscription is held at a time, so memory does not grow with
    the ledger. The order is the store's (by aggregate id); sort what you collect.
    """
    decode = app.mapper.to_domain_event
    for stored in stored_events_by_aggregate(app, set(SUBSCRIPTION_TOPICS)):
        if on_subscription is not None:
            on_subscription()
        subscription = _fold(_known(map(decode, stored), known_at))
        if subscription is not None:
            yield subscription


def _pages(app: LedgerApplication, topics: list[str]) -> Iterator[Any]:
    start = 1
    while True:
        page = app.recorder.select_notifications(start=start, limit=PAGE, topics=topics)
        if not page:
            return
        yield page
        start = page[-1].id + 1


def all_subscriptions_known_at(
    app: LedgerApplication, known_at: datetime | None = None
) -> list[Subscription]:
    """Every subscription known at ``known_at``, sorted by domain."""
    return sorted(iter_subscriptions_known_at(app, known_at), key=lambda s: s.domain)
