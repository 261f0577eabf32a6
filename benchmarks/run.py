"""Benchmarks at the scale of all French public bodies. Not part of the test suite.

    python -m benchmarks.run                       # 10k, 100k and 1M events
    python -m benchmarks.run --events 10000 100000 # a quicker run

For each size, on a fresh SQLite store (or, with --postgres URL, fresh operator
schemas on that server): generate a realistic ledger, import it, and measure next
to what the event store itself can do on the same kind of store. Writes benchmarks/results/<date>-<events>.json and
prints a summary; docs/performance.md explains the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import orjson
from eventsourcing.domain import Aggregate, event

from benchmarks.generate import write
from commands.billing import bill
from commands.handlers import UnitOfWork, adopt_tariff_schedule
from commands.importer import import_file
from eventstore.app import open_store
from ledger.errors import UnknownDomain
from ledger.tariffs import load_schedule, parse_schedule
from projections.charges import charges_as_of, subscription_charges
from projections.history import iter_subscriptions_known_at, known_at, subscription_known_at
from projections.status import status_as_of

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
MEGALIS_2026 = ROOT / "catalogues" / "megalis-suite-territoriale-2026.toml"
EVENTS_PER_SUBSCRIPTION = 7.37  # measured on the generator's mix, receipts included
CHUNK = 10_000  # subscriptions per imported file, like one file per batch of letters


def machine() -> dict[str, object]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpu": cpu, "cores": os.cpu_count()}


def revision(year: int, factor: str) -> dict:
    """A revision of the Suite Territoriale barème taking effect on 1 January ``year``."""
    import tomllib

    document = tomllib.loads(MEGALIS_2026.read_text(encoding="utf-8"), parse_float=Decimal)
    document["id"] = f"megalis-suite-territoriale-{year}-bench"
    document["effective_from"] = date(year, 1, 1)
    for line in document["lines"]:
        line["amount"] = (Decimal(line["amount"]) * Decimal(factor)).quantize(Decimal("0.01"))
    return document


def set_up(app) -> None:
    """The operator (the seller on invoices) and its barème with 2027 and 2028 revisions."""
    import_file(app, ROOT / "docs" / "examples" / "00-operator.jsonl")
    uow = UnitOfWork(app)
    adopt_tariff_schedule(load_schedule(MEGALIS_2026), uow)
    for year, factor in ((2027, "1.03"), (2028, "1.05")):
        adopt_tariff_schedule(parse_schedule(revision(year, factor), "bench"), uow)
    app.save(*uow.changed())


class Raw(Aggregate):
    """The event store alone: an aggregate whose events carry a few fields, like the ledger's."""

    @event("Created")
    def __init__(self, name: str, on: date) -> None:
        self.name = name

    @event("Changed")
    def change(self, on: date, amount: Decimal, note: str) -> None:
        pass


def raw_append(store, events: int, batch: int) -> float:
    """Seconds to create and append ``events`` events in batches of ``batch``."""
    app = open_store(*store)
    started = time.perf_counter()
    pending, count = [], 0
    while count < events:
        aggregate = Raw(name=f"raw-{count}", on=date(2026, 1, 1))
        aggregate.change(on=date(2026, 2, 1), amount=Decimal("60.00"), note="x")
        aggregate.change(on=date(2026, 3, 1), amount=Decimal("90.00"), note="y")
        pending.append(aggregate)
        count += 3
        if count % batch < 3:
            app.save(*pending)
            pending = []
    if pending:
        app.save(*pending)
    return time.perf_counter() - started


def raw_read_decode(app) -> tuple[int, float]:
    started = time.perf_counter()
    count, start = 0, 1
    while page := app.recorder.select_notifications(start=start, limit=5_000):
        for notification in page:
            app.mapper.to_domain_event(notification)
        count += len(page)
        start = page[-1].id + 1
    return count, time.perf_counter() - started


def replay(app) -> tuple[int, Decimal, float]:
    """Derive every charge of every subscription from the events, streaming."""
    from projections.history import tariffs_known_at

    started = time.perf_counter()
    schedules = tariffs_known_at(app)
    count, total = 0, Decimal(0)
    for subscription in iter_subscriptions_known_at(app):
        for charge in subscription_charges(subscription, schedules):
            count += 1
            total += charge.amount
    return count, total, time.perf_counter() - started


def latencies(app, domains: list[str]) -> dict[str, dict[str, float]]:
    timings: dict[str, list[float]] = {"subscription": [], "charges_domain": []}
    for domain in domains:
        started = time.perf_counter()
        try:
            status_as_of(subscription_known_at(app, domain), domain, date(2027, 6, 1))
        except UnknownDomain:
            pass
        timings["subscription"].append(time.perf_counter() - started)
        started = time.perf_counter()
        charges_as_of(known_at(app, domain=domain), date(2028, 12, 31))
        timings["charges_domain"].append(time.perf_counter() - started)
    return {name: {"p50_ms": round(statistics.median(values) * 1000, 3),
                   "p99_ms": round(sorted(values)[int(0.99 * (len(values) - 1))] * 1000, 3)}
            for name, values in timings.items()}


def replay_peak_memory(store: tuple[str, str | None]) -> int:
    """Peak resident memory (KiB) of a process that replays every charge of the store."""
    # VmHWM, not getrusage: ru_maxrss survives exec and would report the forking parent's size.
    code = ("import sys\n"
            "from benchmarks.run import replay\n"
            "from eventstore.app import open_store\n"
            "replay(open_store(sys.argv[1], sys.argv[2] or None))\n"
            "status = open('/proc/self/status').read().splitlines()\n"
            "print(next(l.split()[1] for l in status if l.startswith('VmHWM:')))\n")
    done = subprocess.run([sys.executable, "-c", code, store[0], store[1] or ""], check=True,
                          capture_output=True, text=True, cwd=ROOT)
    return int(done.stdout.strip().splitlines()[-1])


