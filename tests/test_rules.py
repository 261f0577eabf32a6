"""One block per rule of the order form (docs/rules.md)."""

from datetime import date
from decimal import Decimal

import pytest

from ledger import rules
from ledger.tariff_parser import load_schedule
from ledger.tariffs import Facts
from tests.conftest import MEGALIS_2026 as MEGALIS_2026_FILE

MEGALIS_2026 = load_schedule(MEGALIS_2026_FILE)
#: The contract's last day, as the 2026 barème states it (« jusqu'au 31/12/2028 »).
END = rules.contract_end([MEGALIS_2026], date(2026, 3, 17))
RECEIVED = date(2026, 3, 17)


def reason_of(category, population, kind=None):
    return rules.ineligibility_reason([MEGALIS_2026], RECEIVED,
                                      Facts(category, kind, population))


# R1 — eligibility
@pytest.mark.parametrize(
    ("category", "population"),
    [("commune", 3500), ("ccas", 1), ("epci", 15000), ("cias", 14999)],
)
def test_r1_eligible_bodies(category, population):
    assert reason_of(category, population) is None


@pytest.mark.parametrize(
    ("category", "population", "reason"),
    [
        ("commune", 3501, "commune or ccas of at most 3 500 inhabitants (it has 3 501)"),
        ("ccas", 4000, "commune or ccas of at most 3 500 inhabitants (it has 4 000)"),
        ("epci", 15001, "epci or cias of at most 15 000 inhabitants (it has 15 001)"),
        ("cias", 20000, "epci or cias of at most 15 000 inhabitants (it has 20 000)"),
        ("other_public", 100, "reserved for commune, ccas, epci, cias (not other_public)"),
        ("departement", 100, "reserved for commune, ccas, epci, cias (not departement)"),
    ],
)
def test_r1_other_bodies_are_refused_with_the_reason(category, population, reason):
    assert reason in reason_of(category, population)


def test_r1_the_terms_are_the_barème_s_not_the_code_s():
    assert END == date(2028, 12, 31)
    terms = MEGALIS_2026.offer(rules.OFFER)
    assert [(c.categories, c.population_max) for c in terms.eligibility.any_of] == [
        (("commune", "ccas"), 3500), (("epci", "cias"), 15000)]
    # A later barème that raises the ceiling changes who may order from its date on.
    import attrs

    from ledger.tariffs import Condition, Eligibility

    wider = attrs.evolve(terms, eligibility=Eligibility((
        Condition(("commune", "ccas"), population_max=5000),)))
    revision = attrs.evolve(MEGALIS_2026, id="rev", effective_from=date(2027, 1, 1),
                            offers=(wider,))
    assert rules.ineligibility_reason([MEGALIS_2026, revision], date(2027, 2, 1),
                                      Facts("commune", None, 4000)) is None
    assert "at most 3 500" in rules.ineligibility_reason([MEGALIS_2026, revision],
                                                        date(2026, 12, 1),
                                                        Facts("commune", None, 4000))


def test_r1_an_order_without_the_fact_needed_is_refused_naming_it():
    assert "give the category" in rules.ineligibility_reason(
        [MEGALIS_2026], RECEIVED, Facts(None, None, 1000))
    assert "give the population" in rules.ineligibility_reason(
        [MEGALIS_2026], RECEIVED, Facts("commune", None, None))


# R2 — one order form per domain until the subscription has ended
def test_r2_subscription_without_known_end_runs_to_the_contract_end():
    assert not rules.has_ended(None, date(2028, 12, 31), END)
    assert rules.has_ended(None, date(2029, 1, 1), END)


def test_r2_subscription_has_ended_the_day_after_its_last_day_of_service():
    assert not rules.has_ended(date(2027, 8, 31), date(2027, 8, 31), END)
    assert rules.has_ended(date(2027, 8, 31), date(2027, 9, 1), END)


