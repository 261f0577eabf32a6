"""Tariff schedules (barèmes): a declarative catalogue of price lines, adopted by deliberation.

A schedule is read from a TOML file (docs/catalogue.md), checked against the catalogue's
schema — every key known, every value of its type, every cross-field rule — and turned into
immutable values. Who may buy a line (categories, population, workstations, members) and
when (in force, available) are data of the schedule, not code.

What an adoption records is the **normalised** schedule (:func:`to_plain`): every value
already checked and resolved. Replaying reads it back with :func:`from_plain`, which checks
nothing — so a later, stricter version of this parser can never make an adopted schedule
unreadable.

Amounts are ``Decimal``: TOML decimals are parsed as ``Decimal`` (never float); strings such
as ``"0.10"`` and integers are accepted too.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import attrs

from ledger.categories import CATEGORIES, matches, valid_selector
from ledger.errors import LedgerError

#: Parameters any shape may take besides its own: bounds of the amount.
BOUNDS = frozenset({"minimum", "maximum"})
SHAPES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # shape: (required parameters, optional parameters)
    "flat": (frozenset({"amount"}), frozenset({"multiplier"})),
    "per_unit": (frozenset({"unit_price"}), frozenset()),
    "per_inhabitant": (frozenset({"rate"}), frozenset()),
    "population_bands": (frozenset(), frozenset()),
    "graduated": (frozenset(), frozenset()),
    "per_block": (frozenset({"amount", "block_size"}), frozenset()),
    "formula": (frozenset({"rate"}), frozenset({"fixed", "multiplier", "discount_percent"})),
    "supplier_markup": (frozenset({"markup_percent"}), frozenset()),
    # The base may be left to the economic model the comité syndical adopts (then the quote
    # gives it); the ratio is the body's own.
    "ratio": (frozenset(), frozenset({"base", "ratio_min", "ratio_max"})),
    "quoted": (frozenset(), frozenset()),
}
TIMINGS = ("one_off", "access_fee", "yearly", "multi_year")
#: Which section of the operator's budget a line's receipts go to: a titre de recette is one or
#: the other (PES NatPce 01 fonctionnement, 02 investissement), so an invoice is too.
BUDGETS = ("fonctionnement", "investissement")
OFFERED_TO = ("all", "members", "non_members")
VAT_CATEGORIES = {
    # name: (EN 16931 / UNTDID 5305 code, rate in %)
    "outside_scope": ("O", Decimal(0)),
    "exempt": ("E", Decimal(0)),
    "standard": ("S", Decimal(20)),
    "intermediate": ("S", Decimal(10)),
    "reduced": ("S", Decimal("5.5")),
}

_AMOUNT_PARAMS = frozenset().union(*(req | opt for req, opt in SHAPES.values())) | BOUNDS
_LINE_KEYS = frozenset({
    "id", "label", "section", "shape", "timing", "years", "commitment_years", "vat",
    "vat_reason", "first_year_free", "price_includes_vat", "eligibility", "offered_to",
    "available_from", "available_until", "offer", "component", "volume_gb", "note", "unit",
    "quantity_basis", "locked_years", "bands", "tiers", "budget", "vat_reason_code",
}) | _AMOUNT_PARAMS
_SCHEDULE_KEYS = frozenset({
    "id", "operator", "operator_name", "title", "deliberation", "effective_from",
    "effective_until", "currency", "default_vat", "lines", "notes", "source", "offers",
})
_CONDITION_KEYS = frozenset({"categories", "population_min", "population_max",
                             "workstations_min", "workstations_max"})


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
    """A population band, bounds included; priced flat (``amount``), per inhabitant (``rate``,
    times ``multiplier``), or both (a fixed part plus a variable part)."""

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
class Facts:
    """What is known of a body when its eligibility is checked. ``None``: not known."""

    category: str | None = None
    kind: str | None = None
    population: int | None = None
    workstations: int | None = None


class NotEligible(LedgerError):
    """A body may not buy this line or offer, or a fact needed to tell is missing."""

    def __init__(self, message: str, missing: str | None = None) -> None:
        super().__init__(message)
        self.missing = missing


@attrs.frozen
class Condition:
    """One way of being eligible: every bound given must hold."""

    categories: tuple[str, ...] = ()
    population_min: int | None = None
    population_max: int | None = None
    workstations_min: int | None = None
    workstations_max: int | None = None

    def describe(self) -> str:
        parts = []
        if self.categories:
            parts.append(" or ".join(self.categories))
        for fact, low, high, unit in (
                ("population", self.population_min, self.population_max, "inhabitants"),
                ("workstations", self.workstations_min, self.workstations_max,
                 "workstations")):
            if low is not None and high is not None:
                parts.append(f"{_n(low)} to {_n(high)} {unit}")
            elif high is not None:
                parts.append(f"at most {_n(high)} {unit}")
            elif low is not None:
                parts.append(f"at least {_n(low)} {unit}")
        return ", ".join(parts) or "anyone"

    def failure(self, facts: Facts) -> tuple[str | None, str | None]:
        """(why this condition fails, which fact is missing); (None, None) when it holds."""
        if self.categories:
            if facts.category is None:
                return None, "category"
            found = [matches(c, facts.category, facts.kind) for c in self.categories]
            if True not in found:
                if None in found:
                    return None, "kind"
                return f"reserved for {' or '.join(self.categories)} (not {facts.category})", None
        who = " or ".join(self.categories) or "bodies"
        for fact, low, high, unit in (
                ("population", self.population_min, self.population_max, "inhabitants"),
                ("workstations", self.workstations_min, self.workstations_max,
                 "workstations")):
            if low is None and high is None:
                continue
            value = getattr(facts, fact)
            if value is None:
                return None, fact
            if high is not None and value > high:
                return (f"reserved for {who} of at most {_n(high)} {unit} "
                        f"(it has {_n(value)})"), None
            if low is not None and value < low:
                return (f"reserved for {who} of at least {_n(low)} {unit} "
                        f"(it has {_n(value)})"), None
        return None, None


def _n(number: int) -> str:
    """A count as French readers write it: 15 000."""
    return f"{number:,}".replace(",", " ")


@attrs.frozen
class Eligibility:
    """Who may buy: anyone (no condition), or whoever meets one of the conditions."""

    any_of: tuple[Condition, ...] = ()

    def check(self, facts: Facts, what: str) -> None:
        """Raise :class:`NotEligible` saying why, or naming the fact needed to tell."""
        if not self.any_of:
            return
        wrong_kind, other, missing = [], [], []
        for condition in self.any_of:
            reason, fact = condition.failure(facts)
            if reason is None and fact is None:
                return
            if fact is not None:
                missing.append(fact)
            elif " of at " in reason:
                other.append(reason)  # the right kind of body, beyond a bound
            else:
                wrong_kind.append(condition)
        if missing:
            fact = missing[0]
            raise NotEligible(f"{what} is reserved for {self.describe()}: give the {fact} to "
                              "tell", fact)
        if len(other) == 1:
            raise NotEligible(f"{what} is {other[0]}")
        kinds = [c for condition in self.any_of for c in condition.categories]
        if not other and kinds:
            raise NotEligible(f"{what} is reserved for {', '.join(kinds)} "
                              f"(not {facts.category})")
        raise NotEligible(f"{what} is reserved for {self.describe()}")

    def describe(self) -> str:
        return "; or ".join(c.describe() for c in self.any_of) or "anyone"


@attrs.frozen
class Offer:
    """An offer of the operator (the Suite Territoriale): its terms, as the barème states them."""

    id: str
    label: str = ""
    ends_on: date | None = None  # « renouvelable … jusqu'au 31/12/2028 »
    eligibility: Eligibility = Eligibility()


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
    offered_to: str = "all"
    available_from: date | None = None
    available_until: date | None = None
    offer: str | None = None
    component: str | None = None
    volume_gb: int | None = None
    unit: str | None = None
    quantity_basis: str | None = None
    note: str | None = None
    locked_years: int | None = None
    budget: str = "fonctionnement"
    vat_reason_code: str | None = None  # VATEX code of an exemption (EN 16931 BT-121)

    def available_on(self, day: date) -> bool:
        return (self.available_from is None or self.available_from <= day) and (
            self.available_until is None or day <= self.available_until)


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
            text = f"{_money(p['unit_price'])} per {line.unit or 'unit'}"
        case "per_inhabitant":
            text = f"{_money(p['rate'])} per inhabitant"
        case "population_bands":
            text = "; ".join(f"{b.describe()}: {_band_text(b)}" for b in line.bands)
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
        case "ratio":
            base = _money(p["base"]) if "base" in p else "the reference amount"
            text = f"{base} × the body's ratio"
            if "ratio_max" in p:
                text += f" (at most {_money(p['ratio_max'])})"
        case _:
            text = "on quotation"
    text += bounds
    if line.offered_to != "all":
        text += f" ({line.offered_to.replace('_', '-')} only)"
    return text


def _band_text(band: Band) -> str:
    parts = []
    if band.amount is not None:
        parts.append(_money(band.amount))
    if band.rate is not None:
        rate = f"{_money(band.rate)}/inh."
        parts.append(rate if band.multiplier == 1 else f"{rate} × {band.multiplier}")
    return " + ".join(parts)


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
    offers: tuple[Offer, ...] = ()

    def line(self, line_id: str) -> PriceLine:
        for line in self.lines:
            if line.id == line_id:
                return line
        raise LedgerError(f"schedule {self.id!r} has no line {line_id!r}")

    def offer(self, offer_id: str) -> Offer | None:
        for offer in self.offers:
            if offer.id == offer_id:
                return offer
        return None

    def in_force_on(self, day: date) -> bool:
        return self.effective_from <= day and (
            self.effective_until is None or day <= self.effective_until)


# Parsing (strict) ------------------------------------------------------------------------------


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
    import tomllib  # here: most commands read schedules from the store, not from TOML

    try:
        document = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as error:
        raise CatalogueError(source, None, f"not valid TOML ({error})") from None
    document["source"] = path.name
    return parse_schedule(document, source)


def plain_document(value: Any) -> Any:
    """A catalogue document as plain JSON: decimals and dates become text (``"0.10"``,
    ``"2026-01-01"``), which the parser reads back exactly."""
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


Fail = Callable[[str], Any]


def _failer(source: str, line: str | None, prefix: str = "") -> Fail:
    def fail(problem: str):
        raise CatalogueError(source, line, prefix + problem)

    return fail


#: While reading a document stored by an earlier version (plain JSON: amounts and dates as
#: text), text is read as a number or a date; a TOML file must use TOML's own types.
_STORED_TEXT: ContextVar[bool] = ContextVar("stored_text", default=False)


def parse_schedule(document: Mapping[str, Any], source: str | None = None,
                   stored: bool = False) -> Schedule:
    """Validate a catalogue document (a TOML file's content) and build the schedule.

    ``stored``: the document is the plain JSON form an earlier version recorded on adoption
    (amounts and dates as text); only replay of such history passes it.
    """
    token = _STORED_TEXT.set(stored)
    try:
        return _parse_schedule(document, source)
    finally:
        _STORED_TEXT.reset(token)


def _parse_schedule(document: Mapping[str, Any], source: str | None) -> Schedule:
    source = source or str(document.get("source", "<catalogue>"))
    fail = _failer(source, None)
    if not isinstance(document, Mapping):
        fail("a catalogue is a TOML table")
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
    for key in ("operator_name", "title"):
        _optional_text(document, key, fail)
    offers = _parse_offers(document.get("offers", []), source)
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
        if line.offer is not None and line.offer not in {o.id for o in offers} and offers:
            _failer(source, line.id)(f"offer {line.offer!r} is not one of the [[offers]]")
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
        document=plain_document(document), offers=tuple(offers),
    )


def _required_text(table: Mapping[str, Any], key: str, fail: Fail) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        fail(f"missing {key} (text)")
    return value.strip()


def _optional_text(table: Mapping[str, Any], key: str, fail: Fail) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        fail(f"{key} must be text (got {value!r})")
    return value


def _optional_bool(table: Mapping[str, Any], key: str, fail: Fail) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        fail(f"{key} must be true or false (got {value!r})")
    return value


def _optional_int(table: Mapping[str, Any], key: str, fail: Fail, minimum: int = 0
                  ) -> int | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        fail(f"{key} must be a whole number ≥ {minimum} (got {value!r})")
    return value


def _optional_date(table: Mapping[str, Any], key: str, fail: Fail) -> date | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        if not _STORED_TEXT.get():
            fail(f"{key} must be a date such as 2026-01-01, written without quotes "
                 f"(got {value!r})")
        try:
            return date.fromisoformat(value)
        except ValueError:
            fail(f"{key} must be a date such as 2026-01-01 (got {value!r})")
    if isinstance(value, datetime) or not isinstance(value, date):
        fail(f"{key} must be a date such as 2026-01-01 (got {value!r})")
    return value


def _decimal(value: Any, what: str, fail: Fail) -> Decimal:
    if isinstance(value, (bool, float)):
        fail(f"{what} must be a decimal number, not {value!r}")
    if isinstance(value, str) and not _STORED_TEXT.get():
        fail(f"{what} is not a number: {value!r} (write amounts without quotes, e.g. 10.00)")
    try:
        number = Decimal(str(value)) if isinstance(value, (int, str)) else value
    except InvalidOperation:
        fail(f"{what} is not a number: {value!r}")
    if not isinstance(number, Decimal) or not number.is_finite():
        fail(f"{what} is not a number: {value!r}")
    if number < 0:
        fail(f"negative price {number} for {what}")
    return number


def _split(value: Any, what: str, fail: Fail) -> Split:
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


def _positive_int(value: Any, what: str, fail: Fail) -> int:
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
    optional = optional | BOUNDS
    params: dict[str, Split] = {}
    for name in sorted(required | optional):
        if name in raw:
            params[name] = _split(raw[name], name, fail)
        elif name in required:
            fail(f"missing amount for {name!r} (shape {shape})")
    misplaced = sorted(name for name in set(raw) & _AMOUNT_PARAMS
                       if name not in required | optional)
    if misplaced:
        fail(f"{', '.join(misplaced)} does not apply to shape {shape}")
    if "block_size" in params:
        size = params["block_size"].member
        if size is None or size != size.to_integral_value() or size < 1:
            fail("block_size must be a whole number ≥ 1")
    for low, high in (("minimum", "maximum"), ("ratio_min", "ratio_max")):
        if low in params and high in params:
            for who in ("member", "non_member"):
                a, b = getattr(params[low], who), getattr(params[high], who)
                if a is not None and b is not None and a > b:
                    fail(f"{low} {a} is above {high} {b}")
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
    locked = raw.get("locked_years")
    if locked is not None:
        locked = _positive_int(locked, "locked_years", fail)
        if timing != "yearly":
            fail("locked_years (a price fixed for N years) is for a yearly line")
    offered_to = raw.get("offered_to", "all")
    if offered_to not in OFFERED_TO:
        fail(f"offered_to must be one of {', '.join(OFFERED_TO)} (got {offered_to!r})")
    available_from = _optional_date(raw, "available_from", fail)
    available_until = _optional_date(raw, "available_until", fail)
    if available_from and available_until and available_until < available_from:
        fail(f"available_until {available_until} is before available_from {available_from}")
    for key in ("section", "vat_reason", "offer", "component", "unit", "quantity_basis",
                "note", "vat_reason_code"):
        _optional_text(raw, key, fail)
    budget = raw.get("budget", "fonctionnement")
    if budget not in BUDGETS:
        fail(f"budget must be one of {', '.join(BUDGETS)} (got {budget!r})")
    reason_code = raw.get("vat_reason_code")
    if reason_code is not None:
        if not re.fullmatch(r"VATEX-[A-Z0-9-]+", reason_code):
            fail(f"vat_reason_code must be a VATEX code such as VATEX-FR-CGI261-4 "
                 f"(got {reason_code!r})")
        if vat not in ("exempt", "outside_scope"):
            fail("vat_reason_code is for exempt or outside_scope lines")
    if vat == "exempt" and not raw.get("vat_reason"):
        fail("an exempt line states its reason (vat_reason: the article of the CGI that "
             "exempts it, printed on invoices)")
    return PriceLine(
        id=line_id, label=label, shape=shape, timing=timing, vat=vat,
        section=str(raw.get("section", "")), params=params, bands=bands, tiers=tiers,
        years=years, commitment_years=commitment,
        vat_reason=raw.get("vat_reason"),
        first_year_free=_optional_bool(raw, "first_year_free", fail),
        price_includes_vat=_optional_bool(raw, "price_includes_vat", fail),
        eligibility=parse_eligibility(raw.get("eligibility"), fail),
        offered_to=offered_to, available_from=available_from, available_until=available_until,
        offer=raw.get("offer"), component=raw.get("component"), volume_gb=volume,
        unit=raw.get("unit"), quantity_basis=raw.get("quantity_basis"), note=raw.get("note"),
        locked_years=locked, budget=budget, vat_reason_code=reason_code,
    )


def _parse_bands(raw: Any, fail: Fail) -> tuple[Band, ...]:
    if not isinstance(raw, list) or not raw:
        fail("shape population_bands needs [[lines.bands]] with from, to and amount or rate")
    bands = []
    for n, item in enumerate(raw, start=1):
        if not isinstance(item, Mapping):
            fail(f"band #{n} is not a table")
        unknown = sorted(set(item) - {"from", "to", "amount", "rate", "multiplier", "fixed"})
        if unknown:
            fail(f"band #{n}: unknown key(s) {', '.join(unknown)}")
        low = item.get("from", 0)
        high = item.get("to")
        if isinstance(low, bool) or not isinstance(low, int) or low < 0:
            fail(f"band #{n}: from must be a whole number ≥ 0")
        if high is not None and (isinstance(high, bool) or not isinstance(high, int) or high < low):
            fail(f"band #{n}: to must be a whole number ≥ from")
        if "fixed" in item and "amount" in item:
            fail(f"band #{n}: fixed and amount are the same thing; give one")
        fixed = item.get("fixed", item.get("amount"))
        if fixed is None and "rate" not in item:
            fail(f"band #{n}: give an amount, a rate, or a fixed part and a rate "
                 "(missing amount)")
        if "fixed" in item and "rate" not in item:
            fail(f"band #{n}: a fixed part goes with a rate (else write amount)")
        amount = _split(fixed, f"band #{n} amount", fail) if fixed is not None else None
        rate = _split(item["rate"], f"band #{n} rate", fail) if "rate" in item else None
        if "multiplier" in item and rate is None:
            fail(f"band #{n}: multiplier applies to a rate")
        multiplier = _decimal(item.get("multiplier", 1), f"band #{n} multiplier", fail)
        bands.append(Band(low, high, amount, rate, multiplier))
    bands.sort(key=lambda b: b.low)
    for before, after in itertools.pairwise(bands):
        if before.high is None or after.low <= before.high:
            fail(f"overlapping population bands {before.describe()} and {after.describe()}")
    return tuple(bands)


def _parse_tiers(raw: Any, fail: Fail) -> tuple[Tier, ...]:
    if not isinstance(raw, list) or not raw:
        fail("shape graduated needs [[lines.tiers]] with up_to and unit_price")
    tiers = []
    previous = 0
    for n, item in enumerate(raw, start=1):
        if not isinstance(item, Mapping) or "unit_price" not in item:
            fail(f"tier #{n}: missing amount (unit_price)")
        unknown = sorted(set(item) - {"up_to", "unit_price"})
        if unknown:
            fail(f"tier #{n}: unknown key(s) {', '.join(unknown)}")
        up_to = item.get("up_to")
        last = n == len(raw)
        if up_to is None and not last:
            fail(f"tier #{n}: only the last tier may have no up_to")
        if up_to is not None and (isinstance(up_to, bool) or not isinstance(up_to, int)
                                  or up_to <= previous):
            fail(f"tier #{n}: up_to must be a whole number above {previous}")
        tiers.append(Tier(up_to, _split(item["unit_price"], f"tier #{n} unit_price", fail)))
        previous = up_to or previous
    return tuple(tiers)


def _parse_condition(raw: Any, fail: Fail, where: str) -> Condition:
    if not isinstance(raw, Mapping):
        fail(f"{where} must be a table")
    unknown = sorted(set(raw) - _CONDITION_KEYS)
    if unknown:
        fail(f"{where}: unknown key(s) {', '.join(unknown)} (expected "
             f"{', '.join(sorted(_CONDITION_KEYS))})")
    categories = raw.get("categories", [])
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        fail(f"{where}.categories must be a list of categories such as [\"commune\", "
             "\"epci:ca\"]")
    for selector in categories:
        try:
            valid_selector(selector)
        except ValueError as error:
            fail(f"{where}.categories: {error}")
    bounds = {key: _optional_int(raw, key, _failer_prefix(fail, f"{where}."))
              for key in sorted(_CONDITION_KEYS - {"categories"})}
    for fact in ("population", "workstations"):
        low, high = bounds[f"{fact}_min"], bounds[f"{fact}_max"]
        if low is not None and high is not None and low > high:
            fail(f"{where}: {fact}_min {low} is above {fact}_max {high}")
    return Condition(tuple(categories), **bounds)


def _failer_prefix(fail: Fail, prefix: str) -> Fail:
    return lambda problem: fail(prefix + problem)


def parse_eligibility(raw: Any, fail: Fail) -> Eligibility:
    """``{categories = […], population_max = …}``, or ``{any_of = [{…}, {…}]}`` for « or »."""
    if raw is None:
        return Eligibility()
    if not isinstance(raw, Mapping):
        fail("eligibility must be a table")
    if "any_of" in raw:
        if set(raw) != {"any_of"}:
            fail("eligibility: any_of stands alone (put each condition inside it)")
        options = raw["any_of"]
        if not isinstance(options, list) or not options:
            fail("eligibility.any_of must be a list of conditions")
        return Eligibility(tuple(_parse_condition(c, fail, f"eligibility.any_of #{n}")
                                 for n, c in enumerate(options, start=1)))
    return Eligibility((_parse_condition(raw, fail, "eligibility"),))


def _parse_offers(raw: Any, source: str) -> list[Offer]:
    fail = _failer(source, None)
    if not isinstance(raw, list):
        fail("offers must be [[offers]] tables")
    offers = []
    for n, item in enumerate(raw, start=1):
        if not isinstance(item, Mapping):
            fail(f"offer #{n} is not a table")
        unknown = sorted(set(item) - {"id", "label", "ends_on", "eligibility"})
        if unknown:
            fail(f"offer #{n}: unknown key(s) {', '.join(unknown)}")
        offer_id = _required_text(item, "id", _failer(source, None, f"offer #{n}: "))
        offer_fail = _failer(source, None, f"offer {offer_id!r}: ")
        offers.append(Offer(offer_id, str(item.get("label", "")),
                            _optional_date(item, "ends_on", offer_fail),
                            parse_eligibility(item.get("eligibility"), offer_fail)))
    return offers


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


# The normalised form: what an adoption records, read back without validation ---------------

def _split_plain(split: Split) -> dict[str, str | None]:
    return {"member": None if split.member is None else str(split.member),
            "non_member": None if split.non_member is None else str(split.non_member)}


def _split_from(plain: Mapping[str, Any] | None) -> Split | None:
    if plain is None:
        return None
    return Split(*(None if plain[k] is None else Decimal(plain[k])
                   for k in ("member", "non_member")))


def _date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _from_date(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _eligibility_plain(eligibility: Eligibility) -> list[dict[str, Any]]:
    return [attrs.asdict(c, value_serializer=lambda _, __, v: list(v) if isinstance(v, tuple)
                         else v) for c in eligibility.any_of]


def _eligibility_from(plain: list[Mapping[str, Any]]) -> Eligibility:
    return Eligibility(tuple(Condition(**{**c, "categories": tuple(c["categories"])})
                             for c in plain))


def to_plain(schedule: Schedule) -> dict[str, Any]:
    """The schedule as checked, in plain JSON: what ``tariffs.schedule_adopted`` records."""
    return {
        "id": schedule.id, "operator": schedule.operator,
        "operator_name": schedule.operator_name, "title": schedule.title,
        "deliberation_reference": schedule.deliberation_reference,
        "deliberation_date": _date(schedule.deliberation_date),
        "effective_from": _date(schedule.effective_from),
        "effective_until": _date(schedule.effective_until), "currency": schedule.currency,
        "notes": list(schedule.notes), "source": schedule.source,
        "offers": [{"id": o.id, "label": o.label, "ends_on": _date(o.ends_on),
                    "eligibility": _eligibility_plain(o.eligibility)} for o in schedule.offers],
        "lines": [{
            "id": line.id, "label": line.label, "shape": line.shape, "timing": line.timing,
            "vat": line.vat, "section": line.section,
            "params": {name: _split_plain(split) for name, split in sorted(line.params.items())},
            "bands": [{"low": b.low, "high": b.high,
                       "amount": None if b.amount is None else _split_plain(b.amount),
                       "rate": None if b.rate is None else _split_plain(b.rate),
                       "multiplier": str(b.multiplier)} for b in line.bands],
            "tiers": [{"up_to": t.up_to, "unit_price": _split_plain(t.unit_price)}
                      for t in line.tiers],
            "years": line.years, "commitment_years": line.commitment_years,
            "vat_reason": line.vat_reason, "first_year_free": line.first_year_free,
            "price_includes_vat": line.price_includes_vat,
            "eligibility": _eligibility_plain(line.eligibility), "offered_to": line.offered_to,
            "available_from": _date(line.available_from),
            "available_until": _date(line.available_until), "offer": line.offer,
            "component": line.component, "volume_gb": line.volume_gb, "unit": line.unit,
            "quantity_basis": line.quantity_basis, "note": line.note,
            "locked_years": line.locked_years, "budget": line.budget,
            "vat_reason_code": line.vat_reason_code,
        } for line in schedule.lines],
    }


def from_plain(plain: Mapping[str, Any], document: Mapping[str, Any] | None = None) -> Schedule:
    """A schedule from its normalised form, as adopted. Nothing is checked again."""
    lines = []
    for raw in plain["lines"]:
        lines.append(PriceLine(
            id=raw["id"], label=raw["label"], shape=raw["shape"], timing=raw["timing"],
            vat=raw["vat"], section=raw["section"],
            params={name: _split_from(split) for name, split in raw["params"].items()},
            bands=tuple(Band(b["low"], b["high"], _split_from(b["amount"]),
                             _split_from(b["rate"]), Decimal(b["multiplier"]))
                        for b in raw["bands"]),
            tiers=tuple(Tier(t["up_to"], _split_from(t["unit_price"])) for t in raw["tiers"]),
            years=raw["years"], commitment_years=raw["commitment_years"],
            vat_reason=raw["vat_reason"], first_year_free=raw["first_year_free"],
            price_includes_vat=raw["price_includes_vat"],
            eligibility=_eligibility_from(raw["eligibility"]), offered_to=raw["offered_to"],
            available_from=_from_date(raw["available_from"]),
            available_until=_from_date(raw["available_until"]), offer=raw["offer"],
            component=raw["component"], volume_gb=raw["volume_gb"], unit=raw["unit"],
            quantity_basis=raw["quantity_basis"], note=raw["note"],
            locked_years=raw["locked_years"],
            # Added after the first normalised schedules were recorded: their defaults.
            budget=raw.get("budget", "fonctionnement"),
            vat_reason_code=raw.get("vat_reason_code")))
    return Schedule(
        id=plain["id"], operator=plain["operator"], operator_name=plain["operator_name"],
        title=plain["title"], deliberation_reference=plain["deliberation_reference"],
        deliberation_date=_from_date(plain["deliberation_date"]),
        effective_from=_from_date(plain["effective_from"]),
        effective_until=_from_date(plain["effective_until"]), currency=plain["currency"],
        lines=tuple(lines), notes=tuple(plain["notes"]), source=plain["source"],
        document=document or {},
        offers=tuple(Offer(o["id"], o["label"], _from_date(o["ends_on"]),
                           _eligibility_from(o["eligibility"])) for o in plain["offers"]),
    )


__all__ = ["CATEGORIES", "CatalogueError", "Eligibility", "Facts", "NotEligible", "Offer",
           "PriceLine", "Schedule", "Split", "from_plain", "load_schedule", "parse_schedule",
           "to_plain"]
