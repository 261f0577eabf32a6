"""Properties that must hold for any valid history (hypothesis)."""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from commands.importer import ImportRejected, import_lines
from eventstore.app import open_store
from projections.charges import charges_as_of
from projections.history import customers_known_at, iter_subscriptions_known_at, known_at
from tests.conftest import (
    CONTRACT_END,
    activate,
    add_storage,
    jsonl,
    open_ledger,
    register,
    sign,
    terminate,
)

TIERS = [25, 50, 100, 150, 200]
PACKS = [10, 20, 50]

FIRST_DAY = date(2026, 1, 1)
dates = st.dates(min_value=FIRST_DAY, max_value=CONTRACT_END)


def days_after(start: date, most: int):
    return st.integers(0, min(most, (CONTRACT_END - start).days)).map(
        lambda n: start + timedelta(days=n))


@st.composite
def histories(draw) -> list[dict]:
    """Valid command files: customers, orders, activations, storage, terminations."""
    commands = []
    for n in range(draw(st.integers(1, 3))):
        customer, domain = f"c{n}", f"commune{n}.fr"
        commands.append(register(customer))
        received = draw(dates)
        signed = received - timedelta(days=draw(st.integers(0, 20)))
        commands.append(sign(domain, customer, order=f"BC-{n}",
                             storage_gb=draw(st.sampled_from(TIERS)),
                             extra_gb_packs=draw(st.lists(st.sampled_from(PACKS), max_size=3)),
                             signed_on=str(signed), received_on=str(received)))
        if draw(st.booleans()):
            added = draw(days_after(received, 900))
            commands.append(add_storage(domain, order=f"BC-{n}-2", signed_on=str(added),
                                        received_on=str(added),
                                        extra_gb_packs=draw(st.lists(st.sampled_from(PACKS),
                                                                     min_size=1, max_size=2))))
        if draw(st.booleans()):
            activated = draw(days_after(received, 90))
            commands.append(activate(domain, on=str(activated)))
            if draw(st.booleans()):
                commands.append(terminate(domain, on=str(draw(days_after(activated, 1000)))))
    return commands


_folders: list[tempfile.TemporaryDirectory] = []


def fresh_store():
    # Hypothesis runs many examples per test: function-scoped tmp_path would be shared.
    folder = tempfile.TemporaryDirectory()
    _folders.append(folder)
    return open_ledger(str(Path(folder.name) / "ledger.sqlite3"))


@pytest.fixture(autouse=True)
def _remove_stores():
    yield
    while _folders:
        _folders.pop().cleanup()


def charges_json(app, as_of: date) -> bytes:
    charges = charges_as_of(known_at(app), as_of)
    return orjson.dumps([c.to_json() for c in charges])


SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _business_date(command: dict) -> date | None:
    """The day a command's fact was received (or happened), if it has one."""
    day = command.get("received_on") or command.get("activated_on")
    return date.fromisoformat(day) if day else None


@st.composite
def histories_and_a_day(draw) -> tuple[list[dict], date]:
    """A history, and a day just before one of its facts (where a mistake would show) or
    anywhere."""
    commands = draw(histories())
    received = sorted({d for c in commands if (d := _business_date(c)) is not None})
    day = draw(st.one_of(st.sampled_from([d - timedelta(days=1) for d in received]), dates))
    return commands, day


# The case that matters most, always tried: a letter received after a pack's period started.
_LATE_LETTER = ([register(), sign(), activate(on="2026-04-02"), terminate(on="2027-06-15")],
                date(2027, 6, 14))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(_LATE_LETTER)
@given(histories_and_a_day())
def test_a_charge_depends_only_on_what_was_received_by_its_charge_date(history):
    """Facts received after a day never change a charge dated on or before it (R8): the
    charges up to ``day`` of the whole history equal those of the history cut at ``day``."""
    commands, day = history
    cut = [c for c in commands if (_business_date(c) or day) <= day]
    whole, part = fresh_store(), fresh_store()
    import_lines(whole, jsonl(*commands))
    import_lines(part, jsonl(*cut))
    assert charges_json(whole, day) == charges_json(part, day)


