"""Benchmarks at the scale of all French public bodies. Not part of the test suite.

    python -m benchmarks.run --quick                       # 10k and 100k events, a few minutes
    python -m benchmarks.run                               # 10k, 100k and 1M events
    python -m benchmarks.run --postgres postgresql://postgres@127.0.0.1:5432/test

Every measure runs in a fresh process (benchmarks/tasks.py) next to a baseline that does the
same work without the ledger's logic — the same events, the same store, the same settings — and
measure and baseline alternate (A B A B …). Ratios are baseline time ÷ measured time, reported
as min / median / max over the pairs. Results go to benchmarks/results/; docs/performance.md
explains them.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import orjson

from benchmarks.generate import write

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
MEGALIS_2026 = ROOT / "catalogues" / "megalis-suite-territoriale-2026.toml"
EVENTS_PER_SUBSCRIPTION = 7.37  # measured on the generator's mix, receipts included
CHUNK = 10_000  # subscriptions per imported file, like one file per batch of letters


def new_result(name: str) -> Path:
    """benchmarks/results/NAME.json, or NAME-2.json, NAME-3.json … if it is taken: a result
    that the docs cite is never overwritten by a later run of the same day."""
    out, n = RESULTS / f"{name}.json", 1
    while out.exists():
        n += 1
        out = RESULTS / f"{name}-{n}.json"
    return out


def machine(postgres: str | None) -> dict[str, object]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import version

    facts: dict[str, object] = {
        "python": platform.python_version(), "platform": platform.platform(), "cpu": cpu,
        "cores": os.cpu_count(), "sqlite": sqlite3.sqlite_version,
        "eventsourcing": version("eventsourcing"), "orjson": version("orjson")}
    if postgres:
        import psycopg

        with psycopg.connect(postgres) as conn:
            facts["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
        facts["psycopg"] = version("psycopg")
    return facts


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
    from commands.handlers import adopt_tariff_schedule
    from commands.importer import import_file
    from commands.unit_of_work import UnitOfWork
    from ledger.tariff_parser import load_schedule, parse_schedule

    import_file(app, ROOT / "docs" / "examples" / "00-operator.jsonl")
    uow = UnitOfWork(app)
    adopt_tariff_schedule(load_schedule(MEGALIS_2026), uow)
    for year, factor in ((2027, "1.03"), (2028, "1.05")):
        adopt_tariff_schedule(parse_schedule(revision(year, factor), "bench"), uow)
    app.save(*uow.changed(), metadata={"actor": "benchmark", "via": "tariff adopt"})


class Stores:
    """Fresh stores with the operator and barèmes set up: copies of a seed SQLite file, or new
    PostgreSQL operator schemas written by their writer role."""

    def __init__(self, folder: Path, postgres: str | None) -> None:
        self.folder, self.postgres, self.count = folder, postgres, 0
        self.seed: Path | None = None
        self.made: list[tuple[str, str | None]] = []

    def fresh(self) -> tuple[str, str | None]:
        from eventstore.app import open_store

        self.count += 1
        if self.postgres is None:
            if self.seed is None:
                self.seed = self.folder / "seed.sqlite3"
                app = open_store(str(self.seed))
                set_up(app)
                app.close()
            path = self.folder / f"store-{self.count}.sqlite3"
            shutil.copyfile(self.seed, path)
            store = (str(path), None)
        else:
            from eventstore.config import store_config
            from eventstore.postgres_schema import init_operator, writer_role

            operator = f"bench_{os.getpid()}_{self.count}"
            config = store_config(self.postgres, operator)
            init_operator(config)
            url = self.postgres.replace("//postgres@", f"//{writer_role(config.schema)}@", 1)
            app = open_store(url, operator)
            set_up(app)
            app.close()
            store = (url, operator)
        self.made.append(store)
        return store

    def drop(self, store: tuple[str, str | None]) -> None:
        if store[1] is None:
            for suffix in ("", "-wal", "-shm"):
                Path(store[0] + suffix).unlink(missing_ok=True)
            return
        import psycopg

        with psycopg.connect(self.postgres, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "ledger_{store[1]}" CASCADE')
            conn.execute(f'DROP ROLE IF EXISTS "ledger_{store[1]}_writer"')

    def drop_all(self) -> None:
        for store in self.made:
            self.drop(store)


def task(name: str, store: tuple[str, str | None], *arguments: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "benchmarks.tasks", name, store[0],
                           store[1] or "", *arguments], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"task {name} failed:\n{done.stderr}")
    return orjson.loads(done.stdout.strip().splitlines()[-1])


def spread(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 2), "median": round(statistics.median(values), 2),
            "max": round(max(values), 2)}


def alternate(pairs: int, measure, baseline) -> tuple[list[dict], list[dict]]:
    measured, base = [], []
    for _ in range(pairs):
        measured.append(measure())
        base.append(baseline())
    return measured, base


def summary(measured: list[dict], base: list[dict], events: int) -> dict:
    ratios = [b["seconds"] / m["seconds"] for m, b in zip(measured, base, strict=True)]
    seconds = [m["seconds"] for m in measured]
    floor = [b["seconds"] for b in base]
    return {"seconds": spread(seconds), "baseline_seconds": spread(floor),
            "events_per_s": round(events / statistics.median(seconds)),
            "baseline_events_per_s": round(events / statistics.median(floor)),
            "ratio": spread(ratios),
            "times_baseline": spread([m["seconds"] / b["seconds"]
                                      for m, b in zip(measured, base, strict=True)])}


def startup(store: tuple[str, str | None], domain: str, pairs: int) -> dict:
    """Wall time of ``ledger --help`` and ``ledger subscription DOMAIN --json`` against
    ``python -c pass``, each a fresh process, alternated."""
    ledger = str(Path(sys.executable).parent / "ledger")
    target = ["--store", store[0], *(["--operator", store[1]] if store[1] else [])]
    commands = {"python_pass": [sys.executable, "-c", "pass"],
                "help": [ledger, "--help"],
                "subscription_json": [ledger, "subscription", domain, "--json",
                                      "--as-of", "2027-06-01", *target]}
    for command in commands.values():  # warm the file cache: every run below reads the same
        subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(pairs):
        for name, command in commands.items():
            started = time.perf_counter()
            subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
            times[name].append(time.perf_counter() - started)
    out: dict[str, object] = {name: spread(values) for name, values in times.items()}
    for name in ("help", "subscription_json"):
        out[f"{name}_times_python"] = spread([a / b for a, b in
                                              zip(times[name], times["python_pass"])])
    return out


def run_size(target_events: int, folder: Path, pairs: int, queries: int, with_billing: bool,
             postgres: str | None) -> dict:
    stores = Stores(folder, postgres)
    try:
        return _run_size(target_events, folder, pairs, queries, with_billing, stores)
    finally:
        stores.drop_all()


def _run_size(target_events: int, folder: Path, pairs: int, queries: int, with_billing: bool,
              stores: Stores) -> dict:
    subscriptions = max(100, round(target_events / EVENTS_PER_SUBSCRIPTION))
    files, commands = [], 0
    for first in range(0, subscriptions, CHUNK):
        path = folder / f"commands-{target_events}-{first}.jsonl"
        commands += write(path, min(CHUNK, subscriptions - first), seed=first,
                          prefix=f"b{first // CHUNK}")
        files.append(str(path))
    log = f"… {target_events:,} events:"

    # Import, and its baseline: the same entries appended raw through the same log.
    export = str(folder / "export.pickle")
    ledger: tuple[str, str | None] | None = None
    imports, raws = [], []
    for number in range(pairs):
        store = stores.fresh()
        imports.append(task("import", store, *files))
        if number == 0:
            from eventstore.app import open_store

            app = open_store(*store)
            seed_size = app.position() - imports[0]["events"]
            app.close()
            task("export_log", store, str(seed_size + 1), export)
        if ledger is None:
            ledger = store
        else:
            stores.drop(store)
        raw_store = stores.fresh()
        raws.append(task("raw_append", raw_store, export))
        stores.drop(raw_store)
        print(f"{log} import pair {number + 1}: {imports[-1]['seconds']:.1f} s / raw "
              f"{raws[-1]['seconds']:.1f} s", file=sys.stderr, flush=True)
    events = imports[0]["events"]

    replays, reads = alternate(pairs, lambda: task("replay", ledger),
                               lambda: task("read_decode_subscriptions", ledger))
    print(f"{log} replay {replays[-1]['seconds']:.1f} s", file=sys.stderr, flush=True)
    rng = random.Random(7)
    sample = [f"b{(i := rng.randrange(subscriptions)) // CHUNK}-{i % CHUNK:06d}.fr"
              for _ in range(queries)]
    result = {
        "store": "postgresql" if stores.postgres else "sqlite",
        "target_events": target_events, "subscriptions": subscriptions, "commands": commands,
        "events": events, "pairs": pairs,
        "import": {**summary(imports, raws, events),
                   "commands_per_s": round(commands / statistics.median(
                       [m["seconds"] for m in imports]))},
        "replay": {**summary(replays, reads, reads[0]["events"]),
                   "charges": replays[0]["charges"], "charges_total": replays[0]["total"],
                   "peak_rss_kib": max(r["peak_kib"] for r in replays)},
    }
    charges, floors = alternate(pairs, lambda: task("charges_all", ledger),
                                lambda: task("charges_floor", ledger))
    result["charges"] = {**summary(charges, floors, floors[0]["events"]),
                         "charges": charges[0]["charges"],
                         "peak_rss_kib": max(c["peak_kib"] for c in charges),
                         "floor_peak_rss_kib": max(f["peak_kib"] for f in floors)}
    print(f"{log} charges {charges[-1]['seconds']:.1f} s", file=sys.stderr, flush=True)
    forecasts = [task("forecast", ledger) for _ in range(pairs)]
    result["forecast"] = {"seconds": spread([f["seconds"] for f in forecasts]),
                          "rows": forecasts[0]["rows"],
                          "peak_rss_kib": max(f["peak_kib"] for f in forecasts)}
    customers = str(folder / "latency-sample.json")
    Path(customers).write_bytes(orjson.dumps([domain[:-3] for domain in sample]))
    if with_billing:
        billing = task("bill", ledger)
        result["billing"] = {"seconds": round(billing["seconds"], 1),
                             "invoices": billing["invoices"], "peak_rss_kib": billing["peak_kib"]}
        print(f"{log} billing {billing['seconds']:.1f} s", file=sys.stderr, flush=True)
    # One-customer reads in a fresh process, after billing when there is one (invoice show,
    # explain and corrections read invoices).
    result["latency"] = task("latency", ledger, customers)
    result["startup"] = startup(ledger, result["latency"]["answered_domain"], pairs)
    if with_billing:
        key = str(folder / f"benchmark-{target_events}.key")
        signed = task("checkpoint", ledger, key)
        result["checkpoint"] = {"seconds": round(signed["seconds"], 2), "size": signed["size"]}
        verifies, decodes = alternate(pairs, lambda: task("verify", ledger),
                                      lambda: task("read_decode_all", ledger))
        assert all(v["ok"] for v in verifies), verifies
        result["verify"] = {**summary(verifies, decodes, verifies[0]["entries"]),
                            "entries": verifies[0]["entries"],
                            "documents": verifies[0]["documents"],
                            "peak_rss_kib": max(v["peak_kib"] for v in verifies)}
        print(f"{log} verify {verifies[-1]['seconds']:.1f} s", file=sys.stderr, flush=True)
        proofs = task("prove", ledger, "50")
        result["prove"] = {"p50_s": round(proofs["p50_s"], 4), "max_s": round(proofs["max_s"], 4),
                           "proofs": proofs["proofs"], "hashes": proofs["hashes"],
                           "documents": proofs["documents"]}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, nargs="+", default=None)
    parser.add_argument("--quick", action="store_true", help="10k and 100k events only")
    parser.add_argument("--pairs", type=int, default=3,
                        help="measure/baseline pairs per figure (default 3)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--billing", type=int, nargs="*", default=None,
                        help="sizes at which to bill, checkpoint, verify and prove (default: all)")
    parser.add_argument("--postgres", metavar="URL",
                        help="run on this PostgreSQL server (an administrator's URL) instead of "
                             "SQLite; operator schemas bench_* are created and dropped")
    args = parser.parse_args()
    sizes = args.events or ([10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000])
    billing_sizes = set(args.billing if args.billing is not None else sizes)
    results = {"date": date.today().isoformat(), "machine": machine(args.postgres),
               "command": " ".join(["python -m benchmarks.run", *sys.argv[1:]]), "sizes": []}
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            outcome = run_size(size, Path(folder), args.pairs, args.queries,
                               size in billing_sizes, args.postgres)
            print(orjson.dumps(outcome, option=orjson.OPT_INDENT_2).decode(), flush=True)
            results["sizes"].append(outcome)
    RESULTS.mkdir(exist_ok=True)
    kind = "postgresql-" if args.postgres else "sqlite-"
    out = new_result(f"{results['date']}-{kind}{'-'.join(str(s) for s in sizes)}")
    out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
