"""Build the benchmark's ledger in a store that is kept, billed once if asked, for the
``*_pairs`` comparisons.

    python -m benchmarks.build_store --events 1000000 --store /tmp/seed.sqlite3 [--bill]
    python -m benchmarks.build_store --events 1000000 \\
        --postgres postgresql://postgres@127.0.0.1:5432/test --operator bench1m [--bill]

Prints the store and operator to give the other benchmarks (for PostgreSQL, a new operator
schema written by its writer role). The ledger is the generator's, imported in files of
10 000 subscriptions with the code of ``ledger import``; ``--bill`` then runs the billing of
the benchmarks (through 2028-12-31, issued 2029-01-05), as ``ledger bill`` does.

A PostgreSQL store is left in place; drop it when done, as an administrator:
``DROP SCHEMA "ledger_NAME" CASCADE; DROP ROLE "ledger_NAME_writer";``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import date
from pathlib import Path

from benchmarks.generate import write
from benchmarks.run import CHUNK, EVENTS_PER_SUBSCRIPTION, set_up


def build(app, events: int, on_file=None) -> None:
    """The generator's ledger of about ``events`` events, imported into ``app``."""
    from commands.importer import import_file

    set_up(app)
    subscriptions = max(100, round(events / EVENTS_PER_SUBSCRIPTION))
    with tempfile.TemporaryDirectory(prefix="build-store-") as folder:
        for first in range(0, subscriptions, CHUNK):
            path = Path(folder) / f"commands-{first}.jsonl"
            write(path, min(CHUNK, subscriptions - first), seed=first,
                  prefix=f"b{first // CHUNK}")
            import_file(app, path, by="benchmark")
            if on_file is not None:
                on_file(first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--store", help="a SQLite file to create")
    parser.add_argument("--postgres", help="a PostgreSQL URL (superuser) to create a schema in")
    parser.add_argument("--operator", help="the operator schema to create (PostgreSQL)")
    parser.add_argument("--bill", action="store_true")
    args = parser.parse_args()
    from eventstore.app import open_store

    if args.postgres:
        from eventstore.config import store_config
        from eventstore.postgres_schema import init_operator, writer_role

        if not args.operator:
            parser.error("--postgres needs --operator")
        config = store_config(args.postgres, args.operator)
        init_operator(config)
        store = args.postgres.replace("//postgres@", f"//{writer_role(config.schema)}@", 1)
        operator = args.operator
    elif args.store:
        if Path(args.store).exists():
            parser.error(f"{args.store} exists")
        store, operator = args.store, None
    else:
        parser.error("give --store or --postgres")
    app = open_store(store, operator)
    build(app, args.events,
          lambda first: print(f"imported from subscription {first}", file=sys.stderr))
    if args.bill:
        from commands.billing import bill

        report = bill(app, date(2028, 12, 31), date(2029, 1, 5), by="benchmark",
                      keep_documents=False)
        print(f"billed: {report.count} documents", file=sys.stderr)
    print(f"store: {app.position()} events", file=sys.stderr)
    app.close()
    print(store, operator or "")


if __name__ == "__main__":
    main()