@pytest.mark.parametrize(
    ("written", "domain"),
    [
        ("mauron.fr", "mauron.fr"),
        ("CCAS-Mauron.Collectivite.FR", "ccas-mauron.collectivite.fr"),
        ("lanvénec.fr", "lanvénec.fr"),
        ("LANVÉNEC.FR", "lanvénec.fr"),
        ("lanve\u0301nec.fr", "lanvénec.fr"),  # é decomposed: e + combining acute accent
        ("xn--lanvnec-eya.fr", "lanvénec.fr"),  # its punycode (ASCII) form
        ("XN--LANVNEC-EYA.FR", "lanvénec.fr"),
        ("mairie.xn--lanvnec-eya.fr", "mairie.lanvénec.fr"),
        ("xn--uf-dsa.fr", "œuf.fr"),
    ],
)
def test_r2_a_domain_has_one_form_however_it_is_written(written, domain):
    """One subscription per domain: its aggregate id is derived from this form, the one an
    accented domain was always stored in."""
    from ledger.identity import subscription_id
    from ledger.subscription import valid_domain

    assert valid_domain(written) == domain
    assert subscription_id(valid_domain(written)) == subscription_id(domain)


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("a÷b.fr", "'÷' (U+00F7) is not allowed in it"),
        ("a×b.fr", "'×' (U+00D7) is not allowed in it"),
        ("xn--zz.fr", "'xn--zz' is not valid punycode"),
        ("xn--é.fr", "'xn--é' is not valid punycode"),
        ("xn--lanvnec-2qa.fr", "'xn--lanvnec-2qa' is not valid punycode"),  # of "lanvÉnec"
        ("xn--p1ai.fr", "'р' (U+0440) is not allowed in it"),  # Cyrillic
        ("a" * 64 + ".fr", "expected lower-case labels separated by dots"),
        ("é" * 60 + ".fr", "longer than DNS allows once written in ASCII"),
        (("a" * 63 + ".") * 4 + "fr", "longer than DNS allows once written in ASCII"),
    ],
)
def test_r2_what_is_not_a_domain_is_refused_saying_why(written, reason):
    from ledger.subscription import valid_domain

    with pytest.raises(ValueError) as caught:
        valid_domain(written)
    message = str(caught.value)
    assert message.startswith(f"{written!r} is not a domain name") and reason in message


# R3 — access fee
@pytest.mark.parametrize(
    ("gb", "fee"), [(25, 600), (50, 1000), (100, 1500), (150, 2000), (200, 2500)]
)
def test_r3_access_fee_by_tier(gb, fee):
    fee_2026 = rules.access_fee([MEGALIS_2026], gb, date(2026, 3, 17))
    assert (fee_2026.amount, fee_2026.schedule, fee_2026.line, fee_2026.vat) == (
        Decimal(fee), "megalis-suite-territoriale-2026", f"st-access-{gb}gb", "outside_scope")


def test_r3_unknown_tier():
    with pytest.raises(rules.TariffMissing, match="unknown storage tier 30 GB"):
        rules.access_fee([MEGALIS_2026], 30, date(2026, 3, 17))


def test_r3_no_schedule_in_force_before_the_deliberation():
    with pytest.raises(rules.TariffMissing, match="no tariff schedule .* in force on 2025-12-17"):
        rules.access_fee([MEGALIS_2026], 25, date(2025, 12, 17))


def test_r3_access_fee_period_runs_to_the_contract_end():
    assert rules.access_fee_period(date(2026, 4, 2), END) == (date(2026, 4, 2), date(2028, 12, 31))


# R4 — extra storage, yearly from the 1st of the month after receipt
@pytest.mark.parametrize(("gb", "fee"), [(10, 60), (20, 90), (50, 180)])
def test_r4_pack_fees(gb, fee):
    assert rules.pack_fee([MEGALIS_2026], gb, date(2027, 7, 1)).amount == Decimal(fee)


@pytest.mark.parametrize(
    ("received", "start"),
    [
        (date(2026, 6, 1), date(2026, 7, 1)),
        (date(2026, 12, 15), date(2027, 1, 1)),
        (date(2026, 12, 31), date(2027, 1, 1)),
    ],
)
def test_r4_billing_start(received, start):
    assert rules.billing_start(received) == start


def test_r4_periods_repeat_every_12_months_until_the_contract_end():
    periods = list(rules.yearly_periods(date(2026, 7, 1), END))
    assert periods == [
        (date(2026, 7, 1), date(2027, 6, 30)),
        (date(2027, 7, 1), date(2028, 6, 30)),
        (date(2028, 7, 1), date(2029, 6, 30)),  # whole: R5 cuts it
    ]


def test_r4_a_period_starting_on_the_last_day_is_produced():
    # R5 then charges it for one day; dropping it would lose that day.
    periods = list(rules.yearly_periods(date(2027, 12, 1), date(2028, 12, 1)))
    assert periods[-1] == (date(2028, 12, 1), date(2029, 11, 30))
    assert len(periods) == 2


def test_r4_period_starting_after_the_contract_end_is_not_produced():
    assert list(rules.yearly_periods(date(2029, 1, 1), END)) == []


# R5 — pro rata by days
def test_r5_pro_rata_over_a_leap_period():
    # 2027-07-01 → 2028-06-30 has 366 days; 62 days covered: 60 × 62 / 366 = 10.1639… → 10.16
    assert rules.prorated(Decimal(60), date(2027, 7, 1), date(2027, 8, 31), date(2028, 6, 30)) == Decimal("10.16")


