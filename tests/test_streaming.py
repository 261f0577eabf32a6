"""The whole-ledger reads that stream (a batch of customers at a time) give exactly what the
in-memory ones give: same charges, same order, same bytes."""

from __future__ import annotations

import io
from datetime import date

import orjson
import pytest

from cli.output import print_json, print_json_array
from commands import views
from projections.charges import charges_as_of, iter_charges_as_of
from projections.history import known_at, resolve, subscriptions_by_customer, tariffs_known_at
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
