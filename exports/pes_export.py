"""``ledger invoices export --format pes``: the PES_Aller file the comptable public receives.

A range of issued documents becomes one file: the documents never sent get titre (and
bordereau) numbers, recorded with the file before it is written; a range sent before is
written again from what was recorded, byte for byte. Every file is checked against the DGFiP
schemas and the rules of their annotations before anything is recorded or written.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import attrs
from eventsourcing.persistence import IntegrityError

from commands.billing import invoicing_state
from commands.unit_of_work import record
from eventstore.app import LedgerApplication
from exports.files import write_whole
from exports.invoice_pdf import facturx_pdf
from exports.pes import PESError, file_name, render, xsd_errors
from exports.pes_check import check
from ledger.errors import LedgerError
from ledger.identity import treasury_id
from ledger.treasury import Treasury, plan_file, withheld_pairs
from projections.history import aggregate_known_at, customers_known_at

ATTEMPTS = 5


@attrs.frozen
class Export:
    name: str
    data: bytes
    documents: tuple[str, ...]
    new: bool  # False: a file sent before, written again


def treasury_state(app: LedgerApplication) -> Treasury:
    return aggregate_known_at(app, treasury_id(), None) or Treasury()


def select(numbers: list[str], first: str | None, last: str | None) -> list[str]:
    """The documents from ``first`` to ``last`` in issue order (both included)."""
    for bound in (first, last):
        if bound is not None and bound not in numbers:
            raise LedgerError(f"no document {bound} was issued (ledger invoices list)")
    start = numbers.index(first) if first else 0
    end = numbers.index(last) + 1 if last else len(numbers)
    if end <= start:
        raise LedgerError(f"{last} was issued before {first}: give the range in issue order")
    return numbers[start:end]


#: Files recorded from now on carry each document's état liquidatif (a PJ of its own, and in
#: the Factur-X as BG-24); files of format 1 did not, and are written again as they were.
FILE_FORMAT = 2


def _attachments(app: LedgerApplication, numbers: list[str], file_format: int
                 ) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(Factur-X PDFs, états liquidatifs) of the documents, as a file of this format holds."""
    from exports.explain import etat_liquidatif, explain_document

    invoicing = invoicing_state(app)
    facturx, etats = {}, {}
    for number in numbers:
        document = invoicing.documents[number]
        refers = document.get("refers_to")
        preceding = (invoicing.documents[refers]["issued_on"]
                     if refers and not document.get("refers_to_issued_on") else None)
        etat = None
        if file_format >= 2:
            etat = etats[number] = etat_liquidatif(explain_document(app, number))
        facturx[number] = facturx_pdf(document, invoicing.digests[number],
                                      refers_to_issued_on=preceding, supporting=etat)
    return facturx, etats


def _checked(data: bytes, name: str) -> bytes:
    problems = xsd_errors(data) or check(data)
    if problems:
        raise PESError(f"the file {name} would break the PES V2 rules, so nothing was recorded "
                       f"nor written: {problems[0]}" + (f" (and {len(problems) - 1} more)"
                                                         if len(problems) > 1 else ""))
    return data


