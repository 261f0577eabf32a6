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
