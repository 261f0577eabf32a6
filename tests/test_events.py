"""The registry of events is the stored format: it must match the code, and old entries upcast."""

from __future__ import annotations

import dataclasses
import inspect
from datetime import date

import orjson
import pytest
from eventsourcing.domain import CanInitAggregate, decorated_funcs

from eventstore.mapper import LogMapper
from ledger.events import EVENT_TYPES, REGISTRY, EventType, Registry
from ledger.identity import subscription_id
from ledger.subscription import Subscription
from tests.conftest import activate, register, sign


@pytest.mark.parametrize("kind", EVENT_TYPES, ids=lambda t: t.name)
def test_each_event_method_takes_exactly_the_fields_the_registry_lists(kind):
    if kind.cls in decorated_funcs or issubclass(kind.cls, CanInitAggregate):
        method = decorated_funcs.get(kind.cls) or kind.aggregate_class.__init__
        parameters = [name for name in inspect.signature(method).parameters if name != "self"]
    else:  # an event class of its own (Invoicing.InvoiceIssued): its declared fields
        parameters = [field.name for field in dataclasses.fields(kind.cls)
                      if field.name not in ("originator_id", "originator_version", "timestamp")]
    assert parameters == list(kind.fields), (
        f"{kind.name}: the code's fields differ from ledger/events.py — bump its version and "
        "add an upcaster rather than changing what stored entries mean")


def test_every_event_class_of_every_aggregate_is_listed():
    from eventsourcing.domain import CanMutateAggregate

    for aggregate in {t.aggregate_class for t in EVENT_TYPES}:
        # The library's own bases (Event, Created) are never recorded; every other is.
        classes = {value for name, value in vars(aggregate).items()
                   if isinstance(value, type) and issubclass(value, CanMutateAggregate)
                   and name not in ("Event", "Created")}
        listed = {t.cls for t in EVENT_TYPES if t.aggregate_class is aggregate}
        assert classes <= listed, aggregate


