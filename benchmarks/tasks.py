"""One measured task per process: ``python -m benchmarks.tasks TASK STORE OPERATOR [ARGS…]``.

Each task opens the store, does one thing, and prints a JSON object with the seconds it
took (timed inside the process, after imports and opening the store) and what it did. The
harness (benchmarks/run.py) runs every task in a fresh process, so that no task benefits
from — or pays for — what another left in memory, and alternates a measure with its baseline.
"""

from __future__ import annotations

import pickle
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import orjson


def _peak_kib() -> int:
    # VmHWM, not getrusage: ru_maxrss survives exec and would report the parent's size.
    status = Path("/proc/self/status").read_text().splitlines()
    return int(next(line.split()[1] for line in status if line.startswith("VmHWM:")))


def import_files(app, files: list[str]) -> dict[str, Any]:
    """The measure: ``ledger import`` of each file, as one transaction each."""
    # python-stdnum is loaded by the first SIRET checked (31 ms): a module's loading, which
    # every measure here leaves out, not the import's work.
    import stdnum.fr.siret  # noqa: F401

    from commands.importer import import_file

    started = time.perf_counter()
    commands = events = 0
    for path in files:
        report = import_file(app, path, by="benchmark")
        commands += report.applied
        events += report.events
    return {"seconds": time.perf_counter() - started, "commands": commands, "events": events}


def raw_append(app, export: str) -> dict[str, Any]:
    """The baseline of import: the event store saving the very events an import produced — the
    same event objects, mapped to entries and appended in the same transactions with the same
    metadata — without parsing, validation or rules."""
    from eventstore.log import LogEntry

    with open(export, "rb") as handle:
        transactions = pickle.load(handle)
    batches = []
    for rows, recorded_at in transactions:  # decoded before the clock starts
        events, metas = [], {}
        for aggregate, version, event, event_version, data, _, meta in rows:
            entry = LogEntry(id=0, recorded_at_text=recorded_at, originator_id=str(aggregate),
                             originator_version=version, topic=event,
                             event_version=event_version, state=data, metadata=meta, leaf=b"")
            domain_event = app.mapper.to_domain_event(entry)
            for extra in ("log_position", "log_metadata"):
                vars(domain_event).pop(extra)
            events.append(domain_event)
            metas[(domain_event.originator_id, version)] = orjson.loads(meta)
        batches.append((events, metas))
    started = time.perf_counter()
    count = 0
    to_entry = app.mapper.to_stored_event
    for events, metas in batches:
        app.recorder.insert_events([to_entry(e) for e in events], metadata={},
                                   event_metadata=metas)
        count += len(events)
    return {"seconds": time.perf_counter() - started, "events": count}


def export_log(app, first: int, out: str) -> dict[str, Any]:
    """Write the entries from ``first`` on, grouped by transaction (recorded time), for
    :func:`raw_append`. Not timed."""
    from uuid import UUID

    transactions: list[tuple[list, str]] = []
    refs: dict[int, list[str]] = {}
    for entry in app.scan(first):
        if not transactions or transactions[-1][1] != entry.recorded_at_text:
            transactions.append(([], entry.recorded_at_text))
        kind = app.mapper.event_type(entry)
        data = orjson.loads(entry.state)
        entry_refs = list(kind.refs(data)) if kind.refs else []
        refs[entry.id] = entry_refs
        transactions[-1][0].append((UUID(str(entry.originator_id)), entry.originator_version,
                                    entry.topic, entry.event_version, entry.state, entry_refs,
                                    entry.metadata))
    with open(out, "wb") as handle:
        pickle.dump(transactions, handle)
    return {"transactions": len(transactions),
            "events": sum(len(rows) for rows, _ in transactions)}


def replay(app) -> dict[str, Any]:
    """The measure: every charge of every subscription derived from the log, streaming."""
    from decimal import Decimal

    from projections.charges import subscription_charges
    from projections.history import iter_subscriptions_known_at, tariffs_known_at

    started = time.perf_counter()
    upto = app.position()
    schedules = tariffs_known_at(app, upto)
    count, total = 0, Decimal(0)
    for subscription in iter_subscriptions_known_at(app, upto):
        for charge in subscription_charges(subscription, schedules):
            count += 1
            total += charge.amount
    return {"seconds": time.perf_counter() - started, "charges": count, "total": str(total),
            "peak_kib": _peak_kib()}


