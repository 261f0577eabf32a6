"""Issued documents out of the ledger: Factur-X (EN 16931) PDF, JSON, and the accounting journal."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from ledger.invoicing import CREDIT_NOTE, DEFAULT_VAT_REASON
from ledger.tariffs import VAT_CATEGORIES

TYPE_CODES = {"invoice": "380", "credit_note": "381"}  # UNTDID 1001
SIRET_SCHEME = "0002"  # ISO 6523 ICD of the French SIRENE register
UNIT = "C62"  # UN/ECE rec. 20: "one"


def _party(party: Mapping[str, Any]) -> dict[str, Any]:
    address = party.get("address") or {}
    data = {
        "name": party["name"],
        "legal_identifier": party["siret"],
        "legal_identifier_schemeid": SIRET_SCHEME,
        "country_code": "FR",
    }
    if party.get("vat_number"):
        data["vat_identifier"] = party["vat_number"]
    for ours, theirs in (("line1", "addr_l1"), ("line2", "addr_l2"), ("postcode", "postcode"),
                         ("city", "city")):
        if address.get(ours):
            data[theirs] = address[ours]
    return data


def facturx_data(document: Mapping[str, Any]) -> dict[str, Any]:
    """The EN 16931 fields (BT / BG numbers) of a document, for the factur-x library."""
    lines = document["lines"]
    data: dict[str, Any] = {
        "BT-1": document["number"],
        "BT-2": date.fromisoformat(document["issued_on"]),
        "BT-3": TYPE_CODES[document["kind"]],
        "BT-5": document["currency"],
        "BG-4": _party(document["seller"]),
        "BG-7": _party(document["buyer"]),
        # Delivery: the first charge date (the schema wants the delivery block non-empty).
        "BT-72": date.fromisoformat(min(line["charge_date"] for line in lines)),
        "BG-23": [
            {
                "BT-116": tax["base"], "BT-117": tax["amount"], "BT-118": tax["code"],
                **({"BT-119": tax["rate"]} if tax["code"] == "S" else {}),
                **({"BT-120": _exemption(tax, lines)} if tax["code"] != "S" else {}),
            }
            for tax in document["vat_breakdown"]
        ],
        "BG-25": [
            {
                "BT-126": str(position),
                "BT-129": "1",
                "BT-130": UNIT,
                "BT-131": line["amount"],
                "BT-134": date.fromisoformat(line["period_start"]),
                "BT-135": date.fromisoformat(line["period_end"]),
                "BT-146": line["amount"],
                "BT-151": VAT_CATEGORIES[line["vat"]][0],
                **({"BT-152": str(VAT_CATEGORIES[line["vat"]][1])}
                   if VAT_CATEGORIES[line["vat"]][0] == "S" else {}),
                "BT-153": line["description"][:200],
                "BT-155": line["line"],
            }
            for position, line in enumerate(lines, start=1)
        ],
        "BT-106": document["total_ht"],
        "BT-109": document["total_ht"],
        "BT-110": document["total_vat"],
        "BT-112": document["total_ttc"],
        "BT-115": document["total_ttc"],
    }
    buyer = document["buyer"]
    if buyer.get("code_service"):
        data["BT-10"] = buyer["code_service"]
    if buyer.get("engagement_number"):
        data["BT-13"] = buyer["engagement_number"]
    if document.get("refers_to"):
        data["BG-3"] = [{"BT-25": document["refers_to"]}]
    return data


def _exemption(tax: Mapping[str, Any], lines: Iterable[Mapping[str, Any]]) -> str:
    reasons = {line.get("vat_reason") for line in lines if line["vat"] == tax["category"]}
    reasons.discard(None)
    return "; ".join(sorted(reasons)) if reasons else (tax["exemption_reason"] or DEFAULT_VAT_REASON)


def facturx_xml(document: Mapping[str, Any]) -> bytes:
    """CII XML of the EN 16931 profile, checked against the official XSD by the factur-x library."""
    from facturx.generate_xml import generate_xml

    return generate_xml(facturx_data(document), flavor="factur-x", level="en16931",
                        check_xsd=True, check_schematron=False)


def facturx_pdf(document: Mapping[str, Any], digest: str) -> bytes:
    """A readable PDF of the document with its Factur-X XML embedded (PDF/A-3)."""
    from facturx import generate_from_binary

    return generate_from_binary(pdf(document, digest), facturx_xml(document),
                                flavor="factur-x", level="en16931", check_xsd=True,
                                lang="fr-FR")


# The PDF layout ------------------------------------------------------------------------------

_PLAIN = str.maketrans({"—": "-", "–": "-", "→": "->", "€": "EUR", "’": "'", "œ": "oe",
                        "Œ": "OE", "…": "...", "≤": "<=", "≥": ">="})


def _text(value: Any) -> str:
    """Core PDF fonts are Latin-1: keep accents, spell out the rest."""
    return str(value).translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")


def _euros(amount: str) -> str:
    whole, cents = f"{Decimal(amount):.2f}".split(".")
    sign = "-" if whole.startswith("-") else ""
    digits = whole.lstrip("-")
    groups = []
    while digits:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    return f"{sign}{' '.join(groups)},{cents} EUR"


def _address_lines(party: Mapping[str, Any]) -> list[str]:
    address = party.get("address") or {}
    lines = [address.get("line1"), address.get("line2"),
             " ".join(filter(None, (address.get("postcode"), address.get("city"))))]
    return [line for line in lines if line]


def pdf(document: Mapping[str, Any], digest: str) -> bytes:
    """Lay the document out as a one-column A4 invoice with fpdf2."""
    from fpdf import FPDF

    doc = FPDF(format="A4")
    doc.set_auto_page_break(auto=True, margin=18)
    doc.set_title(_text(document["number"]))
    doc.set_author(_text(document["seller"]["name"]))
    doc.add_page()
    width = doc.epw

    seller, buyer = document["seller"], document["buyer"]
    doc.set_font("Helvetica", "B", 13)
    doc.cell(width, 7, _text(seller["name"]), new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", "", 9)
    for line in [*_address_lines(seller), f"SIRET {seller['siret']}"] + (
            [f"TVA {seller['vat_number']}"] if seller.get("vat_number") else []):
        doc.cell(width, 4.5, _text(line), new_x="LMARGIN", new_y="NEXT")
    doc.ln(6)

    title = "AVOIR" if document["kind"] == CREDIT_NOTE else "FACTURE"
    doc.set_font("Helvetica", "B", 16)
    doc.cell(width, 9, _text(f"{title} {document['number']}"), new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", "", 10)
    doc.cell(width, 5, _text(f"Date d'émission : {_french_date(document['issued_on'])}"),
             new_x="LMARGIN", new_y="NEXT")
    if document.get("refers_to"):
        what = "Avoir sur la facture" if document["kind"] == CREDIT_NOTE else "Remplace la facture"
        doc.cell(width, 5, _text(f"{what} {document['refers_to']}"), new_x="LMARGIN", new_y="NEXT")
    if document.get("cause"):
        doc.set_font("Helvetica", "I", 8)
        doc.multi_cell(width, 4, _text(f"Motif : {document['cause']}"), new_x="LMARGIN",
                       new_y="NEXT")
    doc.ln(4)

    doc.set_font("Helvetica", "B", 10)
    doc.cell(width, 5, "Destinataire", new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", "", 10)
    for line in [buyer["name"], *_address_lines(buyer), f"SIRET {buyer['siret']}"]:
        doc.cell(width, 5, _text(line), new_x="LMARGIN", new_y="NEXT")
    if buyer.get("code_service"):
        doc.cell(width, 5, _text(f"Code service : {buyer['code_service']}"), new_x="LMARGIN",
                 new_y="NEXT")
    if buyer.get("engagement_number"):
        doc.cell(width, 5, _text(f"N° d'engagement : {buyer['engagement_number']}"),
                 new_x="LMARGIN", new_y="NEXT")
    doc.ln(5)

    columns = (("Désignation", 0.50), ("Période", 0.27), ("TVA", 0.07), ("Montant HT", 0.16))
    doc.set_font("Helvetica", "B", 9)
    doc.set_fill_color(230, 230, 230)
    for label, share in columns:
        doc.cell(width * share, 6, _text(label), border=1, fill=True,
                 align="R" if label == "Montant HT" else "L")
    doc.ln()
    doc.set_font("Helvetica", "", 8.5)
    for line in document["lines"]:
        period = f"{_french_date(line['period_start'])} au {_french_date(line['period_end'])}"
        cells = (line["description"], period, VAT_CATEGORIES[line["vat"]][0],
                 _euros(line["amount"]))
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

    doc.set_font("Helvetica", "", 10)
    for label, value in (("Total HT", document["total_ht"]), ("TVA", document["total_vat"]),
                         ("Total TTC", document["total_ttc"])):
        doc.cell(width * 0.84, 6, _text(label), align="R")
        doc.set_font("Helvetica", "B" if label == "Total TTC" else "", 10)
        doc.cell(width * 0.16, 6, _text(_euros(value)), align="R", new_x="LMARGIN", new_y="NEXT")
        doc.set_font("Helvetica", "", 10)
    doc.ln(3)
    doc.set_font("Helvetica", "", 8)
    for tax in document["vat_breakdown"]:
        if tax["code"] != "S":
            doc.multi_cell(width, 4,
                           _text(f"TVA ({tax['code']}) : {_exemption(tax, document['lines'])}"),
                           new_x="LMARGIN", new_y="NEXT", align="L")
    doc.multi_cell(width, 4, _text(
        f"Facture électronique Factur-X (EN 16931), XML joint. Empreinte SHA-256 : {digest}"),
        new_x="LMARGIN", new_y="NEXT", align="L")
    return bytes(doc.output())


def _french_date(iso: str) -> str:
    day = date.fromisoformat(iso)
    return f"{day.day:02d}/{day.month:02d}/{day.year}"


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
