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
from commands.exports import facturx_pdf
from commands.pes import PESError, file_name, render, xsd_errors
from commands.pes_check import check
from commands.provenance import metadata
from eventstore.app import LedgerApplication
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


def _attachments(app: LedgerApplication, numbers: list[str]) -> dict[str, bytes]:
    invoicing = invoicing_state(app)
    out = {}
    for number in numbers:
        document = invoicing.documents[number]
        refers = document.get("refers_to")
        preceding = (invoicing.documents[refers]["issued_on"]
                     if refers and not document.get("refers_to_issued_on") else None)
        out[number] = facturx_pdf(document, invoicing.digests[number],
                                  refers_to_issued_on=preceding)
    return out


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
                    "to write it again, or start after the last document sent")
            data = render(recorded, invoicing.documents, _attachments(app, chosen), categories)
            if hashlib.sha256(data).hexdigest() != recorded["sha256"]:
                raise LedgerError(
                    f"written again, {recorded['name']} would differ from the file recorded "
                    f"(SHA-256 {recorded['sha256']}): the code that writes PES files changed "
                    "since; nothing was written")
            return Export(recorded["name"], data, tuple(chosen), new=False)
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
        name = file_name(profile, bordereaux)
        file: dict[str, Any] = {"name": name, "file_date": day, "profile": profile,
                                "documents": chosen, "bordereaux": bordereaux}
        data = _checked(render(file, invoicing.documents, _attachments(app, chosen),
                               categories), name)
        file["sha256"] = hashlib.sha256(data).hexdigest()
        treasury.record_file(file)
        try:
            app.save(treasury, metadata=metadata("invoices export --format pes", by))
        except IntegrityError:
            continue  # another export took numbers first: plan again from fresh state
        return Export(name, data, tuple(chosen), new=True)
    raise LedgerError("other exports kept taking the next titre numbers; nothing was recorded "
                      "— run it again")


def write(export: Export, out: str | os.PathLike[str]) -> Path:
    """Write the file atomically (a temporary file renamed): never half a file."""
    path = Path(out)
    temporary = path.with_name(f".{path.name}.part")
    temporary.write_bytes(export.data)
    temporary.replace(path)
    return path


def summary(export: Export, treasury: Treasury) -> list[Mapping[str, Any]]:
    file = treasury.files.get(export.name)
    if file is None:
        return []
    return [{"flow": b["flow"], "exercice": b["exer"], "type": b["typ_bord"],
             "bordereau": b["id_bord"],
             "pieces": [{"document": p["document"], "number": p["id_pce"]}
                        for p in b["pieces"]]} for b in file["bordereaux"]]