def read_decode_subscriptions(app) -> dict[str, Any]:
    """The baseline of replay: read and decode the same entries, in the same order."""
    from projections.history import SUBSCRIPTION_EVENTS

    started = time.perf_counter()
    decode = app.mapper.to_domain_event
    count = 0
    for entry in app.recorder.scan_by_aggregate(SUBSCRIPTION_EVENTS, app.position()):
        decode(entry)
        count += 1
    return {"seconds": time.perf_counter() - started, "events": count}


def read_decode_all(app) -> dict[str, Any]:
    """The baseline of verify: read and decode every entry of the log, in position order."""
    started = time.perf_counter()
    decode = app.mapper.to_domain_event
    count = 0
    for entry in app.scan():
        decode(entry)
        count += 1
    return {"seconds": time.perf_counter() - started, "events": count, "peak_kib": _peak_kib()}


def bill(app) -> dict[str, Any]:
    from commands.billing import bill as run

    started = time.perf_counter()
    # As `ledger bill` runs it: documents handed over, none kept (keeping them all in the
    # report made this task's peak memory grow with every invoice issued).
    report = run(app, date(2028, 12, 31), date(2029, 1, 5), by="benchmark",
                 keep_documents=False)
    return {"seconds": time.perf_counter() - started, "invoices": report.count,
            "peak_kib": _peak_kib()}


def checkpoint(app, key: str) -> dict[str, Any]:
    from commands.audit import checkpoint as sign
    from commands.audit import keygen, load_signer

    if not Path(key).exists():
        keygen(app, key, "benchmark.example/ledger", "benchmark")
    started = time.perf_counter()
    note = sign(app, load_signer(key), "benchmark")
    return {"seconds": time.perf_counter() - started, "size": int(note.split("\n")[1])}


def verify(app) -> dict[str, Any]:
    from commands.audit_verify import verify_ledger

    started = time.perf_counter()
    report = verify_ledger(app)
    return {"seconds": time.perf_counter() - started, "ok": report.ok, "entries": report.entries,
            "documents": report.documents, "peak_kib": _peak_kib()}


