"""The accounting journal of issued documents: one row per line, as CSV for a spreadsheet
(English or French dialect, no formula ever started by a cell)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from ledger.invoicing import (
    CREDIT_NOTE,
)
from ledger.tariffs import VAT_CATEGORIES

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
