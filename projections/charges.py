"""Charges derived from a subscription's facts (R3, R4, R5, R8).

The whole schedule of a contract is derived at once; "as of D" keeps the
charges dated on or before D. Each amount depends only on what had been
received by its charge date, so a charge never changes as D moves on.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

import attrs

from ledger import rules
from ledger.money import format_amount, to_cents
from ledger.subscription import Contract, Subscription

ACCESS_FEE = "access_fee"
EXTRA_STORAGE = "extra_storage"


@attrs.frozen
class Charge:
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
        }


def contract_charges(domain: str, contract: Contract) -> list[Charge]:
    """Every charge one contract gives rise to, up to the contract end."""
    charges = []
    if contract.activated_on is not None:
        start, end = rules.access_fee_period(contract.activated_on)
        charges.append(
            Charge(
                customer=contract.customer,
                domain=domain,
                order=contract.order,
                kind=ACCESS_FEE,
                charge_date=start,
                period_start=start,
                period_end=end,
                amount=to_cents(rules.access_fee(contract.storage_gb)),
                rule="R3",
                basis=f"access fee, {contract.storage_gb} GB tier",
            )
        )
    for storage_order in contract.storage_orders:
        for pack_gb in storage_order.packs:
            charges.extend(
                _pack_charges(domain, contract, storage_order.order, pack_gb,
                              storage_order.received_on)
            )
    return charges


def _pack_charges(
    domain: str, contract: Contract, order: str, pack_gb: int, received_on: date
) -> Iterable[Charge]:
    fee = rules.pack_fee(pack_gb)
    for first, last in rules.yearly_periods(rules.billing_start(received_on)):
        known_end = (
            contract.service_end
            if rules.termination_known(contract.termination_received_on, first)
            else None
        )
        if known_end is not None and first > known_end:
            return  # R5: a period that would start after the end of service is not charged
        charged_last = rules.charged_end(last, known_end)
        if charged_last == last:
            amount, rule, basis = to_cents(fee), "R4", f"{pack_gb} GB pack, 12 months"
        else:
            amount = rules.prorated(fee, first, charged_last, last)
            covered = (charged_last - first).days + 1
            full = (last - first).days + 1
            rule, basis = "R5", f"{pack_gb} GB pack, {fee} € × {covered}/{full} days"
        yield Charge(
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
        )


def subscription_charges(subscription: Subscription) -> list[Charge]:
    return [
        charge
        for contract in subscription.contracts
        for charge in contract_charges(subscription.domain, contract)
    ]


def _order(charge: Charge) -> tuple[Any, ...]:
    return (charge.customer, charge.domain, charge.charge_date, charge.kind,
            charge.order, charge.period_end, charge.basis)


def charges_as_of(
    subscriptions: Iterable[Subscription | None],
    as_of: date,
    customer: str | None = None,
) -> list[Charge]:
    """Charges dated on or before ``as_of``, in a stable order (customer, domain, date, kind)."""
    selected = [
        charge
        for subscription in subscriptions
        if subscription is not None
        for charge in subscription_charges(subscription)
        if charge.charge_date <= as_of and (customer is None or charge.customer == customer)
    ]
    return sorted(selected, key=_order)


def total(charges: Iterable[Charge]) -> Decimal:
    return sum((c.amount for c in charges), Decimal("0.00"))
