"""Issued documents out of the ledger: Factur-X (EN 16931) PDF/A-3, JSON, and the accounting
journal.

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

import csv
import io
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from ledger.dates import french_date
from ledger.errors import LedgerError
from ledger.invoicing import (
    CREDIT_NOTE,
    DEFAULT_VAT_REASON,
    PAYMENT_DAYS,
    VATEX_OUTSIDE_SCOPE,
    payment_terms,
)
from ledger.money import french_amount
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


def _percent(rate: Any) -> str:
    return format(Decimal(str(rate)).normalize(), "f")


def _orders(lines: Iterable[Mapping[str, Any]]) -> list[str]:
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


def _exemption(tax: Mapping[str, Any], lines: Iterable[Mapping[str, Any]]) -> tuple[str, str | None]:
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

    orders = document.get("order_forms") or _orders(lines)
    taxes = []
    for tax in document["vat_breakdown"]:
        entry = {"BT-116": tax["base"], "BT-117": tax["amount"], "BT-118": tax["code"]}
        if tax["code"] != OUTSIDE_SCOPE:  # BR-48 (O has no rate)
            entry["BT-119"] = _percent(tax["rate"])
        if tax["code"] != "S":  # BR-E-10, BR-O-10 (and BR-S-10 forbids it on S)
            reason, code = _exemption(tax, lines)
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
            entry["BT-152"] = _percent(rate)
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


def issue_moment(document: Mapping[str, Any]) -> datetime:
    """The document's creation time as its PDF states it: noon UTC of its issue date — from the
    document, never the clock, so that exporting it again gives the same bytes."""
    return datetime.combine(date.fromisoformat(document["issued_on"]), datetime.min.time(),
                            UTC).replace(hour=12)


def facturx_pdf(document: Mapping[str, Any], digest: str, *,
                refers_to_issued_on: str | None = None, supporting: bytes | None = None,
                afrelationship: str = "Data") -> bytes:
    """The readable PDF/A-3B of the document with its Factur-X XML embedded, in one fpdf2 pass.

    fpdf2 (``enforce_compliance="PDFA_3B"``) writes PDF 1.7, embeds the DejaVu Sans subsets and
    adds the sRGB OutputIntent; this function adds the XMP (pdfaid 3B + Factur-X extension
    schema) and attaches ``factur-x.xml`` with ``/AFRelationship`` (``Data``, the factur-x
    default; ``Alternative`` or ``Source`` also allowed for EN 16931), listed in the catalog's
    ``/AF``. No Info dictionary is written (fpdf2 in PDF/A mode), so none can disagree with
    the XMP. The same document gives the same bytes.
    """
    from fpdf import FPDF_VERSION

    created = issue_moment(document)
    xml = facturx_xml(document, refers_to_issued_on, supporting)
    data = facturx_data(document, refers_to_issued_on)
    meta = pdf_metadata(document)
    doc = layout(document, digest, due_date=data.get("BT-9"), payment_terms=data.get("BT-20"))
    doc.set_creation_date(created)
    doc.set_lang("fr-FR")
    doc.set_title(meta["title"])
    doc.set_author(meta["author"])
    doc.set_subject(meta["subject"])
    doc.set_keywords(meta["keywords"])
    doc.set_xmp_metadata(facturx_xmp(meta, created=created, producer=f"fpdf2 {FPDF_VERSION}"))
    doc.embed_file(basename=FACTURX_FILENAME, bytes=xml, mime_type="text/xml",
                   associated_file_relationship=afrelationship, desc="Factur-X XML file",
                   modification_date=created, compress=True, checksum=True)
    doc.page_mode = "USE_ATTACHMENTS"
    return bytes(doc.output())


# The PDF layout (PDF/A-3B) ------------------------------------------------------------------

#: DejaVu Sans, to ship as package data (exports/fonts/, with its LICENSE): fpdf2 embeds a
#: subset of each font used. Falls back on Debian's fonts-dejavu-core, or $LEDGER_FONT_DIR.
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf", "I": "DejaVuSans-Oblique.ttf"}
FAMILY = "DejaVuSans"
FACTURX_FILENAME = "factur-x.xml"
FX_NS = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"
CREATOR_TOOL = "territorial-ledger"


def font_dir() -> Path:
    candidates = [os.environ.get("LEDGER_FONT_DIR"), Path(__file__).parent / "fonts",
                  "/usr/share/fonts/truetype/dejavu"]
    for candidate in candidates:
        if candidate and all((Path(candidate) / name).is_file() for name in FONT_FILES.values()):
            return Path(candidate)
    raise FileNotFoundError("DejaVu Sans TTF files not found (exports/fonts/, "
                            "$LEDGER_FONT_DIR or Debian's fonts-dejavu-core)")


def _text(value: Any) -> str:
    """The embedded font is Unicode: only control characters go."""
    return "".join(ch for ch in str(value) if ch >= " " or ch == "\n")


def _euros(amount: str) -> str:
    return french_amount(Decimal(amount))


def _address_lines(party: Mapping[str, Any]) -> list[str]:
    address = party.get("address") or {}
    lines = [address.get("line1"), address.get("line2"),
             " ".join(filter(None, (address.get("postcode"), address.get("city"))))]
    return [line for line in lines if line]


def pdf_metadata(document: Mapping[str, Any]) -> dict[str, str]:
    kind = "Avoir" if document["kind"] == CREDIT_NOTE else "Facture"
    seller = document["seller"]["name"]
    return {
        "title": f"{seller} : {kind} {document['number']}",
        "author": seller,
        "subject": (f"{kind} {document['number']} du {_french_date(document['issued_on'])} "
                    f"émise par {seller} pour {document['buyer']['name']}"),
        "keywords": f"{kind}, Factur-X",
    }


def facturx_xmp(meta: Mapping[str, str], *, created: datetime, producer: str,
                level_label: str = "EN 16931", facturx: bool = True) -> str:
    """XMP body for fpdf2 (it adds the <?xpacket?>): PDF/A-3B identification, Dublin Core,
    and (``facturx``) the Factur-X PDF/A extension schema with its fx: properties. Every date
    is ``created``: fpdf2's own XMP would stamp the clock, and the same document must give
    the same bytes."""
    e = escape
    stamp = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    properties = "".join(
        '<rdf:li rdf:parseType="Resource">'
        f"<pdfaProperty:name>{name}</pdfaProperty:name>"
        "<pdfaProperty:valueType>Text</pdfaProperty:valueType>"
        "<pdfaProperty:category>external</pdfaProperty:category>"
        f"<pdfaProperty:description>{e(desc)}</pdfaProperty:description></rdf:li>"
        for name, desc in (
            ("DocumentFileName", "The name of the embedded XML document"),
            ("DocumentType", "The type of the hybrid document in capital letters"),
            ("Version", "The version of the standard applying to the embedded XML document"),
            ("ConformanceLevel", "The conformance level of the embedded XML document")))
    return f"""<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">
   <pdfaid:part>3</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
   <dc:format>application/pdf</dc:format>
   <dc:title><rdf:Alt>
    <rdf:li xml:lang="x-default">{e(meta['title'])}</rdf:li></rdf:Alt></dc:title>
   <dc:creator><rdf:Seq><rdf:li>{e(meta['author'])}</rdf:li></rdf:Seq></dc:creator>
   <dc:description><rdf:Alt>
    <rdf:li xml:lang="x-default">{e(meta['subject'])}</rdf:li></rdf:Alt></dc:description>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:pdf="http://ns.adobe.com/pdf/1.3/">
   <pdf:Producer>{e(producer)}</pdf:Producer><pdf:Keywords>{e(meta['keywords'])}</pdf:Keywords>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/">
   <xmp:CreatorTool>{CREATOR_TOOL}</xmp:CreatorTool><xmp:CreateDate>{stamp}</xmp:CreateDate>
   <xmp:ModifyDate>{stamp}</xmp:ModifyDate><xmp:MetadataDate>{stamp}</xmp:MetadataDate>
  </rdf:Description>
{_FX_XMP.format(properties=properties, level_label=level_label, fx_ns=FX_NS,
                filename=FACTURX_FILENAME) if facturx else ""} </rdf:RDF>
