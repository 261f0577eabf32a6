"""Every event the ledger records, in one place: stable name, version, fields and types.

This list *is* the stored format. A stored entry names its event by the stable
name below — never by a Python module path — and carries the version it was
written with. Changing what an event holds means: bump ``version`` and add an
upcaster from the previous version (``upcasters[n]`` turns the fields of version
n into those of version n + 1), so that every store written before keeps
replaying. ``tests/test_events.py`` checks that each aggregate's event methods
take exactly the fields listed here, and ``tests/test_frozen_store.py`` replays
a store written by an earlier version of the code.

Field types: ``text``, ``int``, ``bool``, ``date`` (ISO 8601 text when stored),
``ints`` (a list of whole numbers),
``object`` (a JSON object of texts, numbers, booleans, lists and objects); a
trailing ``?`` allows null.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import cache
from importlib import import_module
from types import MappingProxyType
from typing import Any

import attrs

# Aggregates are named, not imported: a command that reads subscriptions does not pay for
# defining the event classes of invoicing, treasury or access (start-up time, issue 16).
Access, ApiRequest = "ledger.access:Access", "ledger.access:ApiRequest"
Audit = "ledger.audit:Audit"
Customer = "ledger.customer:Customer"
Invoicing = "ledger.invoicing:Invoicing"
Operator = "ledger.operator:Operator"
CommandReceipt = "ledger.receipt:CommandReceipt"
Subscription = "ledger.subscription:Subscription"
TariffBook = "ledger.tariff_book:TariffBook"
Treasury = "ledger.treasury:Treasury"

FIELD_TYPES = frozenset({"text", "int", "bool", "date", "ints", "object"})


def _frozen(mapping: Mapping[Any, Any]) -> Mapping[Any, Any]:
    return MappingProxyType(dict(mapping))


def topic_of(aggregate: type | str) -> str:
    """``module:QualifiedName`` of an aggregate class (a text is one already)."""
    if isinstance(aggregate, str):
        return aggregate
    return f"{aggregate.__module__}:{aggregate.__qualname__}"


@cache
def _resolve(topic: str) -> type:
    module, _, name = topic.partition(":")
    found: Any = import_module(module)
    for part in name.split("."):
        found = getattr(found, part)
    return found


@attrs.frozen
class EventType:
    """One kind of event: how it is named, versioned and stored."""

    name: str  # stable: "subscription.order_signed"
    #: The aggregate class, or its topic ("ledger.customer:Customer"), imported when needed.
    aggregate: type | str
    event_class: str  # the class the aggregate's @event decorator made, e.g. "OrderSigned"
    label: str  # what happened, for timelines
    fields: Mapping[str, str] = attrs.field(converter=_frozen)
    version: int = 1
    upcasters: Mapping[int, Callable[[dict[str, Any]], dict[str, Any]]] = attrs.field(
        factory=dict, converter=_frozen)
    #: Lookup keys the store indexes for this entry ("customer:lanvenec", "document:F-…").
    refs: Callable[[Mapping[str, Any]], Iterable[str]] | None = None
    #: The field holding the business date of the fact, for timelines.
    business_date: str | None = None

    @property
    def aggregate_class(self) -> type:
        return self.aggregate if isinstance(self.aggregate, type) else _resolve(self.aggregate)

    @property
    def cls(self) -> type:
        return getattr(self.aggregate_class, self.event_class)

    @property
    def class_key(self) -> str:
        """``module:Aggregate.Event``: what the event class's own module and name say."""
        return f"{topic_of(self.aggregate)}.{self.event_class}"

    def __attrs_post_init__(self) -> None:
        for name, kind in self.fields.items():
            if kind.rstrip("?") not in FIELD_TYPES:
                raise TypeError(f"{self.name}.{name}: unknown field type {kind!r}")
        missing = [v for v in range(1, self.version) if v not in self.upcasters]
        if missing:
            raise TypeError(f"{self.name} v{self.version}: no upcaster from version(s) {missing}")


# Upcasters: each turns the fields of version n into those of version n + 1.

def _customer_v1_v2(data: dict[str, Any]) -> dict[str, Any]:
    # Version 2 knows an EPCI's or a syndicat's kind, membership, and member communes.
    return {**data, "kind": None, "member": True, "member_communes": None}


