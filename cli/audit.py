"""``ledger audit …`` (keys, checkpoints, verification, proofs, closings) and ``ledger history``."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import date
from pathlib import Path

from cli.common import log_position, open_ledger, output_file, store_options
from exports.files import check_writable, write_whole

#: Exit code of `audit verify` and `audit check-proof` when something does not hold.
VERIFY_FAILED = 4


def _period(text: str) -> str:
    if not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", text) or text.startswith("0000"):
        raise argparse.ArgumentTypeError(f"expected a month such as 2027-01, got {text!r}")
    return text


def _year(text: str) -> str:
    if not re.fullmatch(r"[0-9]{4}", text) or text == "0000":
        raise argparse.ArgumentTypeError(f"expected a year such as 2027, got {text!r}")
    return text


def add_parsers(commands, common: argparse.ArgumentParser) -> None:
    from cli.common import add_known_at

    parser = commands.add_parser("audit", parents=[common])
    actions = parser.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    by_help = "who does it (recorded; default: $LEDGER_ACTOR, else the system user)"
    key_help = "the signing key file (default: $LEDGER_SIGNING_KEY)"

    keygen = actions.add_parser("keygen", parents=[common],
                                help="create the operator's signing key and register its public "
                                     "key in the ledger")
    keygen.add_argument("--out", type=output_file, required=True,
                        help="file to create for the private key — keep it outside the store")
    keygen.add_argument("--origin", help="the log's name in checkpoints (default: "
                                         "territorial-ledger/<operator SIRET>)")
    keygen.add_argument("--by", help=by_help)

    key = actions.add_parser("key", parents=[common],
                             help="print the public (verifier) keys registered in the ledger")
    key.add_argument("--json", action="store_true")

    point = actions.add_parser("checkpoint", parents=[common],
                               help="sign the tree of the whole log, record and print it")
    point.add_argument("--key", help=key_help)
    point.add_argument("--by", help=by_help)
    point.add_argument("--out", type=output_file, help="also write the checkpoint to this file")
    point.add_argument("--latest", action="store_true",
                       help="print the latest recorded checkpoint instead of signing a new one")

    check = actions.add_parser("verify", parents=[common],
                               help="recompute the whole history and check it against the "
                                    "signed checkpoints; exit 4 at the first thing that fails")
    check.add_argument("--checkpoint", action="append", default=[], metavar="FILE",
                       help="a checkpoint the operator published (repeatable)")
    check.add_argument("--key", action="append", default=[], metavar="PUBKEY",
                       help="a public key to trust, as text or a file (repeatable; default: "
                            "the keys registered in the ledger)")
    check.add_argument("--json", action="store_true")
    check.add_argument("--quiet", action="store_true", help="no progress bar")

    prove = actions.add_parser("prove", parents=[common],
                               help="a C2SP tlog-proof that a document (or entry) is in the "
                                    "signed history")
    target = prove.add_mutually_exclusive_group(required=True)
    target.add_argument("number", nargs="?", help="invoice or credit note number")
    target.add_argument("--position", type=log_position, help="any entry, by log position")
    prove.add_argument("--json", action="store_true",
                       help='print {"index", "leaf", "hashes", "checkpoint"}')
    prove.add_argument("--out", type=output_file,
                       help="write the proof to this file instead of printing it")

    offline = actions.add_parser("check-proof", parents=[common],
                                 help="check a proof offline with the operator's public key")
    offline.add_argument("file", help="proof file (text or --json form)")
    offline.add_argument("--key", required=True, metavar="PUBKEY",
                         help="the operator's public key, as text or a file")
    offline.add_argument("--json", action="store_true")

    close = actions.add_parser("close", parents=[common],
                               help="close a month or a year: record its totals, then sign a "
                                    "checkpoint")
    which = close.add_mutually_exclusive_group(required=True)
    which.add_argument("--period", type=_period, help="a month, YYYY-MM")
    which.add_argument("--year", type=_year, help="a year, YYYY")
    close.add_argument("--key", help=key_help)
    close.add_argument("--by", help=by_help)

    timeline = commands.add_parser("history", parents=[common])
    timeline.add_argument("subject", help="customer key or domain name")
    timeline.add_argument("--json", action="store_true")
    add_known_at(timeline)


def _store(args: argparse.Namespace):

    return open_ledger(args)


def run(args: argparse.Namespace) -> int:
    from commands import audit

    runners = {"keygen": run_keygen, "key": run_key, "checkpoint": run_checkpoint,
               "verify": run_verify, "prove": run_prove, "check-proof": run_check_proof,
               "close": run_close}
    try:
        return runners[args.audit_command](args)
    except OSError as error:
        raise audit.AuditError(f"cannot use {error.filename}: {error.strerror}") from None


def run_keygen(args: argparse.Namespace) -> int:
    from commands import audit

    app = _store(args)
    origin = args.origin or audit.default_origin(app, store_options(args)[1])
    signer = audit.keygen(app, args.out, origin, args.by)
    print(f"Signing key written to {args.out} (keep it safe, outside the store).")
    print(f"Public key, registered in the ledger — publish it: {signer.verifier.text}")
    return 0


def run_key(args: argparse.Namespace) -> int:
    from cli.output import print_json
    from commands import audit

    keys = audit.registered_verifiers(_store(args))
    if args.json:
        print_json([{"name": k.name, "key": k.text} for k in keys])
        return 0
    if not keys:
        print("No key registered: run `ledger audit keygen --out FILE`.")
        return 1
    for key in keys:
        print(key.text)
    return 0


def run_checkpoint(args: argparse.Namespace) -> int:
    from cli.output import progress
    from commands import audit

    app = _store(args)
    if args.latest:
        note = audit.latest_checkpoint(app)
    else:
        signer = audit.load_signer(args.key)
        quiet = not sys.stderr.isatty()
        if args.out:  # before the checkpoint is recorded: nothing recorded for no file
            check_writable(args.out)
        with progress("checking new entries", None, quiet=quiet) as advance:
            note = audit.checkpoint(app, signer, args.by, on_entry=advance)
    if args.out:
        write_whole(note.encode("utf-8"), args.out)
    sys.stdout.write(note)
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from cli.output import print_json, progress
    from commands import audit, audit_verify
    from eventstore.notes import Checkpoint, NoteError, split_note

    app = _store(args)
    notes = []
    for name in args.checkpoint:
        try:
            notes.append(Path(name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise audit.AuditError(f"checkpoint file {name} not found") from None
        except UnicodeDecodeError:
            raise audit.AuditError(f"checkpoint file {name} is not text: a checkpoint is a "
                                   "signed note in UTF-8 (ledger audit checkpoint)") from None
        try:  # its form only: whether it holds, and who signed it, is what verify says
            Checkpoint.parse_text(split_note(notes[-1])[0])
        except NoteError as error:
            raise audit.AuditError(f"checkpoint file {name} is not a checkpoint ({error}): "
                                   "give the file `ledger audit checkpoint` wrote") from None
    keys = [audit.parse_verifier(text) for text in args.key]
    quiet = args.json or args.quiet
    total = app.position() if sys.stderr.isatty() and not quiet else None
    with progress("verifying the log", total, quiet=quiet) as advance:
        report = audit_verify.verify_ledger(app, notes, keys, on_entry=advance)
    if args.json:
        first = report.first
        print_json({
            "ok": report.ok, "entries": report.entries, "checkpoints": report.checkpoints,
            "documents": report.documents, "closings": report.closings,
            "first_failure": None if first is None else {
                "position": first.position, "event": first.event, "reason": first.reason},
            "failures": [{"position": f.position, "event": f.event, "reason": f.reason}
                         for f in report.failures],
            "warnings": list(report.warnings),
        })
        return 0 if report.ok else VERIFY_FAILED
    for warning in report.warnings:
        print(f"note: {warning}", file=sys.stderr)
    summary = (f"{report.entries} entries, {report.checkpoints} checkpoint(s), "
               f"{report.documents} document(s), {report.closings} closing(s)")
    if report.ok:
        print(f"Verified: {summary}. Every leaf, root, signature, document and series holds.")
        return 0
    first = report.first
    print(f"VERIFICATION FAILED at {first}", file=sys.stderr)
    for failure in report.failures[1:20]:
        print(f"  also: {failure}", file=sys.stderr)
    if len(report.failures) > 20:
        print(f"  … and {len(report.failures) - 20} more", file=sys.stderr)
    print(f"Checked {summary}.", file=sys.stderr)
    return VERIFY_FAILED


def run_prove(args: argparse.Namespace) -> int:
    from commands import audit

    app = _store(args)
    if args.position is not None:
        # Beyond the log (even beyond what SQLite's integers hold): no such entry.
        entry = app.recorder.entry(args.position) if 0 < args.position <= app.position() \
            else None
        if entry is None:
            raise audit.AuditError(f"the log has no entry at position {args.position}")
        proof = audit.prove_entry(app, entry)
    else:
        proof = audit.prove_document(app, args.number)
    if args.json:
        import orjson

        text = orjson.dumps(audit.proof_json(proof), option=orjson.OPT_INDENT_2).decode() + "\n"
    else:
        text = proof.text
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"proof of position {proof.index + 1} written to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def run_check_proof(args: argparse.Namespace) -> int:
    from cli.output import print_json
    from commands import audit

    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise audit.AuditError(f"proof file {args.file} not found") from None
    except UnicodeDecodeError:
        print(f"PROOF REJECTED: {args.file} is not text: a proof is UTF-8 text "
              "(ledger audit prove)", file=sys.stderr)
        return VERIFY_FAILED
    verifier = audit.parse_verifier(args.key)
    try:
        checked = audit.check_proof(text, verifier)
    except audit.AuditError as error:
        print(f"PROOF REJECTED: {error}", file=sys.stderr)
        return VERIFY_FAILED
    entry = checked.entry
    if args.json:
        print_json({"ok": True, "origin": checked.checkpoint.origin,
                    "tree_size": checked.checkpoint.size, "entry": entry})
        return 0
    data = entry.get("data", {})
    what = entry.get("event")
    if isinstance(data, dict) and isinstance(data.get("document"), dict):
        document = data["document"]
        what = (f"{entry['event']} {document.get('number')} of {document.get('issued_on')}, "
                f"{document.get('total_ht')} € HT, buyer {document.get('buyer', {}).get('name')}")
    print(f"Proof verified: entry {entry.get('position')} ({what}), recorded "
          f"{entry.get('recorded_at')}, is in the tree of {checked.checkpoint.size} entries "
          f"signed by {checked.checkpoint.origin}.")
    return 0


def run_close(args: argparse.Namespace) -> int:
    from commands import audit

    app = _store(args)
    signer = audit.load_signer(args.key)
    period = args.period or args.year
    closing, note = audit.close_period(app, period, signer, date.today(), args.by)
    print(f"{closing['kind'].capitalize()} {period} closed: {closing['documents']} document(s); "
          f"invoiced {closing['invoiced']} €, credited {closing['credited']} €, net "
          f"{closing['net']} € HT; since the first entry: net {closing['cumulative_net']} € HT.")
    print("Checkpoint signed:")
    sys.stdout.write(note)
    return 0


def run_history(args: argparse.Namespace) -> int:
    from rich.table import Table

    from cli.common import horizon
    from cli.output import console, print_json
    from commands import views
    from projections import timeline
    from projections.history import resolve

    app = _store(args)
    upto = resolve(app, horizon(args))
    if args.json:
        print_json(views.history(app, args.subject, upto))
        return 0
    moments = timeline.history(app, args.subject, upto)
    table = Table(title=f"History of {args.subject}", title_justify="left")
    for column in ("Position", "Recorded (UTC)", "Business date", "Event", "Actor", "Source",
                   "Details"):
        table.add_column(column, overflow="fold", no_wrap=column == "Position")
    for m in moments:
        table.add_row(str(m.position), m.recorded_at[:19].replace("T", " "),
                      m.business_date or "", m.label, m.actor or "", m.source or "", m.summary)
    console().print(table)
    return 0
