"""What the operator sends its comptable public: PES V2 files of titres de recette (Hélios).

A syndicat mixte's invoices reach its members as *titres de recette*: the ordonnateur sends
bordereaux of titres to the comptable in a PES_Aller file; Hélios takes them in charge and
deposits each titre's *avis des sommes à payer* (ASAP) on the member's Chorus Pro account.

This aggregate records the operator's Hélios identifiers (poste comptable, budget, imputations)
and every file sent: which document became which titre (IdPce, from a gapless series per
exercice), on which bordereau (IdBord, a series per exercice and type of bordereau), with which
lines. Numbers are taken here, once: a document is never sent twice under two numbers, and a
file sent can be written again, byte for byte, from what is recorded.

The planning functions below are pure: documents, the profile and the numbers already taken
in, a plan of bordereaux out (each titre's lines from :mod:`ledger.titres`). ``exports/pes.py``
writes the XML of a plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.identity import treasury_id
from ledger.titres import (
    PESRefused,
    TitreLine,
    natpce,
    titre_lines,
)

INVOICE, CREDIT_NOTE = "invoice", "credit_note"
RECETTE, DEPENSE = "recette", "depense"


# The plan of a file ----------------------------------------------------------------------------

def plan_file(treasury: Treasury, documents: Sequence[Mapping[str, Any]],
              profile: Mapping[str, Any], *, mandats: tuple[int, int] | None = None
              ) -> list[dict[str, Any]]:
    """The bordereaux of a new file holding ``documents`` (in issue order), numbered after
    those ``treasury`` recorded: invoices on bordereaux of titres (TypBord 01), one per
    exercice; credit notes on an invoice of the same exercice on bordereaux of réductions
    (TypBord 02, pieces 02 02 06); credit notes on an invoice of a closed exercice as mandats
    01 02 09 in the spending flow, numbered from ``mandats`` = (IdBord, first IdPce), which the
    operator's spending chain gives (the ledger does not hold that series)."""
    rules = profile["imputations"]
    withheld = withheld_pairs(documents, treasury)
    documents = [d for d in documents if d["number"] not in withheld]
    numbers = {document["number"] for document in documents}
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    closed: list[dict[str, Any]] = []
    lines_of: dict[str, list[TitreLine]] = {}
    exer_of = {document["number"]: int(document["issued_on"][:4]) for document in documents}
    for document in documents:
        number = document["number"]
        if number in treasury.sent:
            raise PESRefused(f"{number} was already sent in {treasury.sent[number]['file']}")
        exer = exer_of[number]
        lines = lines_of[number] = titre_lines(document, rules)
        piece = {"document": number, "lines": _recorded(lines), "refers_to": None}
        if document["kind"] == INVOICE:
            natpce(document, lines)
            groups.setdefault((RECETTE, exer, "01"), []).append(piece)
            continue
        refers = document.get("refers_to")
        if refers not in numbers and refers not in treasury.sent:
            raise PESRefused(
                f"{number} credits {refers}, which no PES file sent: its titre must reach "
                f"the comptable first (export a range that holds {refers})")
        original_exer = exer_of[refers] if refers in numbers else treasury.sent[refers]["exer"]
        piece["refers_to"] = refers
        if original_exer > exer:
            raise PESRefused(f"{number} of {exer} credits {refers}, a titre of {original_exer}")
        if original_exer < exer:
            closed.append({**piece, "exer": exer})
        else:
            groups.setdefault((RECETTE, exer, "02"), []).append(piece)
    # Numbers: titres of an exercice follow one another, bordereau after bordereau.
    titres = dict(treasury.titres)
    seen = dict(treasury.bordereaux)
    placed: dict[str, dict[str, Any]] = {}
    bordereaux = []
    for flow, exer, typ in sorted(groups, key=lambda g: (g[1], g[2])):
        key = f"{flow}:{exer}:{typ}"
        seen[key] = seen.get(key, 0) + 1
        for piece in groups[(flow, exer, typ)]:
            titres[exer] = titres.get(exer, 0) + 1
            piece["id_pce"] = titres[exer]
            placed[piece["document"]] = {
                "exer": exer, "id_pce": titres[exer],
                "lines": {k: line.id_ligne for line in lines_of[piece["document"]]
                          for k in line.keys}}
        bordereaux.append({"flow": flow, "exer": exer, "typ_bord": typ, "id_bord": seen[key],
                           "pieces": groups[(flow, exer, typ)]})
    if closed:
        if mandats is None:
            raise PESRefused(
                f"{', '.join(c['document'] for c in closed)} credit(s) an invoice of a closed "
                "exercice: the comptable refunds it by a mandat « annulant un titre » (01 02 09) "
                "in the spending flow, numbered in the budget's series of mandats, which the "
                "ledger does not hold. Give --mandat-bordereau N --first-mandat M (from your "
                "spending chain), or export those credit notes apart")
        id_bord, first = mandats
        if id_bord < 1 or first < 1:
            raise PESRefused("mandat numbers start at 1")
        exers = {c.pop("exer") for c in closed}
        if len(exers) != 1:
            raise PESRefused("credit notes on closed exercices of several years: export them "
                             "one year at a time (one bordereau of mandats per file)")
        for i, piece in enumerate(closed):
            piece["id_pce"] = first + i
        bordereaux.insert(0, {"flow": DEPENSE, "exer": exers.pop(), "typ_bord": "01",
                              "id_bord": id_bord, "pieces": closed})
    for bordereau in bordereaux:
        for piece in bordereau["pieces"]:
            refers = piece.pop("refers_to")
            piece["original"] = None
            if refers is not None:
                sent = placed.get(refers) or treasury.sent[refers]
                piece["original"] = {
                    "document": refers, "exer": sent["exer"], "id_pce": sent["id_pce"],
                    "lines": _original_lines(piece["document"], refers,
                                             lines_of[piece["document"]], sent["lines"])}
    return bordereaux


