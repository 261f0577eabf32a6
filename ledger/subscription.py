"""Subscriptions to the Suite Territoriale, one per domain name (R2).

The aggregate keeps the facts received on each order form — dates, tier,
packs, activation, termination — as immutable :class:`Contract` values. It
decides whether a command is allowed; what is owed is derived from these facts
by ``projections``.
"""

from __future__ import annotations

import operator
import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from uuid import UUID

import attrs
from eventsourcing.domain import Aggregate, event

from ledger import rules
from ledger.customer import Customer
from ledger.errors import BusinessRuleViolation
from ledger.folding import Fold
from ledger.identity import subscription_id
from ledger.tariffs import Facts, Schedule

#: What a domain's labels are written with: a-z, 0-9 and the lower-case letters of Latin-1
#: (à to ÿ, but not ÷), œ and æ; "-" inside.
_LETTERS = "a-z0-9à-öø-ÿœæ"
_DOMAIN_LABEL = rf"[{_LETTERS}](?:[{_LETTERS}-]{{0,61}}[{_LETTERS}])?"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_LABEL}\.)+[a-z]{{2,63}}")
_NOT_IN_A_DOMAIN = re.compile(rf"[^{_LETTERS}.-]")
#: The prefix of a label written in ASCII (punycode, RFC 3492) for an internationalised one.
_ACE = "xn--"


def valid_domain(text: str) -> str:
    """A domain name such as ``mauron.fr``, ``lanvénec.fr`` or ``ccas-mauron.collectivite.fr``,
    in its one canonical form: Unicode NFC, lower case, each ``xn--`` label written as the
    letters it stands for (``xn--lanvnec-eya.fr`` is ``lanvénec.fr``).

    A domain's subscription is found by this form (:func:`ledger.identity.subscription_id`),
    so one domain has one subscription (R2) however it is written. It is the form accented
    domains were always stored in: a composed, lower-case spelling was taken as it was, and
    the others were refused (``xn--`` labels were taken as written, hence a second
    subscription for the same domain)."""
    canonical = text.lower()
    if not canonical.isascii():
        canonical = unicodedata.normalize("NFC", canonical)
    if _ACE in canonical:
        labels = canonical.split(".")
        for index, label in enumerate(labels):
            if label.startswith(_ACE):
                try:
                    # The standard library's IDNA codec: the label's punycode decoded, and
                    # refused unless encoding it again gives the label back.
                    labels[index] = label.encode("ascii").decode("idna")
                except UnicodeError:
                    raise ValueError(
                        f"{text!r} is not a domain name: {label!r} is not valid punycode (an "
                        "xn-- label is the ASCII form of an accented one, such as "
                        "xn--lanvnec-eya for lanvénec)") from None
        canonical = ".".join(labels)
    if not _DOMAIN.fullmatch(canonical):
        bad = _NOT_IN_A_DOMAIN.search(canonical)
        why = f": {bad.group()!r} (U+{ord(bad.group()):04X}) is not allowed in it" if bad else ""
        raise ValueError(
            f"{text!r} is not a domain name{why} (expected lower-case labels separated by "
            "dots, such as mauron.fr)"
        )
    # Counted as DNS counts them, in ASCII (an ASCII label's 63 the pattern already bounds).
    written = ascii_spelling(canonical) or canonical
    if len(written) > 253 or max(map(len, written.split("."))) > 63:
        raise ValueError(f"{text!r} is not a domain name: longer than DNS allows once written "
                         "in ASCII (63 characters a label, 253 in all)")
    return canonical


def ascii_spelling(domain: str) -> str | None:
    """The ``xn--`` spelling of a canonical domain with accented labels (``None`` if it has
    none): ``lanvénec.fr`` → ``xn--lanvnec-eya.fr``. Versions before the canonical form took
    ``xn--`` labels as written: a subscription they recorded that way is found under this
    spelling when none is recorded under the canonical one."""
    if domain.isascii():
        return None
    return ".".join(label if label.isascii() else _ACE + label.encode("punycode").decode()
                    for label in domain.split("."))


def canonical_domain(text: str) -> str:
    """The domain a reader asks about, in the form its subscription was recorded under
    (:func:`valid_domain`): ``XN--LANVNEC-EYA.FR`` finds ``lanvénec.fr``. Text that is not a
    domain name is only lower-cased: it is then a domain the ledger does not know."""
    try:
        return valid_domain(text)
    except ValueError:
        return text.lower()


@attrs.frozen
class StorageOrder:
    """Extra-storage packs ordered on one signed order form."""

    order: str
    packs: tuple[int, ...]
    signed_on: date
    received_on: date


