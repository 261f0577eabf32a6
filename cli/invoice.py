"""``ledger bill``, ``ledger invoice …``, ``ledger invoices …``, ``ledger corrections …``."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from cli.common import iso_day, open_ledger, output_file
from ledger.errors import LedgerError


def add_parsers(commands, common: argparse.ArgumentParser) -> None:
    billing = commands.add_parser("bill", parents=[common])
    billing.add_argument("--through", type=iso_day, required=True,
                         help="invoice charges dated on or before this date")
    billing.add_argument("--issue-date", type=iso_day, help="date on the invoices (default: today)")
    billing.add_argument("--by", help="who runs the billing (recorded with each invoice; default: "
                                      "$LEDGER_ACTOR, else the system user)")
    billing.add_argument("--in-advance", action="store_true",
                         help="also invoice charges dated after the issue date")
    billing.add_argument("--dry-run", action="store_true",
                         help="show exactly what the run would issue, and record nothing")
    billing.add_argument("--json", action="store_true")
    billing.add_argument("--quiet", action="store_true", help="no progress bar")

    invoice = commands.add_parser("invoice", parents=[common])
    actions = invoice.add_subparsers(dest="invoice_command", required=True, metavar="ACTION")
    show = actions.add_parser("show", parents=[common],
                              help="show it and check it against a replay of the events")
    show.add_argument("number")
    show.add_argument("--json", action="store_true")
    export = actions.add_parser("export", parents=[common], help="write it as Factur-X or JSON")
    export.add_argument("number")
    export.add_argument("--format", choices=("facturx", "json"), required=True)
    export.add_argument("--out", type=output_file, required=True,
                        help="file to write (.pdf for facturx)")

    invoices = commands.add_parser("invoices", parents=[common])
    actions = invoices.add_subparsers(dest="invoices_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=[common], help="list invoices and credit notes")
    listing.add_argument("--json", action="store_true")
    journal = actions.add_parser(
        "export", parents=[common],
        help="the accounting journal (CSV, one row per line), or the PES V2 file of titres "
             "for the comptable public (--format pes)")
    journal.add_argument("--format", choices=("csv", "pes"), default="csv")
    journal.add_argument("--out", type=output_file, help="file to write")
    journal.add_argument("--csv", type=output_file,
                         help="CSV file to write (the same as --format csv --out FILE)")
    journal.add_argument("--csv-dialect", choices=("en", "fr"), default="en",
                         help="en: comma and decimal point (default); fr: semicolon, decimal "
                              "comma and a byte order mark, for French spreadsheets")
    journal.add_argument("--from", dest="first", metavar="NUMBER",
                         help="pes: first document of the range (default: the first not sent)")
    journal.add_argument("--to", dest="last", metavar="NUMBER",
                         help="pes: last document of the range (default: the last issued)")
    journal.add_argument("--file-date", type=iso_day,
                         help="pes: date of the file and its bordereaux (default: today)")
    journal.add_argument("--by", help="pes: who sends the file (recorded with its numbers)")
    journal.add_argument("--mandat-bordereau", type=int, metavar="N",
                         help="pes: number of the bordereau of mandats refunding credit notes "
                              "on a closed exercice (from the spending chain)")
    journal.add_argument("--first-mandat", type=int, metavar="N",
                         help="pes: number of the first of those mandats")
    journal.add_argument("--file", dest="pes_file", metavar="NAME",
                         help="pes: write again the file recorded under this name")
    journal.add_argument("--json", action="store_true", help="pes: what the file holds")

    corrections = commands.add_parser(
        "corrections", parents=[common])
    corrections.add_argument("--json", action="store_true")
    corrections.add_argument("--customer", help="only this customer's invoices (read through "
                                                "the index: fast on a large ledger)")
    actions = corrections.add_subparsers(dest="corrections_command", metavar="ACTION")
    applying = actions.add_parser("apply", parents=[common],
                                  help="issue the credit note (and new invoice) of a proposal")
    applying.add_argument("id")
    applying.add_argument("--by", required=True, help="who decides the correction")
    applying.add_argument("--issue-date", type=iso_day, help="date on the documents (default: today)")
    reissuing = actions.add_parser(
        "reissue", parents=[common],
        help="credit an invoice issued before billing split VAT scopes and budget sections, "
             "and invoice the same charges again on documents that can be sent")
    reissuing.add_argument("number")
    reissuing.add_argument("--by", required=True, help="who decides it")
    reissuing.add_argument("--issue-date", type=iso_day, help="date on the documents (default: today)")


#: Exit code of `ledger bill` when customers were skipped (their charges stay due).
BILLING_INCOMPLETE = 5


def _summary(document: dict) -> dict:
    return {"number": document["number"], "customer": document["buyer"]["customer"],
            "issued_on": document["issued_on"], "total_ht": document["total_ht"],
            "lines": [{"description": line["description"], "key": line["key"],
                       "charge_date": line["charge_date"], "amount": line["amount"]}
                      for line in document["lines"]]}


def run_bill(args: argparse.Namespace) -> int:
    import orjson

    from cli.output import progress
    from commands.billing import bill
    from ledger.money import format_amount
    from projections.history import count_subscriptions

    app = open_ledger(args)
    quiet = args.json or args.quiet
    issued_on = args.issue_date or date.today()
    total = count_subscriptions(app) if sys.stderr.isatty() and not quiet else None
    out = sys.stdout
    written = {"count": 0}
    # Documents are printed as they are saved: a run of a hundred thousand invoices never
    # holds them all.
    if args.json:
        out.write('{"dry_run": ' + ("true" if args.dry_run else "false") + ', "issued": [')
    elif args.dry_run:
        print(f"Dry run: nothing is recorded. Dated {issued_on}, through {args.through}:")

    def show(document: dict) -> None:
        if args.json:
            out.write(("," if written["count"] else "") + "\n  "
                      + orjson.dumps(_summary(document)).decode())
        else:
            print(f"{document['number']}  {document['buyer']['customer']:<20} "
                  f"{len(document['lines'])} line(s)  {document['total_ht']:>10} € HT")
            if args.dry_run:
                for line in document["lines"]:
                    print(f"    {line['charge_date']}  {line['description']}  {line['amount']} €")
        written["count"] += 1

    with progress("billing: replaying subscriptions", total, quiet=quiet) as advance:
        report = bill(app, args.through, issued_on, by=args.by, on_subscription=advance,
                      in_advance=args.in_advance, dry_run=args.dry_run,
                      keep_documents=False, on_issued=show)
    code = 0 if report.complete else BILLING_INCOMPLETE
    if args.json:
        rest = {"skipped": [{"customer": s.customer, "reason": s.reason, "charges": s.charges,
                             "amount": format_amount(s.amount)} for s in report.skipped],
                "deferred": {"charges": report.deferred,
                             "amount": format_amount(report.deferred_amount)}}
        out.write("\n], " + orjson.dumps(rest).decode()[1:] + "\n")
        return code
    verb = "would be issued" if report.dry_run else "issued"
    for skipped in report.skipped:
        print(f"skipped: {skipped}")
    if report.deferred:
        why = ("whose order form was received after the issue date" if args.in_advance else
               "dated after the issue date")
        print(f"left for later: {report.deferred} charge(s), "
              f"{format_amount(report.deferred_amount)} € HT, {why} {issued_on}"
              + ("" if args.in_advance else " (--in-advance to invoice them now)"))
    if not report.count:
        print(f"Nothing {verb} through {args.through}.")
    else:
        print(f"{report.count} invoice(s) {verb}, {format_amount(report.total)} € HT.")
    if report.skipped:
        print(f"{len(report.skipped)} customer(s) skipped: their charges stay due until the "
              f"missing facts are recorded (exit code {BILLING_INCOMPLETE}).", file=sys.stderr)
    return code


def run_invoice(args: argparse.Namespace) -> int:
    import orjson
    from rich.table import Table

    from cli.output import console, print_json
    from commands.verification import document_entry, verify
    from exports.invoice_pdf import facturx_pdf

    app = open_ledger(args)
    check = verify(app, args.number)
    if args.invoice_command == "export":
        out = Path(args.out)
        if args.format == "facturx":
            refers_to = check.document.get("refers_to")
            preceding = (document_entry(app, refers_to)[1]["document"]["issued_on"]
                         if refers_to and not check.document.get("refers_to_issued_on")
                         else None)
            from exports.explain import etat_liquidatif, explain_document

            etat = etat_liquidatif(explain_document(app, args.number))
            out.write_bytes(facturx_pdf(check.document, check.recorded_digest,
                                        refers_to_issued_on=preceding, supporting=etat))
        else:
            out.write_bytes(orjson.dumps(
                {"document": check.document, "sha256": check.recorded_digest,
                 "position": check.position, "basis_position": check.basis_position,
                 "recorded_at": check.recorded_at.isoformat(), "issued_by": check.issued_by},
                option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
        print(f"{args.number} written to {out}")
        return 0
    if args.json:
        from commands import views

        print_json(views.invoice(app, args.number))
        return 0
    doc = check.document
    title = "Credit note" if doc["kind"] == "credit_note" else "Invoice"
    out = console()
    out.print(f"{title} {doc['number']} issued on {doc['issued_on']} "
              f"(log position {check.position}, recorded "
              f"{check.recorded_at.isoformat(timespec='seconds')} by {check.issued_by or '—'})")
    if doc.get("refers_to"):
        out.print(f"refers to {doc['refers_to']}: {doc.get('cause') or ''}")
    buyer = doc["buyer"]
    out.print(f"buyer: {buyer['name']} — SIRET {buyer['siret']}"
              f" — code service {buyer.get('code_service') or '—'}"
              f" — engagement {buyer.get('engagement_number') or '—'}")
    table = Table(show_header=True)
    for column in ("Line", "Period", "Rule", "Amount € HT"):
        table.add_column(column, justify="right" if column.startswith("Amount") else "left")
    for line in doc["lines"]:
        table.add_row(line["description"], f"{line['period_start']} → {line['period_end']}",
                      line["rule"], line["amount"])
    table.add_row("Total HT", "", "", doc["total_ht"], style="bold")
    out.print(table)
    out.print(f"SHA-256 {check.recorded_digest}")
    basis = f"the log up to position {check.basis_position}, which its figures came from"
    if check.identical:
        out.print(f"Derived again from {basis}: identical.")
    else:
        out.print(f"Derived again from {basis}: DIFFERENT — the history or the rules changed "
                  "since; see --json for both documents, and run `ledger audit verify`.")
    return 0 if check.identical else 3


def run_invoices(args: argparse.Namespace) -> int:
    from rich.table import Table

    from cli.output import console, print_json
    from commands.billing import invoicing_state
    from exports.journal import journal_csv

    app = open_ledger(args)
    invoicing = invoicing_state(app)
    documents = list(invoicing.documents.values())
    if args.invoices_command == "export" and args.format == "pes":
        return _export_pes(app, args)
    if args.invoices_command == "export":
        pes_only = [option for option, value in (
            ("--from", args.first), ("--to", args.last), ("--file-date", args.file_date),
            ("--by", args.by), ("--mandat-bordereau", args.mandat_bordereau),
            ("--first-mandat", args.first_mandat), ("--file", args.pes_file),
            ("--json", args.json)) if value is not None and value is not False]
        if pes_only:  # a PES file was meant: a journal written in its place would mislead
            raise LedgerError(f"{', '.join(pes_only)}: for the PES file only — add "
                              "--format pes (the CSV journal takes --out or --csv and "
                              "--csv-dialect)")
        out = args.out or args.csv
        if out is None:
            raise LedgerError("say where to write the journal: --out FILE.csv")
        Path(out).write_text(journal_csv(documents, args.csv_dialect), encoding="utf-8",
                             newline="")
        print(f"{sum(len(d['lines']) for d in documents)} line(s) of {len(documents)} "
              f"document(s) written to {out}")
        return 0
    if args.json:
        from commands import views

        print_json(views.invoices(app))
        return 0
    table = Table(title="Issued documents", title_justify="left")
    for column in ("Number", "Issued", "Customer", "Total € HT", "Refers to", "Credited by"):
        table.add_column(column)
    for d in documents:
        table.add_row(d["number"], d["issued_on"], d["buyer"]["customer"], d["total_ht"],
                      d["refers_to"] or "", invoicing.credited.get(d["number"], ""))
    console().print(table)
    return 0


def _export_pes(app, args: argparse.Namespace) -> int:
    from cli.output import print_json
    from exports.files import check_writable
    from exports.pes_export import export_pes, summary, treasury_state, write

    if args.out is None:
        raise LedgerError("say where to write the PES file: --out FILE.xml")
    if (args.mandat_bordereau is None) != (args.first_mandat is None):
        raise LedgerError("give both --mandat-bordereau and --first-mandat, or neither")
    mandats = (args.mandat_bordereau, args.first_mandat) \
        if args.mandat_bordereau is not None else None
    if args.pes_file:
        from exports.pes_export import Export, written_again

        recorded = treasury_state(app).files.get(args.pes_file)
        export = Export(args.pes_file, written_again(app, args.pes_file),
                        tuple(recorded["documents"]) if recorded else (), new=False)
    else:
        check_writable(args.out)  # before the file is recorded as sent
        export = export_pes(app, first=args.first, last=args.last, file_date=args.file_date,
                            by=args.by, mandats=mandats)
    try:
        path = write(export, args.out)
    except OSError as error:
        if not export.new:
            raise
        raise LedgerError(
            f"{export.name} was recorded as sent but could not be written to {args.out} "
            f"({error.strerror}): write it again, identical, with `ledger invoices export "
            f"--format pes --file {export.name} --out FILE`") from None
    content = summary(export, treasury_state(app))
    if args.json:
        print_json({"file": export.name, "out": str(path), "new": export.new,
                    "documents": list(export.documents), "bordereaux": content})
        return 0
    what = "recorded and written" if export.new else "sent before, written again identical"
    print(f"{export.name}: {len(export.documents)} document(s), {what} to {path}")
    for bordereau in content:
        kind = {"01": "titres", "02": "réductions"}[bordereau["type"]] \
            if bordereau["flow"] == "recette" else "mandats"
        pieces = bordereau["pieces"]
        print(f"  bordereau {bordereau['exercice']}-{bordereau['bordereau']} ({kind}): "
              f"{len(pieces)} piece(s), n° {pieces[0]['number']} to {pieces[-1]['number']}")
    return 0


def run_corrections(args: argparse.Namespace) -> int:
    from cli.output import print_json
    from commands.corrections import apply_correction, proposals

    app = open_ledger(args)
    if args.corrections_command in ("apply", "reissue"):
        reissue = args.corrections_command == "reissue"
        issued = apply_correction(app, args.number if reissue else args.id, args.by,
                                  args.issue_date or date.today(), reissue=reissue)
        for document in issued:
            print(f"{document['number']} issued ({document['kind'].replace('_', ' ')}, "
                  f"{document['total_ht']} € HT)")
        return 0
    found = proposals(app, getattr(args, "customer", None))
    if args.json:
        print_json([p.to_json() for p in found])
        return 0
    if not found:
        print("No correction to propose: every issued invoice matches what the ledger knows.")
        return 0
    for p in found:
        print(f"{p.id}: invoice {p.invoice} ({p.customer}) was {p.old_total} € HT, should be "
              f"{p.new_total} € HT (difference {p.difference})")
        print(f"  cause: {p.cause}")
        print(f"  apply: ledger corrections apply {p.id} --by NAME")
    return 0


def run(args: argparse.Namespace) -> int:
    runners = {"bill": run_bill, "invoice": run_invoice, "invoices": run_invoices,
               "corrections": run_corrections}
    try:
        return runners[args.command](args)
    except OSError as error:
        raise LedgerError(f"cannot write {error.filename}: {error.strerror}") from None
