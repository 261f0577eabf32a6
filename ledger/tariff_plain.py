"""The normalised form of a schedule: what an adoption records (:func:`to_plain`), read back at
replay without validation (:func:`from_plain`), so that a later, stricter parser never makes
an adopted schedule unreadable."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import attrs

from ledger.tariffs import Band, Condition, Eligibility, Offer, PriceLine, Schedule, Split, Tier

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
