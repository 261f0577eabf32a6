"""The ASAP of a titre (avis des sommes à payer): the ``PES_Facture`` that Hélios turns into the
document the member receives on Chorus Pro — issuer, the debtor, the comptable's centre, the
lines with their VAT, the talon optique — and the labels shared with the titre it rides with."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from lxml import etree

from exports.pes_fields import (
    PESError,
    el,
    money,
    opt,
    postal,
    postal_truncated,
    rate,
    split38,
    tiers_codes,
    truncated,
)
from ledger.categories import category as category_of
from ledger.titres import TitreLine


def numero_facture(number: str) -> str:
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


def adresse_facture(parent: etree._Element, tag: str, *, adr2: str | None = None,
                     adr3: str | None = None, cp: str, ville: str) -> None:
    adr = el(parent, tag)
    el(adr, "TypAdr", "1")
    opt(adr, "Adr2", postal_truncated(adr2, 38) if adr2 else None)
    opt(adr, "Adr3", postal_truncated(adr3, 38) if adr3 else None)
    el(adr, "CP", cp)
    el(adr, "Ville", postal_truncated(ville, 38))
    el(adr, "CodRes", "0")


def info_tiers_facture(parent: etree._Element, *, id_tiers: str | None, cat: str, nat: str,
                        typ: str, nom: str, compl: str | None = None) -> None:
    info = el(parent, "InfoTiers")
    opt(info, "IdTiers", id_tiers)
    el(info, "CatTiers", cat)
    el(info, "NatJur", nat)
    el(info, "TypTiers", typ)
    el(info, "Nom", nom)
    opt(info, "ComplNom", compl)


def line_vats(group: TitreLine) -> list[int]:
    from ledger.titres import allocate

    return allocate(group.vat_cents, [int(Decimal(line["amount"]) * 100)
                                      for line in group.lines])


def pes_facture(parent: etree._Element, document: Mapping[str, Any], lines: list[TitreLine],
                 ctx: Mapping[str, Any], exer: int, id_bord: int, id_pce: int) -> None:
    """The ASAP: a PES_Facture typed 09 (NS_Facture/r0/*.xsd) with one FactureIndiv."""
    profile, asap = ctx["profile"], ctx["profile"]["asap"]
    seller, buyer = document["seller"], document["buyer"]
    fact = el(parent, "PES_Facture")
    el(fact, "IdVer", "2")
    el(fact, "Annee", exer)
    el(fact, "TypeFact", "09")  # ASAP
    el(fact, "Date", ctx["date"])
    emetteur = el(fact, "Emetteur")
    nom, compl = split38(postal(seller["name"]))
    own = category_of("syndicat")
    info_tiers_facture(emetteur, id_tiers=seller["siret"], cat=own.cat_tiers,
                        nat=own.nat_jur, typ="20", nom=nom, compl=compl)
    address = seller["address"]
    adresse_facture(emetteur, "Adresse", adr2=address["line1"], adr3=address.get("line2"),
                     cp=address["postcode"], ville=address["city"])
    info = el(emetteur, "InfoSuppl")
    opt(info, "NumTel", asap.get("tel"))
    opt(info, "HorairesOuv", asap.get("horaires"))
    opt(info, "AdresseMelEmetteur", asap.get("email") and truncated(asap["email"], 50))
    el(info, "RefBdf", asap["ref_bdf"])
    signataire = el(emetteur, "Signataire")
    person = el(signataire, "Personne")
    el(person, "Nom", truncated(asap["signataire"]["nom"], 38))
    el(person, "Prenom", truncated(asap["signataire"]["prenom"], 38))
    el(signataire, "Role", truncated(asap["signataire"]["role"], 50))
    centre = asap["centre_encaissement"]
    tiers = el(fact, "Tiers")
    info_tiers_facture(tiers, id_tiers=None, cat="20", nat="07", typ="25",
                        nom="CENTRE D'ENCAISSEMENT", compl="DES FINANCES PUBLIQUES")
    adresse_facture(tiers, "Adresse", adr2=centre.get("adr2"), adr3=centre.get("adr3"),
                     cp=centre["cp"], ville=centre["ville"])
    cfp = asap["centre_finances_publiques"]
    tiers = el(fact, "Tiers")
    info_tiers_facture(tiers, id_tiers=None, cat="20", nat="07", typ="26",
                        nom=truncated(cfp["nom"], 38))
    if cfp.get("tel") or cfp.get("horaires") or cfp.get("email"):
        extra = el(tiers, "InfoSupplTiers")
        opt(extra, "NumTel2", cfp.get("tel"))
        opt(extra, "HorairesOuv2", cfp.get("horaires"))
        opt(extra, "AdresseMelCFP", cfp.get("email"))
    adresse_facture(tiers, "Adresse", adr2=cfp["adr2"], adr3=cfp.get("adr3"), cp=cfp["cp"],
                     ville=cfp["ville"])
    bank = el(tiers, "CpteBancaire")
    opt(bank, "BIC", cfp.get("bic"))
    el(bank, "IBAN", cfp["iban"])
    opt(bank, "TitCpte", cfp.get("titulaire"))

    single = el(fact, "FactureIndiv")
    # « Pour PES_Facture ASAP, à renseigner de la date d'émission du titre de recette. »
    el(single, "DateEmission", ctx["date"])
    el(single, "NumeroFacture", truncated(document["number"], 50))
    debtor = el(single, "Debiteur")
    cat, nat = tiers_codes(buyer, ctx["categories"])
    nom, compl = split38(postal(buyer["name"]))
    info_tiers_facture(debtor, id_tiers=buyer["siret"], cat=cat, nat=nat, typ="01", nom=nom,
                        compl=compl)
    baddress = buyer["address"]
    adresse_facture(debtor, "Adresse", adr2=baddress["line1"], adr3=baddress.get("line2"),
                     cp=baddress["postcode"], ville=baddress["city"])
    el(single, "Objet", truncated(f"Facture {document['number']} - {titre_object(lines)}", 160))
    order, total_ht, total_vat = 0, 0, 0
    for group in lines:
        for line, vat in zip(group.lines, line_vats(group)):
            order += 1
            ht = int(Decimal(line["amount"]) * 100)
            row = el(single, "LigneFacture")
            el(row, "DateDebut", line["period_start"])
            el(row, "DateFin", line["period_end"])
            el(row, "Libelle", truncated(line["description"], 200))
            el(row, "Quantite", "1")
            el(row, "MtUnitaire", money(ht))
            el(row, "MtHT", money(ht))
            el(row, "TauxTVA", rate(group.vat))
            el(row, "MtTVA", money(vat))
            el(row, "MtTTC", money(ht + vat))
            el(row, "Ordre", order)
            total_ht += ht
            total_vat += vat
    if order > 999:
        raise PESError(f"{document['number']}: more than 999 lines (Ordre is 3 digits)")
    total = el(single, "TotalAPayer")
    el(total, "MtTotalHT", money(total_ht))
    el(total, "MtTotalTVA", money(total_vat))
    el(total, "MtTotalTTC", money(total_ht + total_vat))
    ref = el(single, "RefTitre")
    el(ref, "Exercice", exer)
    el(ref, "NumBordereau", id_bord)
    el(ref, "NumTitre", id_pce)
    el(ref, "NumLigne", "1")  # « A valoriser obligatoirement à 1. »
    line1, line2 = talon(profile, exer, id_bord, id_pce, total_ht + total_vat)
    optical = el(single, "TalonOptique2Lignes")
    el(optical, "Ligne1", line1)
    el(optical, "Ligne2", line2)
    el(single, "ModalitesReglement", truncated(asap["modalites_reglement"], 250))
    opt(single, "ModalitesContestation", asap.get("modalites_contestation"))
    el(single, "ModeRecouvrement", "1")  # sans TIP (talon)
    el(single, "ConditionsGen", truncated(asap["conditions_generales"], 250))
    # « ne pas renseigner dans le cadre d'un PES_Facture ASAP » for each of its children.
    el(fact, "Nomenclatures")


def titre_object(lines: Sequence[TitreLine]) -> str:
    labels: list[str] = []
    for group in lines:
        text = group.imputation.label or group.lines[0]["description"]
        if text not in labels:
            labels.append(text)
    return "; ".join(labels)


def group_label(group: TitreLine) -> str:
    if group.imputation.label:
        return group.imputation.label
    if len(group.lines) == 1:
        return group.lines[0]["description"]
    return f"{len(group.lines)} lignes - " + "; ".join(line["line"] for line in group.lines)
