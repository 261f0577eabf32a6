"""How events are stored: canonical entries, store-set positions and times, typed fields."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import orjson
import pytest
import rfc8785
from freezegun import freeze_time
from hypothesis import given
from hypothesis import strategies as st

from eventstore.canonical import NotCanonical, canonical_json, is_canonical
from ledger.identity import subscription_id
from tests.conftest import jsonl, register, sign

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(alphabet=st.characters(max_codepoint=0xD7FF)), inner, max_size=4),
    max_leaves=12,
)


@given(json_values)
def test_canonical_json_is_rfc_8785(value):
    assert canonical_json(value) == rfc8785.dumps(value)


def test_canonical_json_refuses_what_has_no_canonical_form():
    with pytest.raises(NotCanonical):
        canonical_json({"n": 2**60})
    assert not is_canonical(b'{"b":1,"a":2}')
    assert not is_canonical(b'{"a": 1}')
    assert not is_canonical(b'{"a":1.50}')
    assert is_canonical(b'{"a":1,"b":"\\u001f\xc3\xa9"}')


def test_entries_get_consecutive_positions_from_the_store(app, apply):
    before = app.position()
    apply(register(), sign())
    entries = list(app.scan(before + 1))
    assert [e.id for e in entries] == list(range(before + 1, before + 1 + len(entries)))
    assert len({e.recorded_at for e in entries}) == 1  # one transaction, one recorded time


def test_recorded_time_is_the_store_clock_not_the_time_events_were_made(backend, app, apply):
    if backend == "sqlite":
        # The single writer reads its clock when it appends (frozen here, after the set-up).
        with freeze_time("2030-03-17T08:00:00Z"):
            apply(register(), sign())
        assert app.recorder.entry(app.position()).recorded_at == datetime(2030, 3, 17, 8,
                                                                          tzinfo=UTC)
        # A clock set back never makes time go back along the log.
        with freeze_time("2030-01-01T00:00:00Z"):
            apply(register("plouay"))
        assert app.recorder.entry(app.position()).recorded_at == datetime(2030, 3, 17, 8,
                                                                          tzinfo=UTC)
    else:
        # PostgreSQL's clock sets the time: a frozen client clock changes nothing.
        with freeze_time("2001-01-01T00:00:00Z"):
            apply(register(), sign())
        last = app.recorder.entry(app.position())
        assert abs(last.recorded_at - datetime.now(UTC)) < timedelta(minutes=5)


def test_events_carry_the_store_recorded_time_as_timestamp(app, apply):
    apply(register(), sign())
    events = app.events_of(subscription_id("lanvenec.fr"))
    assert {e.timestamp for e in events} == {app.recorder.entry(events[0].log_position).recorded_at}


def test_business_dates_are_stored_as_iso_text_and_read_back_as_dates(app, apply):
    apply(register(), sign())
    signed = app.events_of(subscription_id("lanvenec.fr"))[-1]
    assert type(signed).__name__ == "OrderSigned"
    assert signed.received_on == date(2026, 3, 17) and type(signed.received_on) is date
    entry = app.recorder.entry(signed.log_position)
    assert orjson.loads(entry.data)["received_on"] == "2026-03-17"
    assert entry.event == "subscription.order_signed" and entry.event_version == 2


def test_every_entry_says_who_imported_it_from_which_file_and_line(app, tmp_path):
    from commands.importer import import_file
    from tests.conftest import jsonl

    path = tmp_path / "letters.jsonl"
    path.write_text("\n".join(jsonl(register(), sign())) + "\n", encoding="utf-8")
    import_file(app, path, by="Marie Le Gall")
    signed = app.events_of(subscription_id("lanvenec.fr"))[-1]
    meta = orjson.loads(app.recorder.entry(signed.log_position).metadata)
    import hashlib

    assert meta["actor"] == "Marie Le Gall" and meta["via"] == "import"
    assert meta["source"] == {"file": "letters.jsonl",
                              "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert meta["line"] == 2 and meta["command"].startswith("t")


def test_an_aggregate_is_folded_a_page_of_entries_at_a_time(app, apply, monkeypatch):
    """A long history (the invoicing aggregate's) is read in pages that pick up after the last
    version read, and folds to the same aggregate as reading it whole."""
    from eventstore.app import fold
    from tests.conftest import activate, add_storage

    apply(register(), sign(), activate(), add_storage(extra_gb_packs=[20]),
          add_storage(extra_gb_packs=[50]))
    aggregate_id = subscription_id("lanvenec.fr")
    whole = fold(app.events_of(aggregate_id))
    pages, read = [], app.recorder.select_events

    def reading(*args, **kwargs):
        page = read(*args, **kwargs)
        pages.append((kwargs.get("gt"), len(page)))
        return page
    monkeypatch.setattr(app.recorder, "select_events", reading)
    monkeypatch.setattr(type(app), "PAGE", 2)
    paged = app.aggregate(aggregate_id)
    assert whole.version >= 5 and paged.version == whole.version
    assert [after for after, _ in pages] == [None, *range(2, whole.version + 1, 2)]
    assert sum(size for _, size in pages) == whole.version
    assert vars(paged) == vars(whole)


# Opening a store: what --store names is checked before anything is read or written.

def _run(capsys, *argv):
    from cli.main import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def libpq_environment(monkeypatch):
    """libpq's variables for the URL's parameters, set outside the test or by it, restored
    after: the ledger must never set them (it gives the parameters to each connection)."""
    import os

    for variable in ("PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY", "PGSSLCRL",
                     "PGCONNECT_TIMEOUT", "PGAPPNAME"):
        if variable in os.environ:
            monkeypatch.setenv(variable, os.environ[variable])
        else:  # recorded as absent, so removed again after the test
            monkeypatch.setenv(variable, "")
            monkeypatch.delenv(variable)


@pytest.mark.parametrize(("url", "message"), [
    ("postgresql://postgres:s3cret@127.0.0.1:99999/test", "port '99999' is not a number from 1"),
    ("postgresql://postgres:s3cret@127.0.0.1:abc/test", "port 'abc' is not a number from 1"),
    ("postgresql://postgres:s3cret@127.0.0.1:0/test", "port 0 is not a number from 1"),
    ("postgresql://postgres:s3cret@[::1:5432/test", "its host is malformed"),
    ("postgresql://postgres:s3cret@[::1]:x/test", "port 'x' is not a number"),
    ("postgresql://postgres:s3cret@127.0.0.1:5432/", "names no database"),
    ("postgresql://postgres:s3#cret@127.0.0.1:5432/test", "must be percent-encoded"),
    ("postgresql://postgres:s3/cret@127.0.0.1:5432/test", "must be percent-encoded"),
    ("postgresql://postgres:s3cret@:5432/test", "names no host"),
    ("postgresql://postgres:s3cret@127.0.0.1/test#main", "a '#' part"),
    ("postgresql://postgres:s3cret@127.0.0.1/test?sslmode=bogus", "sslmode 'bogus' is not one of"),
    ("postgresql://postgres:s3cret@127.0.0.1/test?sslmode=", "'sslmode' has no value"),
    ("postgresql://postgres:s3cret@127.0.0.1/test?ssl=true", "parameter 'ssl' is not supported"),
    ("postgresql://postgres:s3cret@127.0.0.1/test?sslmode=require&sslmode=disable",
     "'sslmode' is given twice"),
    ("postgresql://postgres:s3cret@127.0.0.1/test?connect_timeout=soon",
     "connect_timeout 'soon' is not a whole number"),
    ("postgresql://postgres:s3cret@127.0.0.1/test?sslrootcert=/no/such/root.crt",
     "sslrootcert file '/no/such/root.crt' does not exist"),
])
def test_a_malformed_postgres_url_is_refused_naming_the_part(url, message, capsys,
                                                               libpq_environment):
    from eventstore.config import store_config
    from ledger.errors import StoreError

    with pytest.raises(StoreError, match="store URL") as refused:
        store_config(url)
    assert message in str(refused.value) and "s3cret" not in str(refused.value)
    assert "postgres:***@" in str(refused.value)
    for command in (["customers"], ["doctor"], ["db", "init"]):
        code, _, err = _run(capsys, "--store", url, *command)
        assert code == 1 and err.startswith("error: ") and message in err
        assert len(err.strip().splitlines()) == 1 and "s3cret" not in err


def test_url_parameters_are_checked_and_given_to_libpq(libpq_environment):
    import os

    from eventstore.config import store_config

    config = store_config("postgresql://u@db.example/ledger?sslmode=verify-full"
                          "&connect_timeout=4&application_name=ledger")
    assert config.parameters == {"sslmode": "verify-full", "connect_timeout": "4",
                                 "application_name": "ledger"}
    assert "?sslmode=verify-full" in config.description
    # Given to each connection, not to the process: another store opened later by the same
    # process (the API's, a test's) does not inherit them.
    assert not any(os.environ.get(variable) == value for variable, value in (
        ("PGSSLMODE", "verify-full"), ("PGCONNECT_TIMEOUT", "4"), ("PGAPPNAME", "ledger")))
    assert store_config("postgresql://u@[::1]/ledger").location == \
        "postgresql://u@[::1]:5432/ledger"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_sslmode_in_the_url_is_honoured(capsys, libpq_environment, monkeypatch):
    """The test server has no TLS: a URL that requires it must fail, for every command, rather
    than connect in clear; with sslmode=disable the same store is reached."""
    import os

    from eventstore.app import open_store
    from tests.conftest import (
        POSTGRES_ADMIN,
        drop_postgres_schemas,
        need_postgres,
        postgres_operator,
    )

    need_postgres()
    writer, operator = postgres_operator(monkeypatch)
    try:
        for url, command in ((writer, ["customers"]), (writer, ["doctor"]),
                             (POSTGRES_ADMIN, ["db", "init"])):
            code, _, err = _run(capsys, "--store", f"{url}?sslmode=require", "--operator",
                                operator, *command)
            assert code == 1 and "server does not support SSL, but SSL was required" in err
        app = open_store(f"{writer}?sslmode=disable", operator, create=False)
        assert app.recorder.datastore.pool.kwargs["sslmode"] == "disable"
        assert app.position() == 0
        app.close()
    finally:
        assert "PGSSLMODE" not in os.environ  # given to the connections, not the process
        drop_postgres_schemas()


@pytest.mark.parametrize("problem", ["port", "database"])
def test_why_postgres_cannot_be_reached_is_said_at_once(problem, capsys, libpq_environment):
    """Not "couldn't get a connection after 10.00 sec": libpq's reason, from the first direct
    connection (the pool's message, after its wait, is the one it must not be)."""
    from tests.conftest import POSTGRES_ADMIN, need_postgres

    need_postgres()
    if problem == "port":
        url, reason = (POSTGRES_ADMIN.replace(":5432/", f":{_free_port()}/"),
                       "Connection refused")
    else:
        url, reason = POSTGRES_ADMIN.rsplit("/", 1)[0] + "/no_such_db", \
            'database "no_such_db" does not exist'
    for command in ("customers", "doctor"):
        code, _, err = _run(capsys, "--store", url, command)
        assert code == 1 and reason in err and "couldn't get a connection" not in err
        assert len(err.strip().splitlines()) == 1


@pytest.fixture
def foreign_files(tmp_path):
    """Another application's SQLite database (rollback journal, and WAL), and their bytes."""
    import sqlite3

    files = {}
    for name, mode in (("app.sqlite3", "delete"), ("wal.db", "wal")):
        path = tmp_path / name
        connection = sqlite3.connect(path)
        connection.execute(f"PRAGMA journal_mode = {mode}")
        connection.execute("CREATE TABLE invoices (number TEXT)")
        connection.execute("INSERT INTO invoices VALUES ('F-1')")
        connection.commit()
        connection.close()
        files[path] = path.read_bytes()
    return files


def test_another_applications_sqlite_file_is_refused_and_left_untouched(
        capsys, tmp_path, foreign_files):
    commands = tmp_path / "commands.jsonl"
    commands.write_text("\n".join(jsonl(register())) + "\n")
    for path, before in foreign_files.items():
        for command in (["customers"], ["doctor"], ["charges"], ["db", "init"],
                        ["import", str(commands)]):
            code, out, err = _run(capsys, "--store", str(path), *command)
            assert code == 1 and out == "", (command, out)
            assert err == (f"error: store {path} is not a ledger store: it is another SQLite "
                           "database (tables invoices); nothing was written to it — check "
                           "--store\n")
        assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.sqlite3", "commands.jsonl",
                                                          "wal.db"]


def test_a_foreign_database_whose_tables_are_still_in_its_wal_is_refused(tmp_path):
    """The first check reads the file alone; tables only in the write-ahead log (its
    application still has it open) are seen by the ledger's own check."""
    import sqlite3

    from eventstore.app import open_store
    from ledger.errors import StoreError

    path = tmp_path / "busy.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode = wal")
    other.execute("PRAGMA wal_autocheckpoint = 0")
    other.execute("CREATE TABLE invoices (number TEXT)")
    for create in (False, True):
        with pytest.raises(StoreError, match="not a ledger store: it is another SQLite database"):
            open_store(str(path), create=create)
    assert [row[0] for row in other.execute("SELECT name FROM sqlite_master")] == ["invoices"]
    other.close()


