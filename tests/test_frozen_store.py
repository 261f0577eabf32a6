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
from projections.charges import charges_as_of
from projections.history import known_at, subscription_known_at
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
