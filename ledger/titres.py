"""From an issued document to the lines of its titre de recette: where each line's receipt goes
in the M57 budget (the profile's imputation rules: compte par nature, fonction, product code),
one titre line per imputation with its VAT allocated to the cent, and the section of the budget
(NatPce). Pure functions; :mod:`ledger.treasury` plans files of titres with them."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import attrs

from ledger.errors import BusinessRuleViolation
from ledger.tariffs import VAT_CATEGORIES

#: NatPce of a titre: the section of the budget its receipts go to.
NATPCE = {"fonctionnement": "01", "investissement": "02"}


class PESRefused(BusinessRuleViolation):
    """The documents asked for cannot go into a PES file as they stand; the message says why."""


@attrs.frozen
class Imputation:
    """Where a line's receipt goes in the M57 budget: compte par nature, fonction, opération,
    and the local product code Hélios maps to a national one (CodProdLoc)."""

    nature: str
    cod_prod_loc: str
    fonction: str | None = None
    operation: str | None = None
    label: str | None = None
    natpce: str | None = None  # when the rule states the section (documents of format 1)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.nature, self.fonction or "", self.operation or "", self.cod_prod_loc


def matches(rule: Mapping[str, Any], line: Mapping[str, Any]) -> bool:
    patterns = rule["match"] if isinstance(rule["match"], list) else [rule["match"]]
    names = (str(line.get("line", "")), f"{line.get('schedule', '')}/{line.get('line', '')}",
             str(line.get("kind", "")))
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns for name in names)


def imputation_for(line: Mapping[str, Any], rules: Sequence[Mapping[str, Any]],
                   number: str) -> Imputation:
    """The first rule whose ``match`` (a glob on the catalogue line id, ``schedule/line`` or the
    charge kind) fits the line."""
    for rule in rules:
        if matches(rule, line):
            return Imputation(rule["nature"], rule.get("cod_prod_loc") or "", rule.get("fonction"),
                              rule.get("operation"), rule.get("label"), rule.get("natpce"))
    raise PESRefused(
        f"{number}: no imputation configured for the catalogue line {line.get('line')!r} "
        f"(schedule {line.get('schedule')!r}): add a rule to the Hélios profile's imputations "
        "(set_helios_profile)")


@attrs.frozen
class TitreLine:
    """One line of a titre: the document lines that share an imputation and a VAT category.

    « Dans le cas général des titres individuels n'ayant qu'une imputation budgétaire le n° de
    ligne est mis à 1 » (IdLigne, NS_Recette/r0/Class_LigneTitreAller.xsd).
    """

    id_ligne: int
    imputation: Imputation
    vat: str
    lines: tuple[Mapping[str, Any], ...]
    ht_cents: int
    vat_cents: int

    @property
    def keys(self) -> list[str]:
        return [line["key"] for line in self.lines]


def in_cents(amount: Any) -> int:
    return int((Decimal(str(amount)) * 100).to_integral_value(rounding=ROUND_HALF_UP))


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` cents split in proportion to ``weights``, largest remainders first (ties in
    order), so that the parts add up exactly."""
    whole = sum(weights)
    if not weights:
        return []
    if whole == 0:
        return [total] + [0] * (len(weights) - 1)
    parts = [total * w // whole for w in weights]
    rest = total - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in order[:rest]:
        parts[i] += 1
    return parts


def titre_lines(document: Mapping[str, Any], rules: Sequence[Mapping[str, Any]]
                ) -> list[TitreLine]:
    """A document's lines grouped into lines of titre, in order of first appearance; each
    VAT category's amount (rounded once on the document) is split over its groups."""
    number = document["number"]
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    imputations: dict[tuple, Imputation] = {}
    for line in document["lines"]:
        cents = in_cents(line["amount"])
        if cents < 0:
            raise PESRefused(f"{number}: a negative line ({line['key']}) cannot be a line of "
                             "titre (MtHT « Pas de valeur à vide ou 0,00 »)")
        if cents == 0:
            continue
        imputation = imputation_for(line, rules, number)
        key = (*imputation.key, line["vat"])
        groups.setdefault(key, []).append(line)
        imputations[key] = imputation
    if not groups:
        raise PESRefused(f"{number}: no line with an amount above 0: no titre to issue")
    taxes = {tax["category"]: in_cents(tax["amount"]) for tax in document["vat_breakdown"]}
    by_vat: dict[str, list[tuple]] = {}
    for key in groups:
        by_vat.setdefault(key[-1], []).append(key)
    vat_of: dict[tuple, int] = {}
    for vat, keys in by_vat.items():
        shares = allocate(taxes.get(vat, 0),
                          [sum(in_cents(line["amount"]) for line in groups[k]) for k in keys])
        vat_of.update(zip(keys, shares))
    out = []
    for n, (key, lines) in enumerate(groups.items(), start=1):
        out.append(TitreLine(n, imputations[key], key[-1], tuple(lines),
                             sum(in_cents(line["amount"]) for line in lines), vat_of[key]))
    return out


def natpce(document: Mapping[str, Any], lines: Sequence[TitreLine]) -> str:
    """01 fonctionnement or 02 investissement: from the document's budget section (format 2),
    else from the imputation rules (format 1). One per titre."""
    found = set()
    for titre_line in lines:
        for line in titre_line.lines:
            if line.get("budget"):
                found.add(NATPCE[line["budget"]])
            elif titre_line.imputation.natpce:
                found.add(titre_line.imputation.natpce)
            else:
                raise PESRefused(
                    f"{document['number']} was issued before documents stated their budget "
                    f"section: give the imputation rule of {line['line']!r} its natpce (01 "
                    "fonctionnement, 02 investissement), or ledger corrections reissue "
                    f"{document['number']} --by NAME")
    if len(found) != 1:
        raise PESRefused(
            f"{document['number']} holds both fonctionnement and investissement lines: a titre "
            "is one or the other (NatPce). It was issued before billing split them: "
            f"ledger corrections reissue {document['number']} --by NAME")
    return found.pop()


def vat_code(category: str) -> str:
    return VAT_CATEGORIES[category][0]