def test_an_empty_file_is_a_store_only_once_written(capsys, tmp_path):
    import sqlite3

    empty, blank = tmp_path / "empty.sqlite3", tmp_path / "blank.sqlite3"
    empty.touch()
    sqlite3.connect(blank).execute("VACUUM")  # a SQLite database without any table
    code, out, err = _run(capsys, "--store", str(empty), "customers")
    assert (code, out) == (1, "") and f"store {empty} is an empty file, not a ledger store" in err
    code, out, err = _run(capsys, "--store", str(blank), "customers")
    assert (code, out) == (1, "") and f"store {blank} is not a ledger store: it has no ledger " \
        "log" in err
    for path in (empty, blank):
        assert _run(capsys, "--store", str(path), "db", "init")[0] == 0
        code, out, _ = _run(capsys, "--store", str(path), "customers")
        assert code == 0 and "No customer is registered." in out


def test_ledger_stores_still_open_for_reading(tmp_path, capsys):
    """A store written by an earlier version (the frozen one), plainly and read-only, and a
    store created by a write."""
    import shutil
    from pathlib import Path

    frozen = tmp_path / "frozen.sqlite3"
    shutil.copyfile(Path(__file__).parent / "data" / "frozen-store-v1.sqlite3", frozen)
    for store in (str(frozen), f"file:{frozen}?mode=ro"):
        code, out, err = _run(capsys, "--store", store, "customers", "--json")
        assert code == 0 and orjson.loads(out), err
    fresh = tmp_path / "fresh.sqlite3"
    commands = tmp_path / "commands.jsonl"
    commands.write_text("\n".join(jsonl(register())) + "\n")
    assert _run(capsys, "--store", str(fresh), "import", str(commands))[0] == 0
    assert _run(capsys, "--store", str(fresh), "customers")[0] == 0
