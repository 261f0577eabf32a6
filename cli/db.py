"""``ledger db init`` and ``ledger doctor``: set a store up, and say how it is set up."""

from __future__ import annotations

import argparse
from urllib.parse import quote, urlencode

from cli.common import store_options
from ledger.errors import LedgerError


def add_parsers(commands, common: argparse.ArgumentParser) -> None:
    db = commands.add_parser("db", parents=[common])
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    actions.add_parser("init", parents=[common],
                       help="create the operator's log, its append-only protection and writer role")
    doctor = commands.add_parser("doctor", parents=[common])
    doctor.add_argument("--json", action="store_true")


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def run_db(args: argparse.Namespace) -> int:
    from eventstore.app import open_store
    from eventstore.config import store_config

    config = store_config(*store_options(args))
    if config.kind == "sqlite":
        open_store(config)
        print(f"SQLite store {config.location} ready: positions, recorded times and leaf hashes "
              "set by the writer; UPDATE, DELETE and out-of-order INSERT refused by triggers.")
        return 0
    from eventstore import postgres_schema as postgres

    try:
        for line in postgres.init_operator(config):
            print(line)
    except Exception as error:  # psycopg's own errors: the server cannot be reached, refused
        if type(error).__module__.startswith("psycopg"):
            reason = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
            raise LedgerError(f"cannot set up {config.description}: {reason}") from None
        raise
    role = postgres.writer_role(config.schema)
    env = config.env
    host = env["POSTGRES_HOST"]
    host = f"[{host}]" if ":" in host else host  # an IPv6 address, as the URL writes it
    # The URL's connection parameters (sslmode …) are the writer's to give too; not the
    # administrator's client certificate and key, which name the administrator.
    kept = {name: value for name, value in config.parameters.items()
            if name not in ("sslcert", "sslkey")}
    query = f"?{urlencode(kept)}" if kept else ""
    print(f"Write with: --store postgresql://{role}@{host}:{env['POSTGRES_PORT']}/"
          f"{quote(env['POSTGRES_DBNAME'])}{query} --operator {config.operator}")
    return 0


def doctor_report(config, app) -> dict[str, object]:
    import platform
    import sqlite3

    recorder = app.recorder
    settings = recorder.settings()
    versions = {
        "python": platform.python_version(),
        "territorial-ledger": _version("territorial-ledger"),
        "eventsourcing": _version("eventsourcing"),
        "orjson": _version("orjson"),
    }
    if config.kind == "sqlite":
        versions["sqlite"] = sqlite3.sqlite_version
    else:
        versions["postgresql"] = settings.pop("server_version")
        versions["psycopg"] = _version("psycopg")
    return {
        "store": config.kind,
        "location": config.location,
        "operator": config.operator,
        "schema": config.schema,
        "events": app.position(),
        "versions": versions,
        "settings": settings,
        "append_only": recorder.triggers(),
    }


def run_doctor(args: argparse.Namespace) -> int:
    from cli.output import print_json
    from eventstore.app import open_store
    from eventstore.config import store_config

    config = store_config(*store_options(args))
    report = doctor_report(config, open_store(config, create=False))
    if args.json:
        print_json(report)
        return 0
    print(f"store      {report['store']} {report['location']}")
    if report["schema"]:
        print(f"schema     {report['schema']}")
    print(f"operator   {report['operator'] or '(default)'}")
    print(f"entries    {report['events']}")
    for name, value in report["versions"].items():  # type: ignore[union-attr]
        print(f"version    {name} {value}")
    for name, value in report["settings"].items():  # type: ignore[union-attr]
        print(f"setting    {name} = {value}")
    protection = ", ".join(report["append_only"]) or "NONE — run ledger db init"  # type: ignore[arg-type]
    print(f"append-only triggers: {protection}")
    return 0


def run(args: argparse.Namespace) -> int:
    return run_db(args) if args.command == "db" else run_doctor(args)