def test_reading_the_registry_imports_no_aggregate():
    """Start-up: naming events (scans by event type, topic lists) must not define every
    aggregate's event classes; only a command that reads an aggregate's events imports it."""
    import subprocess
    import sys

    code = ("import sys, ledger.events as e; e.REGISTRY.names(e.Subscription); "
            "e.REGISTRY.name_of(e.Invoicing, 'InvoiceIssued'); "
            "print(sorted(m for m in sys.modules if m in {'ledger.invoicing', "
            "'ledger.subscription', 'ledger.customer', 'ledger.treasury', 'ledger.access'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_the_registry_refuses_an_event_class_it_does_not_list():
    class Lookalike:  # same module and name as a listed event, another class
        pass
    Lookalike.__module__, Lookalike.__qualname__ = "ledger.subscription", "Subscription.Opened"
    with pytest.raises(KeyError):
        REGISTRY.of_event(Lookalike())
    assert REGISTRY.of_event(object.__new__(Subscription.Opened)).name == "subscription.opened"


def test_stable_names_do_not_depend_on_module_paths():
    for kind in EVENT_TYPES:
        assert "ledger" not in kind.name and ":" not in kind.name
        assert kind.name.count(".") == 1


def test_topic_lists_are_derived_from_the_registry():
    from projections import history

    assert history.SUBSCRIPTION_EVENTS == {t.name for t in EVENT_TYPES
                                           if t.aggregate_class is Subscription}


def test_an_older_version_is_upcast_on_replay(app, apply):
    apply(register(), sign(), activate())
    # A later version of the code adds a field to ServiceActivated, with an upcaster.
    original = REGISTRY.by_name["subscription.service_activated"]
    newer = EventType(original.name, original.aggregate, original.event_class, original.label,
                      {**original.fields, "activated_by": "text"}, version=2,
                      upcasters={1: lambda data: {**data, "activated_by": "unknown"}})
    mapper = LogMapper(Registry(newer if t is original else t for t in EVENT_TYPES))
    entries = app.recorder.select_events(subscription_id("lanvenec.fr"))
    activated = next(e for e in entries if e.event == original.name)
    assert activated.event_version == 1
    assert mapper.fields(activated) == {"activated_on": date(2026, 4, 2),
                                        "activated_by": "unknown"}


def test_an_entry_this_version_cannot_read_is_a_clear_error(app, apply):
    from eventstore.log import LogFormatError

    apply(register())
    entry = app.recorder.entry(app.position() - 1)
    newer = entry.__class__(**{**vars(entry), "event_version": 7})
    with pytest.raises(LogFormatError, match="version 7; this version of the ledger reads"):
        app.mapper.to_domain_event(newer)
    unknown = entry.__class__(**{**vars(entry), "topic": "customer.teleported"})
    with pytest.raises(LogFormatError, match="does not know"):
        app.mapper.to_domain_event(unknown)
    missing = entry.__class__(**{**vars(entry), "state": orjson.dumps({"key": "x"})})
    with pytest.raises(LogFormatError, match="has no field"):
        app.mapper.to_domain_event(missing)


def test_an_event_whose_fields_the_registry_does_not_list_cannot_be_stored():
    from eventsourcing.domain import Aggregate, event

    class Stray(Aggregate):
        @event("Made")
        def __init__(self, x: int) -> None:
            self.x = x

    with pytest.raises(TypeError, match="not listed in ledger/events.py"):
        LogMapper().to_stored_event(Stray(x=1).collect_events()[0])


# Commands record their events through the fold's appliers (ledger/folding.py: created,
# recorded), not through the library's class call and @event methods: the same aggregates, the
# same pending events, the same stored entries.

_TIMES = {"_created_on", "_modified_on", "timestamp", "_pending_events"}


def _state(obj) -> dict:
    return {k: v for k, v in vars(obj).items() if k not in _TIMES}


def _same_as_library(direct, twin, calls) -> None:
    """Give ``twin`` (made the library's way from the command's arguments) each later event
    through the library's ``@event`` method, with the fields the command's arguments give
    (``calls``: method and fields, written out from the arguments, not read from ``direct``),
    then compare both, event by event, down to the stored entries."""
    for method, fields in calls:
        method(twin, **fields)
    mapper = LogMapper()
    assert type(direct) is type(twin) and _state(direct) == _state(twin)
    assert (direct.id, direct.version) == (twin.id, twin.version) == (direct.id, len(calls) + 1)
    assert direct.created_on == direct.pending_events[0].timestamp
    assert direct.modified_on == direct.pending_events[-1].timestamp
    for ours, theirs in zip(direct.pending_events, twin.pending_events, strict=True):
        assert type(ours) is type(theirs) and _state(ours) == _state(theirs)
        assert mapper.to_stored_event(ours) == mapper.to_stored_event(theirs)


def test_a_subscription_recorded_by_commands_is_the_one_the_library_records():
    import attrs

    from ledger import rules
    from ledger.customer import Customer
    from ledger.tariff_parser import load_schedule
    from tests.conftest import MEGALIS_2026

    # Every field given, none at its default: a field mapped wrongly cannot go unseen.
    fields = {"key": "cc-du-pays", "name": "Communauté du Pays", "siret": "21290112500014",
              "category": "epci", "population": 14000,
              "address": {"line1": "1 rue de la Gare", "postcode": "29000", "city": "Quimper"},
              "kind": "communaute_de_communes", "member": False, "member_communes": 12}
    customer = Customer.register(**fields)
    customer.update(population=14100, name="CC du Pays", member=True, member_communes=13)
    customer.set_billing_references(year=2026, code_service="SERV1", engagement_number="EJ-7",
                                    code_service_required=True, engagement_required=False)
    _same_as_library(customer, Customer(**fields), [
        (Customer._updated, {"name": "CC du Pays", "address": None, "population": 14100,
                             "kind": None, "member": True, "member_communes": 13}),
        (Customer._references_set, {"year": 2026, "code_service": "SERV1",
                                    "engagement_number": "EJ-7", "code_service_required": True,
                                    "engagement_required": False})])

    schedules = (load_schedule(MEGALIS_2026),)
    commune = Customer.register(key="lanvenec", name="Commune de Lanvénec",
                                siret="21290112500014", category="commune", population=1200)
    subscription = Subscription.open("lanvenec.fr")
    subscription.sign_order(customer=commune, schedules=schedules, order="BC-1",
                            storage_gb=50, extra_gb_packs=[10, 20], signed_on=date(2026, 3, 12),
                            received_on=date(2026, 3, 17))
    subscription.activate(activated_on=date(2026, 4, 2))
    subscription.add_storage(schedules=schedules, order="BC-2", extra_gb_packs=[50],
                             signed_on=date(2026, 9, 1), received_on=date(2026, 9, 3))
    subscription.request_termination(received_on=date(2027, 6, 15))
    _same_as_library(subscription, Subscription(domain="lanvenec.fr"), [
        (Subscription._order_signed, {
            "order": "BC-1", "customer": "lanvenec", "storage_gb": 50, "extra_gb_packs": (10, 20),
            "signed_on": date(2026, 3, 12), "received_on": date(2026, 3, 17),
            "ends_on": rules.contract_end(schedules, date(2026, 3, 17)),
            "facts": attrs.asdict(commune.facts)}),
        (Subscription._activated, {"activated_on": date(2026, 4, 2)}),
        (Subscription._storage_added, {"order": "BC-2", "extra_gb_packs": (50,),
                                       "signed_on": date(2026, 9, 1),
                                       "received_on": date(2026, 9, 3)}),
        (Subscription._termination_requested, {"received_on": date(2027, 6, 15)})])
