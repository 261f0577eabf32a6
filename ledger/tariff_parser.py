"""Catalogue files (TOML, docs/catalogue.md) read strictly into :mod:`ledger.tariffs` values:
every key known, every value of its type, every cross-field rule; a mistake is a
:class:`~ledger.tariffs.CatalogueError` naming the file, the line and the field."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ledger.categories import valid_selector
from ledger.tariffs import (
    BOUNDS,
    BUDGETS,
    OFFERED_TO,
    SHAPES,
    TIMINGS,
    VAT_CATEGORIES,
    Band,
    CatalogueError,
    Condition,
    Eligibility,
    Offer,
    PriceLine,
    Schedule,
    Split,
    Tier,
)

AMOUNT_PARAMS = frozenset().union(*(req | opt for req, opt in SHAPES.values())) | BOUNDS
LINE_KEYS = frozenset({
    "id", "label", "section", "shape", "timing", "years", "commitment_years", "vat",
    "vat_reason", "first_year_free", "price_includes_vat", "eligibility", "offered_to",
    "available_from", "available_until", "offer", "component", "volume_gb", "note", "unit",
    "quantity_basis", "locked_years", "bands", "tiers", "budget", "vat_reason_code",
}) | AMOUNT_PARAMS
SCHEDULE_KEYS = frozenset({
    "id", "operator", "operator_name", "title", "deliberation", "effective_from",
    "effective_until", "currency", "default_vat", "lines", "notes", "source", "offers",
})
CONDITION_KEYS = frozenset({"categories", "population_min", "population_max",
                             "workstations_min", "workstations_max"})



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
    unknown = sorted(set(document) - SCHEDULE_KEYS)
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
    unknown = sorted(set(raw) - LINE_KEYS)
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
    misplaced = sorted(name for name in set(raw) & AMOUNT_PARAMS
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
    unknown = sorted(set(raw) - CONDITION_KEYS)
    if unknown:
        fail(f"{where}: unknown key(s) {', '.join(unknown)} (expected "
             f"{', '.join(sorted(CONDITION_KEYS))})")
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
              for key in sorted(CONDITION_KEYS - {"categories"})}
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
