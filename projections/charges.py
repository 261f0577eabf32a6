"""Charges derived from a subscription's facts (R3, R4, R5, R8).

The whole schedule of a contract is derived at once; "as of D" keeps the
charges dated on or before D. Each amount depends only on what had been
received by its charge date, so a charge never changes as D moves on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from decimal import Decimal
from operator import attrgetter
from typing import Any

import attrs

from ledger import rules
from ledger.dates import french_date
from ledger.money import format_amount, french_amount, to_cents
from ledger.subscription import Contract, Subscription
from ledger.tariffs import Schedule
from projections.history import Known, subscriptions_by_customer

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
    #: How the amount was computed, when asked for (``explain=True``): the rule and its
    #: sentence, the tariff line and its deliberation, the facts and the entries that recorded
    #: them, the computation with each number. Built here, by the code that computes.
    derivation: dict[str, Any] | None = attrs.field(default=None, eq=False, repr=False)

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


def _charge(key: str, customer: str, domain: str, order: str, kind: str, charge_date: date,
            period_start: date, period_end: date, amount: Decimal, rule: str, basis: str,
            fee: rules.Fee, basis_fr: str, contract: str,
            derivation: dict[str, Any] | None) -> Charge:
    """A charge priced by ``fee``, its fields passed by position in :class:`Charge`'s order (a
    replay makes one per charge of the ledger: 21 keywords cost more to match than the rest
    of the call; ``tests/test_projections.py`` checks the order against the keywords)."""
    return Charge(key, customer, domain, order, kind, charge_date, period_start, period_end,
                  amount, rule, basis, fee.schedule, fee.line, fee.label, fee.vat, fee.vat_reason,
                  basis_fr, contract, fee.budget, fee.vat_reason_code, derivation)


def _rule(rule: str) -> dict[str, str]:
    title, sentence = rules.RULES[rule]
    return {"id": rule, "title": title, "sentence": sentence}


def _tariff(fee: rules.Fee) -> dict[str, Any]:
    return {"schedule": fee.schedule, "line": fee.line, "label": fee.label,
            "amount": format_amount(fee.amount), "deliberation": fee.deliberation,
            "deliberation_date": fee.deliberation_date.isoformat()
            if fee.deliberation_date else None}


def _fact(text: str, day: date, entries: Mapping[str, int], key: str) -> dict[str, Any]:
    return {"fact": text, "business_date": day.isoformat(), "position": entries.get(key)}


def contract_charges(
    domain: str, contract: Contract, schedules: Sequence[Schedule], *,
    entries: Mapping[str, int] | None = None, explain: bool = False,
) -> list[Charge]:
    """Every charge one contract gives rise to, up to the contract end, priced by ``schedules``.

    ``explain``: give each charge its derivation; ``entries``: the log positions of the
    contract's facts (:attr:`Subscription.entries`), named in the derivation.
    """
    entries = entries or {}
    charges = []
    if contract.activated_on is not None:
        start, end = rules.access_fee_period(contract.activated_on, contract.ends_on)
        fee = rules.access_fee(schedules, contract.storage_gb, contract.received_on,
                               contract.facts)
        derivation = None
        if explain:
            derivation = {
                "amount": format_amount(fee.amount), "rule": _rule("R3"), "tariff": _tariff(fee),
                "facts": [
                    _fact(f"bon de commande {contract.order} reçu (palier de "
                          f"{contract.storage_gb} Go)", contract.received_on, entries, "order"),
                    _fact("service activé", contract.activated_on, entries, "activation")],
                "period": {"start": start.isoformat(), "end": end.isoformat(),
                           "why": "de l'activation à la fin du contrat (R3, R6)"},
                "computation": {"formula": "tarif", "operands": {"tarif": format_amount(fee.amount)},
                                "result": format_amount(fee.amount),
                                "text": f"tarif du palier de {contract.storage_gb} Go au "
                                        f"{french_date(contract.received_on)} (réception du bon "
                                        f"de commande) : {french_amount(fee.amount)}"},
            }
        charges.append(_charge(
            f"{domain}/{contract.order}/access", contract.customer, domain, contract.order,
            ACCESS_FEE, start, start, end, fee.amount, "R3",
            f"access fee, {contract.storage_gb} GB tier", fee,
            f"frais d'accès, palier de {contract.storage_gb} Go", contract.order, derivation))
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
                              storage_order.received_on, schedules, entries, explain)
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
    entries: Mapping[str, int],
    explain: bool,
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
        derivation = None
        if explain:
            # How the amount was computed, with each number: written only when asked for (a
            # full replay spent a fifth of its time on these texts and threw them away).
            if rule == "R4":
                computation = {
                    "formula": "tarif", "operands": {"tarif": format_amount(fee.amount)},
                    "result": format_amount(amount),
                    "text": f"tarif annuel du pack de {pack_gb} Go au "
                            f"{french_date(first)} : {french_amount(fee.amount)}"}
            else:
                computation = {
                    "formula": "tarif × jours couverts ÷ jours de la période",
                    "operands": {"tarif": format_amount(fee.amount), "jours_couverts": covered,
                                 "jours_periode": full},
                    "unrounded": str(fee.amount * covered / full),
                    "result": format_amount(amount),
                    "text": f"{french_amount(fee.amount)} × {covered} ÷ {full} = "
                            f"{fee.amount * covered / full:.6f} €".replace(".", ",")
                            + ", arrondi au centime (au demi supérieur) : "
                            f"{french_amount(amount)}"}
            facts = [_fact(f"bon de commande {order} reçu ({pack_gb} Go supplémentaires)",
                           received_on, entries, f"storage:{order}")]
            why = "12 mois à partir du 1er du mois suivant la réception, renouvelés (R4, R6)"
            if known_end is not None:
                facts.append(_fact("demande de résiliation reçue",
                                   contract.termination_received_on, entries, "termination"))
                notice = rules.notice_start(contract.termination_received_on)
                minimum = rules.minimum_term_end(contract.activated_on)
                why += (f" ; fin de service le {french_date(known_end)} (R7 : préavis à partir "
                        f"du {french_date(notice)}, durée minimale jusqu'au "
                        f"{french_date(minimum)})")
            elif charged_last != last:
                why += f" ; fin du contrat le {french_date(contract.ends_on)} (R6)"
            if known_end is None and contract.termination_received_on is not None:
                facts.append(_fact("demande de résiliation reçue",
                                   contract.termination_received_on, entries, "termination"))
                why += (f" ; la demande de résiliation, reçue le "
                        f"{french_date(contract.termination_received_on)}, après le début de "
                        "la période : période due en entier (R8)")
            derivation = {"amount": format_amount(amount), "rule": _rule(rule),
                          "also": [_rule("R7")] if known_end is not None else
                          [_rule("R8")] if contract.termination_received_on is not None else [],
                          "tariff": _tariff(fee), "facts": facts,
                          "period": {"start": first.isoformat(), "end": charged_last.isoformat(),
                                     "full_end": last.isoformat(), "why": why},
                          "computation": computation}
        yield _charge(f"{domain}/{reference}/pack-{index}/{first.isoformat()}",
                      contract.customer, domain, order, EXTRA_STORAGE, first, first, charged_last,
                      amount, rule, basis, fee, basis_fr, contract.order, derivation)


def subscription_charges(subscription: Subscription, schedules: Sequence[Schedule], *,
                         explain: bool = False) -> list[Charge]:
    entries = getattr(subscription, "entries", [])
    return [
        charge
        for index, contract in enumerate(subscription.contracts)
        for charge in contract_charges(
            subscription.domain, contract, schedules, explain=explain,
            entries=entries[index] if index < len(entries) else None)
    ]


#: The order charges are listed in: customer, domain, date, kind (a tuple made in C: sorting
#: every charge of the ledger calls it once per charge).
_order = attrgetter("customer", "domain", "charge_date", "kind", "order", "period_end", "basis")


def charges_as_of(known: Known, as_of: date, customer: str | None = None, *,
                  explain: bool = False) -> list[Charge]:
    """Charges dated on or before ``as_of``, in a stable order (customer, domain, date, kind);
    with ``explain``, each with its derivation."""
    selected = [
        charge
        for subscription in known.subscriptions
        for charge in subscription_charges(subscription, known.schedules, explain=explain)
        if charge.charge_date <= as_of and (customer is None or charge.customer == customer)
    ]
    return sorted(selected, key=_order)


def iter_charges_as_of(app, upto: int, as_of: date, schedules: Sequence[Schedule],
                       on_subscription=None, batch: int = 2000) -> Iterator[Charge]:
    """Every charge dated on or before ``as_of``, in the order of :func:`charges_as_of`, one
    batch of customers at a time (:func:`projections.history.subscriptions_by_customer`):
    the same list, in memory that does not grow with the ledger."""
    for customers, subscriptions in subscriptions_by_customer(
            app, upto, batch=batch, on_subscription=on_subscription):
        yield from sorted((charge for subscription in subscriptions
                           for charge in subscription_charges(subscription, schedules)
                           if charge.charge_date <= as_of and charge.customer in customers),
                          key=_order)


def total(charges: Iterable[Charge]) -> Decimal:
    return sum((c.amount for c in charges), Decimal("0.00"))
