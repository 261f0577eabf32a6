from datetime import date

import pytest

from ledger.dates import add_months, add_years, days_between, first_of_next_month, parse_iso_date


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),  # clamps to the end of February
        (date(2028, 1, 31), 1, date(2028, 2, 29)),  # leap year
        (date(2026, 3, 31), 1, date(2026, 4, 30)),
        (date(2026, 11, 15), 2, date(2027, 1, 15)),  # crosses the year
        (date(2026, 12, 1), 12, date(2027, 12, 1)),
        (date(2027, 3, 31), -1, date(2027, 2, 28)),
    ],
)
def test_add_months_clamps_to_the_end_of_the_month(day, months, expected):
    assert add_months(day, months) == expected


def test_leap_day_plus_one_year_is_28_february():
    assert add_years(date(2028, 2, 29), 1) == date(2029, 2, 28)


def test_years_are_added_to_the_anchor_so_leap_day_comes_back():
    assert add_years(date(2028, 2, 29), 4) == date(2032, 2, 29)


@pytest.mark.parametrize(
    ("received", "expected"),
    [
        (date(2026, 6, 1), date(2026, 7, 1)),  # received on the 1st → next month
        (date(2026, 12, 15), date(2027, 1, 1)),  # December → January of the next year
        (date(2026, 1, 31), date(2026, 2, 1)),  # month end
        (date(2028, 2, 29), date(2028, 3, 1)),  # leap day
    ],
)
def test_first_of_next_month(received, expected):
    assert first_of_next_month(received) == expected


def test_days_between_counts_both_ends():
    assert days_between(date(2027, 7, 1), date(2027, 8, 31)) == 62
    assert days_between(date(2028, 1, 1), date(2028, 12, 31)) == 366


@pytest.mark.parametrize("text", ["2026-02-30", "2026-13-01", "26-03-12", "2026/03/12", "20260312", ""])
def test_parse_iso_date_refuses_impossible_or_misformatted_dates(text):
    with pytest.raises(ValueError):
        parse_iso_date(text)


@pytest.mark.parametrize("text", ["２０２６-02-03", "2026-0٣-12", "2026-03-1\u0663"])
def test_digits_of_other_scripts_are_a_format_error_not_an_impossible_date(text):
    with pytest.raises(ValueError, match="^expected a date written YYYY-MM-DD, got "):
        parse_iso_date(text)


def test_parse_iso_date_names_the_impossible_date():
    with pytest.raises(ValueError, match="2026-02-30 is not a real calendar date"):
        parse_iso_date("2026-02-30")


def test_a_french_date_has_four_digits_of_year():
    from ledger.dates import french_date

    assert french_date(date(2027, 1, 5)) == "05/01/2027"
    assert french_date(date(1, 1, 1)) == "01/01/0001"  # it said 01/01/1
