"""``ledger db init`` and ``ledger doctor``: set a store up, and say how it is set up."""

from __future__ import annotations

import argparse
import platform
import sqlite3
from importlib.metadata import PackageNotFoundError, version

from commands.output import print_json
from commands.store import EVENTS_TABLE, open_store, store_config


def add_parsers(commands, common: argparse.ArgumentParser) -> None:
    db = commands.add_parser("db", parents=[common], help="set the store up")
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    actions.add_parser("init", parents=[common],
                       help="create the operator's tables, append-only protection and writer role")
    doctor = commands.add_parser("doctor", parents=[common],
                                 help="print the store, schema, versions and durability settings")
    doctor.add_argument("--json", action="store_true")


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def run_db(args: argparse.Namespace) -> int:
    config = store_config(getattr(args, "store", None), getattr(args, "operator", None))
    if config.kind == "sqlite":
        open_store(config, create=True)
        print(f"SQLite store {config.location} ready: UPDATE and DELETE of events refused by "
              "triggers.")
        return 0
    from commands import pgstore

    for line in pgstore.init_operator(config):
        print(line)
    role = pgstore.writer_role(config.schema)
    env = config.env
    print(f"Write with: --store postgresql://{role}@{env['POSTGRES_HOST']}:{env['POSTGRES_PORT']}/"
          f"{env['POSTGRES_DBNAME']} --operator {config.operator}")
    return 0


def doctor_report(config, app) -> dict[str, object]:
    report: dict[str, object] = {
        "store": config.kind,
        "location": config.location,
        "operator": config.operator,
        "schema": config.schema,
        "events": app.recorder.max_notification_id() or 0,
        "versions": {
            "python": platform.python_version(),
            "territorial-ledger": _version("territorial-ledger"),
            "eventsourcing": _version("eventsourcing"),
            "orjson": _version("orjson"),
        },
    }
    if config.kind == "sqlite":
        with app.recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute("PRAGMA journal_mode")
            journal = cursor.fetchone()[0]
            cursor.execute("PRAGMA synchronous")
            synchronous = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[cursor.fetchone()[0]]
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                           "AND tbl_name = 'stored_events' ORDER BY name")
            triggers = [row[0] for row in cursor.fetchall()]
        report["versions"]["sqlite"] = sqlite3.sqlite_version  # type: ignore[index]
        report["settings"] = {"journal_mode": journal, "synchronous": synchronous}
        report["append_only"] = triggers
    else:
        from commands import pgstore

        settings = pgstore.settings(app)
        report["versions"]["postgresql"] = settings.pop("server_version")  # type: ignore[index]
        report["versions"]["psycopg"] = _version("psycopg")  # type: ignore[index]
        report["settings"] = settings
        with app.recorder.datastore.get_connection() as conn:
            rows = conn.execute(
                "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = %s AND NOT t.tgisinternal ORDER BY tgname",
                (config.schema, EVENTS_TABLE)).fetchall()
        report["append_only"] = [row["tgname"] if isinstance(row, dict) else row[0] for row in rows]
    return report


def run_doctor(args: argparse.Namespace) -> int:
    config = store_config(getattr(args, "store", None), getattr(args, "operator", None))
    report = doctor_report(config, open_store(config))
    if args.json:
        print_json(report)
        return 0
    print(f"store      {report['store']} {report['location']}")
    if report["schema"]:
        print(f"schema     {report['schema']}")
    print(f"operator   {report['operator'] or '(default)'}")
    print(f"events     {report['events']}")
    for name, value in report["versions"].items():  # type: ignore[union-attr]
        print(f"version    {name} {value}")
    for name, value in report["settings"].items():  # type: ignore[union-attr]
        print(f"setting    {name} = {value}")
    protection = ", ".join(report["append_only"]) or "NONE — run ledger db init"  # type: ignore[arg-type]
    print(f"append-only triggers: {protection}")
    return 0


def run(args: argparse.Namespace) -> int:
    return run_db(args) if args.command == "db" else run_doctor(args)