def _customer_update_v1_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "kind": None, "member": None, "member_communes": None}


#: The terms of the Suite Territoriale as the code stated them before the barème did
#: (« communes / CCAS <= 3500 habitants et les EPCI / CIAS <= 15 000 habitants »,
#: « renouvelable par tacite reconduction, jusqu'au 31/12/2028 »).
_SUITE_TERRITORIALE_2026_TERMS = {
    "id": "suite-territoriale",
    "label": "La Suite Territoriale – Messages + Fichiers",
    "ends_on": "2028-12-31",
    "eligibility": {"any_of": [
        {"categories": ["commune", "ccas"], "population_max": 3500},
        {"categories": ["epci", "cias"], "population_max": 15000}]},
}


def _schedule_v1_v2(data: dict[str, Any]) -> dict[str, Any]:
    # Version 1 recorded the catalogue document only, in a format whose offers carried no
    # terms: they were in code then, and are given here. Version 2 records the normalised
    # schedule too (None: the document is read as it was adopted).
    document = dict(data["document"])
    if "offers" not in document and any(
            line.get("offer") == "suite-territoriale" for line in document.get("lines", [])):
        document["offers"] = [_SUITE_TERRITORIALE_2026_TERMS]
    return {"document": document, "schedule": None}


def _order_v1_v2(data: dict[str, Any]) -> dict[str, Any]:
    # Version 2 records the contract's end as the barème stated it; before, it was the
    # order form's 31/12/2028, then in code.
    # It also records the facts of the body the order was priced for (None before: the
    # barème's lines did not depend on them).
    return {**data, "ends_on": "2028-12-31", "facts": None}


def _customer(data: Mapping[str, Any]) -> list[str]:
    return [f"customer:{data['key']}", f"siret:{data['siret']}"]


def _order(data: Mapping[str, Any]) -> list[str]:
    return [f"customer:{data['customer']}", f"order:{data['order']}"]


def _storage_order(data: Mapping[str, Any]) -> list[str]:
    return [f"order:{data['order']}"]


def _document(data: Mapping[str, Any]) -> list[str]:
    document = data["document"]
    domains = sorted({line["domain"] for line in document["lines"]})
    return [f"document:{document['number']}", f"customer:{document['buyer']['customer']}",
            *(f"domain:{domain}" for domain in domains)]


def _pes_file(data: Mapping[str, Any]) -> list[str]:
    file = data["file"]
    return [f"pes:{file['name']}", *(f"document:{number}" for number in file["documents"])]


