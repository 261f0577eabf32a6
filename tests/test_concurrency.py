"""Several clerks at once: 4 processes × 200 commands against the same subscriptions."""

from __future__ import annotations

import multiprocessing
from datetime import date, timedelta

import orjson

from commands.importer import import_lines
from eventstore.app import open_store
from ledger.errors import LedgerError
from projections.charges import charges_as_of
from projections.history import known_at
from tests.conftest import activate, adopt, jsonl, register, sign

WORKERS, COMMANDS = 4, 200
DOMAINS = [f"commune{n}.fr" for n in range(5)]


def setup_commands() -> list[dict]:
    lines = []
    for n, domain in enumerate(DOMAINS):
        lines += [register(f"c{n}"), sign(domain, f"c{n}", order=f"BC-{n}", extra_gb_packs=[]),
                  activate(domain)]
    return lines


def worker_commands(worker: int) -> list[dict]:
    """Storage added by one clerk: every command touches one of the same five subscriptions."""
    commands = []
    for k in range(COMMANDS):
        received = date(2026, 4, 1) + timedelta(days=(worker * COMMANDS + k) % 900)
        commands.append({
            "id": f"w{worker}-{k}", "type": "add_storage", "order": f"BC-w{worker}-{k}",
            "domain": DOMAINS[(k + worker) % len(DOMAINS)], "extra_gb_packs": [10],
            "signed_on": str(received), "received_on": str(received)})
    return commands


#: A clerk retries a command whose store changed under it this many times at most.
RETRIES = 50
CONFLICT = "changed by another writer"


def clerk(store: str, worker: int, barrier) -> tuple[int, int, list[str]]:
    """Apply each command as its own import; retry from fresh state on a concurrency conflict
    only. Any other refusal is a real error: it is returned, never retried."""
    app = open_store(store)
    barrier.wait()
    applied = conflicts = 0
    refusals = []
    for command in worker_commands(worker):
        for _ in range(RETRIES):
            try:
                report = import_lines(app, jsonl(command), source=f"clerk {worker}")
            except LedgerError as error:
                if CONFLICT not in str(error):
                    refusals.append(str(error))
                    break
                conflicts += 1
                continue
            applied += report.applied
            break
        else:
            refusals.append(f"still conflicting after {RETRIES} attempts")
    return applied, conflicts, refusals


def count_events(app) -> list[tuple[str, int]]:
    notifications, start = [], 1
    while page := app.recorder.select_notifications(start=start, limit=5000):
        notifications += [(str(n.originator_id), n.originator_version) for n in page]
        start = page[-1].id + 1
    return notifications


def charges_json(app) -> bytes:
    return orjson.dumps([c.to_json() for c in charges_as_of(known_at(app), date(2028, 12, 31))])


def test_four_clerks_lose_nothing_and_duplicate_nothing(store, app, tmp_path):
    import_lines(app, jsonl(*setup_commands()))
    before = len(count_events(app))
    context = multiprocessing.get_context("spawn")
    barrier = context.Manager().Barrier(WORKERS)
    with context.Pool(WORKERS) as pool:
        results = pool.starmap(clerk, [(store, w, barrier) for w in range(WORKERS)])

    assert [refusals for _, _, refusals in results] == [[]] * WORKERS
    assert [applied for applied, _, _ in results] == [COMMANDS] * WORKERS
    print("conflicts retried:", [conflicts for _, conflicts, _ in results])
    events = count_events(app)
    # Each command: one StorageAdded and one command receipt. Nothing lost, nothing twice.
    assert len(events) == before + 2 * WORKERS * COMMANDS
    assert len(set(events)) == len(events)

    sequential = open_store(str(tmp_path / "sequential.sqlite3"))
    adopt(sequential)
    import_lines(sequential, jsonl(*setup_commands()))
    for worker in range(WORKERS):
        for command in worker_commands(worker):
            import_lines(sequential, jsonl(command))
    assert charges_json(app) == charges_json(sequential)
