"""``ledger tariff …``: adopt schedules, list them, quote a line."""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from cli.common import iso_day, open_ledger

if TYPE_CHECKING:
    from ledger.tariffs import Schedule


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"expected a number such as 12.50, got {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number ≥ 0, got {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 0, got {text!r}")
    return value


def _first(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {text!r}")
    return value


def add_parser(commands, common: argparse.ArgumentParser) -> None:
    from ledger.categories import CATEGORIES

    tariff = commands.add_parser("tariff", parents=[common])
    actions = tariff.add_subparsers(dest="tariff_command", required=True, metavar="ACTION")

    adopt = actions.add_parser("adopt", parents=[common],
                               help="record a schedule adopted by deliberation")
    adopt.add_argument("catalogue", help="catalogue TOML file (docs/catalogue.md)")
    adopt.add_argument("--by", help="who records the adoption (default: $LEDGER_ACTOR, else the "
                                    "system user)")

    listing = actions.add_parser("list", parents=[common],
                                 help="lines of a catalogue file, or the schedules adopted")
    listing.add_argument("--catalogue", help="catalogue TOML file; without it: the store's schedules")
    listing.add_argument("--json", action="store_true")

    quoting = actions.add_parser("quote", parents=[common], help="price one line and show how")
    quoting.add_argument("--catalogue",
                         help="catalogue TOML file; without it: the schedules adopted in the store")
    quoting.add_argument("--line", required=True, help="line id, e.g. sn-intramuros-epci")
    quoting.add_argument("--on", type=iso_day,
                         help="the day priced (default: today): the schedule must be in force "
                              "and the line available then")
    quoting.add_argument("--adhesion-on", type=iso_day,
                         help="the body's adhesion: a price fixed for N years (locked_years) "
                              "comes from the schedule in force then (adopted schedules only)")
    membership = quoting.add_mutually_exclusive_group()
    membership.add_argument("--member", dest="member", action="store_true", default=True,
                            help="member price (default)")
    membership.add_argument("--non-member", dest="member", action="store_false",
                            help="non-member price")
    quoting.add_argument("--population", type=_count, help="inhabitants")
    quoting.add_argument("--quantity", type=_decimal,
                         help="units: accounts, GB, kWh, tenders of last year, workstations, …")
    quoting.add_argument("--supplier-price", type=_decimal, help="supplier price, for markups")
    quoting.add_argument("--quoted-amount", type=_decimal, help="amount of a quotation (sur devis)")
    quoting.add_argument("--category", choices=tuple(CATEGORIES),
                         help="kind of body (docs/catalogue.md)")
    quoting.add_argument("--kind", help="an EPCI's or a syndicat's kind: cc, ca, cu, metropole, "
                                        "ept; sivu, sivom, mixte_ferme, mixte_ouvert")
    quoting.add_argument("--workstations", type=_count, help="the body's workstations")
    quoting.add_argument("--ratio", type=_decimal,
                         help="the body's ratio, for a line priced as a share of a reference")
    quoting.add_argument("--base", type=_decimal,
                         help="the reference amount, when the barème leaves it to the economic "
                              "model")
    quoting.add_argument("--first-subscription", action="store_true",
                         help="first subscription of this body to the service")
    quoting.add_argument("--year", type=_first, default=1,
                         help="year of subscription, from 1 (default 1)")
    quoting.add_argument("--json", action="store_true")

    diff = actions.add_parser("diff", parents=[common],
                              help="what changes from one schedule to another, line by line "
                                   "(and, with --customers, for each customer)")
    diff.add_argument("old", help="catalogue TOML file, or the id of an adopted schedule")
    diff.add_argument("new", help="catalogue TOML file, or the id of an adopted schedule")
    diff.add_argument("--customers", action="store_true",
                      help="what each current customer of the Suite Territoriale would pay under "
                           "each (needs the store)")
    diff.add_argument("--json", action="store_true")




def run(args: argparse.Namespace) -> int:
    return {"adopt": run_adopt, "list": run_list, "quote": run_quote,
            "diff": run_diff}[args.tariff_command](args)


def run_adopt(args: argparse.Namespace) -> int:
    from commands.handlers import adopt_tariff_schedule
    from commands.provenance import source
    from commands.unit_of_work import UnitOfWork, record
    from ledger.tariff_parser import load_schedule

    schedule = load_schedule(args.catalogue)
    app = open_ledger(args, create=True)
    uow = UnitOfWork(app)
    if adopt_tariff_schedule(schedule, uow):
        from pathlib import Path

        record(app, *uow.changed(), via="tariff adopt", by=args.by,
               source=source(args.catalogue, Path(args.catalogue).read_bytes()))
        print(f"Adopted {schedule.id} ({schedule.operator_name}): {len(schedule.lines)} lines, "
              f"in force from {schedule.effective_from}.")
        issued = _last_issued_on(app)
        if issued is not None and issued >= schedule.effective_from.isoformat():
            # A schedule taking effect before documents already issued may price their charges
            # otherwise: nothing issued changes, but the finance officer should know.
            print(f"note: documents were already issued up to {issued}, after "
                  f"{schedule.effective_from}: charges this schedule prices may differ from "
                  "those invoiced — `ledger corrections` lists the invoices it changes.",
                  file=sys.stderr)
    else:
        print(f"{schedule.id} was already adopted with the same content: nothing recorded.")
    return 0


def _last_issued_on(app) -> str | None:
    """The latest issue date of any document (ISO), or ``None`` if none was issued."""
    from commands.billing import invoicing_state
    from ledger.invoicing import lean

    with lean():
        dates = invoicing_state(app).last_issued_on.values()
    return max(dates, default=None)


def _schedule_json(schedule: Schedule) -> dict:
    return {
        "id": schedule.id, "operator": schedule.operator, "operator_name": schedule.operator_name,
        "title": schedule.title, "deliberation": schedule.deliberation_reference,
        "deliberation_date": _iso(schedule.deliberation_date),
        "effective_from": schedule.effective_from.isoformat(),
        "effective_until": _iso(schedule.effective_until), "source": schedule.source,
        "lines": len(schedule.lines),
    }


def _iso(day) -> str | None:
    return day.isoformat() if day is not None else None


def run_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from cli.output import console, print_json
    from ledger.tariff_parser import load_schedule
    from ledger.tariffs import summary
    from projections.history import tariffs_known_at

    if args.catalogue is None:
        schedules = tariffs_known_at(open_ledger(args))
        if args.json:
            print_json([_schedule_json(s) for s in schedules])
            return 0
        table = Table(title="Tariff schedules adopted", title_justify="left")
        for column in ("Schedule", "Operator", "In force from", "until", "Lines", "Deliberation"):
            table.add_column(column)
        for s in schedules:
            table.add_row(s.id, s.operator, str(s.effective_from), _iso(s.effective_until) or "—",
                          str(len(s.lines)), s.deliberation_reference)
        console().print(table)
        if not schedules:
            console().print("No schedule adopted yet: ledger tariff adopt FILE.toml")
        return 0
    schedule = load_schedule(args.catalogue)
    if args.json:
        print_json({**_schedule_json(schedule), "lines": [
            {"id": line.id, "label": line.label, "section": line.section, "shape": line.shape,
             "timing": line.timing, "years": line.years, "vat": line.vat,
             "price": summary(line)} for line in schedule.lines]})
        return 0
    table = Table(title=f"{schedule.title} — {schedule.id} (from {schedule.effective_from}); "
                        "amounts member / non-member, € HT", title_justify="left")
    for column in ("Line", "Label", "Shape", "Timing", "Price"):
        table.add_column(column, overflow="fold")
    for line in schedule.lines:
        timing = f"{line.years} years" if line.timing == "multi_year" else line.timing
        table.add_row(line.id, line.label, line.shape, timing, summary(line))
    console().print(table)
    return 0


def run_quote(args: argparse.Namespace) -> int:
    from datetime import date

    from cli.output import print_json
    from ledger.pricing import PriceRequest, commitment_total, quote
    from ledger.tariff_book import line_in_force
    from ledger.tariff_parser import load_schedule
    from ledger.tariffs import VAT_CATEGORIES, CatalogueError
    from projections.history import tariffs_known_at

    on = args.on or date.today()
    if args.kind is not None:
        from ledger.categories import valid_kind
        from ledger.errors import LedgerError

        if args.category is None:
            raise LedgerError("--kind needs --category (the kind of which body: epci, "
                              "syndicat, …)")
        try:
            valid_kind(args.category, args.kind)
        except ValueError as error:
            raise LedgerError(f"--kind: {error}") from None
    if args.catalogue:
        if args.adhesion_on:
            raise CatalogueError(args.catalogue, None, "--adhesion-on needs the schedules adopted "
                                 "in the store: leave out --catalogue")
        schedule = load_schedule(args.catalogue)
        if not schedule.in_force_on(on):
            until = f" to {schedule.effective_until}" if schedule.effective_until else ""
            raise CatalogueError(schedule.source, None, f"schedule {schedule.id} is in force from "
                                 f"{schedule.effective_from}{until}, not on {on} (--on DATE)")
        line = schedule.line(args.line)
    else:
        app = open_ledger(args)
        schedule, line = line_in_force(tariffs_known_at(app), args.line, on, args.adhesion_on)
    request = PriceRequest(
        member=args.member, population=args.population, quantity=args.quantity,
        supplier_price=args.supplier_price, quoted_amount=args.quoted_amount,
        category=args.category, kind=args.kind, workstations=args.workstations,
        ratio=args.ratio, base=args.base, first_subscription=args.first_subscription,
        year=args.year, on=on)
    price = quote(line, request, schedule.offer(line.offer) if line.offer else None)
    code, rate = VAT_CATEGORIES[line.vat]
    committed = commitment_total(line, request)
    if args.json:
        print_json({
            "schedule": schedule.id, "line": line.id, "label": line.label, "on": on.isoformat(),
            "member": args.member, "amount": str(price.amount), "currency": schedule.currency,
            "amount_includes_vat": line.price_includes_vat, "timing": line.timing,
            "years": line.years, "commitment_years": line.commitment_years,
            "commitment_total": None if committed is None else str(committed),
            "vat": {"category": line.vat, "code": code, "rate": str(rate)},
            "steps": list(price.steps),
        })
        return 0
    out = sys.stdout
    out.write(f"{line.id} — {line.label}\n")
    out.write(f"schedule {schedule.id}, {'member' if args.member else 'non-member'} price on "
              f"{on}\n")
    for step in price.steps:
        out.write(f"  {step}\n")
    timing = f"for {line.years} years" if line.timing == "multi_year" else line.timing
    extra = (f"; commitment {line.commitment_years} years, {committed} € in all"
             if committed is not None else "")
    out.write(f"timing: {timing}{extra}; VAT: {line.vat} ({code}, {rate} %)\n")
    return 0


def _schedule(app_getter, reference: str) -> Schedule:
    """A schedule named by a catalogue file or by the id of a schedule adopted in the store."""
    from pathlib import Path

    from ledger.tariff_parser import load_schedule
    from ledger.tariffs import CatalogueError
    from projections.history import tariffs_known_at

    if reference.endswith(".toml") or Path(reference).is_file():
        return load_schedule(reference)
    for schedule in tariffs_known_at(app_getter()):
        if schedule.id == reference:
            return schedule
    raise CatalogueError(reference, None, "neither a catalogue file nor the id of a schedule "
                         "adopted in this store (ledger tariff list)")


def run_diff(args: argparse.Namespace) -> int:
    from rich.table import Table

    from cli.output import console, print_json
    from projections.tariff_diff import customer_comparison, line_changes

    apps = []

    def app():
        if not apps:
            apps.append(open_ledger(args))
        return apps[0]

    old, new = _schedule(app, args.old), _schedule(app, args.new)
    changes = line_changes(old, new)
    customers = customer_comparison(app(), old, new) if args.customers else None
    if args.json:
        print_json({"old": old.id, "new": new.id, "lines": changes,
                    "customers": customers})
        return 0
    out = console()
    table = Table(title=f"{old.id} → {new.id}", title_justify="left")
    for column in ("Line", "Change", "Before", "After"):
        table.add_column(column, overflow="fold")
    for change in changes:
        table.add_row(change["line"], change["change"], change.get("before") or "",
                      change.get("after") or "")
    out.print(table)
    if not changes:
        out.print("The two schedules price every line the same way.")
    if customers is not None:
        table = Table(title="What each customer would pay (Suite Territoriale, € HT)",
                      title_justify="left")
        for column in ("Customer", "Domain", "Yearly before", "Yearly after", "Difference",
                       "Access fee before", "after"):
            table.add_column(column, justify="left" if column in ("Customer", "Domain")
                             else "right")
        for row in customers:
            table.add_row(row["customer"], row["domain"], row["yearly_old"], row["yearly_new"],
                          row["yearly_difference"], row["access_fee_old"], row["access_fee_new"])
        out.print(table)
    return 0
