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
import gzip
import re
import unicodedata
from collections.abc import Mapping, Sequence
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from lxml import etree

from ledger.categories import category as category_of
from ledger.errors import LedgerError
from ledger.tariffs import VAT_CATEGORIES
from ledger.treasury import DEPENSE, RECETTE, TitreLine, natpce, titre_lines

NS_ALLER = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller"
SCHEMA = Path(__file__).parent / "schemas" / "pes-v5.17" / "PES_V2" / "Rev0" / "PES_Aller.xsd"
TWO = Decimal("0.01")
APPLICATION = ("TERRITORIAL-LEDGER", "territorial-ledger")


class PESError(LedgerError):
    """A PES file cannot be written as asked, or a written one breaks a rule; the message says
    which and why."""


# Text ------------------------------------------------------------------------------------------

def _clean(text: Any) -> str:
    """One line: control characters and runs of white space become one space (the schema's
    text types match with '.', which no line break matches)."""
    s = "".join(" " if unicodedata.category(c).startswith("C") else c for c in str(text))
    return re.sub(r"\s+", " ", s).strip()


def _cut(text: Any, size: int) -> str:
    s = _clean(text)
    return s if len(s) <= size else s[: size - 1].rstrip() + "…"


def _postal(text: Any) -> str:
    """« Recommandation normes postales : saisir en majuscule, sans accent, sans caractère de
    ponctuation » (NS_Facture/r0/Class_AdresseFacture.xsd)."""
    s = unicodedata.normalize("NFKD", _clean(text))
    s = "".join(c for c in s if not unicodedata.combining(c))
    s = s.replace("Œ", "OE").replace("œ", "oe").replace("Æ", "AE").replace("æ", "ae")
    s = re.sub(r"[^0-9A-Za-z]+", " ", s).upper()
    return re.sub(r"\s+", " ", s).strip()


def _pcut(text: Any, size: int) -> str:
    return _postal(text)[:size].rstrip()


def _split38(name: str) -> tuple[str, str | None]:
    """A name on Nom (38 characters) and, past that, ComplNom (38), cut at a word."""
    if len(name) <= 38:
        return name, None
    cut = name.rfind(" ", 0, 39)
    cut = cut if cut > 0 else 38
    return name[:cut].rstrip(), name[cut:].strip()[:38].rstrip() or None


def _sepa(text: Any, size: int) -> str:
    """A transfer label: upper-case SEPA characters only."""
    s = unicodedata.normalize("NFKD", _clean(text))
    s = "".join(ch for ch in s if not unicodedata.combining(ch)).upper()
    s = re.sub(r"[^A-Z0-9/\-?:().,'+ ]+", " ", s)
    return re.sub(r"\s+", " ", s).strip()[:size].rstrip()


