"""Billing, compared between versions of the code on copies of one store, in alternation.

    python -m benchmarks.bill_pairs --events 100000 --pairs 3 NAME=CHECKOUT …

Builds a store of about ``--events`` events (the generator of benchmarks/run.py), then runs
``ledger bill``'s service (``keep_documents=False``, as the CLI does) on a fresh copy of it with
each checkout's code in turn, in a fresh process, ``--pairs`` rounds; prints and writes to
benchmarks/results/ the seconds, documents and peak memory (VmHWM) of each run. With
``--again``, each copy has been billed once already and the next month's run is measured.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from benchmarks.build_store import build
from benchmarks.run import machine, new_result

ROOT = Path(__file__).resolve().parent.parent

RUN = """
import sys, time
from datetime import date
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from eventstore.app import open_store
from commands.billing import bill
app = open_store(sys.argv[2])
started = time.perf_counter()
through, issued = (date(2029, 1, 31), date(2029, 2, 5)) if sys.argv[3] == "again" else \
    (date(2028, 12, 31), date(2029, 1, 5))
report = bill(app, through, issued, by="benchmark", keep_documents=False)
seconds = time.perf_counter() - started
status = Path("/proc/self/status").read_text().splitlines()
peak = int(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
import commands.billing as module
assert module.__file__.startswith(sys.argv[1]), module.__file__
print(seconds, report.count, peak)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--keep", help="keep the built store at this path, or reuse it")
    parser.add_argument("--again", action="store_true",
                        help="bill each copy once (not measured), then measure the next "
                             "month's run: what a ledger that has invoiced before does")
    parser.add_argument("versions", nargs="+", help="NAME=CHECKOUT (a folder with the code)")
    args = parser.parse_args()
    versions = [v.split("=", 1) for v in args.versions]
    with tempfile.TemporaryDirectory(prefix="bill-pairs-") as folder:
        seed = Path(args.keep) if args.keep else Path(folder) / "seed.sqlite3"
        if not seed.exists():
            from eventstore.app import open_store

            app = open_store(str(seed))
            build(app, args.events)
            print(f"store: {app.position()} events", file=sys.stderr, flush=True)
            app.close()
        runs: dict[str, list[dict]] = {name: [] for name, _ in versions}
        for round_ in range(args.pairs):
            for name, checkout in versions:
                copy = Path(folder) / f"copy-{name}.sqlite3"
                if args.again:
                    prepared = Path(folder) / "billed.sqlite3"
                    if not prepared.exists():  # billed once, by the first version
                        shutil.copyfile(seed, prepared)
                        subprocess.run([sys.executable, "-c", RUN, checkout, str(prepared),
                                        "first"], check=True, capture_output=True, cwd=checkout)
                    shutil.copyfile(prepared, copy)
                else:
                    shutil.copyfile(seed, copy)
                out = subprocess.run([sys.executable, "-c", RUN, checkout, str(copy),
                                      "again" if args.again else "first"],
                                     check=True, capture_output=True, text=True,
                                     cwd=checkout).stdout
                seconds, count, peak = out.split()
                runs[name].append({"seconds": round(float(seconds), 2), "documents": int(count),
                                   "peak_kib": int(peak)})
                print(f"round {round_ + 1} {name}: {float(seconds):.1f} s, {count} documents, "
                      f"{int(peak) // 1024} MB", file=sys.stderr, flush=True)
                copy.unlink()
    result = {"date": date.today().isoformat(), "events": args.events, "pairs": args.pairs,
              "run": "the next month's, after a first run" if args.again else "the first",
              "machine": machine(None), "versions": dict(versions), "runs": runs}
    out = new_result(f"{date.today()}-bill-pairs-{args.events}{'-again' if args.again else ''}")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
