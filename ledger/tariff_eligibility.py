"""Who may buy what, as a catalogue says it: a line's or an offer's ``eligibility`` (conditions on
the member's category, population and workstations, any of which may hold) and the catalogue's
``[[offers]]``, read strictly like the rest of a catalogue (:mod:`ledger.tariff_parser`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.categories import valid_selector
from ledger.tariff_values import (
    Fail,
    failer,
    failer_prefix,
    optional_date,
    optional_int,
    required_text,
)
from ledger.tariffs import (
    Condition,
    Eligibility,
    Offer,
)

CONDITION_KEYS = frozenset({"categories", "population_min", "population_max",
                             "workstations_min", "workstations_max"})


def parse_condition(raw: Any, fail: Fail, where: str) -> Condition:
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
    bounds = {key: optional_int(raw, key, failer_prefix(fail, f"{where}."))
              for key in sorted(CONDITION_KEYS - {"categories"})}
    for fact in ("population", "workstations"):
        low, high = bounds[f"{fact}_min"], bounds[f"{fact}_max"]
        if low is not None and high is not None and low > high:
            fail(f"{where}: {fact}_min {low} is above {fact}_max {high}")
    return Condition(tuple(categories), **bounds)


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
        return Eligibility(tuple(parse_condition(c, fail, f"eligibility.any_of #{n}")
                                 for n, c in enumerate(options, start=1)))
    return Eligibility((parse_condition(raw, fail, "eligibility"),))


def parse_offers(raw: Any, source: str) -> list[Offer]:
    fail = failer(source, None)
    if not isinstance(raw, list):
        fail("offers must be [[offers]] tables")
    offers = []
    for n, item in enumerate(raw, start=1):
        if not isinstance(item, Mapping):
            fail(f"offer #{n} is not a table")
        unknown = sorted(set(item) - {"id", "label", "ends_on", "eligibility"})
        if unknown:
            fail(f"offer #{n}: unknown key(s) {', '.join(unknown)}")
        offer_id = required_text(item, "id", failer(source, None, f"offer #{n}: "))
        offer_fail = failer(source, None, f"offer {offer_id!r}: ")
        offers.append(Offer(offer_id, str(item.get("label", "")),
                            optional_date(item, "ends_on", offer_fail),
                            parse_eligibility(item.get("eligibility"), offer_fail)))
    return offers
