"""Stable aggregate ids derived from the business keys operators already use."""

from collections.abc import Iterable
from functools import cache, lru_cache
from uuid import UUID, uuid5

#: Fixed namespace: the same key gives the same aggregate id in every store.
NAMESPACE = UUID("6f1d7c1e-58a4-4c39-9a57-2b1f0d6c8e21")


# Imports compute the same ids several times per command; uuid5 is a SHA-1 each time.
@lru_cache(maxsize=100_000)
def customer_id(customer: str) -> UUID:
    return uuid5(NAMESPACE, f"customer:{customer}")


def customer_ids(customers: Iterable[str]) -> list[UUID]:
    """The ids of many customers, computed without going through :func:`customer_id`'s cache:
    a pass over the whole ledger would fill it with up to 100 000 customers and keep them to the
    end of the command."""
    return [uuid5(NAMESPACE, f"customer:{customer}") for customer in customers]


@lru_cache(maxsize=100_000)
def subscription_id(domain: str) -> UUID:
    return uuid5(NAMESPACE, f"subscription:{domain}")


@lru_cache(maxsize=100_000)
def receipt_id(command_id: str) -> UUID:
    return uuid5(NAMESPACE, f"command:{command_id}")


# Aggregates of which a store holds exactly one: each id is computed once (an import asked for
# the tariff book's and the operator's about five times per line, a SHA-1 each time: a tenth of
# an import's profile).

@cache
def tariff_book_id() -> UUID:
    return uuid5(NAMESPACE, "tariff-book")


@cache
def operator_id() -> UUID:
    return uuid5(NAMESPACE, "operator")


@cache
def invoicing_id() -> UUID:
    return uuid5(NAMESPACE, "invoicing")


@cache
def audit_id() -> UUID:
    return uuid5(NAMESPACE, "audit")


@cache
def treasury_id() -> UUID:
    return uuid5(NAMESPACE, "treasury")