@attrs.frozen
class Contract:
    """What one order form for a domain, and what followed it, established."""

    order: str
    customer: str
    storage_gb: int
    signed_on: date
    received_on: date
    storage_orders: tuple[StorageOrder, ...] = ()
    activated_on: date | None = None
    termination_received_on: date | None = None
    #: The contract's last day (R6), as the barème in force on receipt stated it.
    ends_on: date = date(2028, 12, 31)
    #: The body's facts (category, kind, population) as declared when the order form was
    #: received: they chose the barème's lines for the life of the contract.
    facts: Facts = Facts()

    @property
    def service_end(self) -> date | None:
        """Last day of service once a termination request was received (R7), else ``None``."""
        if self.activated_on is None or self.termination_received_on is None:
            return None
        return rules.service_end(self.activated_on, self.termination_received_on, self.ends_on)

    @property
    def extra_gb(self) -> int:
        return sum(sum(o.packs) for o in self.storage_orders)

    def as_of(self, day: date) -> Contract | None:
        """This contract as it stood on business date ``day``: only what had been received by then.

        ``None`` if the order form itself had not been received yet.
        """
        if self.received_on > day:
            return None
        return attrs.evolve(
            self,
            storage_orders=tuple(o for o in self.storage_orders if o.received_on <= day),
            activated_on=_known(self.activated_on, day),
            termination_received_on=_known(self.termination_received_on, day),
        )


def _known(value: date | None, day: date) -> date | None:
    return value if value is not None and value <= day else None


def _check_packs(schedules: Sequence[Schedule], packs: Sequence[int], received_on: date,
                 facts: Facts) -> None:
    for gb in packs:
        rules.pack_fee(schedules, gb, received_on, facts)  # raises if no line offers it to them


def _check_within_offer(what: str, day: date, end: date) -> None:
    if day > end:
        raise BusinessRuleViolation(f"{what} {day} is after the end of the offer ({end})")


def _check_signed_before_received(signed_on: date, received_on: date) -> None:
    if received_on < signed_on:
        raise BusinessRuleViolation(
            f"received_on {received_on} is before signed_on {signed_on}: "
            "an order form cannot be received before it is signed"
        )


