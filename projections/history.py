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

from eventsourcing.application import project_aggregate
from eventsourcing.utils import get_topic

from commands.store import LedgerApplication
from ledger.identity import subscription_id
from ledger.subscription import Subscription

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