</x:xmpmeta>"""


_FX_XMP = """  <rdf:Description rdf:about="" xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/"
    xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#"
    xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">
   <pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType="Resource">
    <pdfaSchema:schema>Factur-X PDFA Extension Schema</pdfaSchema:schema>
    <pdfaSchema:namespaceURI>{fx_ns}</pdfaSchema:namespaceURI>
    <pdfaSchema:prefix>fx</pdfaSchema:prefix>
    <pdfaSchema:property><rdf:Seq>{properties}</rdf:Seq></pdfaSchema:property>
   </rdf:li></rdf:Bag></pdfaExtension:schemas>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:fx="{fx_ns}">
   <fx:DocumentType>INVOICE</fx:DocumentType>
   <fx:DocumentFileName>{filename}</fx:DocumentFileName>
   <fx:Version>1.0</fx:Version><fx:ConformanceLevel>{level_label}</fx:ConformanceLevel>
  </rdf:Description>
"""


def layout(document: Mapping[str, Any], digest: str, *, due_date: date | None = None,
           payment_terms: str | None = None):
    """Lay the document out as a one-column A4 invoice: an fpdf2 PDF/A-3B document (PDF 1.7,
    DejaVu Sans embedded, sRGB OutputIntent added by fpdf2), not yet output."""
    from fpdf import FPDF

    doc = FPDF(format="A4", enforce_compliance="PDFA_3B")
    fonts = font_dir()
    for style, name in FONT_FILES.items():
        if style != "I" or document.get("cause"):  # italic only prints the cause
            doc.add_font(FAMILY, style, str(fonts / name))
    f = FAMILY
    doc.set_auto_page_break(auto=True, margin=18)
    doc.add_page()
    width = doc.epw

    seller, buyer = document["seller"], document["buyer"]
    doc.set_font(f, "B", 13)
    doc.cell(width, 7, _text(seller["name"]), new_x="LMARGIN", new_y="NEXT")
    doc.set_font(f, "", 9)
    for line in [*_address_lines(seller), f"SIRET {seller['siret']}"] + (
            [f"TVA {seller['vat_number']}"] if seller.get("vat_number") else []):
        doc.cell(width, 4.5, _text(line), new_x="LMARGIN", new_y="NEXT")
    doc.ln(6)

    title = "AVOIR" if document["kind"] == CREDIT_NOTE else "FACTURE"
    doc.set_font(f, "B", 16)
    doc.cell(width, 9, _text(f"{title} {document['number']}"), new_x="LMARGIN", new_y="NEXT")
    doc.set_font(f, "", 10)
    doc.cell(width, 5, _text(f"Date d’émission : {_french_date(document['issued_on'])}"),
             new_x="LMARGIN", new_y="NEXT")
    if due_date:
        doc.cell(width, 5, _text(f"Échéance : {_french_date(due_date.isoformat())}"),
                 new_x="LMARGIN", new_y="NEXT")
    if payment_terms:
        doc.multi_cell(width, 5, _text(f"Conditions de paiement : {payment_terms}"),
                       new_x="LMARGIN", new_y="NEXT")
    if document.get("refers_to"):
        what = "Avoir sur la facture" if document["kind"] == CREDIT_NOTE else "Remplace la facture"
        doc.cell(width, 5, _text(f"{what} {document['refers_to']}"), new_x="LMARGIN", new_y="NEXT")
    if document.get("cause"):
        doc.set_font(f, "I", 8)
        doc.multi_cell(width, 4, _text(f"Motif : {document['cause']}"), new_x="LMARGIN",
                       new_y="NEXT")
    doc.ln(4)

    doc.set_font(f, "B", 10)
    doc.cell(width, 5, "Destinataire", new_x="LMARGIN", new_y="NEXT")
    doc.set_font(f, "", 10)
    for line in [buyer["name"], *_address_lines(buyer), f"SIRET {buyer['siret']}"]:
        doc.cell(width, 5, _text(line), new_x="LMARGIN", new_y="NEXT")
    if buyer.get("code_service"):
        doc.cell(width, 5, _text(f"Code service : {buyer['code_service']}"), new_x="LMARGIN",
                 new_y="NEXT")
    if buyer.get("engagement_number"):
        doc.cell(width, 5, _text(f"N° d’engagement : {buyer['engagement_number']}"),
                 new_x="LMARGIN", new_y="NEXT")
    orders = _orders(document["lines"])
    if orders:
        doc.cell(width, 5, _text(f"Bon{'s' if len(orders) > 1 else ''} de commande : "
                                 f"{', '.join(orders)}"), new_x="LMARGIN", new_y="NEXT")
    doc.ln(5)

    columns = (("Désignation", 0.50), ("Période", 0.25), ("TVA", 0.08), ("Montant HT", 0.17))
    doc.set_font(f, "B", 9)
    doc.set_fill_color(230, 230, 230)
    for label, share in columns:
        doc.cell(width * share, 6, _text(label), border=1, fill=True,
                 align="R" if label == "Montant HT" else "L")
    doc.ln()
    doc.set_font(f, "", 8.5)
    for line in document["lines"]:
        period = f"{_french_date(line['period_start'])} au {_french_date(line['period_end'])}"
        code, rate = VAT_CATEGORIES[line["vat"]]
        vat = f"{code} {_percent(rate)} %" if code == "S" else code
        cells = (line["description"], period, vat, _euros(line["amount"]))
        height = max(len(doc.multi_cell(width * share - 2, 4.5, _text(text), dry_run=True,
                                        output="LINES")) for text, (_, share) in
                     zip(cells, columns)) * 4.5 + 1
        if doc.get_y() + height > doc.page_break_trigger:
            doc.add_page()
        top = doc.get_y()
        left = doc.l_margin
        for text, (label, share) in zip(cells, columns):
            doc.set_xy(left, top)
            doc.multi_cell(width * share, 4.5, _text(text), border=0,
                           align="R" if label == "Montant HT" else "L")
            doc.rect(left, top, width * share, height)
            left += width * share
        doc.set_xy(doc.l_margin, top + height)
    doc.ln(3)

    doc.set_font(f, "", 10)
    for label, value in (("Total HT", document["total_ht"]), ("TVA", document["total_vat"]),
                         ("Total TTC", document["total_ttc"])):
        doc.cell(width * 0.83, 6, _text(label), align="R")
        doc.set_font(f, "B" if label == "Total TTC" else "", 10)
        doc.cell(width * 0.17, 6, _text(_euros(value)), align="R", new_x="LMARGIN",
                 new_y="NEXT")
        doc.set_font(f, "", 10)
    doc.ln(3)
    doc.set_font(f, "", 8)
    for tax in document["vat_breakdown"]:
        if tax["code"] != "S":
            doc.multi_cell(width, 4,
                           _text(f"TVA ({tax['code']}) : {_exemption(tax, document['lines'])[0]}"),
                           new_x="LMARGIN", new_y="NEXT", align="L")
    doc.multi_cell(width, 4, _text(
        "Facture électronique Factur-X (EN 16931), XML joint « factur-x.xml ». "
        f"Empreinte SHA-256 : {digest}"), new_x="LMARGIN", new_y="NEXT", align="L")
    return doc


def pdf(document: Mapping[str, Any], digest: str, **layout_options: Any) -> bytes:
    """The readable PDF/A-3B alone (no XML attached)."""
    return bytes(layout(document, digest, **layout_options).output())


def _french_date(iso: str) -> str:
    return french_date(iso)


# JSON and the accounting journal -----------------------------------------------------------

JOURNAL_COLUMNS = (
    "number", "kind", "issued_on", "refers_to", "customer", "buyer_name", "buyer_siret",
    "code_service", "engagement_number", "line_key", "domain", "order", "description",
    "period_start", "period_end", "schedule", "tariff_line", "vat_code", "vat_rate",
    "amount_ht",
)


def journal_rows(documents: Iterable[Mapping[str, Any]]) -> Iterable[dict[str, str]]:
    """One row per document line; credit notes are negative so that a sum gives revenue."""
    for document in documents:
        sign = -1 if document["kind"] == CREDIT_NOTE else 1
        buyer = document["buyer"]
        for line in document["lines"]:
            code, rate = VAT_CATEGORIES[line["vat"]]
            yield {
                "number": document["number"], "kind": document["kind"],
                "issued_on": document["issued_on"], "refers_to": document.get("refers_to") or "",
                "customer": buyer["customer"], "buyer_name": buyer["name"],
                "buyer_siret": buyer["siret"], "code_service": buyer.get("code_service") or "",
                "engagement_number": buyer.get("engagement_number") or "",
                "line_key": line["key"], "domain": line["domain"], "order": line["order"],
                "description": line["description"], "period_start": line["period_start"],
                "period_end": line["period_end"], "schedule": line["schedule"],
                "tariff_line": line["line"], "vat_code": code, "vat_rate": str(rate),
                "amount_ht": f"{sign * Decimal(line['amount']):.2f}",
            }


#: Columns holding amounts or rates: numbers, never neutralised, written with a decimal comma
#: in the French dialect.
NUMERIC_COLUMNS = frozenset({"vat_rate", "amount_ht"})
#: What a spreadsheet would run as a formula when a text cell starts with it (OWASP, "CSV
#: injection"): such a cell is written with a leading apostrophe, which spreadsheets show as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
DIALECTS = {"en": {"delimiter": ",", "decimal": ".", "bom": False},
            "fr": {"delimiter": ";", "decimal": ",", "bom": True}}


def _cell(column: str, value: str, decimal: str) -> str:
    if column in NUMERIC_COLUMNS:
        return value.replace(".", decimal)
    if value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def journal_csv(documents: Iterable[Mapping[str, Any]], dialect: str = "en") -> str:
    """The journal as CSV: ``en`` (comma, decimal point) or ``fr`` (semicolon, decimal comma,
    UTF-8 byte order mark, as French spreadsheets expect). Text cells that a spreadsheet would
    take for a formula are neutralised."""
    style = DIALECTS[dialect]
    out = io.StringIO()
    if style["bom"]:
        out.write("\ufeff")
    writer = csv.DictWriter(out, fieldnames=JOURNAL_COLUMNS, lineterminator="\r\n"
                            if dialect == "fr" else "\n", delimiter=style["delimiter"])
    writer.writeheader()
    for row in journal_rows(documents):
        writer.writerow({k: _cell(k, v, style["decimal"]) for k, v in row.items()})
    return out.getvalue()