def withheld_pairs(documents: Sequence[Mapping[str, Any]], treasury: Treasury) -> set[str]:
    """Invoices credited before they were sent, and their credit notes: nothing of them is
    owed, so neither goes to the comptable (a credit note repeats its invoice in full)."""
    numbers = {document["number"] for document in documents}
    out = set()
    for document in documents:
        refers = document.get("refers_to")
        if document["kind"] == CREDIT_NOTE and refers in numbers \
                and refers not in treasury.sent and document["number"] not in treasury.sent:
            out |= {document["number"], refers}
    return out


def _recorded(lines: Sequence[TitreLine]) -> list[dict[str, Any]]:
    return [{"id_ligne": line.id_ligne, "keys": line.keys} for line in lines]


def _original_lines(number: str, refers: str, lines: Sequence[TitreLine],
                    original: Mapping[str, int]) -> dict[str, int]:
    """IdLigneOrig of each line of a credit note: the line of the original titre that held
    the same charges (a credit note repeats the lines of the invoice it credits)."""
    out = {}
    for line in lines:
        found = {original.get(key) for key in line.keys}
        if None in found or len(found) != 1:
            raise PESRefused(f"{number}: its lines are not those of the titre of {refers}")
        out[str(line.id_ligne)] = found.pop()
    return out


class Treasury(Aggregate):
    """The operator's Hélios profile and every PES file sent. One per store."""

    @staticmethod
    def create_id() -> UUID:
        return treasury_id()

    @event("Opened")
    def __init__(self) -> None:
        self.profile: dict[str, Any] | None = None
        self.files: dict[str, dict[str, Any]] = {}
        self.sent: dict[str, dict[str, Any]] = {}  # document number → where it went
        self.titres: dict[int, int] = {}  # exercice → last IdPce
        self.bordereaux: dict[str, int] = {}  # "recette:2027:01" → last IdBord

    def set_profile(self, profile: dict[str, Any]) -> bool:
        """Record the Hélios identifiers (checked by the command). ``False`` if unchanged."""
        if profile == self.profile:
            return False
        self._profile_set(profile=profile)
        return True

    @event("HeliosProfileSet")
    def _profile_set(self, profile: dict[str, Any]) -> None:
        self.profile = dict(profile)

    def record_file(self, file: dict[str, Any]) -> None:
        """Record a file about to be handed to the comptable. Its titre numbers must follow the
        series without a gap, its bordereau numbers too; no document may be in it twice."""
        if file["name"] in self.files:
            raise PESRefused(f"a file named {file['name']} was already recorded")
        titres, bordereaux = dict(self.titres), dict(self.bordereaux)
        for bordereau in file["bordereaux"]:
            if bordereau["flow"] == RECETTE:
                key = f"{RECETTE}:{bordereau['exer']}:{bordereau['typ_bord']}"
                if bordereau["id_bord"] != bordereaux.get(key, 0) + 1:
                    raise PESRefused(f"bordereau {bordereau['id_bord']} is out of sequence")
                bordereaux[key] = bordereau["id_bord"]
                for piece in bordereau["pieces"]:
                    exer = bordereau["exer"]
                    if piece["id_pce"] != titres.get(exer, 0) + 1:
                        raise PESRefused(f"titre {piece['id_pce']} is out of sequence")
                    titres[exer] = piece["id_pce"]
            for piece in bordereau["pieces"]:
                if piece["document"] in self.sent:
                    raise PESRefused(f"{piece['document']} was already sent")
        self._file_recorded(file=file)

    @event("PesFileRecorded")
    def _file_recorded(self, file: dict[str, Any]) -> None:
        self.files[file["name"]] = file
        for bordereau in file["bordereaux"]:
            exer = bordereau["exer"]
            if bordereau["flow"] == RECETTE:
                key = f"{RECETTE}:{exer}:{bordereau['typ_bord']}"
                self.bordereaux[key] = max(self.bordereaux.get(key, 0), bordereau["id_bord"])
            for piece in bordereau["pieces"]:
                if bordereau["flow"] == RECETTE:
                    self.titres[exer] = max(self.titres.get(exer, 0), piece["id_pce"])
                self.sent[piece["document"]] = {
                    "file": file["name"], "flow": bordereau["flow"], "exer": exer,
                    "id_bord": bordereau["id_bord"], "id_pce": piece["id_pce"],
                    "lines": {key: line["id_ligne"] for line in piece["lines"]
                              for key in line["keys"]},
                }

    def file_of(self, numbers: Iterable[str]) -> dict[str, Any] | None:
        """The recorded file holding exactly these documents, if one does."""
        wanted = set(numbers)
        for file in self.files.values():
            if set(file["documents"]) == wanted:
                return file
        return None
