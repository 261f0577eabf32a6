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

from commands import fields
from ledger.categories import valid_kind
from ledger.customer import valid_category, valid_customer_key, valid_siret
from ledger.errors import InvalidCommand


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


# type → (message class, {field: (parser, required)})
SCHEMAS: dict[str, tuple[type, dict[str, tuple[Callable[[Any], Any], bool]]]] = {
    "register_customer": (
        RegisterCustomer,
        {
            "customer": (fields.string(valid_customer_key), True),
            "name": (fields.some_text, True),
            "siret": (fields.string(valid_siret), True),
            "category": (fields.string(valid_category), True),
            "population": (fields.population, True),
            "address": (fields.address, False),
            "kind": (fields.string(lambda t: t), False),
            "member": (fields.flag, False),
            "member_communes": (fields.population, False),
        },
    ),
    "update_customer": (
        UpdateCustomer,
        {
            "customer": (fields.string(valid_customer_key), True),
            "name": (fields.some_text, False),
            "address": (fields.address, False),
            "population": (fields.population, False),
            "kind": (fields.string(lambda t: t), False),
            "member": (fields.flag, False),
            "member_communes": (fields.population, False),
        },
    ),
    "set_billing_references": (
        SetBillingReferences,
        {
            "customer": (fields.string(valid_customer_key), True),
            "year": (fields.year, True),
            "code_service": (fields.optional_text, False),
            "engagement_number": (fields.optional_text, False),
            "code_service_required": (fields.flag, False),
            "engagement_required": (fields.flag, False),
        },
    ),
    "register_operator": (
        RegisterOperator,
        {
            "name": (fields.some_text, True),
            "siret": (fields.string(valid_siret), True),
            "address": (fields.address, True),
            "vat_number": (fields.vat_number, False),
            "iban": (fields.iban, False),
            "payment_days": (fields.payment_days, False),
            "payment_terms": (fields.some_text, False),
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
            "order": (fields.some_text, True),
            "customer": (fields.string(valid_customer_key), True),
            "domain": (fields.domain, True),
            "storage_gb": (fields.gigabytes, True),
            "extra_gb_packs": (fields.pack_sizes, False),
            "signed_on": (fields.iso_date, True),
            "received_on": (fields.iso_date, True),
        },
    ),
    "activate": (Activate, {"domain": (fields.domain, True),
                            "activated_on": (fields.iso_date, True)}),
    "add_storage": (
        AddStorage,
        {
            "order": (fields.some_text, True),
            "domain": (fields.domain, True),
            "extra_gb_packs": (fields.nonempty_packs, True),
            "signed_on": (fields.iso_date, True),
            "received_on": (fields.iso_date, True),
        },
    ),
    "request_termination": (
        RequestTermination,
        {"domain": (fields.domain, True), "received_on": (fields.iso_date, True)},
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


def _strings(value: Any) -> int:
    """How many texts (keys and values) ``value`` holds; -1 if it holds a float."""
    count = 0
    if type(value) is dict:
        count = len(value)
        value = value.values()
    for item in value:
        kind = type(item)
        if kind is str:
            count += 1
        elif kind is dict or kind is list:
            inner = _strings(item)
            if inner < 0:
                return -1
            count += inner
        elif kind is float:
            return -1
    return count


def _json_object(text: str) -> Any:
    """The line's JSON value. Most lines are read by orjson (about a third of the time the
    standard parser takes), which keeps the last of a key written twice: its reading is taken
    when the line holds no escape — then every text in it is written between two quotes and
    holds none, so a key written twice shows as more quotes than the value has texts — and no
    float (orjson reads an integer beyond 64 bits as one, the standard parser as an int).
    Any other line is read by the standard parser, which finds a key written twice, refuses
    NaN and Infinity, and says where a line is wrong. Either way the same value, hence the
    same digest of its content."""
    if "\\" not in text:
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
        else:
            if type(value) is str or (type(value) in (dict, list)
                                      and text.count('"') == 2 * _strings(value)):
                return value
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates,
                          parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise InvalidCommand(f"not valid JSON ({error.msg} at column {error.colno})") from None


def parse_line(text: str) -> ParsedLine:
    """Parse one JSON line into a command, or raise :class:`InvalidCommand` saying why."""
    try:
        return _parse_line(text)
    except RecursionError:  # orjson reads up to 1 024 levels; walking them is Python's recursion
        raise InvalidCommand("nested too deeply: a command's fields hold objects and lists a "
                             "few levels deep, not hundreds") from None


def _parse_line(text: str) -> ParsedLine:
    raw = _json_object(text)
    if not isinstance(raw, dict):
        raise InvalidCommand("expected a JSON object {...}")
    if "\\" in text or _CONTROL.search(text):  # else every text in it is written as is
        _check_controls(raw, "")
    kind = raw.get("type")
    if kind is None:
        raise InvalidCommand("missing field 'type'")
    if not isinstance(kind, str):
        raise InvalidCommand(f"field 'type': expected text, got {fields.shown(kind)}")
    if kind not in SCHEMAS:
        raise InvalidCommand(
            f"unknown command type {fields.shown(kind)} (expected one of {', '.join(SCHEMAS)})"
        )
    message_class, expected = SCHEMAS[kind]
    if "id" not in raw:
        raise InvalidCommand("missing field 'id'")
    values: dict[str, Any] = {}
    try:
        values["id"] = fields.some_text(raw["id"])
    except (ValueError, TypeError) as error:
        raise InvalidCommand(f"field 'id': {error}") from None
    unknown = sorted(set(raw) - set(expected) - {"id", "type"})
    if unknown:
        raise InvalidCommand(
            f"unknown field {', '.join(repr(u) for u in unknown)} for {kind} "
            f"(expected {', '.join(expected)})"
        )
    for name, (parse, required) in expected.items():
        if name not in raw:
            if required:
                raise InvalidCommand(f"missing field {name!r} for {kind}")
            continue
        try:
            values[name] = parse(raw[name])
        except (ValueError, TypeError) as error:
            raise InvalidCommand(f"field {name!r}: {error}") from None
    if kind == "update_customer" and not set(values) - {"id", "customer"}:
        raise InvalidCommand("update_customer changes nothing: give at least one of "
                             + ", ".join(name for name in expected if name != "customer"))
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
    try:
        return hashlib.sha256(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)).hexdigest()
    except orjson.JSONEncodeError:  # what the fields let through, it could not be stored
        raise InvalidCommand("a number in it is too large (beyond 64 bits)") from None
