"""Operators kept apart, history that nobody may rewrite, durability settings."""

from __future__ import annotations

import sqlite3
from datetime import date

import pytest

from cli.db import doctor_report
from cli.main import main
from commands.billing import bill, invoicing_state
from eventstore.app import open_store
from eventstore.config import store_config
from ledger.errors import StoreError
from projections.charges import charges_as_of
from projections.history import known_at
from tests.conftest import (
    POSTGRES_ADMIN,
    activate,
    adopt,
    jsonl,
    need_postgres,
    postgres_operator,
    register,
    sign,
)
from tests.test_invoicing import OPERATOR


def fill(app, customer: str, domain: str):
    from commands.importer import import_lines

    adopt(app)
    import_lines(app, jsonl(OPERATOR, register(customer), sign(domain, customer), activate(domain)))
    bill(app, date(2026, 12, 31), date(2027, 1, 5))


def two_operators(backend, tmp_path, monkeypatch):
    if backend == "sqlite":
        path = str(tmp_path / "shared.sqlite3")
        return open_store(path, "megalis"), open_store(path, "sommenum")
    need_postgres()
    url_a, op_a = postgres_operator(monkeypatch)
    url_b, op_b = postgres_operator(monkeypatch)
    return open_store(url_a, op_a), open_store(url_b, op_b)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_one_operator_cannot_see_another_s_customers_charges_or_invoices(
        backend, tmp_path, monkeypatch):
    from tests.conftest import drop_postgres_schemas

    a, b = two_operators(backend, tmp_path, monkeypatch)
    try:
        fill(a, "lanvenec", "lanvenec.fr")
        fill(b, "amiens", "amiens-metropole.fr")
        for app, mine, theirs in ((a, "lanvenec", "amiens"), (b, "amiens", "lanvenec")):
            charges = charges_as_of(known_at(app), date(2028, 12, 31))
            assert {c.customer for c in charges} == {mine}
            documents = invoicing_state(app).documents.values()
            assert {d["buyer"]["customer"] for d in documents} == {mine}
            assert [n for n in invoicing_state(app).documents] == ["F-2027-000001", "F-2027-000002"]
            from ledger.identity import customer_id

            assert app.repository.get(customer_id(mine)).key == mine
            with pytest.raises(Exception, match="not found"):
                app.repository.get(customer_id(theirs))
    finally:
        a.close()
        b.close()
        if backend == "postgres":
            drop_postgres_schemas()


@pytest.mark.parametrize("name", ["Megalis", "1st", "a-b", "x; DROP TABLE y", "é", "a" * 31])
def test_operator_names_are_checked_before_any_sql(name):
    with pytest.raises(StoreError, match="is not allowed"):
        store_config(POSTGRES_ADMIN, name)


def test_bad_operator_on_the_command_line(capsys, tmp_path):
    assert main(["--store", str(tmp_path / "x.sqlite3"), "--operator", "a;b", "charges"]) == 1
    assert "operator name 'a;b' is not allowed" in capsys.readouterr().err


def test_postgres_store_must_be_initialised_first(monkeypatch):
    need_postgres()
    with pytest.raises(StoreError, match="not initialised: run `ledger db init"):
        open_store(POSTGRES_ADMIN, "nobodyhere")


