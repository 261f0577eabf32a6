"""A store written by an earlier version of the code replays to the very same figures.

tests/data/frozen-store-v1.sqlite3 was written once by scripts/freeze_store.py, with what
that code derived from it in frozen-store-v1.json. Every later version must read it and
derive exactly the same: change an event without a new version and an upcaster
(ledger/events.py), or a rule without a new barème, and this fails.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import orjson
import pytest

from commands.audit_verify import verify_ledger
from commands.billing import invoicing_state
from commands.verification import verify
from eventstore.app import open_store
from projections.charges import charges_as_of, iter_charges_as_of
from projections.history import (
    iter_subscriptions_known_at,
    known_at,
    subscription_known_at,
    tariffs_known_at,
)
from projections.status import status_as_of

DATA = Path(__file__).parent / "data"
EXPECTED = orjson.loads((DATA / "frozen-store-v1.json").read_bytes())


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    copy = tmp_path_factory.mktemp("frozen") / "frozen.sqlite3"
    shutil.copyfile(DATA / "frozen-store-v1.sqlite3", copy)
    app = open_store(str(copy), create=False)
    yield app
    app.close()


def test_it_is_read_whole(frozen):
    assert frozen.position() == EXPECTED["entries"]


@pytest.mark.parametrize("day", sorted(EXPECTED["charges"]))
def test_charges_are_the_same(frozen, day):
    charges = charges_as_of(known_at(frozen), date.fromisoformat(day))
    assert [c.to_json() for c in charges] == EXPECTED["charges"][day]


def test_its_subscriptions_fold_from_facts_as_the_library_folds_them(frozen):
    """Entries written by the earlier code (order forms of version 1, upcast on reading) give
    the same subscriptions folded from their fields as through the library's event objects."""
    upto = frozen.position()
    folded = list(iter_subscriptions_known_at(frozen, upto))
    assert folded
    for subscription in folded:
        by_library = frozen.aggregate(subscription.id, upto)
        assert (subscription.version, subscription.created_on, subscription.modified_on,
                subscription.domain, subscription.contracts, subscription.entries) == \
            (by_library.version, by_library.created_on, by_library.modified_on,
             by_library.domain, by_library.contracts, by_library.entries)


def test_its_customers_fold_from_facts_as_the_library_folds_them(frozen):
    """Customers as the earlier code recorded them (upcast on reading where older): folded from
    their fields for a billing run's batches, the same as through the library."""
    from projections.history import customers_known_at, customers_of

    upto = frozen.position()
    every = customers_known_at(frozen, upto)
    assert every and customers_of(frozen, list(every), upto).keys() == every.keys()
    for customer in every.values():
        by_library = frozen.aggregate(customer.id, upto)
        assert vars(customer) == vars(by_library)


@pytest.mark.parametrize("day", sorted(EXPECTED["charges"]))
def test_charges_streamed_by_customer_are_the_same(frozen, day):
    upto = frozen.position()
    charges = iter_charges_as_of(frozen, upto, date.fromisoformat(day),
                                 tariffs_known_at(frozen, upto), batch=2)
    assert [c.to_json() for c in charges] == EXPECTED["charges"][day]


@pytest.mark.parametrize("domain", sorted(EXPECTED["states"]))
def test_states_are_the_same(frozen, domain):
    expected = EXPECTED["states"][domain]
    status = status_as_of(subscription_known_at(frozen, domain), domain,
                          date.fromisoformat(expected["as_of"]))
    assert status.to_json() == expected


def test_every_document_is_recorded_and_derived_again_identically(frozen):
    invoicing = invoicing_state(frozen)
    assert invoicing.digests == EXPECTED["documents"]
    for number in EXPECTED["documents"]:
        assert verify(frozen, number).identical, number


def test_the_whole_history_still_verifies(frozen):
    report = verify_ledger(frozen)
    assert report.ok, report.failures
    assert (report.documents, report.closings) == (len(EXPECTED["documents"]), 1)
