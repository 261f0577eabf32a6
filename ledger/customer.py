"""Customers: the public bodies (communes, CCAS, EPCI, CIAS, …) that sign order forms."""

from __future__ import annotations

import re
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from stdnum import exceptions as stdnum_errors
from stdnum.fr import siret as stdnum_siret

from ledger.identity import customer_id
from ledger.rules import CATEGORIES

_KEY = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def valid_customer_key(text: str) -> str:
    """A customer key: lower-case letters, digits, '.', '_' or '-', 1 to 64 characters."""
    if not _KEY.fullmatch(text):
        raise ValueError(
            f"{text!r} is not a valid customer key "
            "(lower-case letters, digits, '.', '_' or '-', at most 64 characters)"
        )
    return text


def valid_siret(text: str) -> str:
    """Return the SIRET without spaces, or raise ``ValueError`` saying what is wrong with it."""
    try:
        return stdnum_siret.validate(text)
    except stdnum_errors.InvalidLength:
        raise ValueError(f"SIRET {text!r} must have 14 digits") from None
    except stdnum_errors.InvalidFormat:
        raise ValueError(f"SIRET {text!r} must contain only digits") from None
    except stdnum_errors.InvalidChecksum:
        raise ValueError(f"SIRET {text!r} has a wrong check digit (Luhn key)") from None
    except stdnum_errors.ValidationError as error:
        raise ValueError(f"SIRET {text!r} is not valid: {error}") from None


def valid_category(text: str) -> str:
    if text not in CATEGORIES:
        raise ValueError(f"category must be one of {', '.join(CATEGORIES)} (got {text!r})")
    return text


class Customer(Aggregate):
    """A public body known to the operator, identified by its customer key."""

    @staticmethod
    def create_id(key: str) -> UUID:
        return customer_id(key)

    @event("CustomerRegistered")
    def __init__(self, key: str, name: str, siret: str, category: str, population: int) -> None:
        self.key = key
        self.name = name
        self.siret = siret
        self.category = category
        self.population = population
