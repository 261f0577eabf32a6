"""The whole-ledger reads that stream (a batch of customers at a time) give exactly what the
in-memory ones give: same charges, same order, same bytes."""

from __future__ import annotations

import dataclasses
import io
from datetime import date, datetime, timezone
from uuid import uuid4

import orjson
import pytest
from freezegun import freeze_time

from cli.output import print_json, print_json_array
from commands import views
from eventstore.log import LogFormatError
from ledger.folding import DamagedHistory
from ledger.subscription import Subscription
from projections.charges import charges_as_of, iter_charges_as_of
from projections.history import (
    _customers,
    _subscriptions,
    customers_known_at,
    customers_of,
    iter_subscriptions_known_at,
    known_at,
    resolve,
    subscriptions_by_customer,
    tariffs_known_at,
)
from tests.conftest import activate, add_storage, register, sign, terminate

AS_OF = date(2029, 12, 31)


@pytest.mark.parametrize("value", [
    [],
    [1],
    [{"a": [1, 2, {"b": None}], "c": "é"}, {"d": {}}, [], "x"],
])
def test_print_json_array_writes_the_bytes_of_print_json(monkeypatch, value):
    def printed(function, argument) -> str:
        out = io.StringIO()
        monkeypatch.setattr("sys.stdout", out)
        function(argument)
        return out.getvalue()

    assert printed(print_json_array, iter(value)) == printed(print_json, value)


@pytest.fixture
def ledger(app, apply):
    """Eleven customers with subscriptions of their own, and one domain that passed from a
    customer to another once its subscription had ended."""
    commands = []
    for n in range(11):
        customer = f"commune{n:02d}"
        commands += [register(customer), sign(f"{customer}.fr", customer),
                     activate(f"{customer}.fr")]
        if n % 3 == 0:
            commands.append(add_storage(f"{customer}.fr"))
    commands += [register("zeta"), register("alpha"),
                 sign("shared.fr", "zeta"), activate("shared.fr"),
                 terminate("shared.fr", on="2026-05-10"),
                 sign("shared.fr", "alpha", order="BC-shared-2", signed_on="2027-09-01",
                      received_on="2027-09-03"),
                 activate("shared.fr", on="2027-09-10")]
    apply(*commands)  # raises if a line is refused
    return app


@pytest.mark.parametrize("batch", [1, 3, 2000])
def test_streamed_charges_are_the_charges_in_memory(ledger, batch):
    upto = resolve(ledger, None)
    held = charges_as_of(known_at(ledger, upto), AS_OF)
    streamed = list(iter_charges_as_of(ledger, upto, AS_OF, tariffs_known_at(ledger, upto),
                                       batch=batch))
    assert streamed == held
    # The domain that changed hands is charged to each of its customers, in customer order.
    shared = [c.customer for c in streamed if c.domain == "shared.fr"]
    assert "alpha" in shared and "zeta" in shared
    assert shared == sorted(shared)