class Subscription(Aggregate):
    """The history of one domain name's subscription(s).

    Usually one contract; a new order form for the same domain is accepted only
    once the previous subscription has ended (R2), and starts a new contract.
    """

    @staticmethod
    def create_id(domain: str) -> UUID:
        return subscription_id(domain)

    @event("Opened")
    def __init__(self, domain: str) -> None:
        self.domain = domain
        self.contracts: tuple[Contract, ...] = ()

    @classmethod
    def open(cls, domain: str) -> Subscription:
        """``Subscription(domain=domain)``: the subscription of a domain never seen before,
        its ``Opened`` event pending. Commands record their events through the fold's
        appliers (:meth:`ledger.folding.Fold.record`): the event methods below are what the
        library applies when it folds the stored events back."""
        return _FOLD.create(cls, subscription_id(domain), {"domain": domain})

    @property
    def current(self) -> Contract:
        return self.contracts[-1]

    def note_entry(self, event: object) -> None:
        """Note the log position of the entry that set a fact (called when the subscription
        is folded from the store: a position is the store's, never the clock's). Explanations
        name the entries behind each charge: :attr:`entries`, one mapping per contract —
        ``order``, ``activation``, ``termination``, ``storage:<order form>`` → position."""
        position = getattr(event, "log_position", None)
        if position is not None:
            self._note(type(event).__name__, position)

    def _note(self, name: str, position: int) -> None:
        entries = self.__dict__.setdefault("entries", [])
        if name == "OrderSigned":
            entries.append({"order": position})
            if self.current.storage_orders:  # packs ordered on the order form itself
                entries[-1][f"storage:{self.current.order}"] = position
        elif name == "ServiceActivated":
            entries[-1]["activation"] = position
        elif name == "StorageAdded":
            entries[-1][f"storage:{self.current.storage_orders[-1].order}"] = position
        elif name == "TerminationRequested":
            entries[-1]["termination"] = position

    @property
    def orders(self) -> set[str]:
        """Every order form reference recorded for this domain."""
        return {o for c in self.contracts for o in (c.order, *(s.order for s in c.storage_orders))}

    def _check_new_order(self, order: str) -> None:
        if order in self.orders:
            raise BusinessRuleViolation(
                f"order form {order} is already recorded for {self.domain!r}: each order form "
                "has its own reference (it identifies what is charged)")

    # Commands: check, then record. Nothing is recorded when a check fails.

    def sign_order(
        self,
        *,
        customer: Customer,
        schedules: Sequence[Schedule],
        order: str,
        storage_gb: int,
        extra_gb_packs: Sequence[int],
        signed_on: date,
        received_on: date,
    ) -> None:
        _check_signed_before_received(signed_on, received_on)
        ends_on = rules.contract_end(schedules, received_on)  # raises if no barème governs it
        reason = rules.ineligibility_reason(schedules, received_on, customer.facts)
        if reason is not None:
            raise BusinessRuleViolation(
                f"customer {customer.key!r} is not eligible for the Suite Territoriale: {reason}"
            )
        _check_within_offer("received_on", received_on, ends_on)
        self._check_new_order(order)
        facts = customer.facts
        rules.access_fee(schedules, storage_gb, received_on, facts)  # raises if not priced
        _check_packs(schedules, extra_gb_packs, received_on, facts)
        if self.contracts:
            current = self.current
            if not rules.has_ended(current.service_end, received_on, current.ends_on):
                raise BusinessRuleViolation(
                    f"domain {self.domain!r} already has order form {current.order} "
                    f"(received {current.received_on}) and its subscription has not ended "
                    f"by {received_on}; one order form per domain name — more storage "
                    "goes through add_storage"
                )
        _FOLD.record(self, "OrderSigned", {
            "order": order,
            "customer": customer.key,
            "storage_gb": storage_gb,
            "extra_gb_packs": tuple(extra_gb_packs),
            "signed_on": signed_on,
            "received_on": received_on,
            "ends_on": ends_on,
            "facts": attrs.asdict(facts),
        })

    def activate(self, *, activated_on: date) -> None:
        current = self.current
        if current.activated_on is not None:
            raise BusinessRuleViolation(
                f"domain {self.domain!r} was already activated on {current.activated_on}"
            )
        if activated_on < current.received_on:
            raise BusinessRuleViolation(
                f"activated_on {activated_on} is before order form {current.order} "
                f"was received ({current.received_on})"
            )
        _check_within_offer("activated_on", activated_on, current.ends_on)
        _FOLD.record(self, "ServiceActivated", {"activated_on": activated_on})

    def add_storage(
        self,
        *,
        schedules: Sequence[Schedule],
        order: str,
        extra_gb_packs: Sequence[int],
        signed_on: date,
        received_on: date,
    ) -> None:
        current = self.current
        if not extra_gb_packs:
            raise BusinessRuleViolation("add_storage needs at least one pack in extra_gb_packs")
        _check_signed_before_received(signed_on, received_on)
        if current.termination_received_on is not None:
            raise BusinessRuleViolation(
                f"a termination request for {self.domain!r} was received on "
                f"{current.termination_received_on}: no storage can be added any more"
            )
        if received_on < current.received_on:
            raise BusinessRuleViolation(
                f"received_on {received_on} is before the domain's order form "
                f"{current.order} was received ({current.received_on})"
            )
        _check_within_offer("received_on", received_on, current.ends_on)
        self._check_new_order(order)
        _check_packs(schedules, extra_gb_packs, received_on, current.facts)
        _FOLD.record(self, "StorageAdded", {
            "order": order, "extra_gb_packs": tuple(extra_gb_packs), "signed_on": signed_on,
            "received_on": received_on})

    def request_termination(self, *, received_on: date) -> None:
        current = self.current
        if current.activated_on is None:
            raise BusinessRuleViolation(
                f"domain {self.domain!r} has not been activated: a termination "
                "request is only possible for an activated subscription"
            )
        if current.termination_received_on is not None:
            raise BusinessRuleViolation(
                f"a termination request for {self.domain!r} was already received on "
                f"{current.termination_received_on}"
            )
        if received_on < current.activated_on:
            raise BusinessRuleViolation(
                f"termination received_on {received_on} is before the activation "
                f"date {current.activated_on}"
            )
        _check_within_offer("received_on", received_on, current.ends_on)
        _FOLD.record(self, "TerminationRequested", {"received_on": received_on})

    # Events: apply facts only. Never read the clock or anything outside the event. Commands
    # record them with ``_FOLD.record`` (the same appliers, without the library's matching of
    # arguments to parameters); the library calls these when it folds stored events.

    @event("OrderSigned")
    def _order_signed(
        self,
        order: str,
        customer: str,
        storage_gb: int,
        extra_gb_packs: tuple[int, ...],
        signed_on: date,
        received_on: date,
        ends_on: date,
        facts: dict[str, object] | None = None,
    ) -> None:
        self.contracts = order_signed(
            self.contracts, order=order, customer=customer, storage_gb=storage_gb,
            extra_gb_packs=extra_gb_packs, signed_on=signed_on, received_on=received_on,
            ends_on=ends_on, facts=facts)

    @event("ServiceActivated")
    def _activated(self, activated_on: date) -> None:
        self.contracts = service_activated(self.contracts, activated_on)

    @event("StorageAdded")
    def _storage_added(
        self, order: str, extra_gb_packs: tuple[int, ...], signed_on: date, received_on: date
    ) -> None:
        self.contracts = storage_added(self.contracts, order, extra_gb_packs, signed_on,
                                       received_on)

    @event("TerminationRequested")
    def _termination_requested(self, received_on: date) -> None:
        self.contracts = termination_requested(self.contracts, received_on)

    @classmethod
    def from_facts(cls, aggregate_id: UUID, facts: Iterable[tuple[str, int, int, dict]],
                   created_on: datetime, modified_on: datetime) -> Subscription:
        """The subscription its stored events give, folded straight from their fields:
        ``facts`` are ``(event class name, aggregate version, log position, fields)`` in
        version order. The same appliers as the event methods (:data:`APPLIERS`), without
        building the library's event objects — what a projection of every subscription does
        (a fifth of a full replay went into them). :class:`DamagedHistory`, naming the
        entry's position, if the versions do not follow each other, an event is not one of a
        subscription's or cannot be applied where it stands (:class:`ledger.folding.Fold`)."""
        return _FOLD(cls, aggregate_id, facts, created_on, modified_on)


