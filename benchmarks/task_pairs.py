"""One task of ``benchmarks/tasks.py``, compared between versions of the code on one store.

    python -m benchmarks.task_pairs charges_all --store STORE --pairs 2 NAME=CHECKOUT …
    python -m benchmarks.task_pairs verify --baseline read_decode_all --store STORE now=CHECKOUT

Each version runs the task (``python -m benchmarks.tasks TASK STORE``) in a fresh process
started in its checkout, so that the checkout's code is the one imported; versions alternate
round after round. Prints each run and writes every run's output (seconds, peak memory as
VmHWM, what the task counted) to benchmarks/results/. The task must not write to the store.
With ``--baseline TASK``, that task (the floor the measure is compared to) runs after each
version's run, in the same checkout, and each round's ratio baseline ÷ measure is reported.
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
READ_ONLY = ("charges_all", "charges_floor", "forecast", "replay", "read_decode_subscriptions",
             "read_decode_all", "verify")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=READ_ONLY)
    parser.add_argument("--store", required=True)
    parser.add_argument("--operator", default="", help="the operator's schema (PostgreSQL)")
    parser.add_argument("--baseline", choices=READ_ONLY, help="a floor to alternate with")
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("versions", nargs="+", help="NAME=CHECKOUT (a folder with the code)")
    args = parser.parse_args()
    versions = [v.split("=", 1) for v in args.versions]
    runs: dict[str, list[dict]] = {name: [] for name, _ in versions}

    def run(task: str, checkout: str) -> dict:
        out = subprocess.run([sys.executable, "-m", "benchmarks.tasks", task, args.store,
                              args.operator], check=True, capture_output=True, text=True,
                             cwd=checkout).stdout
        return json.loads(out)

    for round_ in range(args.pairs):
        for name, checkout in versions:
            result = run(args.task, checkout)
            line = f"round {round_ + 1} {name}: {result['seconds']:.2f} s, " \
                   f"{result['peak_kib'] // 1024} MB"
            if args.baseline:
                floor = run(args.baseline, checkout)
                result["baseline"] = floor
                result["ratio"] = round(floor["seconds"] / result["seconds"], 3)
                line += f"; {args.baseline} {floor['seconds']:.2f} s, ratio {result['ratio']}"
            runs[name].append(result)
            print(line, file=sys.stderr, flush=True)
    from eventstore.app import open_store

    app = open_store(args.store, args.operator or None)
    events = app.position()
    app.close()
    kind = "postgresql" if args.operator else "sqlite"
    result = {"date": date.today().isoformat(), "task": args.task, "store": kind,
              "baseline": args.baseline, "events": events,
              "pairs": args.pairs, "machine": machine(None), "versions": dict(versions),
              "runs": runs}
    against = f"-vs-{args.baseline}" if args.baseline else ""
    out = new_result(f"{date.today()}-{args.task}{against}-pairs-{kind}-{events}")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
