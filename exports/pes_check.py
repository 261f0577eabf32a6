"""Rules of a PES_Aller that its XSD cannot hold, stated in the schema's annotations.

``check(data)`` returns the breaches found (empty: none), each naming the bordereau, piece or
attachment. What is checked, and the annotation behind it:

- NbrPce: « Nombre total de pièces véhiculées par le bordereau »;
- MtBordHt / MtBordHT = the sum of the lines' MtHT; MtBordTVA present exactly when some line
  has a MtTVA, and equal to their sum (« Si un montant est saisi … au moins une Ligne de Piece
  … doit comporter une balise MtTVA »);
- IdBord unique per exercice and type of bordereau (« unique par exercice et par type de
  bordereau »); IdPce unique per exercice in a flow;
- the triplets TypBord/TypPce/NatPce the ledger writes: 01 01 01, 01 01 02, 02 02 06 (titres),
  01 02 09 (mandats), with their RattachPiece « complet et obligatoire » (ExerRat = Exer for
  02 02 06, an earlier exercice for 01 02 09);
- Edition 02: « doit avoir la balise NatIdTiers servie à 01 Siret et un IdTiers valide, doit
  avoir une référence PJ se rapportant à une PJ de type 006 PES Facture avec un type de facture
  09 ASAP, doit avoir un NumeroFacture valorisé »; the ASAP's RefTitre names this titre, its
  totals are the titre's, and it is itself valid against the schema;
- every PJRef has its PJ and every PJ a PJRef; IdUnique unique; each PJ's content is gzip then
  base64 and not empty (« SI fichier à vide, rejet de la PJ »);
- every SIRET (NatIdTiers 01) has a valid key, and the budget's IdColl too.
"""

from __future__ import annotations

import base64
import binascii
import gzip
from collections import Counter
from decimal import Decimal

from lxml import etree
from stdnum.fr import siret

from exports.pes import xsd_errors

TITRE_TRIPLETS = {("01", "01", "01"), ("01", "01", "02"), ("02", "02", "06")}
MANDAT_TRIPLETS = {("01", "02", "09")}


def _v(node: etree._Element | None, path: str) -> str | None:
    found = node.find(path) if node is not None else None
    return found.get("V") if found is not None else None


def _amount(text: str | None) -> Decimal:
    return Decimal(text) if text else Decimal(0)


def check(data: bytes) -> list[str]:
    """Every breach of the annotation rules in a PES_Aller file."""
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    problems: list[str] = []
    id_coll = _v(root, "EnTetePES/IdColl")
    if id_coll and not siret.is_valid(id_coll):
        problems.append(f"EnTetePES: IdColl {id_coll} is not a valid SIRET")
    attachments = {}
    for pj in root.iterfind("PES_PJ/PJ"):
        uid = _v(pj, "IdUnique")
        if uid in attachments:
            problems.append(f"PJ {uid}: IdUnique appears twice")
        try:
            content = gzip.decompress(base64.b64decode(pj.findtext("Contenu/Fichier") or "",
                                                       validate=True))
        except (binascii.Error, OSError, EOFError):
            problems.append(f"PJ {uid}: not gzip then base64")
            content = b""
        if not content:
            problems.append(f"PJ {uid}: empty (« SI fichier à vide, rejet de la PJ »)")
        attachments[uid] = (_v(pj, "TypePJ"), content)
    referenced = set()
    for flow, triplets, ht_tag in (("PES_RecetteAller", TITRE_TRIPLETS, "MtBordHt"),
                                   ("PES_DepenseAller", MANDAT_TRIPLETS, "MtBordHT")):
        seen_bordereaux, seen_pieces = Counter(), Counter()
        for bordereau in root.iterfind(f"{flow}/Bordereau"):
            block = bordereau.find("BlocBordereau")
            exer, id_bord, typ = _v(block, "Exer"), _v(block, "IdBord"), _v(block, "TypBord")
            where = f"{flow} bordereau {exer}/{typ}/{id_bord}"
            seen_bordereaux[(exer, typ, id_bord)] += 1
            pieces = bordereau.findall("Piece")
            if _v(block, "NbrPce") != str(len(pieces)):
                problems.append(f"{where}: NbrPce {_v(block, 'NbrPce')} for {len(pieces)} "
                                "pieces")
            line_tag = "InfoLignePiece" if flow == "PES_RecetteAller" else "InfoLignePce"
            hts = [_amount(_v(line, "MtHT")) for line in bordereau.iter(line_tag)]
            vats = [_amount(_v(line, "MtTVA")) for line in bordereau.iter(line_tag)]
            if _amount(_v(block, ht_tag)) != sum(hts):
                problems.append(f"{where}: {ht_tag} {_v(block, ht_tag)} is not the sum of the "
                                f"lines ({sum(hts)})")
            if (_v(block, "MtBordTVA") is not None) != any(vats) or \
                    _amount(_v(block, "MtBordTVA")) != sum(vats):
                problems.append(f"{where}: MtBordTVA does not match the lines' MtTVA")
            for piece in pieces:
                info = piece.find("BlocPiece") if flow == "PES_RecetteAller" \
                    else piece.find("BlocPiece/InfoPce")
                id_pce = _v(info, "IdPce")
                at = f"{where} piece {id_pce}"
                seen_pieces[(exer, id_pce)] += 1
                triplet = (typ, _v(info, "TypPce"), _v(info, "NatPce"))
                if triplet not in triplets:
                    problems.append(f"{at}: triplet {' '.join(map(str, triplet))} is not one "
                                    "the ledger writes")
                for ref in info.iterfind("PJRef"):
                    uid = _v(ref, "IdUnique")
                    referenced.add(uid)
                    if uid not in attachments:
                        problems.append(f"{at}: PJRef {uid} has no PJ")
                for line in piece.iterfind("LigneDePiece"):
                    _check_line(line, triplet, exer, at, problems)
                if _v(info, "Edition") == "02":
                    _check_asap(piece, info, exer, id_bord, id_pce, attachments, at, problems)
        for key, count in seen_bordereaux.items():
            if count > 1:
                problems.append(f"{flow}: bordereau {'/'.join(key)} appears {count} times")
        for key, count in seen_pieces.items():
            if count > 1:
                problems.append(f"{flow}: piece {'/'.join(key)} appears {count} times")
    for uid in sorted(set(attachments) - referenced):
        problems.append(f"PJ {uid}: no PJRef points to it")
    return problems


