"""Charges and renewal state derived from events, as of a business date and as known at a time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from freezegun import freeze_time

from ledger.errors import UnknownDomain
from projections.charges import charges_as_of, total
from projections.history import known_at, subscription_known_at
from projections.status import status_as_of
from tests.conftest import activate, add_storage, register, sign, terminate

D = date.fromisoformat


def charges(app, as_of, at=None, domain="lanvenec.fr"):
    return charges_as_of(known_at(app, at, domain=domain), D(as_of))


def rows(charges_):
    return [(c.kind, str(c.charge_date), str(c.period_end), str(c.amount), c.rule) for c in charges_]


def test_the_order_form_example(app, apply):
    apply(register(), sign(), activate(), add_storage(), terminate())
    assert rows(charges(app, "2028-12-31")) == [
        ("extra_storage", "2026-04-01", "2027-03-31", "60.00", "R4"),
        ("access_fee", "2026-04-02", "2028-12-31", "600.00", "R3"),
        ("extra_storage", "2026-12-01", "2027-11-30", "60.00", "R4"),
        # charged on 2027-04-01, before the termination letter of 2027-06-15: in full (R8)
        ("extra_storage", "2027-04-01", "2028-03-31", "60.00", "R4"),
        # the second pack's 2027-12-01 period starts after the service end 2027-08-31: nothing
    ]


def test_as_of_keeps_charges_dated_on_or_before_the_date(app, apply):
    apply(register(), sign(), activate(), add_storage())
    assert [c.charge_date for c in charges(app, "2026-04-01")] == [D("2026-04-01")]
    assert [c.charge_date for c in charges(app, "2026-04-02")] == [D("2026-04-01"), D("2026-04-02")]
    assert len(charges(app, "2026-11-30")) == 2
    assert len(charges(app, "2026-12-01")) == 3


def test_termination_known_on_the_first_day_cuts_the_period_pro_rata(app, apply):
    # Received 2027-03-20 → notice 2027-04-01 + 2 months → last day 2027-05-31 (after the
    # first anniversary 2027-04-02). The 2027-04-01 period (366 days, 29 Feb 2028 inside) is
    # known to be cut: 60 × 61 / 366 = 10.00.
    apply(register(), sign(), activate(), terminate(on="2027-03-20"))
    last = charges(app, "2028-12-31")[-1]
    assert (str(last.period_start), str(last.period_end), last.amount, last.rule) == (
        "2027-04-01", "2027-05-31", Decimal("10.00"), "R5")
    assert last.basis == "10 GB pack, 60.00 € × 61/366 days"


def test_period_cut_by_the_contract_end(app, apply):
    apply(register(), sign(received_on="2028-03-10", signed_on="2028-03-01", extra_gb_packs=[50]),
          activate(on="2028-03-15"))
    pack = [c for c in charges(app, "2028-12-31") if c.kind == "extra_storage"]
    # 2028-04-01 → 2028-12-31 is 275 of 365 days: 180 × 275 / 365 = 135.616… → 135.62
    assert rows(pack) == [("extra_storage", "2028-04-01", "2028-12-31", "135.62", "R5")]


def test_order_received_in_december_bills_from_january(app, apply):
    apply(register(), sign(signed_on="2026-12-10", received_on="2026-12-15", extra_gb_packs=[20]))
    first = charges(app, "2027-12-31")[0]
    assert (first.period_start, first.period_end, first.amount) == (
        D("2027-01-01"), D("2027-12-31"), Decimal(90))


def test_several_packs_give_one_line_each(app, apply):
    apply(register(), sign(extra_gb_packs=[10, 10, 50]))
    assert sorted(str(c.amount) for c in charges(app, "2026-04-01")) == ["180.00", "60.00", "60.00"]


def test_no_access_fee_before_activation(app, apply):
    apply(register(), sign(extra_gb_packs=[]))
    assert charges(app, "2028-12-31") == []


def test_resubscription_after_termination_has_its_own_access_fee(app, apply):
    apply(register(), sign(), activate(), terminate(on="2027-06-15"),
          sign(order="BC-27-050", signed_on="2027-09-01", received_on="2027-09-01",
               extra_gb_packs=[], storage_gb=50),
          activate(on="2027-09-15"))
    fees = [c for c in charges(app, "2028-12-31") if c.kind == "access_fee"]
    assert [(c.order, c.amount) for c in fees] == [("BC-26-001", Decimal(600)),
                                                    ("BC-27-050", Decimal(1000))]


def test_charges_of_every_subscription_filtered_by_customer(app, apply):
    apply(register(), sign(), register("plouay", population=3000),
          sign("plouay.fr", customer="plouay", extra_gb_packs=[20]))
    everything = charges_as_of(known_at(app), D("2026-04-01"))
    assert [(c.customer, c.domain) for c in everything] == [
        ("lanvenec", "lanvenec.fr"), ("plouay", "plouay.fr")]
    only = charges_as_of(known_at(app), D("2026-04-01"), customer="plouay")
    assert total(only) == Decimal(90)


def test_a_domain_asked_with_a_customer_it_never_had_is_an_error_not_nothing(app, apply):
    from commands.views import charge_objects
    from ledger.errors import NotFound

    apply(register(), sign(), register("plouay", population=3000),
          sign("plouay.fr", customer="plouay", extra_gb_packs=[20]))
    upto = app.position()
    with pytest.raises(NotFound, match="'plouay.fr' has no order form of customer 'lanvenec'"):
        list(charge_objects(app, D("2026-04-01"), upto, customer="lanvenec", domain="plouay.fr"))
    assert [c.customer for c in charge_objects(app, D("2026-04-01"), upto, customer="plouay",
                                               domain="plouay.fr")] == ["plouay"]


def test_a_domain_is_found_however_a_reader_writes_it(app, apply):
    # Recorded in its canonical form (lanvénec.fr); asked for in its ASCII form, upper-cased.
    from commands import views
    from exports.explain import explain_domain
    from projections.timeline import history

    apply(register(), sign(domain="lanvénec.fr"), activate(domain="LANVÉNEC.FR"))
    upto, asked = app.position(), "XN--LANVNEC-EYA.FR"
    assert views.subscription(app, asked, D("2026-06-01"), upto)["domain"] == "lanvénec.fr"
    charges = list(views.charge_objects(app, D("2026-06-01"), upto, domain=asked))
    assert {c.domain for c in charges} == {"lanvénec.fr"} and charges
    assert explain_domain(app, asked, D("2026-06-01"), upto)["domain"] == "lanvénec.fr"
    assert len(history(app, asked, upto)) == 3


def test_known_at_ignores_entries_recorded_later(app, apply):
    apply(register(), sign(), activate())
    before = app.position()
    # The termination letter received on 2027-03-20 is only entered later.
    apply(terminate(on="2027-03-20"))
    assert charges(app, "2027-04-01", at=before)[-1].amount == Decimal(60)
    assert charges(app, "2027-04-01")[-1].amount == Decimal("10.00")
    assert status_as_of(subscription_known_at(app, "lanvenec.fr", before), "lanvenec.fr",
                        D("2027-04-15")).state == "active"
    everything = charges_as_of(known_at(app, before), D("2027-04-01"))
    assert everything[-1].amount == Decimal(60)


def test_a_recorded_time_stands_for_the_last_position_recorded_by_then(app, apply):
    apply(register(), sign(), activate())
    first = app.recorder.entry(app.position())
    apply(terminate(on="2027-03-20"))
    second = app.recorder.entry(app.position())
    assert app.position_at(first.recorded_at) == first.id
    assert app.position_at(second.recorded_at) == second.id
    assert app.position_at(first.recorded_at - timedelta(days=3650)) == 0
    if second.recorded_at > first.recorded_at:
        between = first.recorded_at + (second.recorded_at - first.recorded_at) / 2
        assert charges(app, "2027-04-01", at=between)[-1].amount == Decimal(60)


def test_known_at_a_time_on_sqlite_follows_the_writer_clock(tmp_path):
    # On SQLite the single writer's clock sets recorded times (PostgreSQL uses its own).
    from commands.importer import import_lines
    from tests.conftest import jsonl, open_ledger

    with freeze_time("2030-04-10T09:00:00Z"):
        app = open_ledger(str(tmp_path / "ledger.sqlite3"))
        import_lines(app, jsonl(register(), sign(), activate()))
    with freeze_time("2030-05-02T14:00:00Z"):
        import_lines(app, jsonl(terminate(on="2027-03-20")))
    before = datetime(2030, 5, 1, tzinfo=UTC)
    assert charges(app, "2027-04-01", at=before)[-1].amount == Decimal(60)
    assert charges(app, "2027-04-01")[-1].amount == Decimal("10.00")


def test_known_at_before_anything_was_recorded_knows_no_domain(app, apply):
    apply(register(), sign())
    with pytest.raises(UnknownDomain):
        status_as_of(subscription_known_at(app, "lanvenec.fr", 0), "lanvenec.fr", D("2026-05-01"))


def status(app, as_of, domain="lanvenec.fr"):
    return status_as_of(subscription_known_at(app, domain), domain, D(as_of))


def test_states_through_the_life_of_a_subscription(app, apply):
    apply(register(), sign(), activate(), add_storage(), terminate())
    assert status(app, "2026-03-17").state == "ordered"
    active = status(app, "2026-04-02")
    assert (active.state, active.term_number, active.term_end, active.next_renewal) == (
        "active", 1, D("2027-04-01"), D("2027-04-02"))
    assert status(app, "2026-10-31").extra_gb == 10
    assert status(app, "2026-11-01").extra_gb == 20
    renewed = status(app, "2027-04-02")
    assert (renewed.term_number, renewed.term_start) == (2, D("2027-04-02"))
    notice = status(app, "2027-06-15")
    assert (notice.state, notice.notice_start, notice.service_end, notice.next_renewal) == (
        "notice", D("2027-07-01"), D("2027-08-31"), None)
    assert status(app, "2027-08-31").state == "notice"
    ended = status(app, "2027-09-01")
    assert (ended.state, ended.service_end, ended.term_number) == ("terminated", D("2027-08-31"), None)


def test_unknown_before_the_order_form_is_received(app, apply):
    apply(register(), sign())
    with pytest.raises(UnknownDomain, match="no order form for domain 'lanvenec.fr' as of 2026-03-16"):
        status(app, "2026-03-16")


def test_subscription_runs_to_the_contract_end_then_expires(app, apply):
    apply(register(), sign(), activate())
    last_term = status(app, "2028-12-31")
    assert (last_term.state, last_term.term_number, last_term.term_end, last_term.next_renewal) == (
        "active", 3, D("2028-12-31"), None)
    expired = status(app, "2029-01-01")
    assert (expired.state, expired.service_end) == ("expired", D("2028-12-31"))


def test_termination_ending_at_the_contract_end_is_an_expiry(app, apply):
    apply(register(), sign(), activate(), terminate(on="2028-11-15"))
    assert status(app, "2028-12-31").state == "notice"
    assert status(app, "2029-01-01").state == "expired"


def test_termination_within_the_first_year_runs_to_the_anniversary(app, apply):
    apply(register(), sign(), activate(), terminate(on="2026-05-10"))
    assert status(app, "2027-04-01").state == "notice"
    assert status(app, "2027-04-02").state == "terminated"


def test_a_period_starting_on_the_last_day_of_service_is_charged_that_one_day(app, apply):
    # Activated 2026-04-02: the minimum term ends 2027-04-02, so with the letter of
    # 2027-01-20 (notice 1 February + 2 months = 1 April) service ends on 2027-04-01 — the
    # very day the pack's 2027 period starts. R5: that day is charged, 60 × 1/366.
    apply(register(), sign(), activate(on="2026-04-02"), terminate(on="2027-01-20"))
    assert status(app, "2027-03-01").service_end == D("2027-04-01")
    last = [c for c in charges(app, "2028-12-31") if c.charge_date == D("2027-04-01")]
    assert [(c.period_start, c.period_end, c.amount, c.rule) for c in last] == [
        (D("2027-04-01"), D("2027-04-01"), Decimal("0.16"), "R5")]


def test_a_charge_built_by_position_has_each_field_where_the_keywords_put_it():
    # contract_charges builds its charges by position (projections.charges._charge): a field
    # moved in Charge, or an argument out of order, would put a value in another field.
    import attrs

    from ledger.rules import Fee
    from projections.charges import Charge, _charge

    fee = Fee(**{field.name: f"fee-{field.name}" for field in attrs.fields(Fee)})
    given = {name: f"given-{name}" for name in ("key", "customer", "domain", "order", "kind",
                                                "charge_date", "period_start", "period_end",
                                                "amount", "rule", "basis", "basis_fr",
                                                "contract", "derivation")}
    built = _charge(**given, fee=fee)
    expected = Charge(**given, schedule=fee.schedule, line=fee.line, label=fee.label,
                      vat=fee.vat, vat_reason=fee.vat_reason, budget=fee.budget,
                      vat_reason_code=fee.vat_reason_code)
    assert attrs.asdict(built) == attrs.asdict(expected)
    assert len(set(attrs.asdict(built).values())) == len(attrs.fields(Charge))


def test_a_contract_changed_by_position_keeps_every_other_field():
    # The fold replaces a contract's fields by position (ledger.subscription._replace_last).
    import attrs

    from ledger.subscription import Contract, _replace_last

    fields = [field.name for field in attrs.fields(Contract)]
    contract = Contract(**{name: f"old-{name}" for name in fields})
    for name in fields:
        changed = _replace_last((contract,), **{name: "new"})[-1]
        assert attrs.asdict(changed, recurse=False) == {
            other: "new" if other == name else f"old-{other}" for other in fields}
