"""The pricing engine: one small pure function per pricing shape of the catalogue.

``quote(line, request)`` returns the amount and the steps that computed it, so
that a finance officer can check a price against the grid. Amounts are rounded
once, at the end, by ``ledger.money.to_cents``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from math import ceil

import attrs

from ledger.errors import LedgerError
from ledger.money import to_cents
from ledger.tariffs import Eligibility, Facts, NotEligible, Offer, PriceLine, Split

HUNDRED = Decimal(100)


class PricingError(LedgerError):
    """A price cannot be computed from what was given (missing input, not eligible, …)."""


@attrs.frozen
class PriceRequest:
    """What a price may depend on. Only what the line's shape and eligibility need is required;
    a fact they need and that is missing is named in the refusal."""

    member: bool = True
    population: int | None = None
    quantity: Decimal | None = None
    supplier_price: Decimal | None = None
    quoted_amount: Decimal | None = None
    category: str | None = None
    kind: str | None = None
    workstations: int | None = None
    ratio: Decimal | None = None
    base: Decimal | None = None  # a ratio line's reference amount, when the barème leaves it open
    first_subscription: bool = False
    year: int = 1
    on: date | None = None  # the day priced: the line must be available then

    @property
    def facts(self) -> Facts:
        return Facts(self.category, self.kind, self.population, self.workstations)


_OPTIONS = {"category": "--category", "kind": "--kind", "population": "--population",
            "workstations": "--workstations"}


@attrs.frozen
class Price:
    line: str
    amount: Decimal
    steps: tuple[str, ...]


def quote(line: PriceLine, request: PriceRequest, offer: Offer | None = None) -> Price:
    """Price one catalogue line for one request: who may buy it is checked first (and a fact
    needed to tell is asked for), then the shape computes, then the bounds apply.

    ``offer``: the terms of the offer the line belongs to (``[[offers]]``), whose eligibility
    and end apply to each of its lines too.
    """
    if offer is not None:
        _check_offer(offer, request)
    _check_eligible(line, request)
    raw, steps = SHAPE_FUNCTIONS[line.shape](line, request)
    raw = _bounded(raw, line, request, steps)
    multiplier = line.params.get("multiplier")
    if multiplier is not None and line.shape == "flat":
        factor = _param(line, "multiplier", request)
        raw *= factor
        steps.append(f"× {factor} (counted {_times(factor)})")
    if line.first_year_free and request.first_subscription and request.year == 1:
        raw = Decimal(0)
        steps.append("first year free for a first subscription → 0")
    amount = to_cents(raw)
    steps.append(f"= {amount} €" + (" TTC" if line.price_includes_vat else " HT"))
    return Price(line.id, amount, tuple(steps))


def commitment_total(line: PriceLine, request: PriceRequest) -> Decimal | None:
    """What a yearly line commits the body to over its ``commitment_years`` (« engagement 3 ans »).

    Each year is priced on its own, so a free first year is counted as free.
    ``None`` for a line without commitment.
    """
    if line.commitment_years is None or line.timing != "yearly":
        return None
    return sum(
        (quote(line, attrs.evolve(request, year=year)).amount
         for year in range(request.year, request.year + line.commitment_years)),
        Decimal("0.00"),
    )


def _times(factor: Decimal) -> str:
    return "double" if factor == 2 else f"{factor} times"


def _who(request: PriceRequest) -> str:
    return "member" if request.member else "non-member"


def _param(line: PriceLine, name: str, request: PriceRequest) -> Decimal:
    return _pick(line.params[name], line, name, request)


def _pick(split: Split, line: PriceLine, name: str, request: PriceRequest) -> Decimal:
    value = split.for_(request.member)
    if value is None:
        raise PricingError(f"line {line.id!r} has no {_who(request)} price ({name})")
    return value


def _optional(line: PriceLine, name: str, request: PriceRequest) -> Decimal | None:
    split = line.params.get(name)
    return None if split is None else split.for_(request.member)


def _need(value, line: PriceLine, what: str, option: str):
    if value is None:
        raise PricingError(f"line {line.id!r} is priced by {what}: give {option}")
    return value


def _check_offer(offer: Offer, request: PriceRequest) -> None:
    if request.on is not None and offer.ends_on is not None and request.on > offer.ends_on:
        raise PricingError(f"the offer {offer.id!r} ends on {offer.ends_on} (not open on "
                           f"{request.on})")
    _eligible(offer.eligibility, request, f"the offer {offer.id!r}")


def _eligible(eligibility: Eligibility, request: PriceRequest, what: str) -> None:
    try:
        eligibility.check(request.facts, what)
    except NotEligible as refusal:
        message = str(refusal)
        if refusal.missing:
            message = message.replace(f"give the {refusal.missing}",
                                      f"give {_OPTIONS[refusal.missing]}")
        raise PricingError(message) from None


def _check_eligible(line: PriceLine, request: PriceRequest) -> None:
    if line.offered_to == "members" and not request.member:
        raise PricingError(f"line {line.id!r} is offered to members only")
    if line.offered_to == "non_members" and request.member:
        raise PricingError(f"line {line.id!r} is offered to non-members only")
    if request.on is not None and not line.available_on(request.on):
        when = (f"from {line.available_from}" if line.available_from and
                request.on < line.available_from else f"until {line.available_until}")
        raise PricingError(f"line {line.id!r} is available {when} only (not on {request.on})")
    _eligible(line.eligibility, request, f"line {line.id!r}")


def _bounded(raw: Decimal, line: PriceLine, request: PriceRequest, steps: list[str]) -> Decimal:
    minimum = _optional(line, "minimum", request)
    maximum = _optional(line, "maximum", request)
    if minimum is not None and raw < minimum:
        steps.append(f"below the minimum → {minimum}")
        raw = minimum
    if maximum is not None and raw > maximum:
        steps.append(f"above the maximum → {maximum}")
        raw = maximum
    return raw


# One function per shape: (line, request) → (unrounded amount, steps)

def flat(line: PriceLine, request: PriceRequest) -> tuple[Decimal, list[str]]:
    amount = _param(line, "amount", request)
    return amount, [f"{_who(request)} price {amount}"]


def per_unit(line: PriceLine, request: PriceRequest) -> tuple[Decimal, list[str]]:
    unit_price = _param(line, "unit_price", request)
    what = line.quantity_basis or line.unit or "units"
    quantity = _need(request.quantity, line, f"quantity ({what})", "--quantity")
    raw = unit_price * quantity
    return raw, [f"{unit_price} × {quantity} {what} = {raw}"]


def per_inhabitant(line: PriceLine, request: PriceRequest) -> tuple[Decimal, list[str]]:
    rate = _param(line, "rate", request)
    population = _need(request.population, line, "population", "--population")
    raw = rate * population
    return raw, [f"{rate} × {population} inhabitants = {raw}"]


def population_bands(line: PriceLine, request: PriceRequest) -> tuple[Decimal, list[str]]:
    population = _need(request.population, line, "population band", "--population")
    for band in line.bands:
        if band.contains(population):
            fixed = _pick(band.amount, line, "amount", request) if band.amount else None
            if band.rate is None:
                return fixed, [f"band {band.describe()} inhabitants: {fixed}"]
            rate = _pick(band.rate, line, "rate", request)
            variable = rate * population * band.multiplier
            times = f" × {band.multiplier}" if band.multiplier != 1 else ""
            if fixed is None:
                return variable, [(f"band {band.describe()} inhabitants: {rate} × {population}"
                                   f"{times} = {variable}")]
            raw = fixed + variable
            return raw, [(f"band {band.describe()} inhabitants: {fixed} + {rate} × "
                          f"{population}{times} = {raw}")]
    raise PricingError(f"line {line.id!r} has no band for {population} inhabitants")


def graduated(line: PriceLine, request: PriceRequest) -> tuple[Decimal, list[str]]:
    quantity = _need(request.quantity, line, f"quantity ({line.unit or 'units'})", "--quantity")
    raw, steps, counted = Decimal(0), [], Decimal(0)
    for tier in line.tiers:
        top = quantity if tier.up_to is None else min(quantity, Decimal(tier.up_to))
        in_tier = top - counted
        if in_tier <= 0:
            break
        price = _pick(tier.unit_price, line, "unit_price", request)
        raw += price * in_tier
        steps.append(f"units {counted + 1}–{top}: {in_tier} × {price} = {price * in_tier}")
        counted = top
    if counted < quantity:
        raise PricingError(f"line {line.id!r} has no tier beyond {counted} units")
    steps.append(f"total {raw}")
    return raw, steps


def per_block(line: PriceLine, request: PriceRequest) -> tuple[Decimal, list[str]]:
    amount = _param(line, "amount", request)
    size = _param(line, "block_size", request)
    quantity = _need(request.quantity, line, f"started blocks of {size}", "--quantity")
    blocks = ceil(quantity / size)
    raw = amount * blocks
    return raw, [f"{quantity} {line.unit or 'units'} → {blocks} started block(s) of {size}",
                 f"{blocks} × {amount} = {raw}"]


def formula(line: PriceLine, request: PriceRequest) -> tuple[Decimal, list[str]]:
    fixed = _optional(line, "fixed", request) or Decimal(0)
    rate = _param(line, "rate", request)
    multiplier = _optional(line, "multiplier", request) or Decimal(1)
    discount = _optional(line, "discount_percent", request) or Decimal(0)
    population = _need(request.population, line, "population", "--population")
    base = fixed + rate * population
    raw = base * multiplier
    steps = [f"({fixed} + {rate} × {population}) × {multiplier} = {raw}"]
    if discount:
        raw = raw * (HUNDRED - discount) / HUNDRED
        steps.append(f"minus {discount} % = {raw}")
    return raw, steps


def supplier_markup(line: PriceLine, request: PriceRequest) -> tuple[Decimal, list[str]]:
    markup = _param(line, "markup_percent", request)
    supplier = _need(request.supplier_price, line, "supplier price plus markup", "--supplier-price")
    raw = supplier * (HUNDRED + markup) / HUNDRED
    return raw, [f"supplier price {supplier} + {markup} % = {raw}"]


def ratio(line: PriceLine, request: PriceRequest) -> tuple[Decimal, list[str]]:
    """A share of a reference amount: the base (what the smallest member pays) times the ratio
    the economic model gives this body (« 75 fois plus élevée que la plus petite »)."""
    base = _optional(line, "base", request)
    if base is None:
        base = _need(request.base, line, "a ratio of a reference amount the barème leaves to "
                     "the economic model", "--base")
    value = _need(request.ratio, line, "a ratio of the base amount", "--ratio")
    low, high = _optional(line, "ratio_min", request), _optional(line, "ratio_max", request)
    if low is not None and value < low or high is not None and value > high:
        raise PricingError(f"line {line.id!r}: the ratio must be between {low or 0} and "
                           f"{high if high is not None else 'any'} (got {value})")
    raw = base * value
    return raw, [f"{base} × ratio {value} = {raw}"]


def quoted(line: PriceLine, request: PriceRequest) -> tuple[Decimal, list[str]]:
    amount = _need(request.quoted_amount, line, "quotation (sur devis / sur étude)",
                   "the quoted amount that comes with the order")
    return amount, [f"quoted amount {amount}"]


SHAPE_FUNCTIONS: dict[str, Callable[[PriceLine, PriceRequest], tuple[Decimal, list[str]]]] = {
    "flat": flat,
    "per_unit": per_unit,
    "per_inhabitant": per_inhabitant,
    "population_bands": population_bands,
    "graduated": graduated,
    "per_block": per_block,
    "formula": formula,
    "supplier_markup": supplier_markup,
    "ratio": ratio,
    "quoted": quoted,
}
