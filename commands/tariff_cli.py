"""``ledger tariff …``: adopt schedules, list them, quote a line."""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal, InvalidOperation

from rich.table import Table

from commands.handlers import UnitOfWork, adopt_tariff_schedule
from commands.output import console, print_json
from commands.provenance import metadata, source
from eventstore.app import open_store
from ledger.pricing import PriceRequest, commitment_total, quote
from ledger.tariffs import VAT_CATEGORIES, Schedule, load_schedule, summary
from projections.history import tariffs_known_at


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


def add_parser(commands, common: argparse.ArgumentParser) -> None:
    tariff = commands.add_parser("tariff", parents=[common], help="tariff schedules (barèmes)")
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
    quoting.add_argument("--catalogue", required=True, help="catalogue TOML file")
    quoting.add_argument("--line", required=True, help="line id, e.g. sn-intramuros-epci")
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
    quoting.add_argument("--category", choices=("commune", "ccas", "epci", "cias", "other"))
    quoting.add_argument("--first-subscription", action="store_true",
                         help="first subscription of this body to the service")
    quoting.add_argument("--year", type=_count, default=1, help="year of subscription (default 1)")
    quoting.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    return {"adopt": run_adopt, "list": run_list, "quote": run_quote}[args.tariff_command](args)


def run_adopt(args: argparse.Namespace) -> int:
    schedule = load_schedule(args.catalogue)
    app = open_store(getattr(args, "store", None), getattr(args, "operator", None))
    uow = UnitOfWork(app)
    if adopt_tariff_schedule(schedule, uow):
        from pathlib import Path

        app.save(*uow.changed(), metadata=metadata(
            "tariff adopt", args.by, source=source(args.catalogue,
                                                   Path(args.catalogue).read_bytes())))
        print(f"Adopted {schedule.id} ({schedule.operator_name}): {len(schedule.lines)} lines, "
              f"in force from {schedule.effective_from}.")
    else:
        print(f"{schedule.id} was already adopted with the same content: nothing recorded.")
    return 0


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
    if args.catalogue is None:
        schedules = tariffs_known_at(open_store(getattr(args, "store", None),
                                                getattr(args, "operator", None), create=False))
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
    schedule = load_schedule(args.catalogue)
    line = schedule.line(args.line)
    request = PriceRequest(
        member=args.member, population=args.population, quantity=args.quantity,
        supplier_price=args.supplier_price, quoted_amount=args.quoted_amount,
        category=args.category, first_subscription=args.first_subscription, year=args.year)
    price = quote(line, request)
    code, rate = VAT_CATEGORIES[line.vat]
    committed = commitment_total(line, request)
    if args.json:
        print_json({
            "schedule": schedule.id, "line": line.id, "label": line.label,
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
    out.write(f"schedule {schedule.id}, {'member' if args.member else 'non-member'} price\n")
    for step in price.steps:
        out.write(f"  {step}\n")
    timing = f"for {line.years} years" if line.timing == "multi_year" else line.timing
    extra = (f"; commitment {line.commitment_years} years, {committed} € in all"
             if committed is not None else "")
    out.write(f"timing: {timing}{extra}; VAT: {line.vat} ({code}, {rate} %)\n")
    return 0
