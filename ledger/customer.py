"""Customers: the public bodies (communes, CCAS, EPCI, CIAS, …) that sign order forms."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import attrs
from eventsourcing.domain import Aggregate, event

from ledger.categories import category as category_of
from ledger.categories import valid_category as _valid_category
from ledger.categories import valid_kind
from ledger.folding import Fact, Fold
from ledger.identity import customer_id
from ledger.tariffs import Facts

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
    # Imported here: python-stdnum pulls in ssl, which most commands never need.
    from stdnum import exceptions as stdnum_errors
    from stdnum.fr import siret as stdnum_siret

    try:
        siret = stdnum_siret.validate(text)
    except stdnum_errors.InvalidLength:
        raise ValueError(f"SIRET {text!r} must have 14 digits") from None
    except stdnum_errors.InvalidFormat:
        raise ValueError(f"SIRET {text!r} must contain only digits") from None
    except stdnum_errors.InvalidChecksum:
        raise ValueError(f"SIRET {text!r} has a wrong check digit (Luhn key)") from None
    except stdnum_errors.ValidationError as error:
        raise ValueError(f"SIRET {text!r} is not valid: {error}") from None
    if not siret.strip("0"):
        # Its Luhn sum is 0, so python-stdnum takes it; no establishment has it, and the PES V2
        # schema refuses it (IdTiers: ".*[^0]+.*"), which would block the titres for good.
        raise ValueError(f"SIRET {text!r} is all zeros: no establishment has this number")
    return siret


def valid_category(text: str) -> str:
    return _valid_category(text)


class Customer(Aggregate):
    """A public body known to the operator, identified by its customer key."""

    @staticmethod
    def create_id(key: str) -> UUID:
        return customer_id(key)

    @event("CustomerRegistered")
    def __init__(
        self,
        key: str,
        name: str,
        siret: str,
        category: str,
        population: int,
        address: dict[str, str] | None = None,
        kind: str | None = None,
        member: bool = True,
        member_communes: int | None = None,
    ) -> None:
        registered(self, key=key, name=name, siret=siret, category=category,
                   population=population, address=address, kind=kind, member=member,
                   member_communes=member_communes)

    @classmethod
    def register(cls, *, key: str, name: str, siret: str, category: str, population: int,
                 address: dict[str, str] | None = None, kind: str | None = None,
                 member: bool = True, member_communes: int | None = None) -> Customer:
        """``Customer(key=…, …)``: a newly registered customer, its ``CustomerRegistered``
        event pending. Commands record their events through the fold's appliers
        (:meth:`ledger.folding.Fold.record`); the event methods are what the library applies
        when it folds the stored events back."""
        return _FOLD.create(cls, customer_id(key), {
            "key": key, "name": name, "siret": siret, "category": category,
            "population": population, "address": address, "kind": kind, "member": member,
            "member_communes": member_communes})

    @classmethod
    def from_facts(cls, aggregate_id: UUID, facts: Iterable[Fact], created_on: datetime,
                   modified_on: datetime) -> Customer:
        """The customer its stored events give, folded straight from their fields with the
        functions its event methods call (:class:`ledger.folding.Fold`): what a read of
        every customer billed does, without building the library's event objects."""
        return _FOLD(cls, aggregate_id, facts, created_on, modified_on)

    @property
    def facts(self) -> Facts:
        """What eligibility conditions may ask of this body."""
        return Facts(category_of(self.category).id, self.kind, self.population)

    @property
    def category_label(self) -> str:
        return category_of(self.category).kind_label(self.kind)

    UPDATABLE = ("name", "address", "population", "kind", "member", "member_communes")

    def update(self, **changes: Any) -> bool:
        """Change the name, address, population, kind, membership or member communes. ``False``
        if nothing changes.

        Issued invoices keep the buyer as it was when they were issued.
        """
        changed = {k: v for k, v in changes.items() if v is not None and getattr(self, k) != v}
        if not changed:
            return False
        if "kind" in changed:
            valid_kind(self.category, changed["kind"])
        _FOLD.record(self, "CustomerUpdated", {k: changed.get(k) for k in self.UPDATABLE})
        return True

    @event("CustomerUpdated")
    def _updated(
        self, name: str | None, address: dict[str, str] | None, population: int | None,
        kind: str | None, member: bool | None, member_communes: int | None,
    ) -> None:
        updated(self, name=name, address=address, population=population, kind=kind,
                member=member, member_communes=member_communes)

    def set_billing_references(
        self,
        *,
        year: int,
        code_service: str | None,
        engagement_number: str | None,
        code_service_required: bool,
        engagement_required: bool,
    ) -> None:
        """Record the Chorus Pro references the body gave for a year (« et ce, chaque année »)."""
        _FOLD.record(self, "BillingReferencesSet", {
            "year": year, "code_service": code_service, "engagement_number": engagement_number,
            "code_service_required": code_service_required,
            "engagement_required": engagement_required})

    @event("BillingReferencesSet")
    def _references_set(
        self,
        year: int,
        code_service: str | None,
        engagement_number: str | None,
        code_service_required: bool,
        engagement_required: bool,
    ) -> None:
        references_set(self, year=year, code_service=code_service,
                       engagement_number=engagement_number,
                       code_service_required=code_service_required,
                       engagement_required=engagement_required)

    def references_for(self, year: int) -> BillingReferences:
        return self.references.get(year, BillingReferences())


@attrs.frozen
class BillingReferences:
    """Chorus Pro references of one budget year, and whether the body made them mandatory."""

    code_service: str | None = None
    engagement_number: str | None = None
    code_service_required: bool = False
    engagement_required: bool = False

    def missing(self) -> list[str]:
        """What Chorus Pro would reject the invoice for lacking."""
        missing = []
        if self.code_service_required and not self.code_service:
            missing.append("code service")
        if self.engagement_required and not self.engagement_number:
            missing.append("engagement number")
        return missing


# Each event's fields applied to a customer: the one definition of what each event does (the
# event methods above call these, and so does :meth:`Customer.from_facts`).

def registered(customer: Customer, *, key: str, name: str, siret: str, category: str,
               population: int, address: dict[str, str] | None = None, kind: str | None = None,
               member: bool = True, member_communes: int | None = None) -> None:
    customer.key = key
    customer.name = name
    customer.siret = siret
    customer.category = category
    customer.population = population
    customer.address = dict(address) if address else None
    customer.kind = kind
    customer.member = member
    customer.member_communes = member_communes
    customer.references = {}


def updated(customer: Customer, *, name: str | None, address: dict[str, str] | None,
            population: int | None, kind: str | None, member: bool | None,
            member_communes: int | None) -> None:
    if name is not None:
        customer.name = name
    if address is not None:
        customer.address = dict(address)
    if population is not None:
        customer.population = population
    if kind is not None:
        customer.kind = kind
    if member is not None:
        customer.member = member
    if member_communes is not None:
        customer.member_communes = member_communes


def references_set(customer: Customer, *, year: int, code_service: str | None,
                   engagement_number: str | None, code_service_required: bool,
                   engagement_required: bool) -> None:
    customer.references = {
        **customer.references,
        year: BillingReferences(code_service, engagement_number, code_service_required,
                                engagement_required),
    }


#: How :meth:`Customer.from_facts` folds: each event's applier, the creating one first.
_FOLD = Fold("a customer", {
    "CustomerRegistered": lambda customer, fields: registered(customer, **fields),
    "CustomerUpdated": lambda customer, fields: updated(customer, **fields),
    "BillingReferencesSet": lambda customer, fields: references_set(customer, **fields)})
