"""Per-call costs behind the import's changes: the library's way against the ledger's.

    python -m benchmarks.micro [--repeat 7]

Times, in this process (best of ``--repeat`` runs of many calls each, in µs per call):
- a command receipt made by calling the class (the library's construction) and by
  ``CommandReceipt.applied``;
- a subscription made by calling the class and by ``Subscription.open``;
- a subscription made, then activated through the library's ``@event`` method, or through
  ``Fold.record`` (what ``Subscription.activate`` does after its checks);
- reading a generated command line with the standard parser (duplicated keys refused) and with
  the importer's reading (``commands.messages._json_object``).
Writes the figures to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import timeit
from datetime import date
from pathlib import Path

from benchmarks.generate import write
from benchmarks.run import machine, new_result


def _best(call, number: int, repeat: int) -> float:
    return round(min(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e6, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    from commands.messages import _json_object, _no_duplicates, _refuse_constant
    from ledger.receipt import CommandReceipt
    from ledger.subscription import _FOLD, Contract, Subscription

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
    figures = {
        "receipt, library (µs)": _best(lambda: CommandReceipt(
            command_id="c-1", digest="d", command_type="t"), n, r),
        "receipt, CommandReceipt.applied (µs)": _best(
            lambda: CommandReceipt.applied("c-1", "d", "t"), n, r),
        "subscription, library (µs)": _best(lambda: Subscription(domain="a.fr"), n, r),
        "subscription, Subscription.open (µs)": _best(lambda: Subscription.open("a.fr"), n, r),
        "subscription and its activation, library (µs)": _best(
            lambda: with_contract(Subscription(domain="a.fr"))._activated(
                activated_on=date(2026, 2, 1)), n, r),
        "subscription and its activation, Fold.record (µs)": _best(
            lambda: _FOLD.record(with_contract(Subscription.open("a.fr")), "ServiceActivated",
                                 {"activated_on": date(2026, 2, 1)}), n, r),
        "a command line, standard parser (µs)": round(
            _best(standard, 5, r) / len(lines), 2),
        "a command line, the importer's reading (µs)": round(_best(ours, 5, r) / len(lines), 2),
    }
    for name, value in figures.items():
        print(f"{name:52s} {value:8.2f}", file=sys.stderr)
    out = new_result(f"{date.today()}-micro")
    out.write_text(json.dumps({"date": date.today().isoformat(), "repeat": r,
                               "machine": machine(None), "figures": figures}, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
