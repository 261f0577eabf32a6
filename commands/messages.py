"""Commands as frozen messages, and their parsing from one JSON line.

The field names are a contract with operators' tools (docs/commands.md).
Parsing checks form — types, known fields, valid SIRET, real dates — and
names the field at fault; the domain checks the order form's rules.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import date
from typing import Any

import attrs
import orjson
from stdnum import exceptions as stdnum_errors
from stdnum import iban as stdnum_iban
from stdnum.eu import vat as stdnum_vat

from ledger.categories import valid_kind
from ledger.customer import valid_category, valid_customer_key, valid_siret
from ledger.dates import parse_iso_date
from ledger.errors import InvalidCommand
from ledger.subscription import valid_domain


@attrs.frozen
class RegisterCustomer:
    id: str
    customer: str
    name: str
    siret: str
    category: str
    population: int
    address: dict[str, str] | None = None
    kind: str | None = None
    member: bool = True
    member_communes: int | None = None


@attrs.frozen
class UpdateCustomer:
    id: str
    customer: str
    name: str | None = None
    address: dict[str, str] | None = None
    population: int | None = None
    kind: str | None = None
    member: bool | None = None
    member_communes: int | None = None


@attrs.frozen
class SetBillingReferences:
    id: str
    customer: str
    year: int
    code_service: str | None = None
    engagement_number: str | None = None
    code_service_required: bool = False
    engagement_required: bool = False


@attrs.frozen
class RegisterOperator:
    id: str
    name: str
    siret: str
    address: dict[str, str]
    vat_number: str | None = None
    iban: str | None = None
    payment_days: int | None = None
    payment_terms: str | None = None


@attrs.frozen
class SetHeliosProfile:
    """The operator's Hélios identifiers, imputations and ASAP settings (docs/pes.md)."""

    id: str
    profile: dict[str, Any]


@attrs.frozen
class SignOrder:
    id: str
    order: str
    customer: str
    domain: str
    storage_gb: int
    signed_on: date
    received_on: date
    extra_gb_packs: tuple[int, ...] = ()


@attrs.frozen
class Activate:
    id: str
    domain: str
    activated_on: date


@attrs.frozen
class AddStorage:
    id: str
    order: str
    domain: str
    extra_gb_packs: tuple[int, ...]
    signed_on: date
    received_on: date


@attrs.frozen
class RequestTermination:
    id: str
    domain: str
    received_on: date


Command = (RegisterCustomer | UpdateCustomer | SetBillingReferences | RegisterOperator
           | SetHeliosProfile | SignOrder
           | Activate | AddStorage | RequestTermination)


# Field parsers: take the JSON value, return the typed value or raise ValueError/TypeError.

def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected non-empty text, got {_show(value)}")
    if len(value) > 200:
        raise ValueError("text longer than 200 characters")
    return value.strip()


def _string(check: Callable[[str], str]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"expected text, got {_show(value)}")
        return check(value.strip())

    return parse


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number, got {_show(value)}")
    return value


def _population(value: Any) -> int:
    number = _whole(value)
    if number < 1:
        raise ValueError(f"expected at least 1 inhabitant, got {number}")
    return number


def _gigabytes(value: Any) -> int:
    gb = _whole(value)
    if gb < 1:
        raise ValueError(f"expected a number of GB (at least 1), got {gb}")
    return gb


