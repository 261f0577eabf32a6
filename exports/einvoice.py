"""Issued documents as EN 16931 data: the Factur-X XML of a document (its PDF/A-3 in
:mod:`exports.invoice_pdf`, the journal in :mod:`exports.journal`).

Everything printed or exported is read from the document as it was issued (its format says
which fields it has; ``ledger.invoicing.FORMAT``): an export is a pure function of the
recorded document, so exporting it again gives the same bytes.

EN 16931: BT-9 (due date) and BT-20 (payment terms) from the document, BT-12 (contract
reference) the order form, BT-25/BT-26 the invoice a credit note refers to and its date; VAT
rates on every category but O, exemption reason and VATEX code on O and E; no VAT identifier on a
document outside the scope of VAT (BR-O-02), and such a document never holds another category
(billing issues one document per VAT scope). The PDF is PDF/A-3B (PDF 1.7, DejaVu Sans
embedded, sRGB OutputIntent, XMP with the Factur-X extension schema, the XML attached with
/AFRelationship Data and listed in /AF), made in one fpdf2 pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from ledger.errors import LedgerError
from ledger.invoicing import (
    CREDIT_NOTE,
    DEFAULT_VAT_REASON,
    PAYMENT_DAYS,
    VATEX_OUTSIDE_SCOPE,
    payment_terms,
)
from ledger.tariffs import VAT_CATEGORIES

TYPE_CODES = {"invoice": "380", "credit_note": "381"}  # UNTDID 1001
SIRET_SCHEME = "0002"  # ISO 6523 ICD of the French SIRENE register (see NOTES: 0009 = SIRET)
UNIT = "C62"  # UN/ECE rec. 20: "one"
OUTSIDE_SCOPE = "O"
#: Exemption reason texts (BT-120) by ledger VAT category, when the catalogue line gives none.
EXEMPTION_REASONS = {"outside_scope": DEFAULT_VAT_REASON, "exempt": "Exonération de TVA"}
#: UNTDID 4461 payment means: 30 = credit transfer.
CREDIT_TRANSFER = "30"


class FacturXError(LedgerError):
    """The document cannot be expressed as a valid EN 16931 invoice as it stands."""


def _party(party: Mapping[str, Any], *, with_vat: bool = True) -> dict[str, Any]:
    address = party.get("address") or {}
    data = {
        "name": party["name"],
        "legal_identifier": party["siret"],
        "legal_identifier_schemeid": SIRET_SCHEME,
        "country_code": "FR",
    }
    if with_vat and party.get("vat_number"):
        data["vat_identifier"] = party["vat_number"]
    for ours, theirs in (("line1", "addr_l1"), ("line2", "addr_l2"), ("postcode", "postcode"),
                         ("city", "city")):
        if address.get(ours):
            data[theirs] = address[ours]
    return data


def percent(rate: Any) -> str:
    return format(Decimal(str(rate)).normalize(), "f")


def order_references(lines: Iterable[Mapping[str, Any]]) -> list[str]:
    return sorted({line.get("contract") or line["order"] for line in lines if line.get("order")})


def due_on(document: Mapping[str, Any]) -> date | None:
    """BT-9: recorded on documents of format 2; a format-1 invoice is read with the default
    délai de paiement (30 days), a credit note has none."""
    if document.get("format", 1) >= 2:
        return date.fromisoformat(document["due_on"]) if document.get("due_on") else None
    if document["kind"] == CREDIT_NOTE:
        return None
    return date.fromisoformat(document["issued_on"]) + timedelta(days=PAYMENT_DAYS)


def terms_of(document: Mapping[str, Any]) -> str:
    """BT-20, in French."""
    return document.get("payment_terms") or payment_terms(document["seller"], document["kind"])


def exemption(tax: Mapping[str, Any], lines: Iterable[Mapping[str, Any]]) -> tuple[str, str | None]:
    """BT-120 and BT-121 of a VAT category: as the document recorded them (format 2), else
    (format 1) the catalogue lines' reasons, and the code of an outside-scope category."""
    if "exemption_code" in tax:
        return tax["exemption_reason"] or EXEMPTION_REASONS.get(tax["category"], ""), \
            tax["exemption_code"]
    reasons = sorted({line["vat_reason"] for line in lines
                      if line["vat"] == tax["category"] and line.get("vat_reason")})
    reason = "; ".join(reasons) or (tax.get("exemption_reason") if tax["code"] == OUTSIDE_SCOPE
                                    else None) or EXEMPTION_REASONS.get(tax["category"], "")
    return reason, VATEX_OUTSIDE_SCOPE if tax["code"] == OUTSIDE_SCOPE else None


