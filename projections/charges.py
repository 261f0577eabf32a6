"""Charges derived from a subscription's facts (R3, R4, R5, R8).

The whole schedule of a contract is derived at once; "as of D" keeps the
charges dated on or before D. Each amount depends only on what had been
received by its charge date, so a charge never changes as D moves on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import attrs

from ledger import rules
from ledger.dates import french_date
from ledger.money import format_amount, french_amount, to_cents
from ledger.subscription import Contract, Subscription
from ledger.tariffs import Schedule
from projections.history import Known

ACCESS_FEE = "access_fee"
EXTRA_STORAGE = "extra_storage"


@attrs.frozen
class Charge:
    """One amount due. ``key`` identifies it across replays: what an invoice line refers to."""

    key: str
    customer: str
    domain: str
    order: str
    kind: str
    charge_date: date
    period_start: date
    period_end: date
    amount: Decimal
    rule: str
    basis: str
    schedule: str
    line: str
    label: str = ""
    vat: str = "outside_scope"
    vat_reason: str | None = None
    #: How it was computed, in French, as printed on the invoice (``basis`` is for staff).
    basis_fr: str = ""
    #: The contract's order form (a pack has its own order form too: ``order``).
    contract: str = ""
    budget: str = "fonctionnement"
    vat_reason_code: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "customer": self.customer,
            "domain": self.domain,
            "order": self.order,
            "kind": self.kind,
            "charge_date": self.charge_date.isoformat(),
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "amount": format_amount(self.amount),
            "rule": self.rule,
            "basis": self.basis,
            "schedule": self.schedule,
            "line": self.line,
        }


def contract_charges(
    domain: str, contract: Contract, schedules: Sequence[Schedule]
) -> list[Charge]:
    """Every charge one contract gives rise to, up to the contract end, priced by ``schedules``."""
    charges = []
    if contract.activated_on is not None:
        start, end = rules.access_fee_period(contract.activated_on, contract.ends_on)
        fee = rules.access_fee(schedules, contract.storage_gb, contract.received_on,
                               contract.facts)
        charges.append(
            Charge(
                key=f"{domain}/{contract.order}/access",
                customer=contract.customer,
                domain=domain,
                order=contract.order,
                kind=ACCESS_FEE,
                charge_date=start,
                period_start=start,
                period_end=end,
                amount=fee.amount,
                rule="R3",
                basis=f"access fee, {contract.storage_gb} GB tier",
                schedule=fee.schedule,
                line=fee.line,
                label=fee.label,
                vat=fee.vat,
                vat_reason=fee.vat_reason,
                basis_fr=f"frais d'accès, palier de {contract.storage_gb} Go",
                contract=contract.order,
                budget=fee.budget,
                vat_reason_code=fee.vat_reason_code,
            )
        )
    seen: dict[str, int] = {}
    for storage_order in contract.storage_orders:
        # A reference recorded twice (possible before references were checked) must not give
        # two charges one key: the second occurrence is told apart, in recording order.
        seen[storage_order.order] = seen.get(storage_order.order, 0) + 1
        reference = storage_order.order if seen[storage_order.order] == 1 \
            else f"{storage_order.order}#{seen[storage_order.order]}"
        for index, pack_gb in enumerate(storage_order.packs, start=1):
            charges.extend(
                _pack_charges(domain, contract, reference, storage_order.order, index, pack_gb,
                              storage_order.received_on, schedules)
            )
    return charges


def _pack_charges(
    domain: str,
    contract: Contract,
    reference: str,
    order: str,
    index: int,
    pack_gb: int,
    received_on: date,
    schedules: Sequence[Schedule],
) -> Iterable[Charge]:
    for first, last in rules.yearly_periods(rules.billing_start(received_on), contract.ends_on):
        known_end = (
            contract.service_end
            if rules.termination_known(contract.termination_received_on, first)
            else None
        )
        if known_end is not None and first > known_end:
            return  # R5: a period that would start after the end of service is not charged
        fee = rules.pack_fee(schedules, pack_gb, first, contract.facts)
        charged_last = rules.charged_end(last, known_end, contract.ends_on)
        if charged_last == last:
            amount, rule, basis = to_cents(fee.amount), "R4", f"{pack_gb} GB pack, 12 months"
            basis_fr = f"pack de {pack_gb} Go, 12 mois"
        else:
            amount = rules.prorated(fee.amount, first, charged_last, last)
            covered = (charged_last - first).days + 1
            full = (last - first).days + 1
            rule, basis = "R5", f"{pack_gb} GB pack, {fee.amount} € × {covered}/{full} days"
            basis_fr = (f"pack de {pack_gb} Go, {french_amount(fee.amount)} × {covered}/{full} "
                        f"jours (service jusqu'au {french_date(charged_last)})")
        yield Charge(
            key=f"{domain}/{reference}/pack-{index}/{first.isoformat()}",
            customer=contract.customer,
            domain=domain,
            order=order,
            kind=EXTRA_STORAGE,
            charge_date=first,
            period_start=first,
            period_end=charged_last,
            amount=amount,
            rule=rule,
            basis=basis,
            schedule=fee.schedule,
            line=fee.line,
            label=fee.label,
            vat=fee.vat,
            vat_reason=fee.vat_reason,
            basis_fr=basis_fr,
            contract=contract.order,
            budget=fee.budget,
            vat_reason_code=fee.vat_reason_code,
        )


def subscription_charges(subscription: Subscription, schedules: Sequence[Schedule]) -> list[Charge]:
    return [
        charge
        for contract in subscription.contracts
        for charge in contract_charges(subscription.domain, contract, schedules)
    ]


def _order(charge: Charge) -> tuple[Any, ...]:
    return (charge.customer, charge.domain, charge.charge_date, charge.kind,
            charge.order, charge.period_end, charge.basis)


def charges_as_of(known: Known, as_of: date, customer: str | None = None) -> list[Charge]:
    """Charges dated on or before ``as_of``, in a stable order (customer, domain, date, kind)."""
    selected = [
        charge
        for subscription in known.subscriptions
        for charge in subscription_charges(subscription, known.schedules)
        if charge.charge_date <= as_of and (customer is None or charge.customer == customer)
    ]
    return sorted(selected, key=_order)


def total(charges: Iterable[Charge]) -> Decimal:
    return sum((c.amount for c in charges), Decimal("0.00"))
