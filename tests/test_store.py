"""How events are stored: canonical entries, store-set positions and times, typed fields."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import orjson
import pytest
import rfc8785
from freezegun import freeze_time
from hypothesis import given
from hypothesis import strategies as st

from eventstore.canonical import NotCanonical, canonical_json, is_canonical
from ledger.identity import subscription_id
from tests.conftest import register, sign

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(alphabet=st.characters(max_codepoint=0xD7FF)), inner, max_size=4),
    max_leaves=12,
)


@given(json_values)
def test_canonical_json_is_rfc_8785(value):
    assert canonical_json(value) == rfc8785.dumps(value)


def test_canonical_json_refuses_what_has_no_canonical_form():
    with pytest.raises(NotCanonical):
        canonical_json({"n": 2**60})
    assert not is_canonical(b'{"b":1,"a":2}')
    assert not is_canonical(b'{"a": 1}')
    assert not is_canonical(b'{"a":1.50}')
    assert is_canonical(b'{"a":1,"b":"\\u001f\xc3\xa9"}')


def test_entries_get_consecutive_positions_from_the_store(app, apply):
    before = app.position()
    apply(register(), sign())
    entries = list(app.scan(before + 1))
    assert [e.id for e in entries] == list(range(before + 1, before + 1 + len(entries)))
    assert len({e.recorded_at for e in entries}) == 1  # one transaction, one recorded time


def test_recorded_time_is_the_store_clock_not_the_time_events_were_made(backend, app, apply):
    if backend == "sqlite":
        # The single writer reads its clock when it appends (frozen here, after the set-up).
        with freeze_time("2030-03-17T08:00:00Z"):
            apply(register(), sign())
        assert app.recorder.entry(app.position()).recorded_at == datetime(2030, 3, 17, 8,
                                                                          tzinfo=UTC)
        # A clock set back never makes time go back along the log.
        with freeze_time("2030-01-01T00:00:00Z"):
            apply(register("plouay"))
        assert app.recorder.entry(app.position()).recorded_at == datetime(2030, 3, 17, 8,
                                                                          tzinfo=UTC)
    else:
        # PostgreSQL's clock sets the time: a frozen client clock changes nothing.
        with freeze_time("2001-01-01T00:00:00Z"):
            apply(register(), sign())
        last = app.recorder.entry(app.position())
        assert abs(last.recorded_at - datetime.now(UTC)) < timedelta(minutes=5)


def test_events_carry_the_store_recorded_time_as_timestamp(app, apply):
    apply(register(), sign())
    events = app.events_of(subscription_id("lanvenec.fr"))
    assert {e.timestamp for e in events} == {app.recorder.entry(events[0].log_position).recorded_at}


def test_business_dates_are_stored_as_iso_text_and_read_back_as_dates(app, apply):
    apply(register(), sign())
    signed = app.events_of(subscription_id("lanvenec.fr"))[-1]
    assert type(signed).__name__ == "OrderSigned"
    assert signed.received_on == date(2026, 3, 17) and type(signed.received_on) is date
    entry = app.recorder.entry(signed.log_position)
    assert orjson.loads(entry.data)["received_on"] == "2026-03-17"
    assert entry.event == "subscription.order_signed" and entry.event_version == 2


def test_every_entry_says_who_imported_it_from_which_file_and_line(app, tmp_path):
    from commands.importer import import_file
    from tests.conftest import jsonl

    path = tmp_path / "letters.jsonl"
    path.write_text("\n".join(jsonl(register(), sign())) + "\n", encoding="utf-8")
    import_file(app, path, by="Marie Le Gall")
    signed = app.events_of(subscription_id("lanvenec.fr"))[-1]
    meta = orjson.loads(app.recorder.entry(signed.log_position).metadata)
    import hashlib

    assert meta["actor"] == "Marie Le Gall" and meta["via"] == "import"
    assert meta["source"] == {"file": "letters.jsonl",
                              "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert meta["line"] == 2 and meta["command"].startswith("t")


def test_an_aggregate_is_folded_a_page_of_entries_at_a_time(app, apply, monkeypatch):
    """A long history (the invoicing aggregate's) is read in pages that pick up after the last
    version read, and folds to the same aggregate as reading it whole."""
    from eventstore.app import fold
    from tests.conftest import activate, add_storage

    apply(register(), sign(), activate(), add_storage(extra_gb_packs=[20]),
          add_storage(extra_gb_packs=[50]))
    aggregate_id = subscription_id("lanvenec.fr")
    whole = fold(app.events_of(aggregate_id))
    pages, read = [], app.recorder.select_events

    def reading(*args, **kwargs):
        page = read(*args, **kwargs)
        pages.append((kwargs.get("gt"), len(page)))
        return page
    monkeypatch.setattr(app.recorder, "select_events", reading)
    monkeypatch.setattr(type(app), "PAGE", 2)
    paged = app.aggregate(aggregate_id)
    assert whole.version >= 5 and paged.version == whole.version
    assert [after for after, _ in pages] == [None, *range(2, whole.version + 1, 2)]
    assert sum(size for _, size in pages) == whole.version
    assert vars(paged) == vars(whole)
