"""Forecasts, draft barèmes, hypothetical commands, year-end accruals, the budget layout and
the plot."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from cli.main import main
from exports.budget import plot_revenue
from projections.charges import charges_as_of
from projections.forecast import accrual_rows, forecast_charges, group, month_bounds
from projections.history import known_at
from tests.conftest import ROOT, activate, register, sign, siret, terminate
from tests.test_properties import fresh_store, histories

REVISION_2027 = ROOT / "tests" / "data" / "megalis-revision-2027.toml"
D = date.fromisoformat


def monthly_from_charges(app, first: str, last: str) -> dict[str, Decimal]:
    """What `ledger charges` reports month by month: the charges dated in each month."""
    out: dict[str, Decimal] = {}
    start, end = month_bounds(first, last)
    for charge in charges_as_of(known_at(app), end):
        if charge.charge_date >= start:
            month = charge.charge_date.isoformat()[:7]
            out[month] = out.get(month, Decimal(0)) + charge.amount
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_a_forecast_is_what_charges_reports_month_by_month(commands):
    from commands.importer import import_lines
    from tests.conftest import jsonl

    app = fresh_store()
    import_lines(app, jsonl(*commands), source="history.jsonl")
    known = known_at(app)
    start, end = month_bounds("2026-01", "2028-12")
    rows = group(forecast_charges(known.subscriptions, known.schedules, start, end), "month")
    assert {row["period"]: Decimal(row["amount"]) for row in rows} == \
        monthly_from_charges(app, "2026-01", "2028-12")


@pytest.fixture
def members(app, apply):
    apply(register(), sign(extra_gb_packs=[10, 20]), activate(),
          register("kerbrat"), sign("kerbrat.fr", "kerbrat", storage_gb=50, extra_gb_packs=[50],
                                    received_on="2026-09-10", signed_on="2026-09-01"),
          activate("kerbrat.fr", on="2026-10-01"), terminate("kerbrat.fr", on="2027-11-20"))
    return app


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_forecast_json_rows_by_year_and_customer(members, store, capsys):
    code, out, _ = run(capsys, "--store", store, "forecast", "--from", "2026-01", "--to",
                       "2028-12", "--by", "year", "--by-customer", "--json")
    assert code == 0
    rows = orjson.loads(out)
    assert rows[0] == {"period": "2026", "customer": "kerbrat", "amount": "1180.00"}
    assert {r["period"] for r in rows} == {"2026", "2027", "2028"}
    total = sum(Decimal(r["amount"]) for r in rows)
    assert total == sum(c.amount for c in charges_as_of(known_at(members), D("2028-12-31")))


def test_assumptions_only_ever_lower_what_is_forecast(members):
    known = known_at(members)
    start, end = month_bounds("2027-01", "2028-12")
    totals = {assume: sum((c.amount for c in forecast_charges(
        known.subscriptions, known.schedules, start, end, assume)), Decimal(0))
        for assume in ("renew", "notice-given", "end-of-term")}
    assert totals["notice-given"] < totals["renew"]
    assert totals["end-of-term"] < totals["renew"]
    # kerbrat gave notice already: every assumption forecasts it the same.
    for assume in ("notice-given", "end-of-term"):
        assert [c.key for c in forecast_charges(known.subscriptions, known.schedules, start,
                                                end, assume, "kerbrat")] == \
            [c.key for c in forecast_charges(known.subscriptions, known.schedules, start,
                                             end, "renew", "kerbrat")]
    # Notice given on 1 January 2027 (R7): lanvenec's service ends on 31 March 2027.
    lanvenec = list(forecast_charges(known.subscriptions, known.schedules, start, end,
                                     "notice-given", "lanvenec"))
    assert max(c.period_end for c in lanvenec) == D("2027-04-01")


def test_a_draft_bareme_compares_per_member_and_records_nothing(members, store, capsys):
    before = members.position()
    code, out, _ = run(capsys, "--store", store, "forecast", "--from", "2027-01", "--to",
                       "2028-12", "--by", "year", "--draft", str(REVISION_2027), "--draft-from",
                       "2027-01-01", "--json")
    assert code == 0
    result = orjson.loads(out)
    by_customer = {r["customer"]: r for r in result["by_customer"]}
    # lanvenec renews its 10 GB and 20 GB packs on 1 April 2027 and 2028: 66 + 99 instead of
    # 60 + 90, twice, and the last period is cut at the contract end.
    assert Decimal(by_customer["lanvenec"]["difference"]) > 0
    assert Decimal(by_customer["lanvenec"]["draft"]) - Decimal(
        by_customer["lanvenec"]["current"]) == Decimal(by_customer["lanvenec"]["difference"])
    assert members.position() == before  # nothing was adopted


def test_hypothetical_commands_are_forecast_and_never_stored(members, store, tmp_path,
                                                             capsys):
    from tests.conftest import jsonl

    what_if = tmp_path / "what-if.jsonl"
    what_if.write_text("\n".join(jsonl(
        register("plouha", population=4000 - 1000),
        sign("plouha.fr", "plouha", received_on="2027-01-15", signed_on="2027-01-10"),
        activate("plouha.fr", on="2027-02-01"))) + "\n", encoding="utf-8")
    before = members.position()
    code, out, _ = run(capsys, "--store", store, "forecast", "--from", "2027-01", "--to",
                       "2027-12", "--by", "year", "--by-customer", "--with", str(what_if),
                       "--json")
    assert code == 0
    rows = {r["customer"]: r["amount"] for r in orjson.loads(out)}
    assert rows["plouha"] == "660.00"  # 600 € access + 60 € pack from 1 February
    assert members.position() == before
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "type": "activate", "domain": "nowhere.fr", '
                   '"activated_on": "2027-01-01"}\n', encoding="utf-8")
    code, _, err = run(capsys, "--store", store, "forecast", "--from", "2027-01", "--to",
                       "2027-12", "--with", str(bad))
    assert code == 1 and "bad.jsonl, line 1" in err and "nothing is ever stored" in err


def test_accruals_split_each_straddling_period_by_days(members, store, capsys):
    code, out, _ = run(capsys, "--store", store, "accruals", "--at", "2026-12-31", "--json")
    assert code == 0
    result = orjson.loads(out)
    rows = {r["key"]: r for r in result["rows"]}
    pack = rows["lanvenec.fr/BC-26-001/pack-1/2026-04-01"]
    # 60 € for 2026-04-01 → 2027-03-31: 275 of 365 days earned in 2026.
    assert (pack["amount"], pack["earned"], pack["deferred"]) == ("60.00", "45.21", "14.79")
    for row in result["rows"]:
        assert Decimal(row["earned"]) + Decimal(row["deferred"]) == Decimal(row["amount"])
        assert row["period_start"] <= "2026-12-31" < row["period_end"]
    assert Decimal(result["totals"]["deferred"]) == sum(Decimal(r["deferred"])
                                                        for r in result["rows"])
    # Nothing was invoiced: everything dated by then is due and not invoiced.
    due = sum(c.amount for c in charges_as_of(known_at(members), D("2026-12-31")))
    assert Decimal(result["totals"]["due_not_invoiced"]) == due


def test_accrual_rows_are_empty_when_nothing_straddles():
    assert accrual_rows([], D("2026-12-31"), {}) == []


def test_the_budget_csv_layout(members, store, apply, tmp_path, capsys):
    from tests.test_pes import PROFILE

    apply({"id": "op", "type": "register_operator", "name": "Syndicat", "siret": siret(2535053),
           "address": {"line1": "1 rue", "postcode": "35000", "city": "Rennes"}}, PROFILE)
    out = tmp_path / "budget.csv"
    code, _, _ = run(capsys, "--store", store, "forecast", "--from", "2027-01", "--to",
                     "2027-12", "--csv", str(out))
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert list(rows[0]) == ["exercice", "nature", "fonction", "section", "customer",
                             "category", "line", "amount"]
    packs = [r for r in rows if r["line"].startswith("st-extra")]
    assert packs and {(r["nature"], r["fonction"], r["section"]) for r in packs} == {
        ("70688", "020", "fonctionnement")}
    assert {r["exercice"] for r in rows} == {"2027"}


def test_the_plot_is_an_image_with_the_series(members, tmp_path):
    from PIL import Image

    known = known_at(members)
    start, end = month_bounds("2026-01", "2028-12")
    current = list(forecast_charges(known.subscriptions, known.schedules, start, end))
    path = tmp_path / "forecast.png"
    drawn = plot_revenue(str(path), current, None, "year", "line", None)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (1000, 500)
    assert drawn["periods"] == ["2026", "2027", "2028"]
    assert set(drawn["names"]) == {"st-access-25gb", "st-access-50gb", "st-extra-10gb",
                                   "st-extra-20gb", "st-extra-50gb"}
    assert sum(drawn["series"]["barème actuel"]["st-access-25gb"]) == 600.0
    svg = tmp_path / "forecast.svg"
    plot_revenue(str(svg), current, current, "month", "line", None)
    text = svg.read_text(encoding="utf-8")
    assert text.startswith("<?xml") and "<svg" in text
    again = tmp_path / "again.svg"
    plot_revenue(str(again), current, current, "month", "line", None)
    assert again.read_bytes() == svg.read_bytes()  # no clock in the file