@SETTINGS
@given(histories())
def test_replaying_the_same_events_gives_byte_identical_json(commands):
    app = fresh_store()
    import_lines(app, jsonl(*commands))
    first = charges_json(app, CONTRACT_END)
    # A second application on the same file replays every event from scratch.
    replayed = open_store(app.env.get("SQLITE_DBNAME"))
    assert charges_json(replayed, CONTRACT_END) == first
    # The same commands in another store (other recorded times) give the same charges too.
    other = fresh_store()
    import_lines(other, jsonl(*commands))
    assert charges_json(other, CONTRACT_END) == first


@SETTINGS
@given(histories())
def test_importing_a_file_twice_appends_nothing(commands):
    app = fresh_store()
    import_lines(app, jsonl(*commands))
    count = app.recorder.max_notification_id()
    report = import_lines(app, jsonl(*commands))
    assert report.applied == 0 and report.events == 0
    assert app.recorder.max_notification_id() == count


BAD_LINES = [
    "{not json",
    ('{"id": "bad", "type": "register_customer", "customer": "x", "name": "X", '
    '"siret": "12345678901234", "category": "commune", "population": 10}'),
    '{"id": "bad", "type": "activate", "domain": "nowhere.fr", "activated_on": "2026-04-01"}',
    '{"id": "bad", "type": "sign_order"}',
]


@SETTINGS
@given(histories(), st.sampled_from(BAD_LINES), st.data())
def test_a_file_with_one_bad_line_stores_nothing(commands, bad, data):
    lines = jsonl(*commands)
    position = data.draw(st.integers(0, len(lines)))
    lines.insert(position, bad)
    app = fresh_store()
    baseline = app.recorder.max_notification_id()  # the adopted schedule
    with pytest.raises(ImportRejected) as caught:
        import_lines(app, lines)
    assert position + 1 in [e.line for e in caught.value.errors]
    assert app.recorder.max_notification_id() == baseline


@SETTINGS
@given(histories(), st.data())
def test_folding_from_facts_gives_the_aggregate_the_library_folds(commands, data):
    """Whole-ledger reads fold each subscription from its entries' fields
    (``Subscription.from_facts``); per-domain reads fold the library's event objects. Both give
    the same state, whatever the history and the log position read up to."""
    app = fresh_store()
    keys = sorted({c["customer"] for c in commands if c["type"] == "register_customer"})
    changes = data.draw(st.lists(customer_changes(keys), max_size=4))
    for command in commands + changes:  # one transaction each: its own recorded time
        import_lines(app, jsonl(command))
    upto = data.draw(st.integers(1, app.position()))
    for folded in iter_subscriptions_known_at(app, upto):
        by_library = app.aggregate(folded.id, upto)
        assert (folded.id, folded.version, folded.created_on, folded.modified_on,
                folded.domain, folded.contracts, folded.entries) == \
            (by_library.id, by_library.version, by_library.created_on, by_library.modified_on,
             by_library.domain, by_library.contracts, by_library.entries)
    # Customers too (Customer.from_facts), their updates and yearly references included.
    for customer in customers_known_at(app, upto).values():
        assert vars(customer) == vars(app.aggregate(customer.id, upto))


@st.composite
def customer_changes(draw, keys: list[str]) -> dict:
    """An update of one of ``keys``, or its Chorus Pro references for a year."""
    key = draw(st.sampled_from(keys))
    if draw(st.booleans()):
        update = {"id": f"u-{draw(st.uuids())}", "type": "update_customer", "customer": key,
                  "population": draw(st.integers(1, 500_000))}
        name = draw(st.sampled_from(["Commune nouvelle", "Ville", None]))
        return update if name is None else {**update, "name": name}
    return {"id": f"r-{draw(st.uuids())}", "type": "set_billing_references", "customer": key,
            "year": draw(st.integers(2026, 2029)),
            "code_service": draw(st.sampled_from(["FIN", None])),
            "engagement_number": draw(st.sampled_from(["EJ-1", None])),
            "code_service_required": draw(st.booleans()),
            "engagement_required": draw(st.booleans())}