def _check_line(line: etree._Element, triplet: tuple, exer: str | None, at: str,
                problems: list[str]) -> None:
    tiers = line.find("Tiers/InfoTiers")
    if _v(tiers, "NatIdTiers") == "01" and not siret.is_valid(_v(tiers, "IdTiers") or ""):
        problems.append(f"{at}: IdTiers {_v(tiers, 'IdTiers')} is not a valid SIRET")
    attach = line.find("BlocLignePiece/RattachPiece")
    if triplet in {("02", "02", "06"), ("01", "02", "09")}:
        values = [_v(attach, name) for name in ("NatPceOrig", "ExerRat", "IdPceOrig",
                                               "IdLigneOrig")]
        if attach is None or None in values:
            problems.append(f"{at}: RattachPiece « complet et obligatoire » is missing or "
                            "incomplete")
            return
        nat, exer_rat, _, line_orig = values
        if triplet == ("02", "02", "06") and (nat != "01" or exer_rat != exer):
            problems.append(f"{at}: a réduction 02 02 06 points to a titre (01) of its own "
                            "exercice (« Si 02 02 06 ExerRat= Exer du flux »)")
        if triplet == ("01", "02", "09") and (nat != "02" or int(exer_rat) >= int(exer)):
            problems.append(f"{at}: a mandat 01 02 09 points to a titre (02) of an earlier "
                            "exercice (« ExerRat= Exer du flux-N »)")
        if int(line_orig) < 1:
            problems.append(f"{at}: IdLigneOrig must be at least 1")


def _check_asap(piece: etree._Element, info: etree._Element, exer: str | None,
                id_bord: str | None, id_pce: str | None, attachments: dict, at: str,
                problems: list[str]) -> None:
    if not _v(info, "NumeroFacture"):
        problems.append(f"{at}: Edition 02 without NumeroFacture")
    for tiers in piece.iterfind("LigneDePiece/Tiers/InfoTiers"):
        if _v(tiers, "NatIdTiers") != "01":
            problems.append(f"{at}: Edition 02 needs NatIdTiers 01 (SIRET)")
    asaps = [_v(ref, "IdUnique") for ref in info.iterfind("PJRef") if _v(ref, "TypePJ") == "006"]
    if not asaps:
        problems.append(f"{at}: Edition 02 without a PJ of type 006 (the ASAP)")
        return
    for uid in asaps:
        type_pj, content = attachments.get(uid, (None, b""))
        if type_pj != "006" or not content:
            continue
        errors = xsd_errors(content)
        if errors:
            problems.append(f"{at}: its ASAP {uid} breaks the schema: {errors[0]}")
            continue
        asap = etree.fromstring(content)
        if _v(asap, "PES_Facture/TypeFact") != "09":
            problems.append(f"{at}: its ASAP is not TypeFact 09")
        single = asap.find("PES_Facture/FactureIndiv")
        reference = (_v(single, "RefTitre/Exercice"), _v(single, "RefTitre/NumBordereau"),
                     _v(single, "RefTitre/NumTitre"), _v(single, "RefTitre/NumLigne"))
        if reference != (exer, id_bord, id_pce, "1"):
            problems.append(f"{at}: its ASAP's RefTitre {reference} does not name this titre")
        titre_ht = sum(_amount(_v(line, "MtHT")) for line in piece.iter("InfoLignePiece"))
        if _amount(_v(single, "TotalAPayer/MtTotalHT")) != titre_ht:
            problems.append(f"{at}: its ASAP's MtTotalHT is not the titre's")
        if single.find("TalonOptique2Lignes") is None:
            problems.append(f"{at}: its ASAP has no TalonOptique2Lignes")