def test_sqlite_history_is_append_only(tmp_path):
    from commands.importer import import_lines

    store = str(tmp_path / "ledger.sqlite3")
    import_lines(open_store(store), jsonl(register()))
    connection = sqlite3.connect(store)
    row = "(1, '2020-01-01T00:00:00.000000Z', 'x', 1, 'customer.registered', 1, '{}', '{}', x'00')"
    for statement in ("UPDATE ledger_log SET event = 'x.y'", "DELETE FROM ledger_log",
                      f"INSERT OR REPLACE INTO ledger_log VALUES {row}",
                      f"REPLACE INTO ledger_log VALUES {row.replace('(1,', '(3,')}"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            connection.execute(statement)
    assert connection.execute("SELECT COUNT(*) FROM ledger_log").fetchone()[0] == 2


def test_postgres_history_is_append_only_for_the_writer_and_even_the_owner(monkeypatch):
    import psycopg
    from psycopg.sql import SQL, Identifier

    from tests.conftest import drop_postgres_schemas

    need_postgres()
    writer_url, operator = postgres_operator(monkeypatch)
    app = open_store(writer_url, operator)
    try:
        from commands.importer import import_lines

        import_lines(app, jsonl(register()))
        table = SQL("{0}.ledger_log").format(Identifier(f"ledger_{operator}"))
        raw = SQL("INSERT INTO {0} VALUES (1, '2020-01-01', gen_random_uuid(), 1, "
                  "'customer.registered', 1, '{{}}', '{{}}', '\\x00')").format(table)
        statements = [SQL("UPDATE {0} SET event = 'rewritten.x'").format(table),
                      SQL("DELETE FROM {0}").format(table),
                      SQL("TRUNCATE {0}").format(table)]
        for url, expected in ((writer_url, "permission denied"),
                              (POSTGRES_ADMIN, "append-only")):
            with psycopg.connect(url) as conn:
                for statement in statements:
                    with pytest.raises(psycopg.Error, match=expected):
                        conn.execute(statement)
                    conn.rollback()
        # The writer may not insert rows of its choosing: only ledger_append.
        with psycopg.connect(writer_url) as conn:
            with pytest.raises(psycopg.Error, match="permission denied"):
                conn.execute(raw)
        # Replication mode switches ordinary triggers off, not these.
        with psycopg.connect(POSTGRES_ADMIN) as conn:
            conn.execute("SET session_replication_role = replica")
            with pytest.raises(psycopg.Error, match="append-only"):
                conn.execute(statements[0])
            conn.rollback()
        # Even the owner's raw INSERT gets the next position, the database's time and a leaf.
        with psycopg.connect(POSTGRES_ADMIN) as conn:
            conn.execute(raw)
            row = conn.execute(SQL("SELECT position, recorded_at > now() - interval '1 hour', "
                                   "length(leaf) FROM {0} ORDER BY position DESC LIMIT 1"
                                   ).format(table)).fetchone()
            conn.rollback()
        assert row == (3, True, 32)
        with psycopg.connect(POSTGRES_ADMIN) as conn:
            count = conn.execute(SQL("SELECT COUNT(*) FROM {0}").format(table)).fetchone()[0]
        assert count == 2  # the customer and its command receipt, untouched
    finally:
        app.close()
        drop_postgres_schemas()


def test_doctor_reports_durability(store, app, backend, capsys):
    report = doctor_report(store_config(store), app)
    if backend == "sqlite":
        assert report["settings"] == {"journal_mode": "wal", "synchronous": "FULL"}
        assert report["append_only"] == ["ledger_log_append", "ledger_log_no_delete",
                                         "ledger_log_no_update"]
    else:
        assert report["settings"]["synchronous_commit"] == "on"
        assert report["settings"]["connected_as"].endswith("_writer")
        assert report["append_only"] == ["ledger_append_only", "ledger_assign",
                                         "ledger_no_truncate"]
    assert report["versions"]["eventsourcing"].startswith("9.5")
    assert main(["--store", store, "doctor"]) == 0
    assert "append-only triggers: ledger_" in capsys.readouterr().out


def test_db_init_on_the_command_line(capsys, monkeypatch):
    from tests.conftest import _SCHEMAS, drop_postgres_schemas

    need_postgres()
    _SCHEMAS.append("ledger_clinit")
    try:
        assert main(["db", "init", "--store", POSTGRES_ADMIN, "--operator", "clinit"]) == 0
        out = capsys.readouterr().out
        assert "Write with: --store postgresql://ledger_clinit_writer@" in out
        assert main(["db", "init", "--store", POSTGRES_ADMIN, "--operator", "clinit"]) == 0
        capsys.readouterr()
        # The URL's libpq parameters are in the URL it says to write with, which works.
        assert main(["db", "init", "--store", f"{POSTGRES_ADMIN}?sslmode=disable&"
                     "application_name=clinit", "--operator", "clinit"]) == 0
        said = capsys.readouterr().out.split("Write with: --store ")[1].split()
        assert said[0].endswith("?sslmode=disable&application_name=clinit")
        assert said[1:] == ["--operator", "clinit"]
        assert main(["--store", said[0], "--operator", "clinit", "customers", "--json"]) == 0
    finally:
        drop_postgres_schemas()


def test_postgres_statistics_are_refreshed_after_a_large_write(monkeypatch):
    """The writer role cannot ANALYZE tables it does not own: after a write that makes a tenth of
    the log new, it does so through ledger_analyze; an older schema without it is left alone."""
    import psycopg
    from psycopg.sql import SQL, Identifier

    from tests.conftest import drop_postgres_schemas

    need_postgres()
    writer_url, operator = postgres_operator(monkeypatch)
    schema = f"ledger_{operator}"
    app = open_store(writer_url, operator)

    def analyzed() -> int:
        with psycopg.connect(POSTGRES_ADMIN) as conn:
            row = conn.execute("SELECT coalesce(analyze_count, 0) FROM pg_stat_user_tables "
                               "WHERE schemaname = %s AND relname = 'ledger_log'",
                               (schema,)).fetchone()
            return row[0]

    def wait_for(count: int) -> int:
        # The statistics collector publishes counts at the end of the analyzing transaction.
        for _ in range(50):
            if analyzed() >= count:
                break
            __import__("time").sleep(0.1)
        return analyzed()

    try:
        from commands.importer import import_lines

        import_lines(app, jsonl(register()))
        before = analyzed()
        app.recorder.checkpoint_wal(10)  # a small write: nothing
        assert analyzed() == before
        app.recorder.checkpoint_wal(app.recorder.ANALYZE_MINIMUM)
        assert wait_for(before + 1) == before + 1
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(SQL("DROP FUNCTION {0}.ledger_analyze()").format(Identifier(schema)))
        app.recorder.checkpoint_wal(app.recorder.ANALYZE_MINIMUM)  # no error, nothing done
        assert analyzed() == before + 1
    finally:
        app.close()
        drop_postgres_schemas()
