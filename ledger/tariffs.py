"""Tariff schedules (barèmes): a declarative catalogue of price lines, adopted by deliberation.

A schedule is read from a TOML file (docs/catalogue.md) by :mod:`ledger.tariff_parser`, checked
against the catalogue's schema — every key known, every value of its type, every cross-field
rule — and turned into the immutable values of this module. Who may buy a line (categories, population, workstations, members) and
when (in force, available) are data of the schedule, not code.

What an adoption records is the **normalised** schedule (:func:`ledger.tariff_plain.to_plain`):
every value already checked and resolved. Replaying reads it back with
:func:`ledger.tariff_plain.from_plain`, which checks nothing — so a later, stricter version of this parser can never make an adopted schedule
unreadable.

Amounts are ``Decimal``: TOML decimals are parsed as ``Decimal`` (never float); strings such
as ``"0.10"`` and integers are accepted too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import attrs

from ledger.categories import matches
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
