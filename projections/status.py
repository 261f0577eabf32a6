"""Renewal state of a subscription as of a business date (R6, R7)."""

from __future__ import annotations

from datetime import date
from typing import Any

import attrs

from ledger import rules
from ledger.dates import ONE_DAY
from ledger.errors import UnknownDomain
from ledger.subscription import Contract, Subscription

ORDERED, ACTIVE, NOTICE, TERMINATED, EXPIRED = (
    "ordered", "active", "notice", "terminated", "expired")


@attrs.frozen
class SubscriptionStatus:
    domain: str
    customer: str
    order: str
    as_of: date
    state: str
    signed_on: date
    received_on: date
    activated_on: date | None
    term_number: int | None
    term_start: date | None
    term_end: date | None
    next_renewal: date | None
    termination_received_on: date | None
    notice_start: date | None
    service_end: date | None
    storage_gb: int
    extra_gb: int
    extra_gb_packs: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            field.name: _jsonable(getattr(self, field.name))
            for field in attrs.fields(SubscriptionStatus)
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def contract_as_of(subscription: Subscription | None, domain: str, as_of: date) -> Contract:
    """The latest contract of the domain whose order form had been received by ``as_of``."""
    if subscription is not None:
        for contract in reversed(subscription.contracts):
            seen = contract.as_of(as_of)
            if seen is not None:
                return seen
    raise UnknownDomain(domain, as_of)


def status_as_of(subscription: Subscription | None, domain: str, as_of: date) -> SubscriptionStatus:
    """Where the domain's subscription stood on ``as_of``, from what had been received by then."""
    contract = contract_as_of(subscription, domain, as_of)
    end = contract.service_end
    term_number = term_start = term_end = next_renewal = None
    last_day = contract.ends_on
    if end is not None and as_of > end:
        state = TERMINATED if end < last_day else EXPIRED
    elif as_of > last_day:
        state, end = EXPIRED, last_day
    elif contract.activated_on is None:
        state = ORDERED
    else:
        state = NOTICE if contract.termination_received_on is not None else ACTIVE
        term_number, term_start, term_end = rules.term(contract.activated_on, as_of, last_day)
        if state == ACTIVE and term_end < last_day:
            next_renewal = term_end + ONE_DAY
    received = contract.termination_received_on
    return SubscriptionStatus(
        domain=domain,
        customer=contract.customer,
        order=contract.order,
        as_of=as_of,
        state=state,
        signed_on=contract.signed_on,
        received_on=contract.received_on,
        activated_on=contract.activated_on,
        term_number=term_number,
        term_start=term_start,
        term_end=term_end,
        next_renewal=next_renewal,
        termination_received_on=received,
        notice_start=rules.notice_start(received) if received is not None else None,
        service_end=end,
        storage_gb=contract.storage_gb,
        extra_gb=contract.extra_gb,
        extra_gb_packs=tuple(p for o in contract.storage_orders for p in o.packs),
    )
