"""``ledger dossier CUSTOMER``: everything a dispute or an audit needs, in one zip that an
auditor checks without installing the ledger.

Inside: the customer's history (every entry with its position and recorded time), each of its
documents (as recorded, Factur-X PDF and XML, état liquidatif, the PES piece of its titre when
it was sent), each explanation, the tariff schedules they used, the rules of the order form, an
inclusion proof of every entry the dossier relies on against one signed checkpoint, that
checkpoint, the operator's public key, a manifest of every file signed by the operator, and
``verify.py`` (standard library + ``cryptography``) with ``VERIFY.md``.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import orjson
from lxml import etree

from commands.audit import checkpoint, latest_checkpoint, prove_entry, registered_verifiers
from commands.billing import invoicing_state
from commands.verification import document_entry
from eventstore.app import LedgerApplication
from eventstore.notes import Signer, open_checkpoint, sign_note
from exports.einvoice import etat_name, facturx_xml
from exports.explain import etat_liquidatif, explain_document, to_json, to_markdown
from exports.files import check_writable, write_whole
from exports.invoice_pdf import facturx_pdf
from ledger.dates import french_date
from ledger.errors import LedgerError
from ledger.rules import RULES
from ledger.tariff_plain import to_plain
from projections.history import customers_known_at, tariffs_known_at
from projections.timeline import history, source_fr

#: Every file of the zip carries this time, so that the same dossier gives the same bytes.
ZIP_TIME = (2000, 1, 1, 0, 0, 0)


def _day(day: str | None) -> str:
    return french_date(day) if day else ""


def _json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def _rules_text() -> bytes:
    lines = ["# Règles du bon de commande « La Suite Territoriale »", ""]
    for rule, (title, sentence) in RULES.items():
        lines += [f"## {rule} — {title}", "", f"> « {sentence} »", ""]
    return "\n".join(lines).encode("utf-8")


VERIFY_MD = """# Vérifier ce dossier

Ce dossier a été produit par le grand livre de l'ordonnateur ({seller}) le {made}. Tout ce qu'il
contient se vérifie sans ce logiciel, avec Python 3 et le paquet `cryptography` :

    pip install cryptography
    python verify.py --key '<clé publique publiée par l'ordonnateur>'

Utilisez la clé **publiée** par l'ordonnateur (sur son site, dans une délibération), pas celle
de `key.txt` : celle-ci n'est là que pour mémoire ({key}).