def export_pes(app: LedgerApplication, *, first: str | None = None, last: str | None = None,
               file_date: date | None = None, by: str | None = None,
               mandats: tuple[int, int] | None = None) -> Export:
    """The file of the documents from ``first`` to ``last`` (default: every document not sent
    yet), recorded if new."""
    for _ in range(ATTEMPTS):
        invoicing = invoicing_state(app)
        treasury = treasury_state(app)
        issued = list(invoicing.documents)
        if first is None and last is None:
            unsent = [n for n in issued if n not in treasury.sent]
            withheld = withheld_pairs([invoicing.documents[n] for n in unsent], treasury)
            chosen = [n for n in unsent if n not in withheld]
            if not issued:
                raise LedgerError("no document has been issued yet: there is nothing to send "
                                  "(ledger bill issues invoices)")
            if not chosen:
                raise LedgerError("every issued document was already sent to the comptable "
                                  f"({len(treasury.files)} file(s)); give --from/--to to write "
                                  "a file again")
        else:
            chosen = select(issued, first, last)
        categories = {key: customer.category
                      for key, customer in customers_known_at(app).items()}
        sent = [n for n in chosen if n in treasury.sent]
        if sent:
            recorded = treasury.file_of(chosen)
            if recorded is None:
                files = sorted({treasury.sent[n]["file"] for n in sent})
                raise LedgerError(
                    f"{len(sent)} of these documents were already sent ({sent[0]}… in "
                    f"{', '.join(files)}): a document is sent once. Give the range of one file "
                    "to write it again (or --file NAME), or start after the last document sent")
            return Export(recorded["name"], written_again(app, recorded["name"]),
                          tuple(chosen), new=False)
        profile = treasury.profile
        if profile is None:
            raise LedgerError("the Hélios identifiers are not set: import a set_helios_profile "
                              "command first (docs/pes.md)")
        documents = [invoicing.documents[n] for n in chosen]
        bordereaux = plan_file(treasury, documents, profile, mandats=mandats)
        if not bordereaux:
            raise LedgerError("nothing to send: each invoice of the range was credited before "
                              "it was sent, so nothing of it is owed")
        day = (file_date or date.today()).isoformat()
        latest = max(d["issued_on"] for d in documents)
        if day < latest:
            raise LedgerError(f"the file is dated {day}, before {latest}, the issue date of a "
                              "document it carries")
        exercice = min(d["issued_on"] for d in documents)[:4]
        if int(day[:4]) > int(exercice) + 1:
            # A file is sent within its exercice, or early in the next year (the complementary
            # period of January); a date typed years ahead would be recorded for good.
            raise LedgerError(f"the file is dated {day}, more than a year after {exercice}, the "
                              "exercice of a document it carries: check --file-date")
        name = file_name(profile, bordereaux)
        file: dict[str, Any] = {"name": name, "file_date": day, "profile": profile,
                                "documents": chosen, "bordereaux": bordereaux,
                                "format": FILE_FORMAT}
        data = _checked(render(file, invoicing.documents,
                               *_attachments(app, chosen, FILE_FORMAT), categories), name)
        file["sha256"] = hashlib.sha256(data).hexdigest()
        treasury.record_file(file)
        try:
            record(app, treasury, via="invoices export --format pes", by=by)
        except IntegrityError:
            continue  # another export took numbers first: plan again from fresh state
        return Export(name, data, tuple(chosen), new=True)
    raise LedgerError("other exports kept taking the next titre numbers; nothing was recorded "
                      "— run it again")


def written_again(app: LedgerApplication, name: str) -> bytes:
    """A file recorded before, written again from what was recorded: the same bytes, or an
    error if they would differ."""
    treasury = treasury_state(app)
    recorded = treasury.files.get(name)
    if recorded is None:
        raise LedgerError(f"no PES file named {name} was recorded "
                          f"({len(treasury.files)} file(s) recorded)")
    invoicing = invoicing_state(app)
    categories = {key: customer.category for key, customer in customers_known_at(app).items()}
    pieces = [piece["document"] for bordereau in recorded["bordereaux"]
              for piece in bordereau["pieces"]]
    data = render(recorded, invoicing.documents,
                  *_attachments(app, pieces, recorded.get("format", 1)), categories)
    if hashlib.sha256(data).hexdigest() != recorded["sha256"]:
        raise LedgerError(
            f"written again, {name} would differ from the file recorded (SHA-256 "
            f"{recorded['sha256']}): the code that writes PES files changed since; nothing "
            "was written")
    return data


def write(export: Export, out: str | os.PathLike[str]) -> Path:
    """Write the file atomically (a temporary file renamed): never half a file."""
    return write_whole(export.data, out)


def summary(export: Export, treasury: Treasury) -> list[Mapping[str, Any]]:
    file = treasury.files.get(export.name)
    if file is None:
        return []
    return [{"flow": b["flow"], "exercice": b["exer"], "type": b["typ_bord"],
             "bordereau": b["id_bord"],
             "pieces": [{"document": p["document"], "number": p["id_pce"]}
                        for p in b["pieces"]]} for b in file["bordereaux"]]
