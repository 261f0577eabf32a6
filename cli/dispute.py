"""``ledger explain``, ``ledger diff`` and ``ledger dossier``: what a contested titre or an audit
needs (docs/disputes.md)."""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

from cli.common import iso_day, open_ledger, output_file
from ledger.errors import LedgerError


def add_parsers(commands, common: argparse.ArgumentParser) -> None:
    from cli.common import add_known_at, log_position, recorded_time

    explain = commands.add_parser(
        "explain", parents=[common])
    explain.add_argument("number", nargs="?", help="an invoice or credit note number")
    explain.add_argument("--line", type=int, help="only this line of the document")
    explain.add_argument("--domain", help="a domain's charges instead of a document")
    explain.add_argument("--as-of", type=iso_day, help="with --domain: charges dated on or before "
                                                    "(default: today)")
    add_known_at(explain)
    explain.add_argument("--format", choices=("text", "md", "html", "pdf", "json"),
                         default="text")
    explain.add_argument("--json", action="store_true", help="the same as --format json")
    explain.add_argument("--out", type=output_file, help="file to write (required for pdf)")

    diff = commands.add_parser(
        "diff", parents=[common])
    diff.add_argument("--known-at", type=recorded_time, action="append", default=[],
                      help="give it twice: the earlier and the later recorded time")
    diff.add_argument("--known-at-position", type=log_position, action="append", default=[],
                      metavar="N", help="or two log positions")
    diff.add_argument("--as-of", type=iso_day, help="charges dated on or before (default: all)")
    diff.add_argument("--customer", help="only this customer's charges")
    diff.add_argument("--json", action="store_true")

    dossier = commands.add_parser(
        "dossier", parents=[common])
    dossier.add_argument("customer")
    dossier.add_argument("--from", dest="start", type=iso_day, help="documents issued from")
    dossier.add_argument("--to", dest="end", type=iso_day, help="documents issued until")
    dossier.add_argument("--key", required=True,
                         help="the operator's signing key: signs the dossier's manifest and, if "
                              "needed, a checkpoint covering everything in it")
    dossier.add_argument("--out", type=output_file, required=True, help="zip file to write")
    dossier.add_argument("--by", help="who makes the dossier (recorded with the checkpoint)")


def run_explain(args: argparse.Namespace) -> int:
    from cli.common import horizon
    from exports import explain as ex
    from projections.history import resolve

    app = open_ledger(args)
    form = "json" if args.json else args.format
    if args.domain:
        if args.number:
            raise LedgerError("give a document number or --domain, not both")
        explanation = ex.explain_domain(app, args.domain, args.as_of or date.today(),
                                        resolve(app, horizon(args)))
    elif args.number:
        if "." in args.number:  # numbers are F-YYYY-NNNNNN or A-YYYY-NNNNNN
            raise LedgerError(f"{args.number!r} looks like a domain, not a document number: "
                              f"for a domain's charges, ledger explain --domain {args.number}")
        explanation = ex.explain_document(app, args.number)
        if args.line is not None and not 1 <= args.line <= len(explanation["lines"]):
            raise LedgerError(f"{args.number} has {len(explanation['lines'])} line(s), no line "
                              f"{args.line}")
    else:
        raise LedgerError("say what to explain: a document number, or --domain DOMAIN")
    if form == "json":
        if args.line is not None:
            explanation = {**explanation, "lines": [line for line in explanation["lines"]
                                                    if line["line"] == args.line]}
        data = ex.to_json(explanation)
    elif form == "pdf":
        if "number" not in explanation:
            raise LedgerError("the état liquidatif (pdf) is for a document: give its number")
        data = ex.etat_liquidatif(explanation)
    else:
        render = {"text": ex.to_text, "md": ex.to_markdown, "html": ex.to_html}[form]
        data = render(explanation, args.line).encode("utf-8")
    if args.out:
        Path(args.out).write_bytes(data)
        print(f"written to {args.out}")
    elif form == "pdf":
        raise LedgerError("a PDF goes to a file: --out FILE.pdf")
    else:
        sys.stdout.write(data.decode("utf-8"))
    return 0


def run_diff(args: argparse.Namespace) -> int:
    from rich.table import Table

    from cli.output import console, print_json
    from projections.diff import charges_diff
    from projections.history import resolve

    app = open_ledger(args)
    moments: list[int | datetime] = [*args.known_at_position, *args.known_at]
    if len(moments) != 2:
        raise LedgerError("give two states of knowledge: --known-at T1 --known-at T2 (or "
                          "--known-at-position twice)")
    first, second = sorted(resolve(app, moment) for moment in moments)
    result = charges_diff(app, first, second, as_of=args.as_of, customer=args.customer)
    if args.json:
        print_json(result)
        return 0
    out = console()
    table = Table(title=f"Charges known at position {first} → {second}"
                  + (f", dated on or before {args.as_of}" if args.as_of else ""),
                  title_justify="left")
    for column in ("Charge", "Change", "Before", "After", "Because"):
        table.add_column(column, overflow="fold")
    for change in result["changes"]:
        because = "; ".join(f"n° {e['position']}: {e['what']}" for e in change["because"])
        table.add_row(change["key"], change["change"], _money(change.get("before")),
                      _money(change.get("after")), because or "—")
    out.print(table)
    if not result["changes"]:
        out.print("No charge changed between these two states of knowledge.")
    else:
        out.print(f"Net change: {result['net']} € HT")
    return 0


def _money(side: dict[str, Any] | None) -> str:
    if not side:
        return "—"
    return f"{side['amount']} ({side['period_start']} → {side['period_end']})"


def run_dossier(args: argparse.Namespace) -> int:
    from commands.audit import load_signer
    from exports.dossier import make_dossier

    app = open_ledger(args)
    signer = load_signer(args.key)
    summary = make_dossier(app, args.customer, args.out, signer, start=args.start,
                           end=args.end, by=args.by)
    print(f"{args.out}: {summary['documents']} document(s), {summary['entries']} entries with "
          f"their proofs against checkpoint {summary['checkpoint_size']}; check it with "
          f"python verify.py --key '{summary['key']}' (VERIFY.md inside)")
    return 0


RUNNERS = {"explain": run_explain, "diff": run_diff, "dossier": run_dossier}


def run(args: argparse.Namespace) -> int:
    return RUNNERS[args.command](args)