def fresh_store(folder: Path, name: str, postgres: str | None) -> tuple[str, str | None]:
    """A new empty store: a SQLite file, or a PostgreSQL operator schema set up by db init."""
    if postgres is None:
        return str(folder / f"{name}.sqlite3"), None
    from eventstore.app import store_config
    from eventstore.postgres import init_operator

    operator = f"bench_{name.replace('-', '_')}"
    init_operator(store_config(postgres, operator))
    return postgres, operator


def drop_operator_schemas(postgres: str) -> None:
    import psycopg

    with psycopg.connect(postgres, autocommit=True) as conn:
        names = [row[0] for row in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'ledger\\_bench\\_%'")]
        for name in names:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')
            conn.execute(f'DROP ROLE IF EXISTS "{name}_writer"')


def run_size(target_events: int, folder: Path, queries: int, with_billing: bool,
             postgres: str | None = None) -> dict:
    subscriptions = max(100, round(target_events / EVENTS_PER_SUBSCRIPTION))
    store = fresh_store(folder, f"ledger-{target_events}", postgres)
    app = open_store(*store)
    set_up(app)

    files, commands = [], 0
    for first in range(0, subscriptions, CHUNK):
        path = folder / f"commands-{target_events}-{first}.jsonl"
        commands += write(path, min(CHUNK, subscriptions - first), seed=first,
                          prefix=f"b{first // CHUNK}")
        files.append(path)

    events_before = app.recorder.max_notification_id() or 0
    started = time.perf_counter()
    for path in files:
        import_file(app, path)
    import_seconds = time.perf_counter() - started
    events = (app.recorder.max_notification_id() or 0) - events_before
    raw_seconds = raw_append(fresh_store(folder, f"raw-{target_events}", postgres), events,
                             batch=round(events / len(files)))

    read_count, read_seconds = raw_read_decode(app)
    charges, amount, replay_seconds = replay(app)
    rng = random.Random(7)
    sample = [f"b{(i := rng.randrange(subscriptions)) // CHUNK}-{i % CHUNK:06d}.fr"
              for _ in range(queries)]
    result = {
        "store": "postgresql" if postgres else "sqlite",
        "target_events": target_events,
        "subscriptions": subscriptions,
        "commands": commands,
        "events": read_count,
        "import": {"seconds": round(import_seconds, 2),
                   "commands_per_s": round(commands / import_seconds),
                   "events_per_s": round(events / import_seconds),
                   "raw_append_events_per_s": round(events / raw_seconds),
                   "ratio": round(raw_seconds / import_seconds, 2)},
        "replay": {"seconds": round(replay_seconds, 2), "charges": charges,
                   "charges_total": str(amount),
                   "events_per_s": round(read_count / replay_seconds),
                   "raw_read_decode_events_per_s": round(read_count / read_seconds),
                   "ratio": round(read_seconds / replay_seconds, 2)},
        "latency": latencies(app, sample),
        "replay_peak_rss_kib": replay_peak_memory(store),
    }
    if with_billing:
        started = time.perf_counter()
        report = bill(app, date(2028, 12, 31), date(2029, 1, 5))
        result["billing"] = {"seconds": round(time.perf_counter() - started, 1),
                             "invoices": len(report.issued)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--billing", type=int, nargs="*", default=None,
                        help="sizes at which to time a billing run (default: the largest)")
    parser.add_argument("--postgres", metavar="URL",
                        help="run on this PostgreSQL server (an administrator's URL) instead of "
                             "SQLite; operator schemas bench_* are created and dropped")
    args = parser.parse_args()
    billing_sizes = set(args.billing if args.billing is not None else [max(args.events)])
    results = {"date": date.today().isoformat(), "machine": machine(), "sizes": []}
    with tempfile.TemporaryDirectory() as folder:
        for size in args.events:
            print(f"… {size:,} events", file=sys.stderr, flush=True)
            try:
                outcome = run_size(size, Path(folder), args.queries, size in billing_sizes,
                                   args.postgres)
            finally:
                if args.postgres:
                    drop_operator_schemas(args.postgres)
            print(orjson.dumps(outcome, option=orjson.OPT_INDENT_2).decode(), flush=True)
            results["sizes"].append(outcome)
    sizes = {r["target_events"]: r for r in results["sizes"]}
    small, large = min(sizes), max(sizes)
    results["goals"] = {
        "import_ratio_min": min(r["import"]["ratio"] for r in sizes.values()),
        "replay_ratio_min": min(r["replay"]["ratio"] for r in sizes.values()),
        "latency_ratio_subscription_p50": round(
            sizes[large]["latency"]["subscription"]["p50_ms"]
            / sizes[small]["latency"]["subscription"]["p50_ms"], 2),
        "latency_ratio_charges_domain_p50": round(
            sizes[large]["latency"]["charges_domain"]["p50_ms"]
            / sizes[small]["latency"]["charges_domain"]["p50_ms"], 2),
    }
    middle = sorted(sizes)[-2] if len(sizes) > 1 else small
    results["goals"]["replay_memory_ratio"] = round(
        sizes[large]["replay_peak_rss_kib"] / sizes[middle]["replay_peak_rss_kib"], 2)
    RESULTS.mkdir(exist_ok=True)
    kind = "postgresql-" if args.postgres else ""
    out = RESULTS / f"{results['date']}-{kind}{'-'.join(str(s) for s in sorted(sizes))}.json"
    out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    print(orjson.dumps(results["goals"], option=orjson.OPT_INDENT_2).decode())
    print(f"written to {out}")


if __name__ == "__main__":
    main()
