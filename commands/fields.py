"""The fields of command lines: each parser takes a JSON value and returns the typed value, or
raises ValueError/TypeError with a message naming what was wrong (the line parser adds where)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

import orjson
from stdnum import exceptions as stdnum_errors
from stdnum import iban as stdnum_iban
from stdnum.eu import vat as stdnum_vat

from ledger.dates import parse_iso_date
from ledger.subscription import valid_domain


def some_text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected non-empty text, got {shown(value)}")
    if len(value) > 200:
        raise ValueError("text longer than 200 characters")
    return value.strip()


def string(check: Callable[[str], str]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"expected text, got {shown(value)}")
        return check(value.strip())

    return parse


#: The largest whole number a command may hold: what JSON readers and the stored, canonical
#: form of every entry can carry exactly (a signed 64-bit integer).
LARGEST = 2**63 - 1


def whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number, got {shown(value)}")
    if not -LARGEST <= value <= LARGEST:
        raise ValueError(f"{shown(value)} is too large a number")
    return value


def population(value: Any) -> int:
    number = whole(value)
    if number < 1:
        raise ValueError(f"expected at least 1 inhabitant, got {number}")
    return number


def gigabytes(value: Any) -> int:
    gb = whole(value)
    if gb < 1:
        raise ValueError(f"expected a number of GB (at least 1), got {gb}")
    return gb


def pack_sizes(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list of pack sizes such as [10, 20], got {shown(value)}")
    packs = []
    for item in value:
        packs.append(gigabytes(item))
    return tuple(packs)


def nonempty_packs(value: Any) -> tuple[int, ...]:
    packs = pack_sizes(value)
    if not packs:
        raise ValueError("at least one pack is needed")
    return packs


def flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {shown(value)}")
    return value


def year(value: Any) -> int:
    year = whole(value)
    if not 2000 <= year <= 2100:
        raise ValueError(f"expected a year such as 2027, got {year}")
    return year


def optional_text(value: Any) -> str | None:
    return None if value is None else some_text(value)


ADDRESS_FIELDS = {"line1": True, "line2": False, "postcode": True, "city": True}


def address(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise TypeError('expected {"line1": …, "postcode": …, "city": …}')
    unknown = sorted(set(value) - set(ADDRESS_FIELDS))
    if unknown:
        raise ValueError(f"unknown address field {', '.join(unknown)} "
                         f"(expected {', '.join(ADDRESS_FIELDS)})")
    address = {}
    for name, required in ADDRESS_FIELDS.items():
        if name not in value:
            if required:
                raise ValueError(f"address needs {name}")
            continue
        address[name] = some_text(value[name])
    if not re.fullmatch(r"[0-9]{5}", address["postcode"]):  # \d would take any script's digits
        raise ValueError(f"postcode must have 5 digits (0-9), got {address['postcode']!r}")
    return address


def iban(value: Any) -> str:
    text = some_text(value)
    try:
        return stdnum_iban.validate(text)
    except stdnum_errors.ValidationError:
        raise ValueError(f"{text!r} is not a valid IBAN") from None


def vat_number(value: Any) -> str:
    text = some_text(value)
    try:
        number = stdnum_vat.validate(text)
    except stdnum_errors.ValidationError:
        raise ValueError(f"{text!r} is not a valid intra-community VAT number "
                         "(FR and 11 characters: FR + key + SIREN)") from None
    if number.startswith("FR") and not number[4:].strip("0"):
        # Its Luhn sum is 0, so python-stdnum takes it: no body has this SIREN.
        raise ValueError(f"{text!r} is not a valid intra-community VAT number: "
                         "its SIREN is all zeros")
    return number


def payment_days(value: Any) -> int:
    days = whole(value)
    if not 0 <= days <= 90:
        raise ValueError(f"expected a number of days from 0 to 90, got {days}")
    return days


def iso_date(value: Any) -> date:
    return parse_iso_date(value)


def shown(value: Any) -> str:
    try:
        shown = orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, at any depth
        shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


domain = string(valid_domain)