def _packs(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list of pack sizes such as [10, 20], got {_show(value)}")
    packs = []
    for item in value:
        packs.append(_gigabytes(item))
    return tuple(packs)


def _nonempty_packs(value: Any) -> tuple[int, ...]:
    packs = _packs(value)
    if not packs:
        raise ValueError("at least one pack is needed")
    return packs


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {_show(value)}")
    return value


def _year(value: Any) -> int:
    year = _whole(value)
    if not 2000 <= year <= 2100:
        raise ValueError(f"expected a year such as 2027, got {year}")
    return year


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


_ADDRESS_FIELDS = {"line1": True, "line2": False, "postcode": True, "city": True}


def _address(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise TypeError('expected {"line1": …, "postcode": …, "city": …}')
    unknown = sorted(set(value) - set(_ADDRESS_FIELDS))
    if unknown:
        raise ValueError(f"unknown address field {', '.join(unknown)} "
                         f"(expected {', '.join(_ADDRESS_FIELDS)})")
    address = {}
    for name, required in _ADDRESS_FIELDS.items():
        if name not in value:
            if required:
                raise ValueError(f"address needs {name}")
            continue
        address[name] = _text(value[name])
    if not re.fullmatch(r"\d{5}", address["postcode"]):
        raise ValueError(f"postcode must have 5 digits, got {address['postcode']!r}")
    return address


def _iban(value: Any) -> str:
    text = _text(value)
    try:
        return stdnum_iban.validate(text)
    except stdnum_errors.ValidationError:
        raise ValueError(f"{text!r} is not a valid IBAN") from None


def _vat_number(value: Any) -> str:
    text = _text(value)
    try:
        return stdnum_vat.validate(text)
    except stdnum_errors.ValidationError:
        raise ValueError(f"{text!r} is not a valid intra-community VAT number "
                         "(FR and 11 characters: FR + key + SIREN)") from None


def _payment_days(value: Any) -> int:
    days = _whole(value)
    if not 0 <= days <= 90:
        raise ValueError(f"expected a number of days from 0 to 90, got {days}")
    return days


def _date(value: Any) -> date:
    return parse_iso_date(value)


def _show(value: Any) -> str:
    shown = orjson.dumps(value).decode()
    return shown if len(shown) <= 40 else shown[:37] + "..."


_domain = _string(lambda text: valid_domain(text.lower()))

# type → (message class, {field: (parser, required)})
SCHEMAS: dict[str, tuple[type, dict[str, tuple[Callable[[Any], Any], bool]]]] = {
    "register_customer": (
        RegisterCustomer,
        {
            "customer": (_string(valid_customer_key), True),
            "name": (_text, True),
            "siret": (_string(valid_siret), True),
            "category": (_string(valid_category), True),
            "population": (_population, True),
            "address": (_address, False),
            "kind": (_string(lambda t: t), False),
            "member": (_flag, False),
            "member_communes": (_population, False),
        },
    ),
    "update_customer": (
        UpdateCustomer,
        {
            "customer": (_string(valid_customer_key), True),
            "name": (_text, False),
            "address": (_address, False),
            "population": (_population, False),
            "kind": (_string(lambda t: t), False),
            "member": (_flag, False),
            "member_communes": (_population, False),
        },
    ),
    "set_billing_references": (
        SetBillingReferences,
        {
            "customer": (_string(valid_customer_key), True),
            "year": (_year, True),
            "code_service": (_optional_text, False),
            "engagement_number": (_optional_text, False),
            "code_service_required": (_flag, False),
            "engagement_required": (_flag, False),
        },
    ),
    "register_operator": (
        RegisterOperator,
        {
            "name": (_text, True),
            "siret": (_string(valid_siret), True),
            "address": (_address, True),
            "vat_number": (_vat_number, False),
            "iban": (_iban, False),
            "payment_days": (_payment_days, False),
            "payment_terms": (_text, False),
        },
    ),
    "set_helios_profile": (
        SetHeliosProfile,
        {name: (lambda value: value, name in ("id_post", "id_coll", "cod_col", "cod_bud",
                                               "imputations", "asap"))
         for name in ("id_post", "libelle_poste", "id_coll", "cod_col", "cod_bud",
                      "libelle_col_bud", "cod_serv", "imputations", "depense", "asap")},
    ),
    "sign_order": (
        SignOrder,
        {
            "order": (_text, True),
            "customer": (_string(valid_customer_key), True),
            "domain": (_domain, True),
            "storage_gb": (_gigabytes, True),
            "extra_gb_packs": (_packs, False),
            "signed_on": (_date, True),
            "received_on": (_date, True),
        },
    ),
    "activate": (Activate, {"domain": (_domain, True), "activated_on": (_date, True)}),
    "add_storage": (
        AddStorage,
        {
            "order": (_text, True),
            "domain": (_domain, True),
            "extra_gb_packs": (_nonempty_packs, True),
            "signed_on": (_date, True),
            "received_on": (_date, True),
        },
    ),
    "request_termination": (
        RequestTermination,
        {"domain": (_domain, True), "received_on": (_date, True)},
    ),
}


@attrs.frozen
class ParsedLine:
    command: Command
    digest: str
    type: str


#: C0 and C1 control characters (and DEL), except tab: never in a text field. They would be
#: stored, invoiced, then break an export or a terminal.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise InvalidCommand(f"field {key!r} appears twice in the same object")
        seen[key] = value
    return seen


def _refuse_constant(name: str) -> Any:
    raise InvalidCommand(f"not valid JSON ({name} is not a number)")


def _check_controls(value: Any, where: str) -> None:
    if isinstance(value, str):
        found = _CONTROL.search(value)
        if found:
            raise InvalidCommand(f"field {where!r}: control character "
                                 f"U+{ord(found.group()):04X} is not allowed in text")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_controls(item, f"{where}.{key}" if where else key)
    elif isinstance(value, list):
        for item in value:
            _check_controls(item, where)


def parse_line(text: str) -> ParsedLine:
    """Parse one JSON line into a command, or raise :class:`InvalidCommand` saying why."""
    try:
        raw = json.loads(text, object_pairs_hook=_no_duplicates,
                         parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise InvalidCommand(f"not valid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(raw, dict):
        raise InvalidCommand("expected a JSON object {...}")
    _check_controls(raw, "")
    kind = raw.get("type")
    if kind is None:
        raise InvalidCommand("missing field 'type'")
    if kind not in SCHEMAS:
        raise InvalidCommand(
            f"unknown command type {_show(kind)} (expected one of {', '.join(SCHEMAS)})"
        )
    message_class, fields = SCHEMAS[kind]
    if "id" not in raw:
        raise InvalidCommand("missing field 'id'")
    values: dict[str, Any] = {}
    try:
        values["id"] = _text(raw["id"])
    except (ValueError, TypeError) as error:
        raise InvalidCommand(f"field 'id': {error}") from None
    unknown = sorted(set(raw) - set(fields) - {"id", "type"})
    if unknown:
        raise InvalidCommand(
            f"unknown field {', '.join(repr(u) for u in unknown)} for {kind} "
            f"(expected {', '.join(fields)})"
        )
    for name, (parse, required) in fields.items():
        if name not in raw:
            if required:
                raise InvalidCommand(f"missing field {name!r} for {kind}")
            continue
        try:
            values[name] = parse(raw[name])
        except (ValueError, TypeError) as error:
            raise InvalidCommand(f"field {name!r}: {error}") from None
    if kind == "set_helios_profile":
        from ledger.helios_profile import check_profile

        command_id = values.pop("id")
        try:
            profile = check_profile(values)
        except ValueError as error:
            raise InvalidCommand(f"field {error}") from None
        return ParsedLine(SetHeliosProfile(command_id, profile), content_digest(raw), kind)
    if kind == "register_customer" and "kind" in values:
        try:
            valid_kind(values["category"], values["kind"])
        except ValueError as error:
            raise InvalidCommand(f"field 'kind': {error}") from None
    return ParsedLine(message_class(**values), content_digest(raw), kind)


def content_digest(raw: dict[str, Any]) -> str:
    """SHA-256 of a command's canonical JSON: the same content gives the same digest."""
    return hashlib.sha256(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)).hexdigest()
