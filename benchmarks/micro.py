"""Per-call costs behind the import's and the replay's changes: the library's way and ours.

    python -m benchmarks.micro [--repeat 7]

Times, in this process (best of ``--repeat`` rounds of many calls each, the calls alternated
within a round, in µs per call):
- a command receipt made by calling the class (the library's construction) and by
  ``CommandReceipt.applied``;
- a subscription made by calling the class and by ``Subscription.open``;
- a subscription made, then activated through the library's ``@event`` method, or through
  ``Fold.record`` (what ``Subscription.activate`` does after its checks);
- reading a generated command line with the standard parser (duplicated keys refused) and with
  the importer's reading (``commands.messages._json_object``);
- a charge (21 fields) made with keywords and by position (``projections.charges._charge``),
  and a contract changed by ``attrs.evolve``, with its fields by keyword (``_replace_last``
  before ``e978d66``) and by ``ledger.subscription._replace_last``.
Writes the figures to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import timeit
from datetime import date
from decimal import Decimal
from pathlib import Path

from benchmarks.generate import write
from benchmarks.run import machine, new_result


def _best(calls: dict[str, tuple], repeat: int) -> dict[str, float]:
    """µs per call of each ``(function, calls per run, items per call)``: the best of
    ``repeat`` rounds, the calls alternated within each round (this machine's load comes in
    bursts of seconds: timing one call ``repeat`` times, then the next, compared a quiet
    moment with a loaded one)."""
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeat):
        for name, (call, number, items) in calls.items():
            best[name] = min(best[name], timeit.timeit(call, number=number) / number / items)
    return {name: round(seconds * 1e6, 2) for name, seconds in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    import attrs

    from commands.messages import _json_object, _no_duplicates, _refuse_constant
    from ledger.receipt import CommandReceipt
    from ledger.rules import Fee
    from ledger.subscription import (
        _CONTRACT_FIELDS,
        _FOLD,
        Contract,
        Subscription,
        _contract_values,
        _replace_last,
    )
    from projections.charges import Charge, _charge

    contract = (Contract("BC-1", "c", 25, date(2026, 1, 1), date(2026, 1, 2)),)

    def with_contract(subscription):
        subscription.contracts = contract
        return subscription

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "commands.jsonl"
        write(path, 1000, seed=0, prefix="b0")
        lines = path.read_text(encoding="utf-8").splitlines()

    def standard():
        for line in lines:
            json.loads(line, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)

    def ours():
        for line in lines:
            _json_object(line)

    n, r = 20_000, args.repeat
    fee = Fee(amount=Decimal("60.00"), schedule="s", line="l", label="pack")
    day, end = date(2027, 1, 1), date(2027, 12, 31)

    def by_keywords():  # as contract_charges made a charge before e978d66
        return Charge(
            key="a.fr/BC-1/pack-1/2027-01-01", customer="c", domain="a.fr", order="BC-1",
            kind="extra_storage", charge_date=day, period_start=day, period_end=end,
            amount=fee.amount, rule="R4", basis="10 GB pack, 12 months",
            schedule=fee.schedule, line=fee.line, label=fee.label, vat=fee.vat,
            vat_reason=fee.vat_reason, basis_fr="pack de 10 Go, 12 mois", contract="BC-1",
            budget=fee.budget, vat_reason_code=fee.vat_reason_code, derivation=None)
    figures = _best({
        "receipt, library (µs)": (lambda: CommandReceipt(
            command_id="c-1", digest="d", command_type="t"), n, 1),
        "receipt, CommandReceipt.applied (µs)": (
            lambda: CommandReceipt.applied("c-1", "d", "t"), n, 1),
        "subscription, library (µs)": (lambda: Subscription(domain="a.fr"), n, 1),
        "subscription, Subscription.open (µs)": (lambda: Subscription.open("a.fr"), n, 1),
        "subscription and its activation, library (µs)": (
            lambda: with_contract(Subscription(domain="a.fr"))._activated(
                activated_on=date(2026, 2, 1)), n, 1),
        "subscription and its activation, Fold.record (µs)": (
            lambda: _FOLD.record(with_contract(Subscription.open("a.fr")), "ServiceActivated",
                                 {"activated_on": date(2026, 2, 1)}), n, 1),
        "a command line, standard parser (µs)": (standard, 5, len(lines)),
        "a command line, the importer's reading (µs)": (ours, 5, len(lines)),
        "a charge, keywords (µs)": (by_keywords, n, 1),
        "a charge, by position (µs)": (lambda: _charge(
            "a.fr/BC-1/pack-1/2027-01-01", "c", "a.fr", "BC-1", "extra_storage", day, day, end,
            fee.amount, "R4", "10 GB pack, 12 months", fee, "pack de 10 Go, 12 mois", "BC-1",
            None), n, 1),
        "a contract activated, attrs.evolve (µs)": (
            lambda: attrs.evolve(contract[-1], activated_on=day), n, 1),
        "a contract activated, its fields by keyword (µs)": (
            lambda: Contract(**{**dict(zip(_CONTRACT_FIELDS, _contract_values(contract[-1]))),
                                "activated_on": day}), n, 1),
        "a contract activated, _replace_last (µs)": (
            lambda: _replace_last(contract, activated_on=day), n, 1),
    }, r)
    for name, value in figures.items():
        print(f"{name:52s} {value:8.2f}", file=sys.stderr)
    out = new_result(f"{date.today()}-micro")
    out.write_text(json.dumps({"date": date.today().isoformat(), "repeat": r,
                               "machine": machine(None), "figures": figures}, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
