"""Command handlers: load what the command needs, let the domain decide, keep the result.

Each handler is a plain function ``(command, uow)``. Rules live in the domain
(``ledger``); handlers only look aggregates up and report what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

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
from eventstore.app import LedgerApplication
from ledger.customer import Customer
from ledger.errors import BusinessRuleViolation, UnknownCustomer, UnknownDomain
from ledger.identity import customer_id, receipt_id, subscription_id, treasury_id
from ledger.operator import Operator, operator_id
from ledger.receipt import CommandReceipt
from ledger.subscription import Subscription
from ledger.tariff_book import TariffBook, tariff_book_id
from ledger.tariffs import Schedule
from ledger.treasury import Treasury


class _LogReader:
    """Reads of the committed log, for a unit of work outside a write session."""

    def __init__(self, app: LedgerApplication) -> None:
        self.app = app

    def aggregate(self, aggregate_id: UUID) -> Any:
        return self.app.aggregate(aggregate_id)

    def existing_ids(self, ids: list[UUID]) -> set[UUID]:
        return self.app.recorder.existing_ids(ids)

    def positions_of(self, ref: str) -> list[int]:
        return self.app.recorder.positions_of(ref)

    def entry(self, position: int) -> Any:
        return self.app.recorder.entry(position)


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
        kept = {key: value for key, value in getattr(self, "_loaded", {}).items()
                if key in (tariff_book_id(), operator_id()) and key not in
                getattr(self, "_changed", {})}
        self._loaded: dict[UUID, Aggregate | None] = kept
        self._changed: dict[UUID, Aggregate] = {}
        self._attributed: dict[UUID, int] = {}
        self._touched: dict[UUID, Aggregate] = {}
        self._orders: dict[str, str] = {}  # order reference → domain, not yet saved
        self._sirets: dict[str, str] = {}  # SIRET → customer key, not yet saved
        self.event_metadata: dict[tuple[UUID, int], dict[str, Any]] = {}

    def _get(self, aggregate_id: UUID) -> Any:
        if aggregate_id not in self._loaded:
            self._loaded[aggregate_id] = self.reader.aggregate(aggregate_id)
        return self._loaded[aggregate_id]

    def prefetch(self, ids: list[UUID]) -> None:
        """Learn in bulk which of ``ids`` do not exist yet, so that looking them up costs nothing."""
        unknown = [i for i in dict.fromkeys(ids) if i not in self._loaded]
        present = self.reader.existing_ids(unknown)
        for aggregate_id in unknown:
            if aggregate_id not in present:
                self._loaded[aggregate_id] = None

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
        return self._get(subscription_id(domain))

    def order_domain(self, order: str) -> str | None:
        """The domain an order form reference was already recorded for, if any."""
        if order in self._orders:
            return self._orders[order]
        for position in self.reader.positions_of(f"order:{order}"):
            entry = self.reader.entry(position)
            if entry is not None:
                subscription = self.reader.aggregate(subscription_id_of(entry))
                return subscription.domain if subscription is not None else "?"
        return None

    def use_order(self, order: str, domain: str) -> None:
        self._orders[order] = domain

    def siret_customer(self, siret: str) -> str | None:
        """The customer key already registered with this SIRET, if any."""
        if siret in self._sirets:
            return self._sirets[siret]
        for position in self.reader.positions_of(f"siret:{siret}"):
            entry = self.reader.entry(position)
            if entry is not None:
                return self.app.mapper.fields(entry)["key"]
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
        Customer(
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


def _check_order_reference(order: str, domain: str, uow: UnitOfWork) -> None:
    """An order form reference identifies what is charged: it is never recorded twice."""
    other = uow.order_domain(order)
    if other is not None:
        where = "for this domain" if other == domain else f"for domain {other!r}"
        raise BusinessRuleViolation(
            f"order form {order} is already recorded {where}: each order form has its own "
            "reference (it identifies what is charged)")


def sign_order(cmd: SignOrder, uow: UnitOfWork) -> None:
    _check_order_reference(cmd.order, cmd.domain, uow)
    customer = _existing_customer(cmd.customer, uow)
    subscription = uow.subscription(cmd.domain) or Subscription(domain=cmd.domain)
    subscription.sign_order(
        customer=customer,
        schedules=uow.schedules(),
        order=cmd.order,
        storage_gb=cmd.storage_gb,
        extra_gb_packs=cmd.extra_gb_packs,
        signed_on=cmd.signed_on,
        received_on=cmd.received_on,
    )
    uow.use_order(cmd.order, cmd.domain)
    uow.add(subscription)


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
    _check_order_reference(cmd.order, cmd.domain, uow)
    subscription.add_storage(
        schedules=uow.schedules(),
        order=cmd.order,
        extra_gb_packs=cmd.extra_gb_packs,
        signed_on=cmd.signed_on,
        received_on=cmd.received_on,
    )
    uow.use_order(cmd.order, cmd.domain)
    uow.add(subscription)


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


def subscription_id_of(entry: Any) -> UUID:
    return entry.originator_id if isinstance(entry.originator_id, UUID) \
        else UUID(entry.originator_id)


def touched_ids(command: Command) -> list[UUID]:
    """The aggregates a command may read or create, for :meth:`UnitOfWork.prefetch`."""
    ids = [receipt_id(command.id)]
    if hasattr(command, "customer"):
        ids.append(customer_id(command.customer))
    if hasattr(command, "domain"):
        ids.append(subscription_id(command.domain))
    return ids


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
