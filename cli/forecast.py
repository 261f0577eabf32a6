"""``ledger forecast`` and ``ledger accruals``: what finance needs for the budget and the
year-end (docs/forecast.md)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.common import iso_day, iso_month, open_ledger, output_file
from exports.budget import budget_rows, compare, plot_revenue, write_csv
from ledger.errors import LedgerError

if TYPE_CHECKING:
    from eventstore.app import LedgerApplication


#: The same as ``projections.forecast.ASSUMPTIONS`` (tests/test_cli.py checks), written here so
#: that building the command line imports nothing heavy.
ASSUMPTIONS = ("renew", "notice-given", "end-of-term")


def add_parsers(commands, common: argparse.ArgumentParser) -> None:
    from cli.common import add_known_at

    forecast = commands.add_parser(
        "forecast", parents=[common])
    forecast.add_argument("--from", dest="start", type=iso_month, required=True, metavar="YYYY-MM")
    forecast.add_argument("--to", dest="end", type=iso_month, required=True, metavar="YYYY-MM")
    forecast.add_argument("--by", choices=("month", "year"), default="month")
    grouping = forecast.add_mutually_exclusive_group()
    grouping.add_argument("--by-customer", action="store_true")
    grouping.add_argument("--by-line", action="store_true")
    grouping.add_argument("--by-category", action="store_true")
    forecast.add_argument("--assume", choices=ASSUMPTIONS, default="renew",
                          help="renew (default): tacit renewals to the contract end; "
                               "notice-given: as if every member gave notice at the start; "
                               "end-of-term: as if none renewed after its current term")
    forecast.add_argument("--customer", help="only this customer")
    add_known_at(forecast)
    forecast.add_argument("--draft", metavar="CATALOGUE.toml",
                          help="price as if this barème were adopted (nothing is recorded)")
    forecast.add_argument("--draft-from", type=iso_day, metavar="DATE",
                          help="the draft's first day in force (default: its effective_from)")
    forecast.add_argument("--with", dest="hypothetical", metavar="COMMANDS.jsonl",
                          help="hypothetical commands (new members, terminations), applied in "
                               "memory only")
    output = forecast.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true")
    output.add_argument("--csv", type=output_file, metavar="FILE",
                        help="the budget layout (docs/forecast.md)")
    forecast.add_argument("--plot", type=output_file, metavar="FILE.png|.svg",
                          help="draw the revenue in a file")

    accruals = commands.add_parser(
        "accruals", parents=[common])
    accruals.add_argument("--at", type=iso_day, required=True, metavar="YYYY-12-31")
    add_known_at(accruals)
    output = accruals.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true")
    output.add_argument("--csv", type=output_file, metavar="FILE")


def _open(args: argparse.Namespace) -> LedgerApplication:

    return open_ledger(args)


def _known(app: LedgerApplication, args: argparse.Namespace, stream: bool = False):
    from cli.common import horizon
    from projections.history import known_at

    # One customer: only its subscriptions are read.
    customer = getattr(args, "customer", None)
    if customer and not getattr(args, "hypothetical", None):  # --with may register it
        from ledger.errors import UnknownCustomer
        from ledger.identity import customer_id
        from projections.history import aggregate_known_at

        if aggregate_known_at(app, customer_id(customer), horizon(args)) is None:
            raise UnknownCustomer(customer)  # as `charges --customer` says
    return known_at(app, horizon(args), customer=customer, stream=stream and customer is None)


def _hypothetical(app: LedgerApplication, known, path: str):
    """Apply the commands of a file to aggregates in memory; nothing is stored."""
    from commands.handlers import handle
    from commands.messages import InvalidCommand, parse_line
    from commands.unit_of_work import UnitOfWork
    from ledger.subscription import Subscription
    from projections.forecast import hypothetical

    uow = UnitOfWork(app)
    problems = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise LedgerError(f"{path} is not UTF-8 text: --with takes a file of commands, one "
                          "JSON object per line") from None
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            handle(parse_line(text).command, uow)
        except (InvalidCommand, LedgerError) as error:
            problems.append(f"{path}, line {number}: {error}")
    if problems:
        raise LedgerError("\n".join(problems) + "\nNothing was forecast (the file is "
                          "hypothetical: nothing is ever stored).")
    return hypothetical(known, [a for a in uow.changed() if isinstance(a, Subscription)])


def run_forecast(args: argparse.Namespace) -> int:
    from rich.table import Table

    from cli.output import console, print_json
    from ledger.tariff_parser import load_schedule
    from projections.forecast import forecast_charges, group, month_bounds, with_draft

    if args.end < args.start:
        raise LedgerError(f"--to {args.end} is before --from {args.start}")
    if args.plot and Path(args.plot).suffix.lower() not in (".png", ".svg"):
        raise LedgerError(f"--plot {args.plot}: the drawing is written as .png or .svg; "
                          "name the file so")
    app = _open(args)
    # Streamed: every pass below folds the subscriptions again, so memory holds totals, not
    # the ledger (except for --plot, which draws every charge).
    known = _known(app, args, stream=True)
    if args.hypothetical:
        known = _hypothetical(app, known, args.hypothetical)
    start, end = month_bounds(args.start, args.end)
    key = "customer" if args.by_customer else "line" if args.by_line else \
        "category" if args.by_category else None
    categories = _categories(app) if key == "category" or args.csv else None
    draft_schedules = with_draft(known.schedules, load_schedule(args.draft),
                                 args.draft_from) if args.draft else None

    def current():
        return forecast_charges(known.subscriptions, known.schedules, start, end, args.assume,
                                args.customer)

    def drafted():
        return forecast_charges(known.subscriptions, draft_schedules, start, end, args.assume,
                                args.customer)

    if args.plot:
        plot_revenue(args.plot, list(current()), list(drafted()) if args.draft else None,
                     args.by, key or "line", categories)
    if args.csv:
        write_csv(args.csv, budget_rows(app, drafted() if args.draft else current(),
                                         categories))
        print(f"written to {args.csv}")
        return 0
    rows = group(current(), args.by, key, categories)
    if args.draft:
        comparison = compare(current(), drafted())
        if args.json:
            print_json({"rows": rows, "draft": group(drafted(), args.by, key, categories),
                        "by_customer": comparison})
            return 0
        _print_rows(rows, key, f"Forecast {args.start} → {args.end} (current barème)")
        table = Table(title=f"Per member, current barème vs draft {Path(args.draft).name}",
                      title_justify="left")
        for column in ("Customer", "Current € HT", "Draft € HT", "Difference"):
            table.add_column(column, justify="left" if column == "Customer" else "right")
        for row in comparison:
            table.add_row(row["customer"], row["current"], row["draft"], row["difference"])
        console().print(table)
        return 0
    if args.json:
        print_json(rows)
        return 0
    _print_rows(rows, key, f"Forecast {args.start} → {args.end} ({args.assume})")
    return 0


def _categories(app: LedgerApplication) -> dict[str, str]:
    from projections.history import customers_known_at

    return {key: c.category for key, c in customers_known_at(app).items()}


def _print_rows(rows: Sequence[dict[str, str]], key: str | None, title: str) -> None:
    from rich.table import Table

    from cli.output import console
    from ledger.money import format_amount

    table = Table(title=title, title_justify="left")
    table.add_column("Period")
    if key:
        table.add_column(key.title())
    table.add_column("€ HT", justify="right")
    total = Decimal(0)
    for row in rows:
        table.add_row(row["period"], *([row[key]] if key else []), row["amount"])
        total += Decimal(row["amount"])
    table.add_row("Total", *([""] if key else []), format_amount(total), style="bold")
    console().print(table)


def run_accruals(args: argparse.Namespace) -> int:
    from rich.table import Table

    from cli.output import console, print_json
    from commands.billing import invoicing_state
    from ledger.money import format_amount
    from projections.charges import charges_as_of
    from projections.forecast import accrual_rows

    app = _open(args)
    known = _known(app, args)
    at = args.at
    invoicing = invoicing_state(app, known.position)
    invoiced_by: dict[str, str] = {}
    invoiced_on: dict[str, str] = {}
    for number, document in invoicing.documents.items():
        if document["kind"] != "invoice" or number in invoicing.credited:
            continue
        for line in document["lines"]:
            invoiced_by[line["key"]] = number
            invoiced_on[line["key"]] = document["issued_on"]
    charges = charges_as_of(known, date.max)
    rows = accrual_rows(charges, at, invoiced_by)
    # Positions at that date: invoiced (on or before it) for a charge dated after it, and due
    # (dated on or before it) but on no invoice issued by then.
    ahead = [c for c in charges if c.charge_date > at
             and invoiced_on.get(c.key, "9999") <= at.isoformat()]
    behind = [c for c in charges if c.charge_date <= at
              and invoiced_on.get(c.key, "9999") > at.isoformat()]
    totals = {"amount": _sum(rows, "amount"), "earned": _sum(rows, "earned"),
              "deferred": _sum(rows, "deferred"),
              "invoiced_not_due": format_amount(sum((c.amount for c in ahead), Decimal(0))),
              "due_not_invoiced": format_amount(sum((c.amount for c in behind), Decimal(0)))}
    if args.json:
        print_json({"at": at.isoformat(), "known_at_position": known.position, "rows": rows,
                    "totals": totals,
                    "invoiced_not_due": [_position(c, invoiced_by) for c in ahead],
                    "due_not_invoiced": [_position(c, invoiced_by) for c in behind]})
        return 0
    if args.csv:
        write_csv(args.csv, [{k: (v or "") for k, v in row.items()} for row in rows],
                   ("customer", "domain", "line", "section", "key", "period_start",
                    "period_end", "amount", "earned", "deferred", "invoiced_by"))
        print(f"{len(rows)} row(s) written to {args.csv}")
        return 0
    table = Table(title=f"Periods straddling {at} (produits constatés d'avance)",
                  title_justify="left")
    for column in ("Customer", "Line", "Period", "Amount", "Earned", "Deferred", "Invoice"):
        table.add_column(column, justify="right" if column in ("Amount", "Earned", "Deferred")
                         else "left")
    for row in rows:
        table.add_row(row["customer"], row["line"], f"{row['period_start']} → "
                      f"{row['period_end']}", row["amount"], row["earned"], row["deferred"],
                      row["invoiced_by"] or "—")
    table.add_row("Total", "", "", totals["amount"], totals["earned"], totals["deferred"], "",
                  style="bold")
    console().print(table)
    console().print(f"Invoiced, not yet due at {at}: {totals['invoiced_not_due']} € HT; "
                    f"due, not yet invoiced: {totals['due_not_invoiced']} € HT")
    return 0


def _sum(rows: list[dict[str, Any]], key: str) -> str:
    from ledger.money import format_amount

    return format_amount(sum((Decimal(row[key]) for row in rows), Decimal(0)))


def _position(charge, invoiced_by: dict[str, str]) -> dict[str, str | None]:
    from ledger.money import format_amount

    return {"customer": charge.customer, "key": charge.key,
            "charge_date": charge.charge_date.isoformat(),
            "amount": format_amount(charge.amount), "invoiced_by": invoiced_by.get(charge.key)}


RUNNERS = {"forecast": run_forecast, "accruals": run_accruals}


def run(args: argparse.Namespace) -> int:
    return RUNNERS[args.command](args)