def facturx_data(document: Mapping[str, Any], refers_to_issued_on: str | None = None,
                 supporting: bytes | None = None) -> dict[str, Any]:
    """The EN 16931 fields (BT / BG numbers) of a document, for the factur-x library.

    ``refers_to_issued_on``: BT-26 for a document of format 1, which did not record the issue
    date of the invoice it refers to (the caller looks it up). ``supporting``: the état
    liquidatif (PDF) of the document, joined as an additional supporting document (BG-24).

    Raises :class:`FacturXError` for what no EN 16931 invoice can hold (documents of format 1
    issued before billing split them): category O with another category, or E/S lines without
    a seller VAT number.
    """
    lines = document["lines"]
    issued_on = date.fromisoformat(document["issued_on"])
    categories = {VAT_CATEGORIES[line["vat"]][0] for line in lines}
    outside_scope = OUTSIDE_SCOPE in categories
    if outside_scope and len(categories) > 1:
        raise FacturXError(
            f"document {document['number']} mixes lines outside the scope of VAT (O) with "
            f"lines of category {', '.join(sorted(categories - {OUTSIDE_SCOPE}))}: EN 16931 "
            "forbids it (BR-O-11, BR-O-12). It was issued before billing put them on separate "
            f"documents: ledger corrections reissue {document['number']} --by NAME")
    if not outside_scope and not document["seller"].get("vat_number"):
        raise FacturXError(
            f"document {document['number']} has lines of VAT category "
            f"{', '.join(sorted(categories))}: the seller's VAT number (BT-31) is required "
            "(BR-S-02, BR-E-02); register the operator with its vat_number")

    orders = document.get("order_forms") or order_references(lines)
    taxes = []
    for tax in document["vat_breakdown"]:
        entry = {"BT-116": tax["base"], "BT-117": tax["amount"], "BT-118": tax["code"]}
        if tax["code"] != OUTSIDE_SCOPE:  # BR-48 (O has no rate)
            entry["BT-119"] = percent(tax["rate"])
        if tax["code"] != "S":  # BR-E-10, BR-O-10 (and BR-S-10 forbids it on S)
            reason, code = exemption(tax, lines)
            if not reason and not code:
                raise FacturXError(f"document {document['number']}: exempt lines without "
                                   "their reason (the catalogue line's vat_reason)")
            entry["BT-120"] = reason
            if code:
                entry["BT-121"] = code
        taxes.append(entry)

    invoice_lines = []
    for position, line in enumerate(lines, start=1):
        code, rate = VAT_CATEGORIES[line["vat"]]
        entry = {
            "BT-126": str(position),
            "BT-129": "1",
            "BT-130": UNIT,
            "BT-131": line["amount"],
            "BT-134": date.fromisoformat(line["period_start"]),
            "BT-135": date.fromisoformat(line["period_end"]),
            "BT-146": line["amount"],
            "BT-151": code,
            "BT-153": line["description"][:200],
            "BT-155": line["line"],
        }
        if code != OUTSIDE_SCOPE:  # BR-S-05, BR-E-05 want it; BR-O-05 forbids it on O
            entry["BT-152"] = percent(rate)
        if line.get("order"):
            entry["BT-127-00"] = [{"BT-127": f"Bon de commande {line['order']}"}]
        invoice_lines.append(entry)

    data: dict[str, Any] = {
        "BT-1": document["number"],
        "BT-2": issued_on,
        "BT-3": TYPE_CODES[document["kind"]],
        "BT-5": document["currency"],
        # BR-O-02: no VAT identifier at all on a document with O lines.
        "BG-4": _party(document["seller"], with_vat=not outside_scope),
        "BG-7": _party(document["buyer"], with_vat=not outside_scope),
        # Delivery: the first charge date (the schema wants the delivery block non-empty).
        "BT-72": date.fromisoformat(min(line["charge_date"] for line in lines)),
        "BT-20": terms_of(document),
        "BG-23": taxes,
        "BG-25": invoice_lines,
        "BT-106": document["total_ht"],
        "BT-109": document["total_ht"],
        "BT-110": document["total_vat"],
        "BT-112": document["total_ttc"],
        "BT-115": document["total_ttc"],
    }
    due = due_on(document)
    if due is not None:
        data["BT-9"] = due
    if len(orders) == 1:  # BT-12 is 0..1: several order forms are named on their lines
        data["BT-12"] = orders[0]
    buyer = document["buyer"]
    if buyer.get("code_service"):
        data["BT-10"] = buyer["code_service"]
    if buyer.get("engagement_number"):
        data["BT-13"] = buyer["engagement_number"]
    if document.get("refers_to"):
        preceding: dict[str, Any] = {"BT-25": document["refers_to"]}
        preceding_on = document.get("refers_to_issued_on") or refers_to_issued_on
        if preceding_on:
            preceding["BT-26"] = date.fromisoformat(preceding_on)
        data["BG-3"] = [preceding]
    iban = document["seller"].get("iban")
    if iban and document["kind"] != CREDIT_NOTE:
        data["BT-81"] = CREDIT_TRANSFER
        data["BT-84"] = iban.replace(" ", "")
    if supporting is not None:
        data["BG-24"] = [{"BT-122": f"ETAT-LIQUIDATIF-{document['number']}",
                          "BT-123": "État liquidatif : bases de la liquidation",
                          "BT-125": supporting, "BT-125-1": "application/pdf",
                          "BT-125-2": etat_name(document["number"])}]
    return data


def etat_name(number: str) -> str:
    return f"etat-liquidatif-{number}.pdf"


def facturx_xml(document: Mapping[str, Any], refers_to_issued_on: str | None = None,
                supporting: bytes | None = None) -> bytes:
    """CII XML of the EN 16931 profile, checked against the official XSD by the factur-x library.
    (The EN 16931 schematron runs in the tests: tests/en16931.py.)"""
    from facturx.generate_xml import generate_xml

    return generate_xml(facturx_data(document, refers_to_issued_on, supporting),
                        flavor="factur-x", level="en16931", check_xsd=True,
                        check_schematron=False)