def prove(app, count: str) -> dict[str, Any]:
    """Proofs of ``count`` documents spread over the log, each timed on its own."""
    from commands.audit import check_proof, prove_document, registered_verifiers
    from commands.verification import document_entry

    lo = _invoice_count(app)
    if not lo:
        return {"error": "no document"}
    wanted = int(count)
    chosen = [f"F-2029-{1 + (i * lo) // wanted:06d}" for i in range(wanted)]
    verifier = registered_verifiers(app)[0]
    timings = []
    for number in chosen:
        started = time.perf_counter()
        proof = prove_document(app, number)
        timings.append(time.perf_counter() - started)
        check_proof(proof.text, verifier)
    document_entry(app, chosen[0])
    timings.sort()
    return {"seconds": sum(timings), "documents": lo, "proofs": len(timings),
            "p50_s": timings[len(timings) // 2], "max_s": timings[-1],
            "hashes": len(proof.hashes)}


def charges_all(app) -> dict[str, Any]:
    """The measure: ``ledger charges --json`` of the whole ledger (every charge through the end
    of the contracts), written as JSON to /dev/null as the command writes it to its output."""
    from commands import views
    from projections.history import resolve

    started = time.perf_counter()
    upto = resolve(app, None)
    count = size = 0
    with open("/dev/null", "wb") as out:
        for item in views.iter_charges(app, date(2029, 12, 31), upto):
            text = orjson.dumps(item, option=orjson.OPT_INDENT_2)
            out.write(text)
            size += len(text)
            count += 1
    return {"seconds": time.perf_counter() - started, "charges": count, "bytes": size,
            "peak_kib": _peak_kib()}


def charges_floor(app) -> dict[str, Any]:
    """The floor of ``charges``: the ordered SELECT of the subscription and tariff entries it
    needs, and ``orjson.loads`` of each payload — no folding, no rules, no output."""
    from ledger.identity import tariff_book_id
    from projections.history import SUBSCRIPTION_EVENTS

    started = time.perf_counter()
    upto = app.position()
    count = 0
    for entry in app.recorder.select_aggregates([tariff_book_id()], upto):
        orjson.loads(entry.state)
        count += 1
    for entry in app.recorder.scan_by_aggregate(SUBSCRIPTION_EVENTS, upto):
        orjson.loads(entry.state)
        count += 1
    return {"seconds": time.perf_counter() - started, "events": count, "peak_kib": _peak_kib()}


def forecast(app) -> dict[str, Any]:
    """``ledger forecast --from 2027-01 --to 2028-12 --json``: charges by month to the end of
    the contracts."""
    from commands import views
    from projections.history import resolve

    started = time.perf_counter()
    rows = views.forecast(app, "2027-01", "2028-12", resolve(app, None))
    return {"seconds": time.perf_counter() - started, "rows": len(rows),
            "peak_kib": _peak_kib()}


def _invoice_count(app) -> int:
    """How many invoices of 2029 exist, by halving, without reading them all."""
    lo, hi = 0, 10**6 - 1
    while lo < hi:
        middle = (lo + hi + 1) // 2
        if app.recorder.positions_of(f"document:F-2029-{middle:06d}"):
            lo = middle
        else:
            hi = middle - 1
    return lo


def latency(app, sample: str) -> dict[str, Any]:
    """The one-customer reads a clerk or the web view makes, each timed on its own, as each
    command does it (horizon resolved, customer or domain checked): ``subscription``,
    ``charges --domain``, ``charges --customer``, ``explain``, ``invoice show`` and
    ``corrections --customer``. ``sample`` is a JSON list of customer keys; each has the
    domain of the same name. Invoices are sampled across all those issued."""
    from commands import views
    from commands.corrections import proposals
    from commands.verification import verify as show
    from ledger.errors import LedgerError
    from projections.history import resolve

    customers = orjson.loads(Path(sample).read_bytes())
    invoices = _invoice_count(app)
    numbers = [f"F-2029-{1 + (i * invoices) // len(customers):06d}"
               for i in range(len(customers))] if invoices else []
    as_of = date(2029, 12, 31)
    reads = {
        "subscription": lambda c, n: views.subscription(app, f"{c}.fr", date(2027, 6, 1),
                                                        resolve(app, None)),
        "charges_domain": lambda c, n: views.charges(app, as_of, resolve(app, None),
                                                     domain=f"{c}.fr"),
        "charges_customer": lambda c, n: views.charges(app, as_of, resolve(app, None),
                                                       customer=c),
        "explain": lambda c, n: views.explain(app, n),
        "invoice_show": lambda c, n: show(app, n),
        "corrections_customer": lambda c, n: proposals(app, c),
    }
    timings: dict[str, list[float]] = {name: [] for name in reads}
    refused, answered = 0, None
    for index, customer in enumerate(customers):
        for name, read in reads.items():
            if name in ("explain", "invoice_show") and not numbers:
                continue
            started = time.perf_counter()
            try:
                read(customer, numbers[index] if numbers else None)
            except LedgerError:  # a domain without an order form by then: the command's error
                refused += 1
            else:
                if name == "subscription" and answered is None:
                    answered = f"{customer}.fr"
            timings[name].append(time.perf_counter() - started)
    out: dict[str, Any] = {"seconds": sum(map(sum, timings.values())), "invoices": invoices,
                           "refused": refused, "answered_domain": answered}
    for name, values in timings.items():
        if values:
            values.sort()
            out[name] = {"p50_ms": round(values[len(values) // 2] * 1000, 3),
                         "p99_ms": round(values[int(0.99 * (len(values) - 1))] * 1000, 3)}
    return out


TASKS = {"import": import_files, "raw_append": raw_append, "export_log": export_log,
         "replay": replay, "read_decode_subscriptions": read_decode_subscriptions,
         "read_decode_all": read_decode_all, "bill": bill, "checkpoint": checkpoint,
         "verify": verify, "prove": prove, "charges_all": charges_all,
         "charges_floor": charges_floor, "forecast": forecast, "latency": latency}


def main(argv: list[str]) -> None:
    from eventstore.app import open_store

    task, store, operator, *arguments = argv
    app = open_store(store, operator or None)
    if task == "import":
        result = import_files(app, arguments)
    else:
        result = TASKS[task](app, *arguments)
    app.close()
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