# Each event's facts applied to a domain's contracts: pure functions of the contracts and the
# event's fields, the one definition of what each event does (the event methods above call
# them, and so does :meth:`Subscription.from_facts`).

#: The facts of an order form that declared none (one object, shared).
_NO_FACTS = Facts()


def order_signed(
    contracts: tuple[Contract, ...], *, order: str, customer: str, storage_gb: int,
    extra_gb_packs: Sequence[int], signed_on: date, received_on: date, ends_on: date,
    facts: dict[str, object] | None = None,
) -> tuple[Contract, ...]:
    """A new contract: the order form's tier, its packs, the body's facts as declared."""
    packs = tuple(extra_gb_packs)
    storage_orders = (StorageOrder(order, packs, signed_on, received_on),) if packs else ()
    # Positional, in the order of Contract's fields (a fold of every subscription makes one
    # for each order form: keywords cost twice as much to match).
    contract = Contract(order, customer, storage_gb, signed_on, received_on, storage_orders,
                        None, None, ends_on, Facts(**facts) if facts else _NO_FACTS)
    return (*contracts, contract)


def service_activated(contracts: tuple[Contract, ...], activated_on: date
                      ) -> tuple[Contract, ...]:
    return _replace_last(contracts, activated_on=activated_on)


def storage_added(contracts: tuple[Contract, ...], order: str, extra_gb_packs: Sequence[int],
                  signed_on: date, received_on: date) -> tuple[Contract, ...]:
    added = StorageOrder(order, tuple(extra_gb_packs), signed_on, received_on)
    return _replace_last(contracts, storage_orders=(*contracts[-1].storage_orders, added))


def termination_requested(contracts: tuple[Contract, ...], received_on: date
                          ) -> tuple[Contract, ...]:
    return _replace_last(contracts, termination_received_on=received_on)


#: A contract's fields, read in one call (C): :func:`_replace_last` copies them.
_CONTRACT_FIELDS = tuple(field.name for field in attrs.fields(Contract))
_contract_values = operator.attrgetter(*_CONTRACT_FIELDS)


_CONTRACT_INDEX = {name: index for index, name in enumerate(_CONTRACT_FIELDS)}


def _replace_last(contracts: tuple[Contract, ...], **changes: object) -> tuple[Contract, ...]:
    # ``attrs.evolve`` without its per-call look-up of the class's fields, the fields passed
    # by position (a fold of every subscription calls this for each activation, pack and
    # termination).
    values = list(_contract_values(contracts[-1]))
    for name, value in changes.items():
        values[_CONTRACT_INDEX[name]] = value
    return (*contracts[:-1], Contract(*values))


#: What each event after ``Opened`` does to the contracts, by its class name.
APPLIERS = {"OrderSigned": order_signed, "ServiceActivated": service_activated,
            "StorageAdded": storage_added, "TerminationRequested": termination_requested}


def _opened(subscription: Subscription, fields: dict) -> None:
    subscription.domain, subscription.contracts = fields["domain"], ()


def _on_contracts(apply):
    def applier(subscription: Subscription, fields: dict) -> None:
        subscription.contracts = apply(subscription.contracts, **fields)
    return applier


#: How :meth:`Subscription.from_facts` folds: each event's applier, ``Opened`` first.
_FOLD = Fold("a subscription", {"Opened": _opened, **{
    name: _on_contracts(apply) for name, apply in APPLIERS.items()}}, Subscription._note)
