"""Start-up of ``ledger`` compared between versions of the code, against ``python -c pass``.

    python -m benchmarks.startup_pairs --store STORE --domain DOMAIN --pairs 10 NAME=CHECKOUT …

Each round runs, in fresh processes, ``python -c pass`` and then, for each version (started in
its checkout, so that its code is the one imported), ``python -m cli --help`` and
``python -m cli subscription DOMAIN --json``; the ratios are taken within the round. Bytecode
is compiled once first and used from then on, as it is on an installed ledger: with
``PYTHONDONTWRITEBYTECODE`` set and no ``__pycache__``, every process would compile every
module from source and measure the compiler.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from benchmarks.run import machine, new_result

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cli", "commands", "eventstore", "exports", "ledger", "projections", "web")


def _timed(command: list[str], cwd: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--domain", required=True)
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("versions", nargs="+", help="NAME=CHECKOUT (a folder with the code)")
    args = parser.parse_args()
    versions = [v.split("=", 1) for v in args.versions]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for _, checkout in versions:
        for package in PACKAGES:
            compileall.compile_dir(Path(checkout) / package, quiet=1)
    commands = {"help": ["-m", "cli", "--help"],
                "subscription_json": ["-m", "cli", "--store", args.store, "subscription",
                                      args.domain, "--json", "--as-of", "2027-06-01"]}
    for _, checkout in versions:  # warm the file cache, and check that each command works
        for command in commands.values():
            _timed([sys.executable, *command], checkout, env)
    runs: dict[str, dict[str, list[float]]] = {
        name: {"python_pass": [], **{c: [] for c in commands}} for name, _ in versions}
    for _ in range(args.pairs):
        for name, checkout in versions:
            runs[name]["python_pass"].append(_timed([sys.executable, "-c", "pass"], checkout,
                                                    env))
            for command, arguments in commands.items():
                runs[name][command].append(_timed([sys.executable, *arguments], checkout, env))
    summary = {}
    for name, times in runs.items():
        summary[name] = {}
        for command in commands:
            ratios = sorted(a / b for a, b in zip(times[command], times["python_pass"],
                                                  strict=True))
            summary[name][command] = {
                "median_s": round(statistics.median(times[command]), 4),
                "times_python": [round(ratios[0], 2), round(statistics.median(ratios), 2),
                                 round(ratios[-1], 2)]}
        summary[name]["python_pass_median_s"] = round(statistics.median(times["python_pass"]),
                                                      4)
        print(name, summary[name], file=sys.stderr)
    result = {"date": date.today().isoformat(), "pairs": args.pairs, "store": args.store,
              "machine": machine(None), "versions": dict(versions), "summary": summary,
              "runs": runs}
    out = new_result(f"{date.today()}-startup-pairs")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