def _alnum(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", text)


def _money(cents: int) -> str:
    """Amounts: decimal point, two decimals (V_Montant)."""
    return str((Decimal(cents) / 100).quantize(TWO))


def _rate(category: str) -> str:
    return str(VAT_CATEGORIES[category][1].quantize(TWO))


def _gzip(data: bytes) -> bytes:
    # mtime 0 and no file name: the same bytes in give the same bytes out.
    return gzip.compress(data, compresslevel=9, mtime=0)


def _el(parent: etree._Element, tag: str, value: Any = None, **attrs: str) -> etree._Element:
    node = etree.SubElement(parent, tag)
    if value is not None:
        node.set("V", str(value))
    for key, val in attrs.items():
        node.set(key, val)
    return node


def _opt(parent: etree._Element, tag: str, value: Any) -> None:
    if value not in (None, ""):
        _el(parent, tag, value)


# Blocks ----------------------------------------------------------------------------------------

def tiers_codes(buyer: Mapping[str, Any], categories: Mapping[str, str]) -> tuple[str, str]:
    """(CatTiers, NatJur) of the debtor, from its category (on the document from format 2,
    else as registered)."""
    name = buyer.get("category") or categories.get(buyer["customer"])
    if name is None:
        raise PESError(f"customer {buyer['customer']!r}: its category is not known")
    category = category_of(name)
    return category.cat_tiers, category.nat_jur


def _address_block(parent: etree._Element, address: Mapping[str, Any]) -> None:
    adr = _el(parent, "Adresse")
    _el(adr, "TypAdr", "1")  # principale
    _el(adr, "Adr2", _pcut(address["line1"], 38))
    _opt(adr, "Adr3", _pcut(address["line2"], 38) if address.get("line2") else None)
    _el(adr, "CP", address["postcode"])
    _el(adr, "Ville", _pcut(address["city"], 38))
    _el(adr, "CodRes", "0")  # résident


def _tiers(parent: etree._Element, buyer: Mapping[str, Any], categories: Mapping[str, str],
           debtor: bool) -> None:
    """The débiteur of a titre (NS_Recette/r0/Class_TiersRecette.xsd), or the créancier of a
    mandat (NS_Depense/r0/Class_TiersDepense.xsd: no TypTiers, and no bank details here — the
    ledger does not hold the member's; the comptable pays as he knows it): SIRET, category,
    postal name and address."""
    cat, nat = tiers_codes(buyer, categories)
    tiers = _el(parent, "Tiers")
    info = _el(tiers, "InfoTiers")
    _el(info, "IdTiers", buyer["siret"])
    _el(info, "NatIdTiers", "01")  # SIRET
    _el(info, "RefTiers", _cut(buyer["customer"], 30))
    _el(info, "CatTiers", cat)
    _el(info, "NatJur", nat)
    if debtor:
        _el(info, "TypTiers", "01")  # débiteur principal
    nom, compl = _split38(_postal(buyer["name"]))
    _el(info, "Nom", nom)
    _opt(info, "ComplNom", compl)
    _address_block(tiers, buyer["address"])


def _pj_ref(parent: etree._Element, uid: str, name: str, type_pj: str) -> None:
    ref = _el(parent, "PJRef")
    _el(ref, "Support", "01")  # électronique
    _el(ref, "IdUnique", uid)
    _el(ref, "NomPJ", name)
    _el(ref, "TypePJ", type_pj)


def _pj(parent: etree._Element, uid: str, name: str, type_pj: str, description: str,
        mime: str, content: bytes) -> None:
    """« compressés avec Gzip puis convertis en Base64 » (Class_PJ.xsd)."""
    pj = _el(parent, "PJ")
    fichier = _el(_el(pj, "Contenu"), "Fichier", MIMEType=mime)
    fichier.text = base64.b64encode(_gzip(content)).decode("ascii")
    _el(pj, "IdUnique", uid)
    _el(pj, "NomPJ", name)
    _el(pj, "TypePJ", type_pj)
    _el(pj, "Description", _cut(description, 250))


def _numero_facture(number: str) -> str:
    """NumeroFacture (Base_NumFactureCPP20): letters, digits, space - / _ +; 20 at most."""
    value = re.sub(r"[^ \-/_+0-9A-Za-z]", "-", number)
    if len(value) > 20:
        raise PESError(f"invoice number {number!r} is longer than 20 characters")
    return value


def talon(profile: Mapping[str, Any], exer: int, id_bord: int, id_pce: int,
          ttc_cents: int) -> tuple[str, str]:
    """The two lines of the talon optique of an ASAP.

    PROVISIONAL. The annotation makes it « Obligatoire pour un PES_Facture ASAP … + respect de
    la norme HEL »; the norme HEL is a DGFiP annex this project does not have. These lines carry
    the titre's references (poste, collectivité, budget, exercice, bordereau, titre) and its
    amount in the characters the schema allows (digits, capitals, spaces); they must be checked
    against the norme HEL with the comptable before a first real sending (docs/pes.md).
    """
    line1 = f"{profile['id_post']} {profile['cod_col']}{profile['cod_bud']} {exer} " \
            f"{id_bord:07d} {id_pce:08d}"
    line2 = f"{ttc_cents:015d}"
    return line1, line2


def _adresse_facture(parent: etree._Element, tag: str, *, adr2: str | None = None,
                     adr3: str | None = None, cp: str, ville: str) -> None:
    adr = _el(parent, tag)
    _el(adr, "TypAdr", "1")
    _opt(adr, "Adr2", _pcut(adr2, 38) if adr2 else None)
    _opt(adr, "Adr3", _pcut(adr3, 38) if adr3 else None)
    _el(adr, "CP", cp)
    _el(adr, "Ville", _pcut(ville, 38))
    _el(adr, "CodRes", "0")


def _info_tiers_facture(parent: etree._Element, *, id_tiers: str | None, cat: str, nat: str,
                        typ: str, nom: str, compl: str | None = None) -> None:
    info = _el(parent, "InfoTiers")
    _opt(info, "IdTiers", id_tiers)
    _el(info, "CatTiers", cat)
    _el(info, "NatJur", nat)
    _el(info, "TypTiers", typ)
    _el(info, "Nom", nom)
    _opt(info, "ComplNom", compl)


def _line_vats(group: TitreLine) -> list[int]:
    from ledger.treasury import allocate

    return allocate(group.vat_cents, [int(Decimal(line["amount"]) * 100)
                                      for line in group.lines])


def _pes_facture(parent: etree._Element, document: Mapping[str, Any], lines: list[TitreLine],
                 ctx: Mapping[str, Any], exer: int, id_bord: int, id_pce: int) -> None:
    """The ASAP: a PES_Facture typed 09 (NS_Facture/r0/*.xsd) with one FactureIndiv."""
    profile, asap = ctx["profile"], ctx["profile"]["asap"]
    seller, buyer = document["seller"], document["buyer"]
    fact = _el(parent, "PES_Facture")
    _el(fact, "IdVer", "2")
    _el(fact, "Annee", exer)
    _el(fact, "TypeFact", "09")  # ASAP
    _el(fact, "Date", ctx["date"])
    emetteur = _el(fact, "Emetteur")
    nom, compl = _split38(_postal(seller["name"]))
    own = category_of("syndicat")
    _info_tiers_facture(emetteur, id_tiers=seller["siret"], cat=own.cat_tiers,
                        nat=own.nat_jur, typ="20", nom=nom, compl=compl)
    address = seller["address"]
    _adresse_facture(emetteur, "Adresse", adr2=address["line1"], adr3=address.get("line2"),
                     cp=address["postcode"], ville=address["city"])
    info = _el(emetteur, "InfoSuppl")
    _opt(info, "NumTel", asap.get("tel"))
    _opt(info, "HorairesOuv", asap.get("horaires"))
    _opt(info, "AdresseMelEmetteur", asap.get("email") and _cut(asap["email"], 50))
    _el(info, "RefBdf", asap["ref_bdf"])
    signataire = _el(emetteur, "Signataire")
    person = _el(signataire, "Personne")
    _el(person, "Nom", _cut(asap["signataire"]["nom"], 38))
    _el(person, "Prenom", _cut(asap["signataire"]["prenom"], 38))
    _el(signataire, "Role", _cut(asap["signataire"]["role"], 50))
    centre = asap["centre_encaissement"]
    tiers = _el(fact, "Tiers")
    _info_tiers_facture(tiers, id_tiers=None, cat="20", nat="07", typ="25",
                        nom="CENTRE D'ENCAISSEMENT", compl="DES FINANCES PUBLIQUES")
    _adresse_facture(tiers, "Adresse", adr2=centre.get("adr2"), adr3=centre.get("adr3"),
                     cp=centre["cp"], ville=centre["ville"])
    cfp = asap["centre_finances_publiques"]
    tiers = _el(fact, "Tiers")
    _info_tiers_facture(tiers, id_tiers=None, cat="20", nat="07", typ="26",
                        nom=_cut(cfp["nom"], 38))
    if cfp.get("tel") or cfp.get("horaires") or cfp.get("email"):
        extra = _el(tiers, "InfoSupplTiers")
        _opt(extra, "NumTel2", cfp.get("tel"))
        _opt(extra, "HorairesOuv2", cfp.get("horaires"))
        _opt(extra, "AdresseMelCFP", cfp.get("email"))
    _adresse_facture(tiers, "Adresse", adr2=cfp["adr2"], adr3=cfp.get("adr3"), cp=cfp["cp"],
                     ville=cfp["ville"])
    bank = _el(tiers, "CpteBancaire")
    _opt(bank, "BIC", cfp.get("bic"))
    _el(bank, "IBAN", cfp["iban"])
    _opt(bank, "TitCpte", cfp.get("titulaire"))

    single = _el(fact, "FactureIndiv")
    # « Pour PES_Facture ASAP, à renseigner de la date d'émission du titre de recette. »
    _el(single, "DateEmission", ctx["date"])
    _el(single, "NumeroFacture", _cut(document["number"], 50))
    debtor = _el(single, "Debiteur")
    cat, nat = tiers_codes(buyer, ctx["categories"])
    nom, compl = _split38(_postal(buyer["name"]))
    _info_tiers_facture(debtor, id_tiers=buyer["siret"], cat=cat, nat=nat, typ="01", nom=nom,
                        compl=compl)
    baddress = buyer["address"]
    _adresse_facture(debtor, "Adresse", adr2=baddress["line1"], adr3=baddress.get("line2"),
                     cp=baddress["postcode"], ville=baddress["city"])
    _el(single, "Objet", _cut(f"Facture {document['number']} - {_object(lines)}", 160))
    order, total_ht, total_vat = 0, 0, 0
    for group in lines:
        for line, vat in zip(group.lines, _line_vats(group)):
            order += 1
            ht = int(Decimal(line["amount"]) * 100)
            row = _el(single, "LigneFacture")
            _el(row, "DateDebut", line["period_start"])
            _el(row, "DateFin", line["period_end"])
            _el(row, "Libelle", _cut(line["description"], 200))
            _el(row, "Quantite", "1")
            _el(row, "MtUnitaire", _money(ht))
            _el(row, "MtHT", _money(ht))
            _el(row, "TauxTVA", _rate(group.vat))
            _el(row, "MtTVA", _money(vat))
            _el(row, "MtTTC", _money(ht + vat))
            _el(row, "Ordre", order)
            total_ht += ht
            total_vat += vat
    if order > 999:
        raise PESError(f"{document['number']}: more than 999 lines (Ordre is 3 digits)")
    total = _el(single, "TotalAPayer")
    _el(total, "MtTotalHT", _money(total_ht))
    _el(total, "MtTotalTVA", _money(total_vat))
    _el(total, "MtTotalTTC", _money(total_ht + total_vat))
    ref = _el(single, "RefTitre")
    _el(ref, "Exercice", exer)
    _el(ref, "NumBordereau", id_bord)
    _el(ref, "NumTitre", id_pce)
    _el(ref, "NumLigne", "1")  # « A valoriser obligatoirement à 1. »
    line1, line2 = talon(profile, exer, id_bord, id_pce, total_ht + total_vat)
    optical = _el(single, "TalonOptique2Lignes")
    _el(optical, "Ligne1", line1)
    _el(optical, "Ligne2", line2)
    _el(single, "ModalitesReglement", _cut(asap["modalites_reglement"], 250))
    _opt(single, "ModalitesContestation", asap.get("modalites_contestation"))
    _el(single, "ModeRecouvrement", "1")  # sans TIP (talon)
    _el(single, "ConditionsGen", _cut(asap["conditions_generales"], 250))
    # « ne pas renseigner dans le cadre d'un PES_Facture ASAP » for each of its children.
    _el(fact, "Nomenclatures")


def _object(lines: Sequence[TitreLine]) -> str:
    labels: list[str] = []
    for group in lines:
        text = group.imputation.label or group.lines[0]["description"]
        if text not in labels:
            labels.append(text)
    return "; ".join(labels)


def _group_label(group: TitreLine) -> str:
    if group.imputation.label:
        return group.imputation.label
    if len(group.lines) == 1:
        return group.lines[0]["description"]
    return f"{len(group.lines)} lignes - " + "; ".join(line["line"] for line in group.lines)


def _serialise(root: etree._Element) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(
        root, encoding="UTF-8", xml_declaration=False, pretty_print=True)


def _enveloppe(root: etree._Element, name: str) -> None:
    envelope = _el(root, "Enveloppe")
    parameters = _el(envelope, "Parametres")
    _el(parameters, "Version", "2")  # « Doit être valorisé à 2. »
    _el(parameters, "TypFic", "PESALR1")  # « PESALR1 pour le PES_Aller »
    _el(parameters, "NomFic", _cut(name, 100))
    sender = _el(envelope, "Emetteur")
    _el(sender, "Sigle", APPLICATION[0])
    _el(sender, "Adresse", APPLICATION[1])


def _entete(root: etree._Element, profile: Mapping[str, Any], file_date: str) -> None:
    header = _el(root, "EnTetePES")
    _el(header, "DteStr", file_date)
    _el(header, "IdPost", profile["id_post"])
    _opt(header, "LibellePoste", profile.get("libelle_poste"))
    _el(header, "IdColl", profile["id_coll"])
    _el(header, "CodCol", profile["cod_col"])
    _el(header, "CodBud", profile["cod_bud"])
    _opt(header, "LibelleColBud", profile.get("libelle_col_bud"))


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
        flow = _el(root, "PES_DepenseAller")
        header = _el(flow, "EnTeteDepense")
        _el(header, "IdVer", "2")
        _el(header, "InfoDematerialisee", "0")
        for bordereau in depense:
            _mandats(flow, bordereau, documents, attachments, ctx, prefix, attached)
    if recette:
        flow = _el(root, "PES_RecetteAller")
        header = _el(flow, "EnTeteRecette")
        _el(header, "IdVer", "2")  # « Mettre à « 2 ». A défaut rejet du flux. »
        _el(header, "InfoDematerialisee", "0")  # no electronic signature
        for bordereau in recette:
            _titres(flow, bordereau, documents, attachments, ctx, prefix, attached)
    pes_pj = _el(root, "PES_PJ")
    _el(_el(pes_pj, "EnTetePES_PJ"), "IdVer", "1")  # « Seule valeur possible= 1 »
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
    node = _el(flow, "Bordereau", Id=node_id)
    block = _el(node, "BlocBordereau")
    _el(block, "Exer", bordereau["exer"])
    _el(block, "IdBord", bordereau["id_bord"])
    _el(block, "DteBordEm", date)
    _el(block, "TypBord", bordereau["typ_bord"])
    _el(block, "NbrPce", len(bordereau["pieces"]))
    _el(block, total_tag, _money(sum(g.ht_cents for groups in lines.values() for g in groups)))
    total_vat = sum(g.vat_cents for groups in lines.values() for g in groups)
    if total_vat:  # « montant à 0 aboutit à rejet du bordereau si la balise est présente »
        _el(block, "MtBordTVA", _money(total_vat))
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
        node_piece = _el(node, "Piece")
        bp = _el(node_piece, "BlocPiece")
        _opt(bp, "CodServ", profile.get("cod_serv"))
        _el(bp, "IdPce", piece["id_pce"])
        if invoices:
            _el(bp, "TypPce", "01")  # titre ordinaire
            _el(bp, "NatPce", natpce(document, groups))
            _el(bp, "Edition", "02")  # ASAP déposé sur Chorus Pro
            objet = f"Facture {number} - {_object(groups)}"
        else:
            _el(bp, "TypPce", "02")  # titre correctif
            _el(bp, "NatPce", "06")  # annulation-réduction
            objet = f"Avoir {number} sur la facture {document['refers_to']}"
        _el(bp, "ObjPce", _cut(objet, 160))
        uid = f"{prefix}{_alnum(number)}"
        if invoices:
            asap_name = f"ASAP-{number}.xml"
            _pj_ref(bp, f"{uid}ASAP", asap_name, "006")
            asap = etree.Element(f"{{{NS_ALLER}}}PES_Aller", nsmap={"n": NS_ALLER})
            _enveloppe(asap, f"{ctx['profile']['id_coll']}-ASAP-{exer}-{piece['id_pce']}")
            _entete(asap, profile, ctx["date"])
            _pes_facture(asap, document, groups, ctx, exer, id_bord, piece["id_pce"])
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
            _el(bp, "NumeroFacture", _numero_facture(number))
            _opt(bp, "NumeroEngagement", buyer.get("engagement_number")
                 and _cut(buyer["engagement_number"], 50))
            _opt(bp, "CodeService", buyer.get("code_service")
                 and _clean(buyer["code_service"])[:100])
        for group in groups:
            ldp = _el(node_piece, "LigneDePiece")
            blp = _el(ldp, "BlocLignePiece")
            info = _el(blp, "InfoLignePiece")
            _el(info, "IdLigne", group.id_ligne)
            _el(info, "ObjLignePce", _cut(_group_label(group), 160))
            _el(info, "CodProdLoc", group.imputation.cod_prod_loc)
            _el(info, "Nature", group.imputation.nature)
            _opt(info, "Fonction", group.imputation.fonction)
            _opt(info, "Operation", group.imputation.operation)
            if group.vat_cents:
                _el(info, "TxTva", _rate(group.vat))  # « A servir si MtTVA »
            _el(info, "Majo", "0")
            _el(info, "TvaIntraCom", "0")
            _el(info, "MtHT", _money(group.ht_cents))
            if group.vat_cents:
                _el(info, "MtTVA", _money(group.vat_cents))
            if not invoices:
                original = piece["original"]
                attach = _el(blp, "RattachPiece")
                _el(attach, "NatPceOrig", "01")  # titres
                _el(attach, "ExerRat", original["exer"])  # « Si 02 02 06 ExerRat= Exer du flux »
                _el(attach, "IdPceOrig", original["id_pce"])
                _el(attach, "IdLigneOrig", original["lines"][str(group.id_ligne)])
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
        node_piece = _el(node, "Piece")
        info = _el(_el(node_piece, "BlocPiece"), "InfoPce")
        _opt(info, "CodServ", profile.get("cod_serv"))
        _el(info, "IdPce", piece["id_pce"])
        _el(info, "TypPce", "02")  # mandat correctif
        _el(info, "NatPce", "09")  # annulant un titre
        _el(info, "Obj", _cut(f"Avoir {number} - annulation du titre {original['exer']}-"
                                f"{original['id_pce']} (facture {document['refers_to']})", 100))
        uid = f"{prefix}{_alnum(number)}FX"
        _pj_ref(info, uid, f"{number}.pdf", "003")
        attached.append((uid, f"{number}.pdf", "003",
                         f"Avoir {number} du {document['issued_on']} (Factur-X EN 16931, "
                         f"PDF/A-3), mandat {piece['id_pce']} annulant le titre "
                         f"{original['exer']}-{original['id_pce']}", "application/pdf",
                         attachments[number]))
        _etat(info, number, f"mandat {piece['id_pce']}", "003", ctx, uid[:-2], attached)
        for group in lines[number]:
            from ledger.treasury import imputation_for

            imputation = imputation_for(group.lines[0], depense["imputations"], number)
            ldp = _el(node_piece, "LigneDePiece")
            blp = _el(ldp, "BlocLignePiece")
            il = _el(blp, "InfoLignePce")
            _el(il, "IdLigne", group.id_ligne)
            _el(il, "Nature", imputation.nature)
            _opt(il, "Fonction", imputation.fonction)
            _opt(il, "Operation", imputation.operation)
            if len(number) <= 20:
                _el(il, "Facture", number)
            _el(il, "LibVir1", _sepa(f"AVOIR {number} FACTURE {document['refers_to']}", 70))
            _el(il, "LibVir2", _sepa(f"TITRE {original['exer']}-{original['id_pce']} "
                                     f"{document['seller']['name']}", 70))
            _opt(il, "ModRegl", depense.get("mod_regl"))
            _el(il, "TVAIntraCom", "0")
            _el(il, "MtHT", _money(group.ht_cents))
            if group.vat_cents:
                _el(il, "MtTVA", _money(group.vat_cents))
            attach = _el(blp, "RattachPiece")
            _el(attach, "NatPceOrig", "02")  # dépense TNatPceOrig: 01 mandat, 02 titre
            _el(attach, "ExerRat", original["exer"])  # « ExerRat= Exer du flux-N »
            _el(attach, "IdPceOrig", original["id_pce"])
            _el(attach, "IdLigneOrig", original["lines"][str(group.id_ligne)])
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
