"""Tariff schedules (barèmes): a declarative catalogue of price lines, adopted by deliberation.

A schedule is read from a TOML file (docs/catalogue.md) into immutable values.
The same parser reads the document carried by a ``TariffScheduleAdopted``
event, so what is replayed is exactly what was validated.

Amounts are ``Decimal``: TOML decimals are parsed as ``Decimal`` (never float),
strings such as ``"0.10"`` and integers are accepted too.
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import attrs

from ledger.errors import LedgerError

SHAPES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # shape: (required parameters, optional parameters)
    "flat": (frozenset({"amount"}), frozenset({"multiplier"})),
    "per_unit": (frozenset({"unit_price"}), frozenset({"minimum", "maximum"})),
    "per_inhabitant": (frozenset({"rate"}), frozenset({"minimum", "maximum"})),
    "population_bands": (frozenset(), frozenset()),
    "graduated": (frozenset(), frozenset()),
    "per_block": (frozenset({"amount", "block_size"}), frozenset()),
    "formula": (frozenset({"rate"}), frozenset({"fixed", "multiplier", "discount_percent"})),
    "supplier_markup": (frozenset({"markup_percent"}), frozenset()),
    "quoted": (frozenset(), frozenset()),
}
TIMINGS = ("one_off", "access_fee", "yearly", "multi_year")
VAT_CATEGORIES = {
    # name: (EN 16931 / UNTDID 5305 code, rate in %)
    "outside_scope": ("O", Decimal(0)),
    "exempt": ("E", Decimal(0)),
    "standard": ("S", Decimal(20)),
    "intermediate": ("S", Decimal(10)),
    "reduced": ("S", Decimal("5.5")),
}
#: Kinds of public body a customer can be, and a price line can be reserved for.
CATEGORIES = ("commune", "ccas", "epci", "cias", "other")

_LINE_KEYS = frozenset({
    "id", "label", "section", "shape", "timing", "years", "commitment_years", "vat",
    "vat_reason", "first_year_free", "price_includes_vat", "eligibility", "available_until",
    "offer", "component", "volume_gb", "note", "unit", "quantity_basis", "bands", "tiers",
}) | frozenset().union(*(req | opt for req, opt in SHAPES.values()))
_SCHEDULE_KEYS = frozenset({
    "id", "operator", "operator_name", "title", "deliberation", "effective_from",
    "effective_until", "currency", "default_vat", "lines", "notes", "source",
})


class CatalogueError(LedgerError):
    """A catalogue file (or adopted document) is wrong; the message names file, line and problem."""

    def __init__(self, source: str, line: str | None, problem: str) -> None:
        where = f"{source}, line {line!r}" if line else source
        super().__init__(f"{where}: {problem}")
        self.source, self.line, self.problem = source, line, problem


@attrs.frozen
class Split:
    """An amount that may differ for members and non-members (``None``: not offered)."""

    member: Decimal | None
    non_member: Decimal | None

    def for_(self, member: bool) -> Decimal | None:
        return self.member if member else self.non_member


@attrs.frozen
class Band:
    """A population band, bounds included; priced flat (``amount``) or per inhabitant (``rate``)."""

    low: int
    high: int | None
    amount: Split | None = None
    rate: Split | None = None
    multiplier: Decimal = Decimal(1)

    def contains(self, population: int) -> bool:
        return self.low <= population and (self.high is None or population <= self.high)

    def describe(self) -> str:
        return f"{self.low}–{self.high}" if self.high is not None else f"{self.low} and more"


@attrs.frozen
class Tier:
    """Graduated volume: units up to ``up_to`` (included, cumulative) cost ``unit_price`` each."""

    up_to: int | None
    unit_price: Split


@attrs.frozen
class Eligibility:
    categories: tuple[str, ...] = ()
    population_min: int | None = None
    population_max: int | None = None


@attrs.frozen
class PriceLine:
    id: str
    label: str
    shape: str
    timing: str
    vat: str
    section: str = ""
    params: Mapping[str, Split] = attrs.field(factory=dict)
    bands: tuple[Band, ...] = ()
    tiers: tuple[Tier, ...] = ()
    years: int | None = None
    commitment_years: int | None = None
    vat_reason: str | None = None
    first_year_free: bool = False
    price_includes_vat: bool = False
    eligibility: Eligibility = Eligibility()
    available_until: date | None = None
    offer: str | None = None
    component: str | None = None
    volume_gb: int | None = None
    unit: str | None = None
    quantity_basis: str | None = None
    note: str | None = None


def _money(split: Split) -> str:
    if split.member == split.non_member:
        return f"{split.member}"
    member = "—" if split.member is None else f"{split.member}"
    non_member = "—" if split.non_member is None else f"{split.non_member}"
    return f"{member} / {non_member}"


def summary(line: PriceLine) -> str:
    """A one-line description of how a line is priced (member / non-member where they differ)."""
    p = line.params
    bounds = "".join(
        f", {word} {_money(p[key])}" for key, word in (("minimum", "min"), ("maximum", "max"))
        if key in p)
    match line.shape:
        case "flat":
            text = _money(p["amount"])
            if "multiplier" in p:
                text += f" × {_money(p['multiplier'])}"
        case "per_unit":
            text = f"{_money(p['unit_price'])} per {line.unit or 'unit'}{bounds}"
        case "per_inhabitant":
            text = f"{_money(p['rate'])} per inhabitant{bounds}"
        case "population_bands":
            text = "; ".join(
                f"{b.describe()}: "
                + (_money(b.amount) if b.amount else f"{_money(b.rate)}/inh. × {b.multiplier}")
                for b in line.bands)
        case "graduated":
            text = "; ".join(
                (f"up to {t.up_to}" if t.up_to else "beyond") + f": {_money(t.unit_price)}"
                for t in line.tiers)
        case "per_block":
            text = f"{_money(p['amount'])} per started block of {p['block_size'].member}"
        case "formula":
            fixed = _money(p["fixed"]) + " + " if "fixed" in p else ""
            text = f"({fixed}{_money(p['rate'])} × inh.)"
            if "multiplier" in p:
                text += f" × {_money(p['multiplier'])}"
            if "discount_percent" in p:
                text += f" − {_money(p['discount_percent'])} %"
        case "supplier_markup":
            text = f"supplier price + {_money(p['markup_percent'])} %"
        case _:
            text = "on quotation"
    return text


@attrs.frozen
class Schedule:
    id: str
    operator: str
    operator_name: str
    title: str
    deliberation_reference: str
    deliberation_date: date | None
    effective_from: date
    effective_until: date | None
    currency: str
    lines: tuple[PriceLine, ...]
    notes: tuple[str, ...]
    source: str
    document: Mapping[str, Any] = attrs.field(eq=False, repr=False)

    def line(self, line_id: str) -> PriceLine:
        for line in self.lines:
            if line.id == line_id:
                return line
        raise LedgerError(f"schedule {self.id!r} has no line {line_id!r}")

    def in_force_on(self, day: date) -> bool:
        return self.effective_from <= day and (
            self.effective_until is None or day <= self.effective_until)


# Parsing -------------------------------------------------------------------------------------


def load_schedule(path: str | Path) -> Schedule:
    """Read and validate a catalogue TOML file."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogueError(source, None, "file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CatalogueError(source, None, f"cannot read the file ({error})") from None
    try:
        document = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as error:
        raise CatalogueError(source, None, f"not valid TOML ({error})") from None
    document["source"] = path.name
    return parse_schedule(document, source)


