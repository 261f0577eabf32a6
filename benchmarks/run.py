"""Benchmark: import a generated file, then time queries. Not part of the test suite.

    python -m benchmarks.run [--subscriptions 10000]

Prints a summary and writes benchmarks/results/<date>-<n>.json.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import orjson

from benchmarks.generate import write
from commands.handlers import UnitOfWork, adopt_tariff_schedule
from commands.importer import import_file
from commands.store import open_store
from ledger.errors import UnknownDomain
from ledger.tariffs import load_schedule
from projections.charges import charges_as_of
from projections.history import known_at, subscription_known_at
from projections.status import status_as_of

RESULTS = Path(__file__).resolve().parent / "results"
MEGALIS_2026 = Path(__file__).resolve().parent.parent / "catalogues" / "megalis-suite-territoriale-2026.toml"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def machine() -> dict[str, object]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpu": cpu, "cores": os.cpu_count()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    n = args.subscriptions
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "commands.jsonl"
        lines = write(source, n)
        store = str(Path(folder) / "ledger.sqlite3")
        app = open_store(store)
        uow = UnitOfWork(app)
        adopt_tariff_schedule(load_schedule(MEGALIS_2026), uow)
        app.save(*uow.changed())

        started = time.perf_counter()
        report = import_file(app, source)
        import_seconds = time.perf_counter() - started

        rng = random.Random(7)
        domains = [f"body-{rng.randrange(n):06d}.fr" for _ in range(args.queries)]
        latencies = []
        for domain in domains:
            started = time.perf_counter()
            try:
                status_as_of(subscription_known_at(app, domain), domain, date(2027, 6, 1))
            except UnknownDomain:
                pass  # a domain not yet ordered on that date is an answer too
            latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        charges = charges_as_of(known_at(open_store(store)), date(2028, 12, 31))
        replay_seconds = time.perf_counter() - started

        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "commands.cli", "--store", store, "subscription",
                        domains[0], "--as-of", "2028-12-31", "--json"],
                       check=True, capture_output=True)
        cli_seconds = time.perf_counter() - started

    result = {
        "date": date.today().isoformat(),
        "machine": machine(),
        "subscriptions": n,
        "commands": lines,
        "events": report.events,
        "import_seconds": round(import_seconds, 3),
        "import_commands_per_second": round(lines / import_seconds),
        "subscription_query_ms": {"p50": round(statistics.median(latencies) * 1000, 3),
                                  "p99": round(percentile(latencies, 0.99) * 1000, 3)},
        "subscription_cli_process_ms": round(cli_seconds * 1000, 1),
        "all_charges_replay_seconds": round(replay_seconds, 3),
        "all_charges_events_per_second": round(report.events / replay_seconds),
        "charges": len(charges),
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{result['date']}-{n}.json"
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    print(f"written to {out}")


if __name__ == "__main__":
    main()
