"""``audit verify``, compared between versions of the code on one billed store, in alternation.

    python -m benchmarks.verify_pairs --store BILLED.sqlite3 --pairs 2 NAME=CHECKOUT …

The store is one the benchmarks built and billed (``benchmarks.bill_pairs --keep`` keeps the
unbilled one; bill a copy of it first). Each version's ``verify_ledger`` runs on it in a fresh
process, round after round; prints and writes to benchmarks/results/ the seconds, documents
checked, whether the ledger verified, and the peak memory (VmHWM) of each run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

from benchmarks.run import machine, new_result

ROOT = Path(__file__).resolve().parent.parent

RUN = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from eventstore.app import open_store
from commands.audit_verify import verify_ledger
import commands.audit_verify as module
assert module.__file__.startswith(sys.argv[1]), module.__file__
app = open_store(sys.argv[2], sys.argv[3] or None)
started = time.perf_counter()
report = verify_ledger(app)
seconds = time.perf_counter() - started
status = Path("/proc/self/status").read_text().splitlines()
peak = int(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
print(seconds, report.documents, int(report.ok), peak)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--operator", default="", help="the operator's schema (PostgreSQL)")
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("versions", nargs="+", help="NAME=CHECKOUT (a folder with the code)")
    args = parser.parse_args()
    versions = [v.split("=", 1) for v in args.versions]
    runs: dict[str, list[dict]] = {name: [] for name, _ in versions}
    for round_ in range(args.pairs):
        for name, checkout in versions:
            out = subprocess.run([sys.executable, "-c", RUN, checkout, args.store,
                                  args.operator], check=True,
                                 capture_output=True, text=True, cwd=checkout).stdout
            seconds, documents, ok, peak = out.split()
            runs[name].append({"seconds": round(float(seconds), 2), "documents": int(documents),
                               "ok": ok == "1", "peak_kib": int(peak)})
            print(f"round {round_ + 1} {name}: {float(seconds):.1f} s, {documents} documents, "
                  f"ok={ok == '1'}, {int(peak) // 1024} MB", file=sys.stderr, flush=True)
    from eventstore.app import open_store

    app = open_store(args.store, args.operator or None)
    events = app.position()
    app.close()
    result = {"date": date.today().isoformat(), "events": events, "pairs": args.pairs,
              "machine": machine(None), "versions": dict(versions), "runs": runs}
    kind = "-postgresql" if args.operator else ""
    out = new_result(f"{date.today()}-verify-pairs{kind}-{events}")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
