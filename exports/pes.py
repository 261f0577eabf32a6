"""PES V2 files for Hélios (DGFiP schemas 5.17): the titres de recette of issued documents.

``render`` writes the ``PES_Aller`` of a recorded plan (``ledger.treasury.plan_file``):

* invoices → bordereaux of titres (``TypBord 01``), one titre ``TypPce 01`` per invoice,
  ``NatPce`` 01 fonctionnement or 02 investissement, ``Edition 02``: once the comptable takes
  the titre in charge, the DGFiP deposits its ASAP on the member's Chorus Pro account. The
  titre's ``BlocPiece`` carries ``NumeroFacture``, ``CodeService`` and ``NumeroEngagement``;
  the ASAP is a ``PES_Facture`` (``TypeFact 09``) whose ``RefTitre`` points to the titre,
  carried as an attachment of type 006;
* credit notes on an invoice of the same exercice → bordereaux of réductions (``TypBord 02``),
  pieces 02 02 06 whose lines point to the original titre's lines (``RattachPiece``);
* credit notes on an invoice of a closed exercice → a bordereau of mandats 01 02 09
  « annulant un titre » in ``PES_DepenseAller`` (before ``PES_RecetteAller``, as the schema
  orders them);
* every document's Factur-X PDF/A-3 in ``PES_PJ`` (gzip, then base64), announced by a ``PJRef``.

Only the root element is namespaced; every value sits in a ``V`` attribute. The output is a
pure function of its inputs: no clock, gzip with mtime 0, a stable order — the same plan gives
the same bytes. The reading of the schema behind each choice (with the annotations quoted) is
in docs/pes.md.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from lxml import etree

from exports.pes_asap import (
    group_label,
    numero_facture,
    pes_facture,
    titre_object,
)
from exports.pes_fields import (
    PESError,
    alnum,
    clean,
    el,
    gzipped,
    money,
    opt,
    postal,
    postal_truncated,
    rate,
    sepa,
    split38,
    tiers_codes,
    truncated,
)
from ledger.titres import TitreLine, natpce, titre_lines
from ledger.treasury import DEPENSE, RECETTE

NS_ALLER = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller"
SCHEMA = Path(__file__).parent / "schemas" / "pes-v5.17" / "PES_V2" / "Rev0" / "PES_Aller.xsd"
APPLICATION = ("TERRITORIAL-LEDGER", "territorial-ledger")


# Text ------------------------------------------------------------------------------------------


# Blocks ----------------------------------------------------------------------------------------


def _address_block(parent: etree._Element, address: Mapping[str, Any]) -> None:
    adr = el(parent, "Adresse")
    el(adr, "TypAdr", "1")  # principale
    el(adr, "Adr2", postal_truncated(address["line1"], 38))
    opt(adr, "Adr3", postal_truncated(address["line2"], 38) if address.get("line2") else None)
    el(adr, "CP", address["postcode"])
    el(adr, "Ville", postal_truncated(address["city"], 38))
    el(adr, "CodRes", "0")  # résident


def _tiers(parent: etree._Element, buyer: Mapping[str, Any], categories: Mapping[str, str],
           debtor: bool) -> None:
    """The débiteur of a titre (NS_Recette/r0/Class_TiersRecette.xsd), or the créancier of a
    mandat (NS_Depense/r0/Class_TiersDepense.xsd: no TypTiers, and no bank details here — the
    ledger does not hold the member's; the comptable pays as he knows it): SIRET, category,
    postal name and address."""
    cat, nat = tiers_codes(buyer, categories)
    tiers = el(parent, "Tiers")
    info = el(tiers, "InfoTiers")
    el(info, "IdTiers", buyer["siret"])
    el(info, "NatIdTiers", "01")  # SIRET
    el(info, "RefTiers", truncated(buyer["customer"], 30))
    el(info, "CatTiers", cat)
    el(info, "NatJur", nat)
    if debtor:
        el(info, "TypTiers", "01")  # débiteur principal
    nom, compl = split38(postal(buyer["name"]))
    el(info, "Nom", nom)
    opt(info, "ComplNom", compl)
    _address_block(tiers, buyer["address"])


def _pj_ref(parent: etree._Element, uid: str, name: str, type_pj: str) -> None:
    ref = el(parent, "PJRef")
    el(ref, "Support", "01")  # électronique
    el(ref, "IdUnique", uid)
    el(ref, "NomPJ", name)
    el(ref, "TypePJ", type_pj)


def _pj(parent: etree._Element, uid: str, name: str, type_pj: str, description: str,
        mime: str, content: bytes) -> None:
    """« compressés avec Gzip puis convertis en Base64 » (Class_PJ.xsd)."""
    pj = el(parent, "PJ")
    fichier = el(el(pj, "Contenu"), "Fichier", MIMEType=mime)
    fichier.text = base64.b64encode(gzipped(content)).decode("ascii")
    el(pj, "IdUnique", uid)
    el(pj, "NomPJ", name)
    el(pj, "TypePJ", type_pj)
    el(pj, "Description", truncated(description, 250))


def _serialise(root: etree._Element) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(
        root, encoding="UTF-8", xml_declaration=False, pretty_print=True)


def _enveloppe(root: etree._Element, name: str) -> None:
    envelope = el(root, "Enveloppe")
    parameters = el(envelope, "Parametres")
    el(parameters, "Version", "2")  # « Doit être valorisé à 2. »
    el(parameters, "TypFic", "PESALR1")  # « PESALR1 pour le PES_Aller »
    el(parameters, "NomFic", truncated(name, 100))
    sender = el(envelope, "Emetteur")
    el(sender, "Sigle", APPLICATION[0])
    el(sender, "Adresse", APPLICATION[1])


def _entete(root: etree._Element, profile: Mapping[str, Any], file_date: str) -> None:
    header = el(root, "EnTetePES")
    el(header, "DteStr", file_date)
    el(header, "IdPost", profile["id_post"])
    opt(header, "LibellePoste", profile.get("libelle_poste"))
    el(header, "IdColl", profile["id_coll"])
    el(header, "CodCol", profile["cod_col"])
    el(header, "CodBud", profile["cod_bud"])
    opt(header, "LibelleColBud", profile.get("libelle_col_bud"))


# The file --------------------------------------------------------------------------------------

def file_name(profile: Mapping[str, Any], bordereaux: Sequence[Mapping[str, Any]]) -> str:
    """PESALR1-{IdColl}-{CodCol}{CodBud}-{first exercice}-{T|R|M}{IdBord}…: one name per file."""
    parts = [f"{ {'01': 'T', '02': 'R'}[b['typ_bord']] if b['flow'] == RECETTE else 'M'}"
             f"{b['exer']}{b['id_bord']:07d}" for b in bordereaux]
    return f"PESALR1-{profile['id_coll']}-{profile['cod_col']}{profile['cod_bud']}-" \
           + "-".join(parts)


def render(file: Mapping[str, Any], documents: Mapping[str, Mapping[str, Any]],
           attachments: Mapping[str, bytes], etats: Mapping[str, bytes],
           categories: Mapping[str, str]) -> bytes:
    """The bytes of a recorded file: ``file`` as ``Treasury.record_file`` holds it (name, date,
    profile, bordereaux with their numbers), the documents, their Factur-X PDFs and (files of
    format 2) their états liquidatifs."""
    profile = file["profile"]
    ctx = {"profile": profile, "date": file["file_date"], "categories": categories,
           "etats": etats if file.get("format", 1) >= 2 else {}}
    prefix = f"{profile['cod_col']}{profile['cod_bud']}"
    root = etree.Element(f"{{{NS_ALLER}}}PES_Aller", nsmap={"n": NS_ALLER})
    _enveloppe(root, file["name"])
    _entete(root, profile, file["file_date"])
    attached: list[tuple[str, str, str, str, str, bytes]] = []
    depense = [b for b in file["bordereaux"] if b["flow"] == DEPENSE]
    recette = [b for b in file["bordereaux"] if b["flow"] == RECETTE]
    if depense:  # the schema puts PES_DepenseAller before PES_RecetteAller
        flow = el(root, "PES_DepenseAller")
        header = el(flow, "EnTeteDepense")
        el(header, "IdVer", "2")
        el(header, "InfoDematerialisee", "0")
        for bordereau in depense:
            _mandats(flow, bordereau, documents, attachments, ctx, prefix, attached)
    if recette:
        flow = el(root, "PES_RecetteAller")
        header = el(flow, "EnTeteRecette")
        el(header, "IdVer", "2")  # « Mettre à « 2 ». A défaut rejet du flux. »
        el(header, "InfoDematerialisee", "0")  # no electronic signature
        for bordereau in recette:
            _titres(flow, bordereau, documents, attachments, ctx, prefix, attached)
    pes_pj = el(root, "PES_PJ")
    el(el(pes_pj, "EnTetePES_PJ"), "IdVer", "1")  # « Seule valeur possible= 1 »
    for block in attached:
        _pj(pes_pj, *block)
    return _serialise(root)


def _etat(block: etree._Element, number: str, piece: str, type_pj: str,
          ctx: Mapping[str, Any], uid: str, attached: list) -> None:
    """The état liquidatif of the document, when the file carries one: the bases de la
    liquidation (décret 2012-1246, art. 24) « par référence précise à un document joint »."""
    etat = ctx["etats"].get(number)
    if etat is None:
        return
    name = f"ETAT-{number}.pdf"
    _pj_ref(block, f"{uid}EL", name, type_pj)
    attached.append((f"{uid}EL", name, type_pj,
                     f"État liquidatif de {number} ({piece}) : bases de la liquidation",
                     "application/pdf", etat))


def _bordereau(flow: etree._Element, bordereau: Mapping[str, Any], node_id: str, date: str,
               lines: Mapping[str, list[TitreLine]], total_tag: str) -> etree._Element:
    """A Bordereau and its BlocBordereau: exercice, number, date, type, count and totals."""
    node = el(flow, "Bordereau", Id=node_id)
    block = el(node, "BlocBordereau")
    el(block, "Exer", bordereau["exer"])
    el(block, "IdBord", bordereau["id_bord"])
    el(block, "DteBordEm", date)
    el(block, "TypBord", bordereau["typ_bord"])
    el(block, "NbrPce", len(bordereau["pieces"]))
    el(block, total_tag, money(sum(g.ht_cents for groups in lines.values() for g in groups)))
    total_vat = sum(g.vat_cents for groups in lines.values() for g in groups)
    if total_vat:  # « montant à 0 aboutit à rejet du bordereau si la balise est présente »
        el(block, "MtBordTVA", money(total_vat))
    return node


def _lines_of(document: Mapping[str, Any], piece: Mapping[str, Any],
              profile: Mapping[str, Any]) -> list[TitreLine]:
    lines = titre_lines(document, profile["imputations"])
    recorded = [(line["id_ligne"], line["keys"]) for line in piece["lines"]]
    if [(line.id_ligne, line.keys) for line in lines] != recorded:
        raise PESError(f"{document['number']}: its lines of titre no longer come out as "
                       "recorded")
    return lines


def _titres(flow: etree._Element, bordereau: Mapping[str, Any],
            documents: Mapping[str, Mapping[str, Any]], attachments: Mapping[str, bytes],
            ctx: Mapping[str, Any], prefix: str, attached: list) -> None:
    profile, exer, id_bord = ctx["profile"], bordereau["exer"], bordereau["id_bord"]
    invoices = bordereau["typ_bord"] == "01"
    pieces = [(piece, documents[piece["document"]]) for piece in bordereau["pieces"]]
    lines = {piece["document"]: _lines_of(document, piece, profile) for piece, document in pieces}
    node = _bordereau(flow, bordereau, f"BORD{exer}{bordereau['typ_bord']}{id_bord:07d}",
                      ctx["date"], lines, "MtBordHt")
    for piece, document in pieces:
        groups, number, buyer = lines[document["number"]], document["number"], document["buyer"]
        node_piece = el(node, "Piece")
        bp = el(node_piece, "BlocPiece")
        opt(bp, "CodServ", profile.get("cod_serv"))
        el(bp, "IdPce", piece["id_pce"])
        if invoices:
            el(bp, "TypPce", "01")  # titre ordinaire
            el(bp, "NatPce", natpce(document, groups))
            el(bp, "Edition", "02")  # ASAP déposé sur Chorus Pro
            objet = f"Facture {number} - {titre_object(groups)}"
        else:
            el(bp, "TypPce", "02")  # titre correctif
            el(bp, "NatPce", "06")  # annulation-réduction
            objet = f"Avoir {number} sur la facture {document['refers_to']}"
        el(bp, "ObjPce", truncated(objet, 160))
        uid = f"{prefix}{alnum(number)}"
        if invoices:
            asap_name = f"ASAP-{number}.xml"
            _pj_ref(bp, f"{uid}ASAP", asap_name, "006")
            asap = etree.Element(f"{{{NS_ALLER}}}PES_Aller", nsmap={"n": NS_ALLER})
            _enveloppe(asap, f"{ctx['profile']['id_coll']}-ASAP-{exer}-{piece['id_pce']}")
            _entete(asap, profile, ctx["date"])
            pes_facture(asap, document, groups, ctx, exer, id_bord, piece["id_pce"])
            attached.append((f"{uid}ASAP", asap_name, "006",
                             f"Avis des sommes à payer du titre {exer}-{piece['id_pce']} "
                             f"(bordereau {id_bord}), facture {number}", "text/xml",
                             _serialise(asap)))
        kind = "Facture" if invoices else "Avoir"
        type_pj = "008" if invoices else "002"
        _pj_ref(bp, f"{uid}FX", f"{number}.pdf", type_pj)
        attached.append((f"{uid}FX", f"{number}.pdf", type_pj,
                         f"{kind} {number} du {document['issued_on']} (Factur-X EN 16931, "
                         f"PDF/A-3), titre {exer}-{piece['id_pce']}", "application/pdf",
                         attachments[number]))
        _etat(bp, number, f"titre {exer}-{piece['id_pce']}", type_pj, ctx, uid, attached)
        if invoices:
            el(bp, "NumeroFacture", numero_facture(number))
            opt(bp, "NumeroEngagement", buyer.get("engagement_number")
                 and truncated(buyer["engagement_number"], 50))
            opt(bp, "CodeService", buyer.get("code_service")
                 and clean(buyer["code_service"])[:100])
        for group in groups:
            ldp = el(node_piece, "LigneDePiece")
            blp = el(ldp, "BlocLignePiece")
            info = el(blp, "InfoLignePiece")
            el(info, "IdLigne", group.id_ligne)
            el(info, "ObjLignePce", truncated(group_label(group), 160))
            el(info, "CodProdLoc", group.imputation.cod_prod_loc)
            el(info, "Nature", group.imputation.nature)
            opt(info, "Fonction", group.imputation.fonction)
            opt(info, "Operation", group.imputation.operation)
            if group.vat_cents:
                el(info, "TxTva", rate(group.vat))  # « A servir si MtTVA »
            el(info, "Majo", "0")
            el(info, "TvaIntraCom", "0")
            el(info, "MtHT", money(group.ht_cents))
            if group.vat_cents:
                el(info, "MtTVA", money(group.vat_cents))
            if not invoices:
                original = piece["original"]
                attach = el(blp, "RattachPiece")
                el(attach, "NatPceOrig", "01")  # titres
                el(attach, "ExerRat", original["exer"])  # « Si 02 02 06 ExerRat= Exer du flux »
                el(attach, "IdPceOrig", original["id_pce"])
                el(attach, "IdLigneOrig", original["lines"][str(group.id_ligne)])
            _tiers(ldp, buyer, ctx["categories"], debtor=True)


def _mandats(flow: etree._Element, bordereau: Mapping[str, Any],
             documents: Mapping[str, Mapping[str, Any]], attachments: Mapping[str, bytes],
             ctx: Mapping[str, Any], prefix: str, attached: list) -> None:
    """A bordereau of mandats 01 02 09 « annulant un titre » of a closed exercice."""
    profile, exer, id_bord = ctx["profile"], bordereau["exer"], bordereau["id_bord"]
    depense = profile.get("depense")
    if depense is None:
        raise PESError("credit notes on a closed exercice are mandats: give the Hélios profile "
                       "its depense imputations (set_helios_profile, depense)")
    pieces = [(piece, documents[piece["document"]]) for piece in bordereau["pieces"]]
    lines = {piece["document"]: _lines_of(document, piece, profile) for piece, document in pieces}
    # TypBord 01, ordinaire: the triplet is 01 02 09.
    node = _bordereau(flow, bordereau, f"MAND{exer}01{id_bord:07d}", ctx["date"], lines,
                      "MtBordHT")
    for piece, document in pieces:
        number, original = document["number"], piece["original"]
        node_piece = el(node, "Piece")
        info = el(el(node_piece, "BlocPiece"), "InfoPce")
        opt(info, "CodServ", profile.get("cod_serv"))
        el(info, "IdPce", piece["id_pce"])
        el(info, "TypPce", "02")  # mandat correctif
        el(info, "NatPce", "09")  # annulant un titre
        el(info, "Obj", truncated(f"Avoir {number} - annulation du titre {original['exer']}-"
                                f"{original['id_pce']} (facture {document['refers_to']})", 100))
        uid = f"{prefix}{alnum(number)}FX"
        _pj_ref(info, uid, f"{number}.pdf", "003")
        attached.append((uid, f"{number}.pdf", "003",
                         f"Avoir {number} du {document['issued_on']} (Factur-X EN 16931, "
                         f"PDF/A-3), mandat {piece['id_pce']} annulant le titre "
                         f"{original['exer']}-{original['id_pce']}", "application/pdf",
                         attachments[number]))
        _etat(info, number, f"mandat {piece['id_pce']}", "003", ctx, uid[:-2], attached)
        for group in lines[number]:
            from ledger.titres import imputation_for

            imputation = imputation_for(group.lines[0], depense["imputations"], number)
            ldp = el(node_piece, "LigneDePiece")
            blp = el(ldp, "BlocLignePiece")
            il = el(blp, "InfoLignePce")
            el(il, "IdLigne", group.id_ligne)
            el(il, "Nature", imputation.nature)
            opt(il, "Fonction", imputation.fonction)
            opt(il, "Operation", imputation.operation)
            if len(number) <= 20:
                el(il, "Facture", number)
            el(il, "LibVir1", sepa(f"AVOIR {number} FACTURE {document['refers_to']}", 70))
            el(il, "LibVir2", sepa(f"TITRE {original['exer']}-{original['id_pce']} "
                                     f"{document['seller']['name']}", 70))
            opt(il, "ModRegl", depense.get("mod_regl"))
            el(il, "TVAIntraCom", "0")
            el(il, "MtHT", money(group.ht_cents))
            if group.vat_cents:
                el(il, "MtTVA", money(group.vat_cents))
            attach = el(blp, "RattachPiece")
            el(attach, "NatPceOrig", "02")  # dépense TNatPceOrig: 01 mandat, 02 titre
            el(attach, "ExerRat", original["exer"])  # « ExerRat= Exer du flux-N »
            el(attach, "IdPceOrig", original["id_pce"])
            el(attach, "IdLigneOrig", original["lines"][str(group.id_ligne)])
            _tiers(ldp, document["buyer"], ctx["categories"], debtor=False)


# Checks ----------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA)))


def xsd_errors(data: bytes) -> list[str]:
    """What the PES V2 5.17 schema says of a file (empty: valid)."""
    schema = _schema()
    document = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    if schema.validate(document):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]