EVENT_TYPES: tuple[EventType, ...] = (
    EventType("customer.registered", Customer, "CustomerRegistered", "customer registered", {
        "key": "text", "name": "text", "siret": "text", "category": "text", "population": "int",
        "address": "object?", "kind": "text?", "member": "bool", "member_communes": "int?"},
        version=2, upcasters={1: _customer_v1_v2}, refs=_customer),
    EventType("customer.updated", Customer, "CustomerUpdated", "customer updated", {
        "name": "text?", "address": "object?", "population": "int?", "kind": "text?",
        "member": "bool?", "member_communes": "int?"},
        version=2, upcasters={1: _customer_update_v1_v2}),
    EventType("customer.billing_references_set", Customer, "BillingReferencesSet",
              "Chorus Pro references set", {
                  "year": "int", "code_service": "text?", "engagement_number": "text?",
                  "code_service_required": "bool", "engagement_required": "bool"}),
    EventType("subscription.opened", Subscription, "Opened", "domain opened", {"domain": "text"}),
    EventType("subscription.order_signed", Subscription, "OrderSigned", "order form received", {
        "order": "text", "customer": "text", "storage_gb": "int", "extra_gb_packs": "ints",
        "signed_on": "date", "received_on": "date", "ends_on": "date", "facts": "object?"},
        version=2, upcasters={1: _order_v1_v2}, refs=_order, business_date="received_on"),
    EventType("subscription.service_activated", Subscription, "ServiceActivated",
              "service activated", {"activated_on": "date"}, business_date="activated_on"),
    EventType("subscription.storage_added", Subscription, "StorageAdded",
              "storage order received", {
                  "order": "text", "extra_gb_packs": "ints", "signed_on": "date",
                  "received_on": "date"}, refs=_storage_order, business_date="received_on"),
    EventType("subscription.termination_requested", Subscription, "TerminationRequested",
              "termination letter received", {"received_on": "date"},
              business_date="received_on"),
    EventType("receipt.command_applied", CommandReceipt, "CommandApplied", "command applied", {
        "command_id": "text", "digest": "text", "command_type": "text"}),
    EventType("tariffs.opened", TariffBook, "Opened", "tariff book opened", {}),
    EventType("tariffs.schedule_adopted", TariffBook, "TariffScheduleAdopted",
              "tariff schedule adopted", {"document": "object", "schedule": "object?"},
              version=2, upcasters={1: _schedule_v1_v2}),
    EventType("operator.opened", Operator, "Opened", "operator opened", {}),
    EventType("operator.registered", Operator, "OperatorRegistered", "operator registered",
              {"profile": "object"}),
    EventType("invoicing.opened", Invoicing, "Opened", "invoicing opened", {}),
    EventType("invoicing.invoice_issued", Invoicing, "InvoiceIssued", "invoice issued", {
        "document": "object", "digest": "text", "basis_position": "int"}, refs=_document),
    EventType("invoicing.credit_note_issued", Invoicing, "CreditNoteIssued",
              "credit note issued", {
                  "document": "object", "digest": "text", "basis_position": "int"},
              refs=_document),
    EventType("invoicing.period_closed", Invoicing, "PeriodClosed", "period closed", {
        "kind": "text", "period": "text", "start": "date", "end": "date", "documents": "int",
        "invoiced": "text", "credited": "text", "net": "text", "cumulative_invoiced": "text",
        "cumulative_credited": "text", "cumulative_net": "text"}, business_date="end"),
    EventType("treasury.opened", Treasury, "Opened", "treasury opened", {}),
    EventType("treasury.helios_profile_set", Treasury, "HeliosProfileSet",
              "Hélios identifiers set", {"profile": "object"}),
    EventType("treasury.pes_file_recorded", Treasury, "PesFileRecorded",
              "PES file for the comptable recorded", {"file": "object"}, refs=_pes_file,
              business_date=None),
    EventType("access.opened", Access, "Opened", "API access opened", {}),
    EventType("access.token_created", Access, "TokenCreated", "API token created", {
        "token_id": "text", "name": "text", "role": "text", "sha256": "text"}),
    EventType("access.token_revoked", Access, "TokenRevoked", "API token revoked",
              {"token_id": "text"}),
    EventType("api.request_answered", ApiRequest, "Answered", "API write answered", {
        "key": "text", "fingerprint": "text", "method": "text", "path": "text", "status": "int",
        "body": "object"}, refs=lambda data: [f"idempotency:{data['key']}"]),
    EventType("audit.opened", Audit, "Opened", "audit trail opened", {}),
    EventType("audit.key_registered", Audit, "KeyRegistered", "signing key registered",
              {"verifier_key": "text"}),
    EventType("audit.checkpoint_recorded", Audit, "CheckpointRecorded", "checkpoint signed", {
        "origin": "text", "size": "int", "root": "text", "note": "text"}),
)


class Registry:
    """Look-ups over a list of event types (the ledger's, or a test's). None imports an
    aggregate but :meth:`of_event`, for an event whose class is already there."""

    def __init__(self, types: Iterable[EventType]) -> None:
        self.types = tuple(types)
        self.by_name = {t.name: t for t in self.types}
        self._by_key = {t.class_key: t for t in self.types}
        if len(self.by_name) != len(self.types) or len(self._by_key) != len(self.types):
            raise TypeError("two event types share a name or a class")

    def names(self, *aggregates: type | str) -> frozenset[str]:
        """The stable names of every event of these aggregates (for scans by event type)."""
        topics = {topic_of(a) for a in aggregates}
        return frozenset(t.name for t in self.types if topic_of(t.aggregate) in topics)

    def name_of(self, aggregate: type | str, event_class: str) -> str:
        return self._by_key[f"{topic_of(aggregate)}.{event_class}"].name

    def of_event(self, event: object) -> EventType:
        """The type of a domain event (KeyError: its class is not listed)."""
        cls = type(event)
        kind = self._by_key[f"{cls.__module__}:{cls.__qualname__}"]
        if kind.cls is not cls:
            raise KeyError(cls.__qualname__)
        return kind


REGISTRY = Registry(EVENT_TYPES)