def test_r5_contract_end_cut():
    # 2028-04-01 → 2029-03-31 has 365 days; to 2028-12-31: 275 days. 180 × 275 / 365 = 135.616… → 135.62
    last = rules.charged_end(date(2029, 3, 31), None, END)
    assert last == date(2028, 12, 31)
    assert rules.prorated(Decimal(180), date(2028, 4, 1), last, date(2029, 3, 31)) == Decimal("135.62")


def test_r5_rounds_half_up():
    # 73 of 365 days is exactly one fifth: 0.025 × 73 / 365 = 0.005, a half cent → 0.01
    assert rules.prorated(Decimal("0.025"), date(2027, 1, 1), date(2027, 3, 14), date(2027, 12, 31)) == Decimal("0.01")


def test_r5_known_service_end_cuts_the_period():
    assert rules.charged_end(date(2028, 6, 30), date(2027, 8, 31), END) == date(2027, 8, 31)


# R6 — terms
def test_r6_first_term_runs_to_the_day_before_the_anniversary():
    assert rules.term(date(2026, 4, 2), date(2026, 4, 2), END) == (1, date(2026, 4, 2), date(2027, 4, 1))
    assert rules.term(date(2026, 4, 2), date(2027, 4, 1), END) == (1, date(2026, 4, 2), date(2027, 4, 1))


def test_r6_tacit_renewal_starts_term_two_on_the_anniversary():
    assert rules.term(date(2026, 4, 2), date(2027, 4, 2), END) == (2, date(2027, 4, 2), date(2028, 4, 1))


def test_r6_last_term_is_cut_at_the_contract_end():
    assert rules.term(date(2026, 4, 2), date(2028, 6, 1), END) == (3, date(2028, 4, 2), date(2028, 12, 31))


def test_r6_leap_day_activation():
    # Activated 2028-02-29: term 1 ends 2028-12-31 (contract end comes before 2029-02-27).
    assert rules.term(date(2028, 2, 29), date(2028, 3, 1), END) == (1, date(2028, 2, 29), date(2028, 12, 31))


def test_r6_month_end_activation_anniversaries_clamp():
    # Activated 2027-01-31: term 2 starts 2028-01-31 and ends 2028-12-31.
    assert rules.term(date(2027, 1, 31), date(2028, 2, 15), END)[0:2] == (2, date(2028, 1, 31))


def test_r6_no_term_before_activation():
    with pytest.raises(ValueError):
        rules.term(date(2026, 4, 2), date(2026, 4, 1), END)


# R7 — termination
def test_r7_notice_starts_on_the_first_of_the_next_month():
    assert rules.notice_start(date(2027, 6, 15)) == date(2027, 7, 1)
    assert rules.notice_start(date(2027, 12, 1)) == date(2028, 1, 1)


def test_r7_two_months_of_notice_after_the_first_year():
    # received 2027-06-15 → notice 2027-07-01 → ends before 2027-09-01
    assert rules.service_end(date(2026, 4, 2), date(2027, 6, 15), END) == date(2027, 8, 31)


def test_r7_minimum_term_prevails_over_a_shorter_notice():
    # received 2026-05-10 → notice 2026-06-01 + 2 months = 2026-08-01, but the first anniversary
    # 2027-04-02 comes later: service runs to 2027-04-01.
    assert rules.service_end(date(2026, 4, 2), date(2026, 5, 10), END) == date(2027, 4, 1)


def test_r7_leap_day_activation_minimum_term():
    # Activated 2028-02-29 → anniversary 2029-02-28, beyond the contract end: cut at 2028-12-31.
    assert rules.service_end(date(2028, 2, 29), date(2028, 3, 5), END) == date(2028, 12, 31)


def test_r7_leap_day_anniversary_clamps_to_28_february():
    # Activated 2024-02-29 (a date before the offer, to isolate the arithmetic): anniversary 2025-02-28.
    assert rules.minimum_term_end(date(2024, 2, 29)) == date(2025, 2, 28)
    assert rules.service_end(date(2024, 2, 29), date(2024, 3, 1), END) == date(2025, 2, 27)


def test_r7_never_later_than_the_contract_end():
    assert rules.service_end(date(2026, 4, 2), date(2028, 11, 15), END) == date(2028, 12, 31)


def test_r7_december_receipt_crosses_the_year():
    # received 2027-12-20 → notice 2028-01-01 → ends before 2028-03-01
    assert rules.service_end(date(2026, 4, 2), date(2027, 12, 20), END) == date(2028, 2, 29)


# R8 — no refund
def test_r8_period_starting_before_receipt_is_not_affected():
    assert not rules.termination_known(date(2027, 6, 15), date(2027, 4, 1))


def test_r8_termination_received_on_the_first_day_is_known():
    assert rules.termination_known(date(2027, 7, 1), date(2027, 7, 1))


def test_r8_no_termination():
    assert not rules.termination_known(None, date(2027, 7, 1))
