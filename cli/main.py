"""The ``ledger`` command line: parse, call the application service, print.

Every error a user can cause ends as one readable message and a non-zero exit
code, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date
from itertools import groupby

from cli.common import add_known_at, horizon, iso_day, known_title, open_ledger
from ledger.errors import LedgerError

#: Every command: the module that defines and runs it, and what it does. Only the module of the
#: command given is imported (``ledger --help`` imports none of them): start-up stays short.
COMMANDS: dict[str, tuple[str, str]] = {
    "import": ("cli.main", "apply a JSON Lines file of commands, all or nothing"),
    "charges": ("cli.main", "charges due as of a date, with totals"),
    "subscription": ("cli.main", "state of one domain's subscription as of a date"),
    "customers": ("cli.main", "the customers the ledger holds, with their domains"),
    "subscriptions": ("cli.main", "every domain's subscription and its state as of a date"),
    "tariff": ("cli.tariff", "tariff schedules (barèmes)"),
    "bill": ("cli.invoice", "issue invoices for the charges due, not yet invoiced"),
    "invoice": ("cli.invoice", "one issued document"),
    "invoices": ("cli.invoice", "every issued document; the journal; the PES file"),
    "corrections": ("cli.invoice",
                    "invoices that late news made wrong, and the corrections proposed"),
    "audit": ("cli.audit", "signed checkpoints, verification and proofs of the history"),
    "history": ("cli.audit", "the timeline of a customer or a domain: position, "
                "recorded time, business date, event, actor, source"),
    "explain": ("cli.dispute", "the bases de la liquidation of a document (or of a "
                "domain's charges): rule, tariff, facts and entries, computation"),
    "diff": ("cli.dispute", "what changed in the charges between two states of "
             "knowledge, and which entries explain each change"),
    "dossier": ("cli.dispute", "a self-contained zip for a dispute or an audit, "
                "checkable without the ledger"),
    "forecast": ("cli.forecast", "charges by month or year over a range, for the "
                 "budget; what-ifs never write"),
    "accruals": ("cli.forecast", "at a year-end: the part of each period earned "
                 "before and after (produits constatés d'avance), invoiced-not-due and "
                 "due-not-invoiced"),
    "serve": ("cli.serve", "the HTTP API and the auditors' web view (docs/api.md)"),
    "token": ("cli.serve", "API tokens: create, revoke, list"),
    "db": ("cli.db", "set the store up"),
    "doctor": ("cli.db", "print the store, schema, versions and durability settings"),
}
#: The function that adds each module's commands to the parser.
ADDERS = {"cli.tariff": "add_parser"}


class _Commands:
    """The subparsers, as modules see them: each command gets its help from :data:`COMMANDS`."""

    def __init__(self, subparsers) -> None:
        self.subparsers = subparsers

    def add_parser(self, name: str, **options):
        return self.subparsers.add_parser(name, help=COMMANDS[name][1], **options)


def chosen_command(argv: Sequence[str]) -> str | None:
    """The command named on a command line (skipping the values of --store and --operator)."""
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token in ("--store", "--operator"):
            skip = True
        elif not token.startswith("-"):
            return token if token in COMMANDS else None
    return None


def build_parser(command: str | None = "*") -> argparse.ArgumentParser:
    """The parser of ``command`` (``*``: of every command); the others are listed, not built."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store", default=argparse.SUPPRESS,
        help="SQLite file or postgresql://user@host:port/dbname URL "
             "(default: $LEDGER_STORE, else ledger.sqlite3)",
    )
    common.add_argument(
        "--operator", default=argparse.SUPPRESS,
        help="whose ledger: its own PostgreSQL schema or SQLite file (default: $LEDGER_OPERATOR)",
    )
    parser = argparse.ArgumentParser(
        prog="ledger", parents=[common],
        description="Event-sourced subscription ledger (Suite Territoriale order forms).",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands = _Commands(subparsers)
    wanted = {module for module, _ in COMMANDS.values()} if command == "*" else \
        {COMMANDS[command][0]} if command in COMMANDS else set()
    if "cli.main" in wanted:
        _add_own(commands, common)
    for module in sorted(wanted - {"cli.main"}):
        import importlib

        getattr(importlib.import_module(module), ADDERS.get(module, "add_parsers"))(
            commands, common)
    built = set(subparsers.choices)
    for name, (_, what) in COMMANDS.items():
        if name not in built:
            subparsers.add_parser(name, help=what, add_help=False)
    return parser


def _add_own(commands: _Commands, common: argparse.ArgumentParser) -> None:
    """The commands this module runs itself."""
    importing = commands.add_parser(
        "import", parents=[common])
    importing.add_argument("file", help="JSON Lines file, one command per line (docs/commands.md)")
    importing.add_argument("--quiet", action="store_true", help="print nothing on success")
    importing.add_argument("--by", help="who imports the file (recorded with every entry; "
                                        "default: $LEDGER_ACTOR, else the system user)")

    as_of_help = "business date YYYY-MM-DD (default: today)"

    charges = commands.add_parser(
        "charges", parents=[common])
    charges.add_argument("--as-of", type=iso_day, help=as_of_help)
    add_known_at(charges)
    charges.add_argument("--customer", help="only this customer's charges")
    charges.add_argument("--domain", help="only this domain's charges")
    charges.add_argument("--uninvoiced", action="store_true",
                         help="only what is due and on no invoice yet")
    charges.add_argument("--json", action="store_true", help="print a JSON array")
    charges.add_argument("--quiet", action="store_true", help="no progress bar")

    subscription = commands.add_parser(
        "subscription", parents=[common])
    subscription.add_argument("domain")
    subscription.add_argument("--as-of", type=iso_day, help=as_of_help)
    add_known_at(subscription)
    subscription.add_argument("--json", action="store_true", help="print a JSON object")

    for name in ("customers", "subscriptions"):
        listing = commands.add_parser(name, parents=[common])
        listing.add_argument("--as-of", type=iso_day, help=as_of_help)
        add_known_at(listing)
        listing.add_argument("--json", action="store_true")



def run_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cli.output import progress
    from commands.importer import import_file
    from eventstore.config import store_config

    config = store_config(getattr(args, "store", None), getattr(args, "operator", None))
    # A SQLite file this import creates is removed again if the import stores nothing: a
    # refused file leaves no trace, not even an empty ledger.
    created = Path(config.location) if config.kind == "sqlite" and not \
        config.location.startswith("file:") and config.location != ":memory:" and not \
        Path(config.location).exists() else None
    app = open_ledger(args, create=True)
    try:
        total = None
        # Counted for the progress bar only in a regular file: a pipe read here would be
        # empty for the import.
        if not args.quiet and sys.stderr.isatty() and Path(args.file).is_file():
            with open(args.file, "rb") as handle:
                total = sum(1 for _ in handle)
        with progress(f"importing {args.file}", total, quiet=args.quiet) as advance:
            report = import_file(app, args.file, on_line=advance, by=args.by)
    except BaseException:
        if created is not None and app.position() == 0:
            app.close()
            for path in (created, Path(f"{created}-wal"), Path(f"{created}-shm")):
                path.unlink(missing_ok=True)
        raise
    if not args.quiet:
        print(
            f"{report.source}: {report.applied} command(s) applied, "
            f"{report.skipped} already applied; {report.events} event(s) recorded "
            f"in {config.description}."
        )
    return 0


def run_charges(args: argparse.Namespace) -> int:
    from cli.output import console, print_json_array, progress
    from commands import views
    from ledger.money import format_amount
    from ledger.subscription import canonical_domain
    from projections.charges import total
    from projections.history import count_subscriptions, resolve

    as_of = args.as_of or date.today()
    app = open_ledger(args)
    domain = canonical_domain(args.domain) if args.domain else None
    upto = resolve(app, horizon(args))
    everything = domain is None and args.customer is None
    count = count_subscriptions(app, upto) if everything and not args.quiet \
        and sys.stderr.isatty() else None
    with progress("replaying subscriptions", count, quiet=count is None) as advance:
        found = views.charge_objects(app, as_of, upto, customer=args.customer, domain=domain,
                                     uninvoiced=args.uninvoiced, on_subscription=advance)
        if args.json:
            print_json_array(charge.to_json() for charge in found)
            return 0
        charges = list(found)
    from rich.table import Table

    title = f"Charges as of {as_of}" + known_title(app, args, upto)
    if args.uninvoiced:
        title += ", not yet invoiced"
    table = Table(title=title, title_justify="left")
    # Text may wrap on a narrow terminal; dates and amounts never do (a cut amount is a wrong one).
    for name in ("Customer", "Domain", "Order"):
        table.add_column(name, overflow="fold")
    table.add_column("Charge date", no_wrap=True, min_width=10)
    table.add_column("Period", overflow="fold")
    table.add_column("What", overflow="fold")
    table.add_column("Rule", no_wrap=True)
    table.add_column("Tariff line", overflow="fold")
    table.add_column("Amount € HT", justify="right", no_wrap=True, min_width=11)
    for customer, rows in groupby(charges, key=lambda c: c.customer):
        rows = list(rows)
        for c in rows:
            table.add_row(c.customer, c.domain, c.order, str(c.charge_date),
                          f"{c.period_start} → {c.period_end}", c.basis, c.rule, c.line,
                          format_amount(c.amount))
        table.add_row("", "", "", "", "", f"total {customer}", "", "",
                      format_amount(total(rows)), end_section=True)
    table.add_row("", "", "", "", "", "TOTAL", "", "", format_amount(total(charges)),
                  style="bold")
    out = console()
    out.print(table)
    if not charges:
        out.print("No charge is due by that date.")
    return 0


def run_subscription(args: argparse.Namespace) -> int:

    from cli.output import console, print_json
    from projections.history import resolve

    as_of = args.as_of or date.today()
    app = open_ledger(args)
    from ledger.subscription import canonical_domain

    domain = canonical_domain(args.domain)
    from commands import views

    data = views.subscription(app, domain, as_of, resolve(app, horizon(args)))
    if args.json:
        print_json(data)
        return 0
    from rich.table import Table

    table = Table(title=f"{domain} as of {as_of}", title_justify="left", show_header=False)
    table.add_column("field")
    table.add_column("value")
    for key, value in data.items():
        if key in ("domain", "as_of") or value is None:
            continue
        if isinstance(value, list):
            value = ", ".join(f"{v} GB" for v in value) or "none"
        table.add_row(key.replace("_", " "), str(value))
    console().print(table)
    return 0


def run_customers(args: argparse.Namespace) -> int:

    from cli.output import console, print_json
    from commands import views
    from projections.history import resolve

    app = open_ledger(args)
    upto = resolve(app, horizon(args))
    rows = views.customers(app, upto)
    if args.json:
        print_json(rows)
        return 0
    from rich.table import Table

    table = Table(title="Customers" + known_title(app, args, upto), title_justify="left")
    for column in ("Customer", "Name", "SIRET", "Category", "Population", "Domains"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["customer"], row["name"], row["siret"], row["category_label"],
                      str(row["population"]), ", ".join(row["domains"]) or "—")
    console().print(table)
    if not rows:
        console().print("No customer is registered.")
    return 0


def run_subscriptions(args: argparse.Namespace) -> int:

    from cli.output import console, print_json
    from commands import views
    from projections.history import resolve

    as_of = args.as_of or date.today()
    app = open_ledger(args)
    upto = resolve(app, horizon(args))
    rows = views.subscriptions(app, as_of, upto)
    if args.json:
        print_json(rows)
        return 0
    from rich.table import Table

    table = Table(title=f"Subscriptions as of {as_of}" + known_title(app, args, upto),
                  title_justify="left")
    for column in ("Domain", "Customer", "Order", "State", "Activated", "Service end",
                   "Storage"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["domain"], row["customer"], row["order"], row["state"],
                      row["activated_on"] or "—", row["service_end"] or "—",
                      f"{row['storage_gb']} + {row['extra_gb']} GB")
    console().print(table)
    if not rows:
        console().print(f"No order form had been received by {as_of}.")
    return 0


#: The function that runs each command, in its module (imported only when it runs).
RUNNERS = {"import": "run_import", "charges": "run_charges", "subscription": "run_subscription",
           "customers": "run_customers", "subscriptions": "run_subscriptions",
           "history": "run_history"}


def main(argv: Sequence[str] | None = None) -> int:
    import importlib

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(chosen_command(argv)).parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return getattr(module, RUNNERS.get(args.command, "run"))(args)
    except LedgerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # a file given that cannot be read or written: say which
        where = f"{error.filename}: " if error.filename else ""
        print(f"error: {where}{error.strerror or error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: nothing more was stored", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