`verify.py` vérifie, dans l'ordre :
1. que `MANIFEST.json` est signé par cette clé (`MANIFEST.sig`) ;
2. que chaque fichier a l'empreinte SHA-256 que le manifeste indique, et qu'il n'y en a pas d'autre ;
3. que `checkpoint.txt` (tête de l'arbre de Merkle du journal, {size} écritures) est signé par cette clé ;
4. que chaque preuve de `proofs/` mène son écriture à la racine signée (RFC 9162) ;
5. que chaque document de `documents/*.json` est bien celui que son écriture a enregistré, et
   que chaque écriture de `history.json` a sa preuve.

Code de sortie 0 si tout tient, 4 sinon — avec le premier défaut trouvé.

Contenu : `history.json` et `history.md` (les écritures du membre), `documents/` (chaque
document tel qu'il a été enregistré, sa facture Factur-X en PDF et en XML, son état liquidatif,
sa pièce du fichier PES s'il a été transmis), `explanations/` (les bases de la liquidation de
chaque document), `schedules/` (les barèmes tels qu'ils ont été adoptés), `rules.md` (les
phrases du bon de commande), `proofs/`, `checkpoint.txt`,
`key.txt`, `MANIFEST.json`, `MANIFEST.sig`, `verify.py`.
"""


def make_dossier(app: LedgerApplication, customer: str, out: str | Path, signer: Signer, *,
                 start: date | None = None, end: date | None = None,
                 by: str | None = None) -> dict[str, Any]:
    """Write the dossier of ``customer``: its documents issued from ``start`` to ``end``.

    ``out`` is checked first: a dossier may sign and record a checkpoint, which must not be
    left behind by a dossier that could not be written."""
    if start is not None and end is not None and start > end:
        raise LedgerError(f"--from {start} is after --to {end}: no document can be in between")
    if customer not in customers_known_at(app):
        raise LedgerError(f"no customer {customer!r} in this ledger")
    if signer.verifier.text not in {v.text for v in registered_verifiers(app)}:
        raise LedgerError("this key is not registered in the ledger (ledger audit keygen)")
    check_writable(out)
    invoicing = invoicing_state(app)
    numbers = [number for number, document in invoicing.documents.items()
               if document["buyer"]["customer"] == customer
               and (start is None or document["issued_on"] >= start.isoformat())
               and (end is None or document["issued_on"] <= end.isoformat())]
    files: dict[str, bytes] = {}
    positions: set[int] = set()
    timeline = [moment.to_json() for moment in history(app, customer)]
    positions |= {moment["position"] for moment in timeline}
    files["history.json"] = _json(timeline)
    files["history.md"] = ("\n".join(
        [f"# Historique de {customer}", "", "| n° | enregistré le | date | écriture | par | "
         "source | résumé |", "|---|---|---|---|---|---|---|"]
        + [f"| {m['position']} | {m['recorded_at']} | {_day(m['business_date'])} | "
           f"{m['label_fr']} | {m['actor'] or ''} | {source_fr(m['source'])} | "
           f"{m['summary_fr']} |" for m in timeline]) + "\n").encode("utf-8")
    schedules = set()
    for number in numbers:
        entry, fields = document_entry(app, number)
        document = fields["document"]
        positions.add(entry.id)
        explanation = explain_document(app, number)
        for line in explanation["lines"]:
            tree = line.get("tree") or {}
            positions |= {fact["position"] for fact in tree.get("facts", [])
                          if fact.get("position")}
            adopted = (tree.get("tariff") or {}).get("adopted") or {}
            if adopted.get("position"):
                positions.add(adopted["position"])
            if tree.get("tariff"):
                schedules.add(tree["tariff"]["schedule"])
        positions |= {item["position"] for item in explanation.get("late_entries", [])}
        refers = document.get("refers_to")
        preceding = (invoicing.documents[refers]["issued_on"]
                     if refers and not document.get("refers_to_issued_on") else None)
        etat = etat_liquidatif(explanation)
        files[f"documents/{number}.json"] = _json({"document": document,
                                                    "sha256": fields["digest"],
                                                    "position": entry.id})
        files[f"documents/{number}.pdf"] = facturx_pdf(document, fields["digest"],
                                                       refers_to_issued_on=preceding,
                                                       supporting=etat)
        files[f"documents/{number}.xml"] = facturx_xml(document, preceding, etat)
        files[f"documents/{etat_name(number)}"] = etat
        files[f"explanations/{number}.json"] = to_json(explanation)
        files[f"explanations/{number}.md"] = to_markdown(explanation).encode("utf-8")
        piece = _pes_piece(app, number)
        if piece is not None:
            files[f"documents/{number}.pes.xml"], pes_position = piece
            positions.add(pes_position)
    for schedule in tariffs_known_at(app):
        if schedule.id in schedules:
            files[f"schedules/{schedule.id}.json"] = _json(to_plain(schedule))
    files["rules.md"] = _rules_text()
    # One checkpoint covering every entry relied on (signed now if the latest does not).
    needed = max(positions) if positions else app.position()
    try:
        note = latest_checkpoint(app)
        signed, _ = open_checkpoint(note, registered_verifiers(app))
        if signed.size < needed:
            raise LedgerError("stale")
    except LedgerError:
        note = checkpoint(app, signer, by)
    files["checkpoint.txt"] = note.encode("utf-8")
    files["key.txt"] = (signer.verifier.text + "\n").encode("utf-8")
    for position in sorted(positions):
        entry = app.recorder.entry(position)
        proof = prove_entry(app, entry)
        if proof.checkpoint != note:  # against the one checkpoint of the dossier
            raise LedgerError("the ledger moved while the dossier was made: run it again")
        files[f"proofs/{position:08d}.tlog-proof"] = proof.text.encode("utf-8")
    size = int(note.split("\n")[1])
    files["verify.py"] = (Path(__file__).parent / "dossier_verify.py").read_bytes()
    seller = invoicing.documents[numbers[0]]["seller"]["name"] if numbers else "l'ordonnateur"
    made = app.recorder.recorded_at(app.position()).date().isoformat()
    files["VERIFY.md"] = VERIFY_MD.format(seller=seller, made=made, key=signer.verifier.text,
                                          size=size).encode("utf-8")
    manifest = _json({"customer": customer, "documents": numbers,
                      "files": {name: hashlib.sha256(data).hexdigest()
                                for name, data in sorted(files.items())}})
    files["MANIFEST.json"] = manifest
    files["MANIFEST.sig"] = sign_note(
        f"territorial-ledger dossier\n{customer}\n{hashlib.sha256(manifest).hexdigest()}\n",
        signer).encode("utf-8")
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name])
    write_whole(zipped.getvalue(), out)
    return {"documents": len(numbers), "entries": len(positions), "checkpoint_size": size,
            "key": signer.verifier.text, "files": len(files)}


def _pes_piece(app: LedgerApplication, number: str) -> tuple[bytes, int] | None:
    """The piece of the PES file that carried this document (its bordereau's header and the
    piece), with the position of the entry that recorded the file."""
    from exports.pes_export import treasury_state, written_again

    treasury = treasury_state(app)
    sent = treasury.sent.get(number)
    if sent is None:
        return None
    file = treasury.files[sent["file"]]
    root = etree.fromstring(written_again(app, file["name"]))
    for bordereau in root.iter("Bordereau"):
        block = bordereau.find("BlocBordereau")
        if block.find("Exer").get("V") != str(sent["exer"]) or \
                block.find("IdBord").get("V") != str(sent["id_bord"]):
            continue
        for piece in bordereau.iterfind("Piece"):
            id_pce = piece.find("BlocPiece/IdPce")
            if id_pce is None:
                id_pce = piece.find("BlocPiece/InfoPce/IdPce")
            if id_pce.get("V") == str(sent["id_pce"]):
                extract = etree.Element("ExtraitPES", Fichier=file["name"],
                                        SHA256=file["sha256"])
                extract.append(block)
                extract.append(piece)
                position = next(p for p in app.recorder.positions_of(f"pes:{file['name']}"))
                return (etree.tostring(extract, encoding="UTF-8", xml_declaration=True,
                                       pretty_print=True), position)
    return None
