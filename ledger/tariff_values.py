"""Reading one value of a catalogue document, strictly: text, flags, whole numbers, dates and
amounts of their TOML type (or, for history stored by an earlier version, of their text), each
mistake raised through ``fail`` as a :class:`~ledger.tariffs.CatalogueError` that names the file,
the line and the key."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ledger.tariffs import (
    CatalogueError,
    Split,
)

Fail = Callable[[str], Any]


def failer(source: str, line: str | None, prefix: str = "") -> Fail:
    def fail(problem: str):
        raise CatalogueError(source, line, prefix + problem)

    return fail


#: While reading a document stored by an earlier version (plain JSON: amounts and dates as
#: text), text is read as a number or a date; a TOML file must use TOML's own types.
STORED_TEXT: ContextVar[bool] = ContextVar("stored_text", default=False)


def required_text(table: Mapping[str, Any], key: str, fail: Fail) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        fail(f"missing {key} (text)")
    return value.strip()


def optional_text(table: Mapping[str, Any], key: str, fail: Fail) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        fail(f"{key} must be text (got {value!r})")
    return value


def optional_bool(table: Mapping[str, Any], key: str, fail: Fail) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        fail(f"{key} must be true or false (got {value!r})")
    return value


#: The largest whole number a catalogue may hold (a population, a volume, a number of years):
#: beyond what any of them can be, and within the exact integers of JSON (2^53).
MAX_WHOLE = 10 ** 12
#: The largest amount a catalogue line may price (€): a typo's exponent (1e30) could not be
#: rounded to the cent, and an adopted schedule is never removed from the history.
MAX_AMOUNT = Decimal(10 ** 9)


def optional_int(table: Mapping[str, Any], key: str, fail: Fail, minimum: int = 0
                  ) -> int | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        fail(f"{key} must be a whole number ≥ {minimum} (got {value!r})")
    if value > MAX_WHOLE:
        fail(f"{key} {value} is larger than any it can be (at most {MAX_WHOLE})")
    return value


def optional_date(table: Mapping[str, Any], key: str, fail: Fail) -> date | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        if not STORED_TEXT.get():
            fail(f"{key} must be a date such as 2026-01-01, written without quotes "
                 f"(got {value!r})")
        try:
            return date.fromisoformat(value)
        except ValueError:
            fail(f"{key} must be a date such as 2026-01-01 (got {value!r})")
    if isinstance(value, datetime) or not isinstance(value, date):
        fail(f"{key} must be a date such as 2026-01-01 (got {value!r})")
    return value


def decimal_amount(value: Any, what: str, fail: Fail) -> Decimal:
    if isinstance(value, (bool, float)):
        fail(f"{what} must be a decimal number, not {value!r}")
    if isinstance(value, str) and not STORED_TEXT.get():
        fail(f"{what} is not a number: {value!r} (write amounts without quotes, e.g. 10.00)")
    try:
        number = Decimal(str(value)) if isinstance(value, (int, str)) else value
    except InvalidOperation:
        fail(f"{what} is not a number: {value!r}")
    if not isinstance(number, Decimal) or not number.is_finite():
        fail(f"{what} is not a number: {value!r}")
    if number < 0:
        fail(f"negative price {number} for {what}")
    if number >= MAX_AMOUNT and not STORED_TEXT.get():  # what was adopted is read as it was
        fail(f"{what} {number} is too large: an amount is below {MAX_AMOUNT:,} € (check the "
             "decimal point or the exponent)")
    return number


def split_amount(value: Any, what: str, fail: Fail) -> Split:
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {"member", "non_member"})
        if unknown:
            fail(f"{what}: unknown key(s) {', '.join(unknown)} (use member and non_member)")
        if "member" not in value and "non_member" not in value:
            fail(f"missing amount for {what}")
        member = (decimal_amount(value["member"], f"{what}.member", fail)
                  if "member" in value else None)
        non_member = (decimal_amount(value["non_member"], f"{what}.non_member", fail)
                      if "non_member" in value else None)
        return Split(member, non_member)
    amount = decimal_amount(value, what, fail)
    return Split(amount, amount)


def positive_int(value: Any, what: str, fail: Fail) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        fail(f"{what} must be a whole number ≥ 1 (got {value!r})")
    if value > MAX_WHOLE:
        fail(f"{what} {value} is larger than any it can be (at most {MAX_WHOLE})")
    return value


def failer_prefix(fail: Fail, prefix: str) -> Fail:
    return lambda problem: fail(prefix + problem)