def plain_document(value: Any) -> Any:
    """A catalogue document as plain JSON: decimals and dates become text (``"0.10"``,
    ``"2026-01-01"``), which the parser reads back exactly. What an adoption records."""
    if isinstance(value, Mapping):
        return {str(key): plain_document(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain_document(item) for item in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        raise CatalogueError(str(value), None, "floats are never used for amounts")
    return value


def parse_schedule(document: Mapping[str, Any], source: str | None = None) -> Schedule:
    """Validate a catalogue document (a TOML file's content) and build the schedule."""
    source = source or str(document.get("source", "<catalogue>"))
    fail = _failer(source, None)
    unknown = sorted(set(document) - _SCHEDULE_KEYS)
    if unknown:
        fail(f"unknown key(s) {', '.join(unknown)}")
    schedule_id = _required_text(document, "id", fail)
    operator = _required_text(document, "operator", fail)
    deliberation = document.get("deliberation")
    if not isinstance(deliberation, Mapping):
        fail("missing [deliberation] table with reference and date")
    unknown = sorted(set(deliberation) - {"reference", "date"})
    if unknown:
        fail(f"[deliberation]: unknown key(s) {', '.join(unknown)} (expected reference, date)")
    reference = _required_text(deliberation, "reference", _failer(source, None, "deliberation."))
    deliberation_date = _optional_date(deliberation, "date", fail)
    effective_from = _optional_date(document, "effective_from", fail)
    if effective_from is None:
        fail("missing effective_from (a date such as 2026-01-01)")
    effective_until = _optional_date(document, "effective_until", fail)
    if effective_until is not None and effective_until < effective_from:
        fail(f"effective_until {effective_until} is before effective_from {effective_from}")
    currency = document.get("currency", "EUR")
    if currency != "EUR":
        fail(f"currency must be EUR (got {currency!r})")
    default_vat = document.get("default_vat", "outside_scope")
    if default_vat not in VAT_CATEGORIES:
        fail(f"default_vat must be one of {', '.join(VAT_CATEGORIES)}")
    raw_lines = document.get("lines")
    if not isinstance(raw_lines, list) or not raw_lines:
        fail("no [[lines]]: a schedule needs at least one price line")
    lines: list[PriceLine] = []
    seen: set[str] = set()
    for position, raw in enumerate(raw_lines, start=1):
        if not isinstance(raw, Mapping):
            fail(f"line #{position} is not a table")
        line = _parse_line(raw, source, position, default_vat)
        if line.id in seen:
            _failer(source, line.id)("the same line id appears twice")
        seen.add(line.id)
        lines.append(line)
    notes = document.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        fail("notes must be a list of texts")
    return Schedule(
        id=schedule_id, operator=operator,
        operator_name=str(document.get("operator_name", operator)),
        title=str(document.get("title", schedule_id)),
        deliberation_reference=reference, deliberation_date=deliberation_date,
        effective_from=effective_from, effective_until=effective_until, currency=currency,
        lines=tuple(lines), notes=tuple(notes), source=str(document.get("source", source)),
        document=plain_document(document),
    )


def _failer(source: str, line: str | None, prefix: str = ""):
    def fail(problem: str):
        raise CatalogueError(source, line, prefix + problem)

    return fail


def _required_text(table: Mapping[str, Any], key: str, fail) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        fail(f"missing {key} (text)")
    return value.strip()


def _optional_date(table: Mapping[str, Any], key: str, fail) -> date | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            fail(f"{key} must be a date such as 2026-01-01 (got {value!r})")
    if isinstance(value, datetime) or not isinstance(value, date):
        fail(f"{key} must be a date such as 2026-01-01 (got {value!r})")
    return value


def _decimal(value: Any, what: str, fail) -> Decimal:
    if isinstance(value, (bool, float)):
        fail(f"{what} must be a decimal number, not {value!r}")
    try:
        number = Decimal(str(value)) if isinstance(value, (int, str)) else value
    except InvalidOperation:
        fail(f"{what} is not a number: {value!r}")
    if not isinstance(number, Decimal) or not number.is_finite():
        fail(f"{what} is not a number: {value!r}")
    if number < 0:
        fail(f"negative price {number} for {what}")
    return number


def _split(value: Any, what: str, fail) -> Split:
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {"member", "non_member"})
        if unknown:
            fail(f"{what}: unknown key(s) {', '.join(unknown)} (use member and non_member)")
        if "member" not in value and "non_member" not in value:
            fail(f"missing amount for {what}")
        member = _decimal(value["member"], f"{what}.member", fail) if "member" in value else None
        non_member = (_decimal(value["non_member"], f"{what}.non_member", fail)
                      if "non_member" in value else None)
        return Split(member, non_member)
    amount = _decimal(value, what, fail)
    return Split(amount, amount)


def _positive_int(value: Any, what: str, fail) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        fail(f"{what} must be a whole number ≥ 1 (got {value!r})")
    return value


def _parse_line(raw: Mapping[str, Any], source: str, position: int, default_vat: str) -> PriceLine:
    line_id = raw.get("id")
    if not isinstance(line_id, str) or not line_id.strip():
        _failer(source, None)(f"line #{position} has no id")
    fail = _failer(source, line_id)
    unknown = sorted(set(raw) - _LINE_KEYS)
    if unknown:
        fail(f"unknown key(s) {', '.join(unknown)}")
    label = _required_text(raw, "label", fail)
    shape = raw.get("shape")
    if shape not in SHAPES:
        fail(f"unknown shape {shape!r} (shapes are {', '.join(SHAPES)})")
    timing = raw.get("timing")
    if timing not in TIMINGS:
        fail(f"timing must be one of {', '.join(TIMINGS)} (got {timing!r})")
    years = raw.get("years")
    if timing == "multi_year":
        years = _positive_int(years, "years", fail)
    elif years is not None:
        fail("years is only for timing = \"multi_year\"")
    vat = raw.get("vat", default_vat)
    if vat not in VAT_CATEGORIES:
        fail(f"vat must be one of {', '.join(VAT_CATEGORIES)} (got {vat!r})")
    required, optional = SHAPES[shape]
    params: dict[str, Split] = {}
    for name in sorted(required | optional):
        if name in raw:
            params[name] = _split(raw[name], name, fail)
        elif name in required:
            fail(f"missing amount for {name!r} (shape {shape})")
    misplaced = sorted(
        name for name in set(raw) & frozenset().union(*(r | o for r, o in SHAPES.values()))
        if name not in required | optional
    )
    if misplaced:
        fail(f"{', '.join(misplaced)} does not apply to shape {shape}")
    if "block_size" in params:
        size = params["block_size"].member
        if size is None or size != size.to_integral_value() or size < 1:
            fail("block_size must be a whole number ≥ 1")
    bands = _parse_bands(raw.get("bands"), fail) if shape == "population_bands" else ()
    if shape != "population_bands" and "bands" in raw:
        fail("bands only apply to shape population_bands")
    tiers = _parse_tiers(raw.get("tiers"), fail) if shape == "graduated" else ()
    if shape != "graduated" and "tiers" in raw:
        fail("tiers only apply to shape graduated")
    commitment = raw.get("commitment_years")
    if commitment is not None:
        commitment = _positive_int(commitment, "commitment_years", fail)
    volume = raw.get("volume_gb")
    if volume is not None:
        volume = _positive_int(volume, "volume_gb", fail)
    return PriceLine(
        id=line_id, label=label, shape=shape, timing=timing, vat=vat,
        section=str(raw.get("section", "")), params=params, bands=bands, tiers=tiers,
        years=years, commitment_years=commitment,
        vat_reason=raw.get("vat_reason"),
        first_year_free=bool(raw.get("first_year_free", False)),
        price_includes_vat=bool(raw.get("price_includes_vat", False)),
        eligibility=_parse_eligibility(raw.get("eligibility"), fail),
        available_until=_optional_date(raw, "available_until", fail),
        offer=raw.get("offer"), component=raw.get("component"), volume_gb=volume,
        unit=raw.get("unit"), quantity_basis=raw.get("quantity_basis"), note=raw.get("note"),
    )


def _parse_bands(raw: Any, fail) -> tuple[Band, ...]:
    if not isinstance(raw, list) or not raw:
        fail("shape population_bands needs [[lines.bands]] with from, to and amount or rate")
    bands = []
    for n, item in enumerate(raw, start=1):
        if not isinstance(item, Mapping):
            fail(f"band #{n} is not a table")
        unknown = sorted(set(item) - {"from", "to", "amount", "rate", "multiplier"})
        if unknown:
            fail(f"band #{n}: unknown key(s) {', '.join(unknown)}")
        low = item.get("from", 0)
        high = item.get("to")
        if isinstance(low, bool) or not isinstance(low, int) or low < 0:
            fail(f"band #{n}: from must be a whole number ≥ 0")
        if high is not None and (isinstance(high, bool) or not isinstance(high, int) or high < low):
            fail(f"band #{n}: to must be a whole number ≥ from")
        if ("amount" in item) == ("rate" in item):
            fail(f"band #{n}: give either amount or rate (missing amount)")
        amount = _split(item["amount"], f"band #{n} amount", fail) if "amount" in item else None
        rate = _split(item["rate"], f"band #{n} rate", fail) if "rate" in item else None
        multiplier = _decimal(item.get("multiplier", 1), f"band #{n} multiplier", fail)
        bands.append(Band(low, high, amount, rate, multiplier))
    bands.sort(key=lambda b: b.low)
    for before, after in itertools.pairwise(bands):
        if before.high is None or after.low <= before.high:
            fail(f"overlapping population bands {before.describe()} and {after.describe()}")
    return tuple(bands)


def _parse_tiers(raw: Any, fail) -> tuple[Tier, ...]:
    if not isinstance(raw, list) or not raw:
        fail("shape graduated needs [[lines.tiers]] with up_to and unit_price")
    tiers = []
    previous = 0
    for n, item in enumerate(raw, start=1):
        if not isinstance(item, Mapping) or "unit_price" not in item:
            fail(f"tier #{n}: missing amount (unit_price)")
        up_to = item.get("up_to")
        last = n == len(raw)
        if up_to is None and not last:
            fail(f"tier #{n}: only the last tier may have no up_to")
        if up_to is not None and (not isinstance(up_to, int) or up_to <= previous):
            fail(f"tier #{n}: up_to must be a whole number above {previous}")
        tiers.append(Tier(up_to, _split(item["unit_price"], f"tier #{n} unit_price", fail)))
        previous = up_to or previous
    return tuple(tiers)


def _parse_eligibility(raw: Any, fail) -> Eligibility:
    if raw is None:
        return Eligibility()
    if not isinstance(raw, Mapping):
        fail("eligibility must be a table")
    unknown = sorted(set(raw) - {"categories", "population_min", "population_max"})
    if unknown:
        fail(f"eligibility: unknown key(s) {', '.join(unknown)}")
    categories = tuple(raw.get("categories", ()))
    wrong = [c for c in categories if c not in CATEGORIES]
    if wrong:
        fail(f"eligibility: unknown categories {', '.join(wrong)}")
    return Eligibility(categories, raw.get("population_min"), raw.get("population_max"))


def check_no_same_day(schedules: list[Schedule], new: Schedule) -> None:
    """Two schedules of one operator may not take effect the same day."""
    for other in schedules:
        if other.operator == new.operator and other.effective_from == new.effective_from \
                and other.id != new.id:
            raise CatalogueError(
                new.source, None,
                f"schedule {new.id!r} of {new.operator} takes effect on {new.effective_from}, "
                f"the same day as schedule {other.id!r} ({other.source})",
            )
