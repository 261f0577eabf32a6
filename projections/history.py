"""Subscriptions as they were known at a recorded time, folded from stored events.

"Known at T" keeps only events whose timestamp (the library's recorded time)
is at or before T. Folding reuses the aggregates' own event appliers, which
read nothing but the event.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import takewhile
from typing import Any
from uuid import UUID

import attrs
from eventsourcing.application import project_aggregate
from eventsourcing.utils import get_topic

from commands.store import LedgerApplication
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


def _known(events: Iterable[Any], known_at: datetime | None) -> Iterable[Any]:
    if known_at is None:
        return events
    return takewhile(lambda e: e.timestamp <= known_at, events)


def subscription_known_at(
    app: LedgerApplication, domain: str, known_at: datetime | None = None
) -> Subscription | None:
    """One domain's subscription from its own events only (cost follows its history)."""
    events = app.events.get(subscription_id(domain))
    return project_aggregate(None, _known(events, known_at))


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
    app: LedgerApplication, at: datetime | None = None, *, domain: str | None = None
) -> Known:
    """Fold the events recorded up to ``at`` (all of them without it).

    With ``domain``, only that subscription's events are read, so the cost
    follows its own history, not the size of the ledger.
    """
    if domain is not None:
        one = subscription_known_at(app, domain, at)
        subscriptions = (one,) if one is not None else ()
    else:
        subscriptions = tuple(all_subscriptions_known_at(app, at))
    return Known(subscriptions, tariffs_known_at(app, at))


def aggregate_known_at(app: LedgerApplication, aggregate_id: UUID, at: datetime | None = None):
    """Any aggregate folded from its events recorded up to ``at``; ``None`` if it did not exist."""
    return project_aggregate(None, _known(app.events.get(aggregate_id), at))


def tariffs_known_at(app: LedgerApplication, known_at: datetime | None = None) -> tuple[Schedule, ...]:
    """The tariff schedules adopted by ``known_at`` (all of them without it)."""
    book = aggregate_known_at(app, tariff_book_id(), known_at)
    return book.schedules if book is not None else ()


def all_subscriptions_known_at(
    app: LedgerApplication, known_at: datetime | None = None
) -> list[Subscription]:
    """Every subscription, folded from the notification log in recorded order."""
    folded: dict[UUID, Subscription] = {}
    past_known_at: set[UUID] = set()
    for event in _subscription_events(app):
        originator = event.originator_id
        if originator in past_known_at:
            continue
        if known_at is not None and event.timestamp > known_at:
            past_known_at.add(originator)
            continue
        folded[originator] = event.mutate(folded.get(originator))
    return sorted(folded.values(), key=lambda s: s.domain)


def _subscription_events(app: LedgerApplication) -> Iterator[Any]:
    start = 1
    while True:
        page = app.recorder.select_notifications(
            start=start, limit=PAGE, topics=SUBSCRIPTION_TOPICS
        )
        if not page:
            return
        for notification in page:
            yield app.mapper.to_domain_event(notification)
        start = page[-1].id + 1
