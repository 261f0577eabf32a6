"""What the libraries the ledger is built on cost to import, against ``python -c pass``.

    python -m benchmarks.startup_floor [--pairs 15]

Issue 16 asks ``ledger subscription DOMAIN --json`` to start within 2.5× ``python -c pass``.
Any command that reads a subscription folds it into the aggregate class, which is an
``eventsourcing`` aggregate holding ``attrs`` values, and prints it with ``orjson``; on
PostgreSQL it also needs ``psycopg``. This times, in fresh processes, rounds of ``python -c
pass`` and ``python -c "import X"`` for each of them (and the ledger's own read path), and
reports each ratio within its round (min / median / max): the floor under any start-up of the
ledger. Bytecode is compiled first, as on an installed ledger.
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
from benchmarks.startup_pairs import PACKAGES

ROOT = Path(__file__).resolve().parent.parent

IMPORTS = {
    "python -c pass": "pass",
    "import orjson": "import orjson",
    "import attrs": "import attrs",
    "import eventsourcing.domain": "import eventsourcing.domain",
    "import eventsourcing.application": "import eventsourcing.application",
    "import psycopg": "import psycopg",
    "eventsourcing.domain, attrs and orjson together":
        "import eventsourcing.domain, attrs, orjson",
    "the ledger's aggregates (ledger.subscription)": "import ledger.subscription",
    "the read path of `subscription --json` (commands.views)": "import commands.views",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=15)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for package in PACKAGES:
        compileall.compile_dir(ROOT / package, quiet=1)
    for code in IMPORTS.values():  # warm the file cache, compile what the venv has not
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
    times: dict[str, list[float]] = {name: [] for name in IMPORTS}
    for _ in range(args.pairs):
        for name, code in IMPORTS.items():
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
            times[name].append(time.perf_counter() - started)
    base = times["python -c pass"]
    summary = {}
    for name, values in times.items():
        ratios = sorted(a / b for a, b in zip(values, base, strict=True))
        summary[name] = {"median_ms": round(statistics.median(values) * 1000, 1),
                         "times_python": [round(ratios[0], 2), round(statistics.median(ratios), 2),
                                          round(ratios[-1], 2)]}
        print(f"{name:58s} {summary[name]['median_ms']:7.1f} ms  ÷ pass "
              f"{' / '.join(str(r) for r in summary[name]['times_python'])}", file=sys.stderr)
    result = {"date": date.today().isoformat(), "pairs": args.pairs, "machine": machine(None),
              "summary": summary, "runs": times}
    out = new_result(f"{date.today()}-startup-floor")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
