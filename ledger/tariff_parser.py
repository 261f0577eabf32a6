"""Catalogue files (TOML, docs/catalogue.md) read strictly into :mod:`ledger.tariffs` values:
every key known, every value of its type, every cross-field rule; a mistake is a
:class:`~ledger.tariffs.CatalogueError` naming the file, the line and the field."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ledger.tariff_eligibility import (
    parse_eligibility,
    parse_offers,
)
from ledger.tariff_values import (
    MAX_WHOLE,
    STORED_TEXT,
    Fail,
    decimal_amount,
    failer,
    optional_bool,
    optional_date,
    optional_text,
    positive_int,
    required_text,
    split_amount,
)
from ledger.tariffs import (
    BOUNDS,
    BUDGETS,
    OFFERED_TO,
    SHAPES,
    TIMINGS,
    VAT_CATEGORIES,
    Band,
    CatalogueError,
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


# Parsing (strict) ------------------------------------------------------------------------------


_SCHEDULE_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")


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

    # A byte order mark, as Windows editors write one, is not TOML: read past it.
    text = text.removeprefix("\ufeff")
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


def parse_schedule(document: Mapping[str, Any], source: str | None = None,
                   stored: bool = False) -> Schedule:
    """Validate a catalogue document (a TOML file's content) and build the schedule.

    ``stored``: the document is the plain JSON form an earlier version recorded on adoption
    (amounts and dates as text); only replay of such history passes it.
    """
    token = STORED_TEXT.set(stored)
    try:
        return _parse_schedule(document, source)
    finally:
        STORED_TEXT.reset(token)


def _parse_schedule(document: Mapping[str, Any], source: str | None) -> Schedule:
    source = source or str(document.get("source", "<catalogue>"))
    fail = failer(source, None)
    if not isinstance(document, Mapping):
        fail("a catalogue is a TOML table")
    unknown = sorted(set(document) - SCHEDULE_KEYS)
    if unknown:
        fail(f"unknown key(s) {', '.join(unknown)}")
    schedule_id = required_text(document, "id", fail)
    if not STORED_TEXT.get() and not _SCHEDULE_ID.fullmatch(schedule_id):
        # It names the schedule's file in a dossier, and every charge it prices.
        fail(f"id {schedule_id!r}: lower-case letters, digits, '.', '_' and '-' only, starting "
             "with a letter or a digit (such as megalis-suite-territoriale-2026), at most 100")
    operator = required_text(document, "operator", fail)
    deliberation = document.get("deliberation")
    if not isinstance(deliberation, Mapping):
        fail("missing [deliberation] table with reference and date")
    unknown = sorted(set(deliberation) - {"reference", "date"})
    if unknown:
        fail(f"[deliberation]: unknown key(s) {', '.join(unknown)} (expected reference, date)")
    reference = required_text(deliberation, "reference", failer(source, None, "deliberation."))
    deliberation_date = optional_date(deliberation, "date", fail)
    effective_from = optional_date(document, "effective_from", fail)
    if effective_from is None:
        fail("missing effective_from (a date such as 2026-01-01)")
    effective_until = optional_date(document, "effective_until", fail)
    if effective_until is not None and effective_until < effective_from:
        fail(f"effective_until {effective_until} is before effective_from {effective_from}")
    currency = document.get("currency", "EUR")
    if currency != "EUR":
        fail(f"currency must be EUR (got {currency!r})")
    default_vat = document.get("default_vat", "outside_scope")
    if default_vat not in VAT_CATEGORIES:
        fail(f"default_vat must be one of {', '.join(VAT_CATEGORIES)}")
    for key in ("operator_name", "title"):
        optional_text(document, key, fail)
    offers = parse_offers(document.get("offers", []), source)
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
            failer(source, line.id)("the same line id appears twice")
        seen.add(line.id)
        if line.offer is not None and line.offer not in {o.id for o in offers} and offers:
            failer(source, line.id)(f"offer {line.offer!r} is not one of the [[offers]]")
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


def _parse_line(raw: Mapping[str, Any], source: str, position: int, default_vat: str) -> PriceLine:
    line_id = raw.get("id")
    if not isinstance(line_id, str) or not line_id.strip():
        failer(source, None)(f"line #{position} has no id")
    fail = failer(source, line_id)
    unknown = sorted(set(raw) - LINE_KEYS)
    if unknown:
        fail(f"unknown key(s) {', '.join(unknown)}")
    label = required_text(raw, "label", fail)
    shape = raw.get("shape")
    if shape not in SHAPES:
        fail(f"unknown shape {shape!r} (shapes are {', '.join(SHAPES)})")
    timing = raw.get("timing")
    if timing not in TIMINGS:
        fail(f"timing must be one of {', '.join(TIMINGS)} (got {timing!r})")
    years = raw.get("years")
    if timing == "multi_year":
        years = positive_int(years, "years", fail)
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
            params[name] = split_amount(raw[name], name, fail)
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
        commitment = positive_int(commitment, "commitment_years", fail)
    volume = raw.get("volume_gb")
    if volume is not None:
        volume = positive_int(volume, "volume_gb", fail)
    locked = raw.get("locked_years")
    if locked is not None:
        locked = positive_int(locked, "locked_years", fail)
        if timing != "yearly":
            fail("locked_years (a price fixed for N years) is for a yearly line")
    offered_to = raw.get("offered_to", "all")
    if offered_to not in OFFERED_TO:
        fail(f"offered_to must be one of {', '.join(OFFERED_TO)} (got {offered_to!r})")
    available_from = optional_date(raw, "available_from", fail)
    available_until = optional_date(raw, "available_until", fail)
    if available_from and available_until and available_until < available_from:
        fail(f"available_until {available_until} is before available_from {available_from}")
    for key in ("section", "vat_reason", "offer", "component", "unit", "quantity_basis",
                "note", "vat_reason_code"):
        optional_text(raw, key, fail)
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
        first_year_free=optional_bool(raw, "first_year_free", fail),
        price_includes_vat=optional_bool(raw, "price_includes_vat", fail),
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
        if max(low, high or 0) > MAX_WHOLE:
            fail(f"band #{n}: a bound larger than any it can be (at most {MAX_WHOLE})")
        if "fixed" in item and "amount" in item:
            fail(f"band #{n}: fixed and amount are the same thing; give one")
        fixed = item.get("fixed", item.get("amount"))
        if fixed is None and "rate" not in item:
            fail(f"band #{n}: give an amount, a rate, or a fixed part and a rate "
                 "(missing amount)")
        if "fixed" in item and "rate" not in item:
            fail(f"band #{n}: a fixed part goes with a rate (else write amount)")
        amount = split_amount(fixed, f"band #{n} amount", fail) if fixed is not None else None
        rate = split_amount(item["rate"], f"band #{n} rate", fail) if "rate" in item else None
        if "multiplier" in item and rate is None:
            fail(f"band #{n}: multiplier applies to a rate")
        multiplier = decimal_amount(item.get("multiplier", 1), f"band #{n} multiplier", fail)
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
                                  or up_to <= previous or up_to > MAX_WHOLE):
            fail(f"tier #{n}: up_to must be a whole number above {previous}, at most "
                 f"{MAX_WHOLE}")
        tiers.append(Tier(up_to, split_amount(item["unit_price"], f"tier #{n} unit_price", fail)))
        previous = up_to or previous
    return tuple(tiers)


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
