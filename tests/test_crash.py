"""Crash safety: an import killed with SIGKILL leaves all of its file or none of it.

The kills land at chosen points of the import — not after a random sleep, which made the
test depend on the machine's load: the child process replaces one step of the import with
"kill myself now", so every run kills at the same moments, on both stores.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from benchmarks.generate import write
from commands.importer import import_file

SIZE = 150  # subscriptions per file: about 480 commands, 1 100 events

#: Where the import dies: while reading the file, after parsing some lines but before any
#: write, after the first of several saves inside the transaction, just before COMMIT, and
#: just after it (the data is then stored whole).
KILL_POINTS = ["reading", "parsed", "first_save", "before_commit", "after_commit"]

CHILD = """
import os, signal, sys
from commands import importer
from eventstore.app import open_store

point = sys.argv[3]
importer.BATCH, importer.FLUSH = 100, 200  # several saves inside the one transaction


def die(*_, **__):
    os.kill(os.getpid(), signal.SIGKILL)


def after(function, count=1):
    calls = [0]
    def wrapped(*args, **kwargs):
        result = function(*args, **kwargs)
        calls[0] += 1
        if calls[0] == count:
            die()
        return result
    return wrapped


app = open_store(sys.argv[1])
session_class = type(app.recorder.session())
if point == "reading":
    importer._syntax = after(importer._syntax)  # the syntax pass done, nothing opened yet
elif point == "parsed":
    importer.parse_line = after(importer.parse_line, 50)
elif point == "first_save":
    session_class.append = after(session_class.append)
elif point == "before_commit":
    original_exit = session_class.__exit__
    def exit_then_die(self, kind, error, trace):
        if kind is None:
            die()
        return original_exit(self, kind, error, trace)
    session_class.__exit__ = exit_then_die
elif point == "after_commit":
    importer._apply = after(importer._apply)
importer.import_file(app, sys.argv[2])
print("not killed", flush=True)
"""


def run_killed(store: str, path, point: str) -> int:
    child = subprocess.run([sys.executable, "-c", CHILD, store, str(path), point],
                           capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    return child.returncode


@pytest.mark.parametrize("point", KILL_POINTS)
def test_an_import_killed_at_any_point_stores_all_or_nothing(store, app, tmp_path, point):
    path = tmp_path / f"file-{point}.jsonl"
    commands = write(path, SIZE, seed=len(point), prefix=f"k{len(point)}")
    before = app.position()
    assert run_killed(store, path, point) == -signal.SIGKILL
    stored = app.position() - before
    if point == "after_commit":
        assert stored > 0
        expected = stored
    else:
        assert stored == 0  # the transaction died with its process: nothing of it is visible
        expected = None
    # Importing the same file again completes it: what was stored is skipped, the rest applied.
    report = import_file(app, path)
    assert report.applied + report.skipped == commands
    assert (report.skipped == commands) == (point == "after_commit")
    if expected is not None:
        assert app.position() - before == expected
    else:
        assert app.position() - before == report.events > 0
    from commands.audit_verify import verify_ledger

    assert verify_ledger(app).ok


def test_a_large_import_completes_on_postgres(tmp_path, monkeypatch):
    """73 000 events in one transaction: psycopg's pipeline mode deadlocked on this once."""
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
        done = subprocess.run([sys.executable, "-m", "cli.main", "--store", url, "--operator",
                               operator, "import", str(path), "--quiet"],
                              capture_output=True, text=True, timeout=240, check=False)
        assert done.returncode == 0, done.stderr
    finally:
        drop_postgres_schemas()
