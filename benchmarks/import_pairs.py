"""``ledger import``, compared between versions of the code, in alternation.

    python -m benchmarks.import_pairs --subscriptions 13569 --pairs 4 NAME=CHECKOUT …

Writes one file of commands for ``--subscriptions`` subscriptions (the generator of
benchmarks/run.py: 13 569 give the 100 k events of ``--quick``'s larger size) and a seed store
with the operator and its barèmes; then, ``--pairs`` rounds, imports the file into a fresh copy
of the seed with each checkout's code in turn, each in a fresh process started in its
checkout. Prints and writes to benchmarks/results/ the seconds, events and peak memory (VmHWM)
of each run, and each round's time ÷ the first version's. SQLite only: the import's own work
is what is compared, not a server's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from benchmarks.generate import write
from benchmarks.run import machine, new_result, set_up

RUN = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from eventstore.app import open_store
from commands.importer import import_file
app = open_store(sys.argv[2])
started = time.perf_counter()
report = import_file(app, sys.argv[3], by="benchmark")
seconds = time.perf_counter() - started
app.close()
status = Path("/proc/self/status").read_text().splitlines()
peak = int(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
import commands.importer as module
assert module.__file__.startswith(sys.argv[1]), module.__file__
print(seconds, report.events, peak)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=13_569)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("versions", nargs="+", help="NAME=CHECKOUT (a folder with the code)")
    args = parser.parse_args()
    versions = [v.split("=", 1) for v in args.versions]
    runs: dict[str, list[dict]] = {name: [] for name, _ in versions}
    with tempfile.TemporaryDirectory(prefix="import-pairs-") as folder:
        commands = Path(folder) / "commands.jsonl"
        lines = write(commands, args.subscriptions, seed=0, prefix="b0")
        seed = Path(folder) / "seed.sqlite3"
        from eventstore.app import open_store

        app = open_store(str(seed))
        set_up(app)
        app.close()
        print(f"{lines} commands", file=sys.stderr, flush=True)
        for round_ in range(args.pairs):
            for name, checkout in versions:
                copy = Path(folder) / f"copy-{name}.sqlite3"
                shutil.copyfile(seed, copy)
                out = subprocess.run([sys.executable, "-c", RUN, checkout, str(copy),
                                      str(commands)], check=True, capture_output=True,
                                     text=True, cwd=checkout).stdout
                seconds, events, peak = out.split()
                runs[name].append({"seconds": round(float(seconds), 3), "events": int(events),
                                   "peak_kib": int(peak)})
                print(f"round {round_ + 1} {name}: {float(seconds):.2f} s, {events} events, "
                      f"{int(peak) // 1024} MB", file=sys.stderr, flush=True)
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{copy}{suffix}").unlink(missing_ok=True)
    first = versions[0][0]
    summary = {}
    for name, _ in versions:
        times = [run["seconds"] for run in runs[name]]
        ratios = sorted(run["seconds"] / base["seconds"]
                        for run, base in zip(runs[name], runs[first], strict=True))
        summary[name] = {"seconds": [min(times), statistics.median(times), max(times)],
                         f"times_{first}": [round(ratios[0], 3),
                                            round(statistics.median(ratios), 3),
                                            round(ratios[-1], 3)]}
        print(name, summary[name], file=sys.stderr)
    result = {"date": date.today().isoformat(), "subscriptions": args.subscriptions,
              "commands": lines, "pairs": args.pairs, "machine": machine(None),
              "versions": dict(versions), "summary": summary, "runs": runs}
    out = new_result(f"{date.today()}-import-pairs-{args.subscriptions}")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
