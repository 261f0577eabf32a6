"""Command handlers: load what the command needs, let the domain decide, keep the result.

Each handler is a plain function ``(command, uow)``. Rules live in the domain
(``ledger``); handlers only look aggregates up and report what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from commands.messages import (
    Activate,
    AddStorage,
    Command,
    RegisterCustomer,
    RegisterOperator,
    RequestTermination,
    SetBillingReferences,
    SetHeliosProfile,
    SignOrder,
    UpdateCustomer,
)
from commands.unit_of_work import UnitOfWork
from ledger.customer import Customer
from ledger.errors import BusinessRuleViolation, UnknownCustomer, UnknownDomain
from ledger.identity import customer_id, receipt_id, subscription_id
from ledger.operator import Operator
from ledger.subscription import Subscription, ascii_spelling
from ledger.tariff_book import TariffBook
from ledger.tariffs import Schedule
from ledger.treasury import Treasury


def register_customer(cmd: RegisterCustomer, uow: UnitOfWork) -> None:
    if uow.customer(cmd.customer) is not None:
        raise BusinessRuleViolation(f"customer {cmd.customer!r} is already registered")
    other = uow.siret_customer(cmd.siret)
    if other is not None:
        raise BusinessRuleViolation(
            f"SIRET {cmd.siret} is already registered for customer {other!r}: one public body, "
            "one customer key (a CCAS or an EPCI has a SIRET of its own)")
    uow._sirets[cmd.siret] = cmd.customer
    uow.add(
        Customer.register(
            key=cmd.customer,
            name=cmd.name,
            siret=cmd.siret,
            category=cmd.category,
            population=cmd.population,
            address=cmd.address,
            kind=cmd.kind,
            member=cmd.member,
            member_communes=cmd.member_communes,
        )
    )


def _existing_customer(key: str, uow: UnitOfWork) -> Customer:
    customer = uow.customer(key)
    if customer is None:
        raise UnknownCustomer(key)
    return customer


def update_customer(cmd: UpdateCustomer, uow: UnitOfWork) -> None:
    customer = _existing_customer(cmd.customer, uow)
    try:
        changed = customer.update(name=cmd.name, address=cmd.address, population=cmd.population,
                                  kind=cmd.kind, member=cmd.member,
                                  member_communes=cmd.member_communes)
    except ValueError as error:
        raise BusinessRuleViolation(f"customer {cmd.customer!r}: {error}") from None
    if changed:
        uow.add(customer)


def set_billing_references(cmd: SetBillingReferences, uow: UnitOfWork) -> None:
    customer = _existing_customer(cmd.customer, uow)
    customer.set_billing_references(
        year=cmd.year, code_service=cmd.code_service, engagement_number=cmd.engagement_number,
        code_service_required=cmd.code_service_required,
        engagement_required=cmd.engagement_required,
    )
    uow.add(customer)


def register_operator(cmd: RegisterOperator, uow: UnitOfWork) -> None:
    operator = uow.operator() or Operator()
    profile = {"name": cmd.name, "siret": cmd.siret, "address": cmd.address,
               "vat_number": cmd.vat_number, "iban": cmd.iban}
    # Added with document format 2; left out when not given, so that a profile registered
    # before reads the same.
    if cmd.payment_days is not None:
        profile["payment_days"] = cmd.payment_days
    if cmd.payment_terms is not None:
        profile["payment_terms"] = cmd.payment_terms
    if operator.register(profile):
        uow.add(operator)


def set_helios_profile(cmd: SetHeliosProfile, uow: UnitOfWork) -> None:
    treasury = uow.treasury() or Treasury()
    if treasury.set_profile(cmd.profile):
        uow.add(treasury)


def _order_form(cmd: SignOrder | AddStorage, uow: UnitOfWork) -> dict[str, Any]:
    """What every order form gives the subscription (a signature or added storage), once its
    reference is checked: an order form reference identifies what is charged, so it is never
    recorded twice."""
    other = uow.order_domain(cmd.order)
    if other is not None:
        where = "for this domain" if other == cmd.domain else f"for domain {other!r}"
        raise BusinessRuleViolation(
            f"order form {cmd.order} is already recorded {where}: each order form has its own "
            "reference (it identifies what is charged)")
    return {"schedules": uow.schedules(), "order": cmd.order,
            "extra_gb_packs": cmd.extra_gb_packs, "signed_on": cmd.signed_on,
            "received_on": cmd.received_on}


def _recorded(cmd: SignOrder | AddStorage, subscription: Subscription, uow: UnitOfWork) -> None:
    uow.use_order(cmd.order, cmd.domain)
    uow.add(subscription)


def sign_order(cmd: SignOrder, uow: UnitOfWork) -> None:
    form = _order_form(cmd, uow)
    customer = _existing_customer(cmd.customer, uow)
    subscription = uow.subscription(cmd.domain) or Subscription.open(cmd.domain)
    subscription.sign_order(customer=customer, storage_gb=cmd.storage_gb, **form)
    _recorded(cmd, subscription, uow)


def _existing_subscription(domain: str, uow: UnitOfWork) -> Subscription:
    subscription = uow.subscription(domain)
    if subscription is None:
        raise UnknownDomain(domain)
    return subscription


def activate(cmd: Activate, uow: UnitOfWork) -> None:
    subscription = _existing_subscription(cmd.domain, uow)
    subscription.activate(activated_on=cmd.activated_on)
    uow.add(subscription)


def add_storage(cmd: AddStorage, uow: UnitOfWork) -> None:
    subscription = _existing_subscription(cmd.domain, uow)
    subscription.add_storage(**_order_form(cmd, uow))
    _recorded(cmd, subscription, uow)


def request_termination(cmd: RequestTermination, uow: UnitOfWork) -> None:
    subscription = _existing_subscription(cmd.domain, uow)
    subscription.request_termination(received_on=cmd.received_on)
    uow.add(subscription)


def adopt_tariff_schedule(schedule: Schedule, uow: UnitOfWork) -> bool:
    """Record a schedule adopted by deliberation. ``False`` if it was already adopted as is."""
    book = uow.tariff_book() or TariffBook()
    adopted = book.adopt(schedule)
    if adopted:
        uow.add(book)
    return adopted


def touched_ids(command: Command) -> list[UUID]:
    """The aggregates a command may read or create, for :meth:`UnitOfWork.prefetch`."""
    ids = [receipt_id(command.id)]
    if hasattr(command, "customer"):
        ids.append(customer_id(command.customer))
    if hasattr(command, "domain"):
        ids.append(subscription_id(command.domain))
        legacy = ascii_spelling(command.domain)
        if legacy is not None:  # where an earlier version may have recorded it
            ids.append(subscription_id(legacy))
    return ids


def touched_refs(command: Command) -> list[str]:
    """The index references a command looks up (an order form's, a SIRET's), for
    :meth:`UnitOfWork.prefetch`."""
    if isinstance(command, (SignOrder, AddStorage)):
        return [f"order:{command.order}"]
    if isinstance(command, RegisterCustomer):
        return [f"siret:{command.siret}"]
    return []


HANDLERS: dict[type, Callable[[Any, UnitOfWork], None]] = {
    RegisterCustomer: register_customer,
    UpdateCustomer: update_customer,
    SetBillingReferences: set_billing_references,
    RegisterOperator: register_operator,
    SetHeliosProfile: set_helios_profile,
    SignOrder: sign_order,
    Activate: activate,
    AddStorage: add_storage,
    RequestTermination: request_termination,
}


def handle(command: Command, uow: UnitOfWork) -> None:
    HANDLERS[type(command)](command, uow)
