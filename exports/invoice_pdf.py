"""The readable PDF/A-3B of an issued document with its Factur-X XML attached, made in one fpdf2
pass from the document as issued: the same document gives the same bytes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from exports.einvoice import exemption, facturx_data, facturx_xml, order_references, percent
from ledger.dates import french_date
from ledger.invoicing import (
    CREDIT_NOTE,
)
from ledger.money import french_amount
from ledger.tariffs import VAT_CATEGORIES


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
    orders = order_references(document["lines"])
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
        vat = f"{code} {percent(rate)} %" if code == "S" else code
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
                           _text(f"TVA ({tax['code']}) : {exemption(tax, document['lines'])[0]}"),
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
