"""Forecast, the first billing run and the one-customer reads, on a store built by
``benchmarks.build_store`` (without ``--bill``): what ``benchmarks.run`` measures after its
pairs, for a store too large to build again for each run.

    python -m benchmarks.billed_reads --store STORE [--operator NAME] [--pairs 2] [--queries 200]

Each task runs in a fresh process (``benchmarks/tasks.py``): ``forecast`` ``--pairs`` times,
then ``bill`` once (it writes: the store is billed afterwards), then the one-customer reads
over ``--queries`` customers drawn as ``benchmarks.run`` draws them (same seed). Prints each
figure and writes them, with the machine, to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from datetime import date
from pathlib import Path

import orjson

from benchmarks.run import CHUNK, machine, new_result, spread, task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="a SQLite file or a PostgreSQL URL")
    parser.add_argument("--operator", default=None, help="the operator's schema (PostgreSQL)")
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    store = (args.store, args.operator)

    from eventstore.app import open_store
    from projections.history import count_subscriptions

    app = open_store(args.store, args.operator)
    subscriptions, events = count_subscriptions(app), app.position()
    kind = "postgresql" if app.recorder.kind == "postgres" else "sqlite"
    app.close()

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    forecasts = [task("forecast", store) for _ in range(args.pairs)]
    say(f"forecast: {[round(f['seconds'], 2) for f in forecasts]} s, "
        f"{max(f['peak_kib'] for f in forecasts) // 1024} MB")
    billing = task("bill", store)
    say(f"bill: {billing['seconds']:.1f} s, {billing['invoices']} invoices, "
        f"{billing['peak_kib'] // 1024} MB")
    rng = random.Random(7)  # the sample of benchmarks.run
    sample = [f"b{(i := rng.randrange(subscriptions)) // CHUNK}-{i % CHUNK:06d}"
              for _ in range(args.queries)]
    with tempfile.TemporaryDirectory() as folder:
        customers = Path(folder) / "latency-sample.json"
        customers.write_bytes(orjson.dumps(sample))
        latency = task("latency", store, str(customers))
    for name, value in latency.items():
        if isinstance(value, dict):
            say(f"{name}: p50 {value['p50_ms']} ms, p99 {value['p99_ms']} ms")
    result = {"date": date.today().isoformat(),
              "store": kind, "events": events,
              "subscriptions": subscriptions, "machine": machine(None),
              "forecast": {"seconds": spread([f["seconds"] for f in forecasts]),
                           "rows": forecasts[0]["rows"],
                           "peak_rss_kib": max(f["peak_kib"] for f in forecasts)},
              "billing": {"seconds": round(billing["seconds"], 1),
                          "invoices": billing["invoices"], "peak_rss_kib": billing["peak_kib"]},
              "latency": latency}
    out = new_result(f"{date.today()}-billed-reads-{result['store']}-{events}")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
