"""The ``ledger`` command line: parse, call the application service, print.

Every error a user can cause ends as one readable message and a non-zero exit
code, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from itertools import groupby

from rich.table import Table

from commands import (
    audit_cli,
    db_cli,
    dispute_cli,
    forecast_cli,
    invoice_cli,
    serve_cli,
    tariff_cli,
)
from commands.importer import import_file
from commands.output import console, print_json, progress
from eventstore.app import open_store, store_config
from ledger.dates import parse_iso_date
from ledger.errors import LedgerError, UnknownCustomer, UnknownDomain
from ledger.identity import customer_id
from ledger.money import format_amount
from projections.charges import charges_as_of, total
from projections.history import (
    Known,
    aggregate_known_at,
    count_subscriptions,
    iter_subscriptions_known_at,
    known_at,
    resolve,
    subscription_known_at,
    tariffs_known_at,
)
from projections.status import status_as_of


def _as_of(text: str) -> date:
    try:
        return parse_iso_date(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _known_at(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO date-time such as 2026-05-01T12:00:00+02:00, got {text!r}"
        ) from None
    # A time without offset is read as UTC, the zone of the recorded timestamps.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _position(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a log position (0, 1, 2 …), got {text!r}")
    return value


def add_known_at(parser: argparse.ArgumentParser) -> None:
    """``--known-at TIME`` / ``--known-at-position N``: read the log only up to that point."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--known-at", type=_known_at,
                       help="only entries recorded at or before this ISO date-time (UTC if no "
                            "offset)")
    group.add_argument("--known-at-position", type=_position, metavar="N",
                       help="only the entries at log positions 1 … N")


def horizon(args: argparse.Namespace) -> int | datetime | None:
    position = getattr(args, "known_at_position", None)
    return position if position is not None else getattr(args, "known_at", None)


def known_title(app, args: argparse.Namespace, upto: int) -> str:
    """How a table names what it was derived from."""
    if getattr(args, "known_at", None) is not None:
        return f", as known at {args.known_at.isoformat()} (log position {upto})"
    if getattr(args, "known_at_position", None) is not None:
        return f", as known at log position {upto}"
    return ""


def build_parser() -> argparse.ArgumentParser:
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
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    importing = commands.add_parser(
        "import", parents=[common], help="apply a JSON Lines file of commands, all or nothing")
    importing.add_argument("file", help="JSON Lines file, one command per line (docs/commands.md)")
    importing.add_argument("--quiet", action="store_true", help="print nothing on success")
    importing.add_argument("--by", help="who imports the file (recorded with every entry; "
                                        "default: $LEDGER_ACTOR, else the system user)")

    as_of_help = "business date YYYY-MM-DD (default: today)"

    charges = commands.add_parser(
        "charges", parents=[common], help="charges due as of a date, with totals")
    charges.add_argument("--as-of", type=_as_of, help=as_of_help)
    add_known_at(charges)
    charges.add_argument("--customer", help="only this customer's charges")
    charges.add_argument("--domain", help="only this domain's charges")
    charges.add_argument("--uninvoiced", action="store_true",
                         help="only what is due and on no invoice yet")
    charges.add_argument("--json", action="store_true", help="print a JSON array")
    charges.add_argument("--quiet", action="store_true", help="no progress bar")

    subscription = commands.add_parser(
        "subscription", parents=[common], help="state of one domain's subscription as of a date")
    subscription.add_argument("domain")
    subscription.add_argument("--as-of", type=_as_of, help=as_of_help)
    add_known_at(subscription)
    subscription.add_argument("--json", action="store_true", help="print a JSON object")

    for name, what in (("customers", "the customers the ledger holds, with their domains"),
                       ("subscriptions", "every domain's subscription and its state as of a "
                                         "date")):
        listing = commands.add_parser(name, parents=[common], help=what)
        listing.add_argument("--as-of", type=_as_of, help=as_of_help)
        add_known_at(listing)
        listing.add_argument("--json", action="store_true")

    tariff_cli.add_parser(commands, common)
    invoice_cli.add_parsers(commands, common)
    audit_cli.add_parsers(commands, common)
    dispute_cli.add_parsers(commands, common)
    forecast_cli.add_parsers(commands, common)
    serve_cli.add_parsers(commands, common)
    db_cli.add_parsers(commands, common)
    return parser


