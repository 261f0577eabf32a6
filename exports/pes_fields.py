"""How values are written in a PES V2 file: text cleaned to the characters Hélios accepts and cut
to each field's size, amounts in cents, rates, the tiers' category and nature codes, and the
elements (every value in a ``V`` attribute)."""

from __future__ import annotations

import gzip
import re
import unicodedata
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from lxml import etree

from ledger.categories import category as category_of
from ledger.errors import LedgerError
from ledger.tariffs import VAT_CATEGORIES

TWO = Decimal("0.01")


class PESError(LedgerError):
    """A PES file cannot be written as asked, or a written one breaks a rule; the message says
    which and why."""


def clean(text: Any) -> str:
    """One line: control characters and runs of white space become one space (the schema's
    text types match with '.', which no line break matches)."""
    s = "".join(" " if unicodedata.category(c).startswith("C") else c for c in str(text))
    return re.sub(r"\s+", " ", s).strip()


def truncated(text: Any, size: int) -> str:
    s = clean(text)
    return s if len(s) <= size else s[: size - 1].rstrip() + "…"


def postal(text: Any) -> str:
    """« Recommandation normes postales : saisir en majuscule, sans accent, sans caractère de
    ponctuation » (NS_Facture/r0/Class_AdresseFacture.xsd)."""
    s = unicodedata.normalize("NFKD", clean(text))
    s = "".join(c for c in s if not unicodedata.combining(c))
    s = s.replace("Œ", "OE").replace("œ", "oe").replace("Æ", "AE").replace("æ", "ae")
    s = re.sub(r"[^0-9A-Za-z]+", " ", s).upper()
    return re.sub(r"\s+", " ", s).strip()


def postal_truncated(text: Any, size: int) -> str:
    return postal(text)[:size].rstrip()


def split38(name: str) -> tuple[str, str | None]:
    """A name on Nom (38 characters) and, past that, ComplNom (38), cut at a word."""
    if len(name) <= 38:
        return name, None
    cut = name.rfind(" ", 0, 39)
    cut = cut if cut > 0 else 38
    return name[:cut].rstrip(), name[cut:].strip()[:38].rstrip() or None


def sepa(text: Any, size: int) -> str:
    """A transfer label: upper-case SEPA characters only."""
    s = unicodedata.normalize("NFKD", clean(text))
    s = "".join(ch for ch in s if not unicodedata.combining(ch)).upper()
    s = re.sub(r"[^A-Z0-9/\-?:().,'+ ]+", " ", s)
    return re.sub(r"\s+", " ", s).strip()[:size].rstrip()


def alnum(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", text)


def money(cents: int) -> str:
    """Amounts: decimal point, two decimals (V_Montant)."""
    return str((Decimal(cents) / 100).quantize(TWO))


def rate(category: str) -> str:
    return str(VAT_CATEGORIES[category][1].quantize(TWO))


def gzipped(data: bytes) -> bytes:
    # mtime 0 and no file name: the same bytes in give the same bytes out.
    return gzip.compress(data, compresslevel=9, mtime=0)


def el(parent: etree._Element, tag: str, value: Any = None, **attrs: str) -> etree._Element:
    node = etree.SubElement(parent, tag)
    if value is not None:
        node.set("V", str(value))
    for key, val in attrs.items():
        node.set(key, val)
    return node


def opt(parent: etree._Element, tag: str, value: Any) -> None:
    if value not in (None, ""):
        el(parent, tag, value)


def tiers_codes(buyer: Mapping[str, Any], categories: Mapping[str, str]) -> tuple[str, str]:
    """(CatTiers, NatJur) of the debtor, from its category (on the document from format 2,
    else as registered)."""
    name = buyer.get("category") or categories.get(buyer["customer"])
    if name is None:
        raise PESError(f"customer {buyer['customer']!r}: its category is not known")
    category = category_of(name)
    return category.cat_tiers, category.nat_jur
