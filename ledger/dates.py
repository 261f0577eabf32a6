"""Calendar arithmetic used by the billing rules.

Month and year arithmetic clamps to the end of the month: 31 January + 1 month is
28 (or 29) February, 29 February + 1 year is 28 February. Always add to the
anchor date (``add_years(activated_on, k)``), never step from a clamped result,
so that a 29 February anchor finds 29 February again in leap years.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta
from functools import lru_cache

#: ASCII digits only: ``\d`` would take any script's (２０２６-02-03), then called it no real date.
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

ONE_DAY = timedelta(days=1)


# Pure and called for every period of every charge: a replay asks the same few thousand
# (day, months) pairs again and again.
@lru_cache(maxsize=1 << 16)
def add_months(day: date, months: int) -> date:
    """Return ``day`` moved by ``months`` calendar months, clamped to the month's end."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last))


def add_years(day: date, years: int) -> date:
    """Return ``day`` moved by ``years`` years (29 February + 1 year = 28 February)."""
    return add_months(day, 12 * years)


@lru_cache(maxsize=1 << 14)
def first_of_next_month(day: date) -> date:
    """Return the 1st of the month following ``day`` (15 December → 1 January)."""
    return add_months(day.replace(day=1), 1)


def days_between(first: date, last: date) -> int:
    """Number of days from ``first`` to ``last``, both included."""
    return (last - first).days + 1


def parse_iso_date(text: str) -> date:
    """Parse a strict ``YYYY-MM-DD`` date.

    Raises ``ValueError`` with a readable message for anything else, including
    impossible dates such as 2026-02-30.
    """
    if not isinstance(text, str) or not _ISO_DATE.fullmatch(text):
        raise ValueError(f"expected a date written YYYY-MM-DD, got {text!r}")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text} is not a real calendar date") from None


def french_date(day: date | str) -> str:
    """A date as printed for a French reader: ``25/01/2027``."""
    if isinstance(day, str):
        day = date.fromisoformat(day)
    return f"{day.day:02d}/{day.month:02d}/{day.year:04d}"