def run_import(args: argparse.Namespace) -> int:
    app = open_store(getattr(args, "store", None), getattr(args, "operator", None))
    total = None
    if not args.quiet and sys.stderr.isatty():
        with open(args.file, "rb") as handle:
            total = sum(1 for _ in handle)
    with progress(f"importing {args.file}", total, quiet=args.quiet) as advance:
        report = import_file(app, args.file, on_line=advance, by=args.by)
    if not args.quiet:
        print(
            f"{report.source}: {report.applied} command(s) applied, "
            f"{report.skipped} already applied; {report.events} event(s) recorded "
            f"in {store_config(getattr(args, 'store', None), getattr(args, 'operator', None)).description}."
        )
    return 0


def run_charges(args: argparse.Namespace) -> int:
    from commands import views

    as_of = args.as_of or date.today()
    app = open_store(getattr(args, "store", None), getattr(args, "operator", None), create=False)
    domain = args.domain.lower() if args.domain else None
    upto = resolve(app, horizon(args))
    if args.json:
        print_json(views.charges(app, as_of, upto, customer=args.customer, domain=domain,
                                 uninvoiced=args.uninvoiced))
        return 0
    if args.customer and aggregate_known_at(app, customer_id(args.customer), upto) is None:
        raise UnknownCustomer(args.customer)
    if domain and subscription_known_at(app, domain, upto) is None:
        raise UnknownDomain(domain)
    if domain is None and args.customer is None and sys.stderr.isatty() and not args.quiet:
        with progress("replaying subscriptions", count_subscriptions(app, upto)) as advance:
            known = Known(tuple(sorted(iter_subscriptions_known_at(app, upto, advance),
                                       key=lambda s: s.domain)),
                          tariffs_known_at(app, upto), upto)
    else:
        known = known_at(app, upto, domain=domain,
                         customer=args.customer if domain is None else None)
    charges = charges_as_of(known, as_of, customer=args.customer)
    if args.uninvoiced:
        from commands.billing import invoicing_state

        invoiced = invoicing_state(app, upto).invoiced_keys
        charges = [c for c in charges if c.key not in invoiced]
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
    as_of = args.as_of or date.today()
    app = open_store(getattr(args, "store", None), getattr(args, "operator", None), create=False)
    domain = args.domain.lower()
    from commands import views

    data = views.subscription(app, domain, as_of, resolve(app, horizon(args)))
    if args.json:
        print_json(data)
        return 0
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
    from commands import views

    app = open_store(getattr(args, "store", None), getattr(args, "operator", None), create=False)
    upto = resolve(app, horizon(args))
    rows = views.customers(app, upto)
    if args.json:
        print_json(rows)
        return 0
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
    from commands import views

    as_of = args.as_of or date.today()
    app = open_store(getattr(args, "store", None), getattr(args, "operator", None), create=False)
    upto = resolve(app, horizon(args))
    rows = views.subscriptions(app, as_of, upto)
    if args.json:
        print_json(rows)
        return 0
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


RUNNERS = {"import": run_import, "charges": run_charges, "subscription": run_subscription,
           "tariff": tariff_cli.run, "bill": invoice_cli.run, "invoice": invoice_cli.run,
           "invoices": invoice_cli.run, "corrections": invoice_cli.run, "db": db_cli.run,
           "doctor": db_cli.run, "audit": audit_cli.run, "history": audit_cli.run_history,
           "customers": run_customers, "subscriptions": run_subscriptions,
           "explain": dispute_cli.run, "diff": dispute_cli.run, "dossier": dispute_cli.run,
           "forecast": forecast_cli.run, "accruals": forecast_cli.run,
           "serve": serve_cli.run, "token": serve_cli.run}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return RUNNERS[args.command](args)
    except LedgerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: nothing more was stored", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
