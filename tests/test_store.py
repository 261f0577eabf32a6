"""The orjson transcoder and how events are stored."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from freezegun import freeze_time

from commands.store import OrjsonTranscoder
from projections.history import subscription_known_at
from tests.conftest import register, sign


def test_round_trip_of_dates_datetimes_and_decimals():
    transcoder = OrjsonTranscoder()
    value = {"on": date(2028, 2, 29), "at": datetime(2026, 5, 1, 8, 30, tzinfo=UTC),
             "amount": Decimal("10.16"), "packs": [10, 20], "nested": {"on": date(2026, 1, 1)}}
    assert transcoder.decode(transcoder.encode(value)) == value


def test_encoding_is_canonical():
    transcoder = OrjsonTranscoder()
    assert transcoder.encode({"b": 1, "a": 2}) == transcoder.encode({"a": 2, "b": 1}) == b'{"a":2,"b":1}'


def test_refuses_types_it_cannot_store():
    with pytest.raises(TypeError):
        OrjsonTranscoder().encode({"x": object()})


def test_events_recorded_under_a_frozen_clock_are_stored(app, apply):
    with freeze_time("2026-03-17T08:00:00Z"):
        apply(register(), sign())
    events = list(app.events.get(subscription_known_at(app, "lanvenec.fr").id))
    assert {e.timestamp for e in events} == {datetime(2026, 3, 17, 8, tzinfo=UTC)}


def test_business_dates_are_stored_as_dates(app, apply):
    apply(register(), sign())
    signed = list(app.events.get(subscription_known_at(app, "lanvenec.fr").id))[-1]
    assert type(signed).__name__ == "OrderSigned"
    assert signed.received_on == date(2026, 3, 17)
    assert type(signed.received_on) is date