def test_a_charge_dated_on_the_day_asked_is_included(ledger):
    upto = resolve(ledger, None)
    everything = charges_as_of(known_at(ledger, upto), AS_OF)
    day = everything[len(everything) // 2].charge_date
    held = charges_as_of(known_at(ledger, upto), day)
    streamed = list(iter_charges_as_of(ledger, upto, day, tariffs_known_at(ledger, upto),
                                       batch=3))
    assert streamed == held
    assert any(charge.charge_date == day for charge in streamed)


def test_batches_hold_whole_customers_in_key_order(ledger):
    seen: list[str] = []
    for customers, subscriptions in subscriptions_by_customer(ledger, batch=2):
        assert not set(seen) & customers
        seen += sorted(customers)
        for subscription in subscriptions:
            assert {c.customer for c in subscription.contracts} & customers
    assert seen == sorted(seen)
    assert {"alpha", "zeta", "commune00", "commune10"} <= set(seen)


def test_charges_json_is_the_same_streamed_or_for_one_customer(ledger):
    upto = resolve(ledger, None)
    everything = views.charges(ledger, AS_OF, upto)
    assert everything == [c.to_json() for c in charges_as_of(known_at(ledger, upto), AS_OF)]
    alpha = views.charges(ledger, AS_OF, upto, customer="alpha")
    assert alpha == [c for c in everything if c["customer"] == "alpha"]
    assert orjson.dumps(everything)  # plain JSON values


def test_select_aggregates_reads_several_aggregates_in_order(ledger):
    recorder = ledger.recorder
    upto = resolve(ledger, None)
    ids = sorted({str(e.originator_id) for e in recorder.scan(1, upto)})[:5]
    found = recorder.select_aggregates(ids, upto)
    assert [str(e.originator_id) for e in found] == sorted(str(e.originator_id) for e in found)
    assert {str(e.originator_id) for e in found} == set(ids)
    one = recorder.select_aggregates(ids[:1], upto)
    assert [e.originator_version for e in one] == sorted(e.originator_version for e in one)
    assert recorder.select_aggregates([], upto) == []
    # Nothing after the horizon.
    first = recorder.select_aggregates(ids, 1)
    assert all(e.position <= 1 for e in first)


@pytest.mark.parametrize("batch", [1, 3])
def test_billing_reads_its_buyers_a_batch_of_customers_at_a_time(ledger, apply, monkeypatch,
                                                                 batch):
    from commands import due_charges
    from commands.billing import bill
    from tests.test_invoicing import OPERATOR

    apply(OPERATOR)

    def run():
        return bill(ledger, date(2028, 12, 31), date(2029, 1, 5), by="test", dry_run=True)

    whole = run()
    monkeypatch.setattr(due_charges, "CHUNK", batch)
    batched = run()
    assert len({d["buyer"]["customer"] for d in whole.issued}) > 3
    assert batched.issued == whole.issued


def _state(subscription) -> tuple:
    return (subscription.id, subscription.version, subscription.created_on,
            subscription.modified_on, subscription.domain, subscription.contracts,
            subscription.entries)


def test_whole_ledger_reads_fold_each_subscription_as_the_library_does(ledger):
    """Whole-ledger reads fold subscriptions from their entries' fields
    (``Subscription.from_facts``), not through the library's event objects: the state is the
    one the library's own fold gives, entry positions included."""
    upto = resolve(ledger, None)
    streamed = list(iter_subscriptions_known_at(ledger, upto))
    by_customer = [s for _, batch in subscriptions_by_customer(ledger, upto, batch=1)
                   for s in batch]
    assert len(streamed) == 12
    assert {s.domain for s in by_customer} == {s.domain for s in streamed}
    for subscription in streamed + by_customer:
        assert _state(subscription) == _state(ledger.aggregate(subscription.id, upto))
    shared = next(s for s in streamed if s.domain == "shared.fr")
    assert len(shared.contracts) == 2 and shared.version == 6


def test_a_subscription_folded_from_facts_keeps_when_it_was_recorded(app, apply):
    """Created and modified times are the recorded times of its first and last entries."""
    # The SQLite store stamps entries with the (frozen) clock, never earlier than the last
    # entry; PostgreSQL with its own clock, in each transaction.
    with freeze_time("2099-03-02 09:00:00"):
        apply(register("c1"), sign("c1.fr", "c1"))
    with freeze_time("2099-03-05 14:30:00"):
        apply(activate("c1.fr"))  # another transaction: recorded later
    upto = resolve(app, None)
    [folded] = iter_subscriptions_known_at(app, upto)
    entries = app.recorder.select_events(folded.id, upto=upto)
    assert folded.created_on == entries[0].recorded_at
    assert folded.modified_on == entries[-1].recorded_at
    assert folded.created_on < folded.modified_on
    assert _state(folded) == _state(app.aggregate(folded.id, upto))


def test_a_damaged_history_is_reported_at_the_entry_that_cannot_be_applied(app, apply):
    """An activation whose order form is missing (deleted from the log, the next entries
    renumbered): whole-ledger reads report that entry's position, not a traceback."""
    apply(register("c1"), sign("c1.fr", "c1"), activate("c1.fr"))
    upto = resolve(app, None)
    [subscription] = iter_subscriptions_known_at(app, upto)
    opened, signed, activated = app.recorder.select_events(subscription.id, upto=upto)
    damaged = [opened, dataclasses.replace(activated, originator_version=2)]
    with pytest.raises(LogFormatError, match=f"position {activated.id} cannot be applied"):
        list(_subscriptions(app, damaged))


def _customer_state(customer) -> tuple:
    return (customer.id, customer.version, customer.created_on, customer.modified_on,
            customer.key, customer.name, customer.siret, customer.category,
            customer.population, customer.address, customer.kind, customer.member,
            customer.member_communes, customer.references)


def test_whole_ledger_reads_fold_each_customer_as_the_library_does(app, apply):
    """Billing and verification read the customers they bill a batch at a time, folded from
    their entries' fields (``Customer.from_facts``): the state the library's fold gives,
    updates and yearly Chorus Pro references included, at any log position."""
    with freeze_time("2099-03-02 09:00:00"):
        apply(register("c1"), register("c2", category="epci", kind="cc", member=False))
    with freeze_time("2099-03-05 14:30:00"):
        apply({"id": "u1", "type": "update_customer", "customer": "c1",
               "name": "Commune nouvelle de C1", "population": 2400,
               "address": {"line1": "1 place de l'Église", "postcode": "29280",
                           "city": "C1"}},
              {"id": "r1", "type": "set_billing_references", "customer": "c1", "year": 2027,
               "code_service": "FIN", "engagement_number": None,
               "code_service_required": True, "engagement_required": False},
              {"id": "r2", "type": "set_billing_references", "customer": "c1", "year": 2028,
               "code_service": None, "engagement_number": "EJ-1",
               "code_service_required": False, "engagement_required": True})
    for upto in range(1, app.position() + 1):
        every = customers_known_at(app, upto)
        batch = customers_of(app, ["c1", "c2", "nobody"], upto)
        assert set(batch) <= set(every) and "nobody" not in every
        for customer in [*every.values(), *batch.values()]:
            assert _customer_state(customer) == _customer_state(app.aggregate(customer.id, upto))
    c1 = customers_known_at(app)["c1"]
    assert (c1.name, c1.version, sorted(c1.references)) == ("Commune nouvelle de C1", 4,
                                                             [2027, 2028])
    assert c1.created_on < c1.modified_on
    # A damaged history: an update whose registration is gone.
    registered, update, *_ = app.recorder.select_events(c1.id)
    damaged = [dataclasses.replace(update, originator_version=1)]
    with pytest.raises(LogFormatError, match=f"position {update.id} cannot be applied"):
        list(_customers(app, damaged))


def test_a_subscription_whose_versions_do_not_follow_is_refused():
    opened = ("Opened", 1, 1, {"domain": "a.fr"})
    signed = ("OrderSigned", 3, 2, {
        "order": "BC-1", "customer": "c", "storage_gb": 25, "extra_gb_packs": (),
        "signed_on": date(2026, 1, 1), "received_on": date(2026, 1, 2),
        "ends_on": date(2028, 12, 31), "facts": None})
    when = datetime(2026, 1, 2, tzinfo=timezone.utc)
    with pytest.raises(DamagedHistory, match="version 3 follows version 1") as caught:
        Subscription.from_facts(uuid4(), [opened, signed], when, when)
    assert caught.value.position == 2
    with pytest.raises(ValueError, match="starts with Opened"):
        Subscription.from_facts(uuid4(), [signed], when, when)
    with pytest.raises(ValueError, match="not an event of a subscription"):
        Subscription.from_facts(uuid4(), [opened, ("InvoiceIssued", 2, 2, {})], when, when)
    activated = ("ServiceActivated", 2, 7, {"activated_on": date(2026, 2, 1)})
    with pytest.raises(DamagedHistory, match="ServiceActivated cannot be applied") as caught:
        Subscription.from_facts(uuid4(), [opened, activated], when, when)
    assert caught.value.position == 7
    folded = Subscription.from_facts(uuid4(), [opened, (*signed[:1], 2, *signed[2:])],
                                     when, when)
    assert folded.version == 2 and folded.current.order == "BC-1"
    assert folded.entries == [{"order": 2}]
