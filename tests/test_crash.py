"""Crash safety: an import killed with SIGKILL leaves all of its file or none of it."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

from benchmarks.generate import write
from commands.importer import import_file


def events_after(app, notification_id: int) -> int:
    """How many events were recorded after ``notification_id``."""
    count, start = 0, notification_id + 1
    while page := app.recorder.select_notifications(start=start, limit=5000):
        count += len(page)
        start = page[-1].id + 1
    return count

KILLS = 20
SIZE = 150  # subscriptions per file: about 480 commands, 1 100 events

CHILD = """
import sys
from commands.importer import import_file
from eventstore.app import open_store
app = open_store(sys.argv[1])
app.recorder.max_notification_id()  # connected
print("ready", flush=True)
import_file(app, sys.argv[2])
print("done", flush=True)
"""


def start_import(store: str, path) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", CHILD, store, str(path)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=os.environ.copy())
    assert child.stdout.readline().strip() == "ready", child.stderr.read()
    return child


def test_sigkill_during_import_leaves_all_or_nothing(store, app, tmp_path):
    rng = random.Random(20261122)
    # How long one uninterrupted import of such a file takes here, to aim the kills inside it.
    warmup = tmp_path / "warmup.jsonl"
    write(warmup, SIZE, seed=999, prefix="warmup")
    child = start_import(store, warmup)
    started = time.perf_counter()
    assert child.wait(timeout=120) == 0, child.stderr.read()
    duration = time.perf_counter() - started
    child.stdout.close()
    child.stderr.close()

    kills = trials = 0
    while kills < KILLS:
        trials += 1
        assert trials <= 3 * KILLS, f"only {kills} kills landed inside an import"
        path = tmp_path / f"file-{trials}.jsonl"
        write(path, SIZE, seed=trials, prefix=f"t{trials}")
        before = app.recorder.max_notification_id() or 0
        child = start_import(store, path)
        time.sleep(rng.uniform(0, duration))
        child.send_signal(signal.SIGKILL)
        code = child.wait(timeout=60)
        child.stdout.close()
        child.stderr.close()
        after_kill = events_after(app, before)
        # Import it again: it completes what the killed one did not store, or skips it all.
        report = import_file(app, path)
        complete = events_after(app, before)
        assert after_kill in (0, complete), (trials, after_kill, complete)
        assert complete > 0
        if code == -signal.SIGKILL:
            kills += 1
            # Killed mid-way: either nothing was committed (all applied now) or everything was.
            assert (report.applied == 0) == (after_kill == complete)


def test_a_large_import_completes_on_postgres(tmp_path, monkeypatch):
    """73 000 events in one transaction: psycopg's pipeline mode deadlocked on this (pgstore.py)."""
    from eventstore.app import open_store
    from tests.conftest import adopt, drop_postgres_schemas, need_postgres, postgres_operator

    need_postgres()
    url, operator = postgres_operator(monkeypatch)
    try:
        ledger = open_store(url, operator)
        adopt(ledger)
        ledger.close()
        path = tmp_path / "large.jsonl"
        write(path, 10_000, seed=5, prefix="large")
        done = subprocess.run([sys.executable, "-m", "commands.cli", "--store", url, "--operator",
                               operator, "import", str(path), "--quiet"],
                              capture_output=True, text=True, timeout=240, check=False)
        assert done.returncode == 0, done.stderr
    finally:
        drop_postgres_schemas()
