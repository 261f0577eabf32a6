"""The bases de la liquidation: why each amount is what it is, from the code that computed it.

A member has two months to contest a titre, which must state « les bases de la liquidation »
(décret 2012-1246, art. 24). For every line of a document this module gives the tree the charges
projection emitted when it computed the amount (``explain=True``): the rule and the sentence of
the order form, the tariff line and the deliberation that adopted it, the facts and the log
entries that recorded them (position, recorded time, actor, source file), the period and why it
ends there, and the computation with each number. A credit note's lines name the line they
reverse and the late entries that caused it.

Renderings: data (``--json``), a French text as a clerk would write it, Markdown, HTML, and the
one-page PDF « état liquidatif » that travels with the titre (PES PJ) and the Factur-X (BG-24).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import orjson

from commands.billing import invoicing_state
from commands.corrections import late_news
from commands.verification import Basis, document_entry
from eventstore.app import LedgerApplication
from ledger.dates import french_date
from ledger.errors import LedgerError
from ledger.events import REGISTRY
from ledger.identity import tariff_book_id
from ledger.money import french_amount
from ledger.subscription import canonical_domain
from ledger.tariff_book import TariffBook
from projections.charges import charges_as_of
from projections.history import known_at, resolve

ADOPTED = REGISTRY.name_of(TariffBook, "TariffScheduleAdopted")


def _entry_facts(app: LedgerApplication, position: int | None) -> dict[str, Any]:
    """The log entry behind a fact: when it was recorded, by whom, from which file."""
    if position is None:
        return {}
    entry = app.recorder.entry(position)
    if entry is None:
        return {}
    meta = orjson.loads(entry.metadata)
    origin = meta.get("source") or {}
    if origin:
        source = str(origin.get("file")) + (f", ligne {meta['line']}" if "line" in meta else "")
        if origin.get("sha256"):
            source += f" (sha256 {str(origin['sha256'])[:12]}…)"
    else:
        source = meta.get("via")
    return {"position": position, "recorded_at": entry.recorded_at_text,
            "actor": meta.get("actor"), "source": source,
            "event": app.mapper.event_type(entry).name}


def _adoptions(app: LedgerApplication, upto: int | None) -> dict[str, dict[str, Any]]:
    """Schedule id → the entry that adopted it."""
    found = {}
    for event in app.events_of(tariff_book_id(), upto):
        if REGISTRY.of_event(event).name == ADOPTED:
            schedule = event.schedule or {}
            schedule_id = schedule.get("id") or event.document.get("id")
            found[schedule_id] = _entry_facts(app, event.log_position)
    return found


def _enrich(app: LedgerApplication, derivation: Mapping[str, Any],
            adoptions: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    tree = dict(derivation)
    tree["facts"] = [{**fact, "entry": _entry_facts(app, fact.get("position"))}
                     for fact in derivation["facts"]]
    tree["tariff"] = {**derivation["tariff"],
                      "adopted": adoptions.get(derivation["tariff"]["schedule"], {})}
    return tree


def explain_document(app: LedgerApplication, number: str) -> dict[str, Any]:
    """The explanation of an issued document: each line with its amount and its tree."""
    entry, fields = document_entry(app, number)
    document, basis = fields["document"], fields["basis_position"]
    adoptions = _adoptions(app, basis)
    out: dict[str, Any] = {
        "number": number, "kind": document["kind"], "issued_on": document["issued_on"],
        "buyer": {k: document["buyer"].get(k) for k in ("customer", "name", "siret")},
        "seller": document["seller"]["name"], "total": document["total_ht"],
        "total_ttc": document["total_ttc"], "refers_to": document.get("refers_to"),
        "cause": document.get("cause"), "position": entry.id, "basis_position": basis,
        "issued": _entry_facts(app, entry.id), "digest": fields["digest"], "lines": [],
    }
    if document["kind"] == "credit_note":
        original_entry, original_fields = document_entry(app, document["refers_to"])
        original = original_fields["document"]
        original_basis = original_fields["basis_position"]
        trees = _trees(app, original, original_basis, _adoptions(app, original_basis))
        domains = {line["domain"] for line in original["lines"]}
        out["late_entries"] = [{**item, "entry": _entry_facts(app, item["position"])}
                               for item in late_news(app, domains, original_basis, basis)]
        for index, line in enumerate(document["lines"], start=1):
            out["lines"].append({
                "line": index, "description": line["description"], "amount": line["amount"],
                "period": [line["period_start"], line["period_end"]],
                "reverses": {"document": original["number"], "line": index,
                             "amount": original["lines"][index - 1]["amount"],
                             "issued_on": original["issued_on"]},
                "tree": trees.get(line["key"])})
        return out
    trees = _trees(app, document, basis, adoptions)
    if document.get("refers_to"):
        original_fields = document_entry(app, document["refers_to"])[1]
        domains = {line["domain"] for line in document["lines"]}
        out["late_entries"] = [
            {**item, "entry": _entry_facts(app, item["position"])}
            for item in late_news(app, domains, original_fields["basis_position"], basis)]
    for index, line in enumerate(document["lines"], start=1):
        out["lines"].append({
            "line": index, "description": line["description"], "amount": line["amount"],
            "period": [line["period_start"], line["period_end"]],
            "tree": trees.get(line["key"])})
    return out


def _trees(app: LedgerApplication, document: Mapping[str, Any], basis: int,
           adoptions: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each line's tree, as the charges projection computes it at the document's basis."""
    domains = {line["domain"] for line in document["lines"]}
    charges = Basis(app, basis).charges(domains, explain=True)
    trees = {}
    for line in document["lines"]:
        charge = charges.get(line["key"])
        if charge is None or charge.derivation is None:
            continue
        tree = _enrich(app, charge.derivation, adoptions)
        if tree["amount"] != line["amount"]:
            tree["differs"] = (f"le calcul donne {tree['amount']} €, la ligne porte "
                               f"{line['amount']} € : voir ledger invoice show")
        trees[line["key"]] = tree
    return trees


def explain_domain(app: LedgerApplication, domain: str, as_of: date,
                   at: int | None = None) -> dict[str, Any]:
    """The charges of one domain dated on or before ``as_of``, as known at ``at``, each with
    its tree and, once invoiced, the document that holds it."""
    upto = resolve(app, at)
    domain = canonical_domain(domain)
    known = known_at(app, upto, domain=domain)
    if not known.subscriptions:
        raise LedgerError(f"no domain {domain!r} in this ledger (as known at position {upto})")
    invoiced = {}
    for number_, document in invoicing_state(app, upto).documents.items():
        if document["kind"] == "invoice":
            for line in document["lines"]:
                invoiced.setdefault(line["key"], number_)
    adoptions = _adoptions(app, upto)
    lines = []
    for index, charge in enumerate(charges_as_of(known, as_of, explain=True), start=1):
        lines.append({"line": index, "description": f"{charge.label} — {charge.basis_fr}",
                      "amount": str(charge.amount),
                      "period": [charge.period_start.isoformat(), charge.period_end.isoformat()],
                      "invoiced_by": invoiced.get(charge.key),
                      "tree": _enrich(app, charge.derivation, adoptions)})
    return {"domain": domain, "as_of": as_of.isoformat(), "known_at_position": upto,
            "total": str(sum((Decimal(line["amount"]) for line in lines), Decimal("0.00"))),
            "lines": lines}


# Renderings ------------------------------------------------------------------------------------

def _fact_text(fact: Mapping[str, Any]) -> str:
    entry = fact.get("entry") or {}
    text = f"{fact['fact']} le {french_date(fact['business_date'])}"
    if entry:
        text += (f" (écriture n° {entry['position']}, enregistrée le "
                 f"{french_date(entry['recorded_at'][:10])}")
        if entry.get("actor"):
            text += f" par {entry['actor']}"
        if entry.get("source"):
            text += f", source {entry['source']}"
        text += ")"
    return text


def line_paragraphs(line: Mapping[str, Any]) -> list[str]:
    """The sentences of one line, in French."""
    out = [f"Ligne {line['line']} — {line['description']} : {french_amount(line['amount'])}."]
    if line.get("reverses"):
        reverses = line["reverses"]
        out.append(f"Annule la ligne {reverses['line']} de la facture {reverses['document']} "
                   f"du {french_date(reverses['issued_on'])} "
                   f"({french_amount(reverses['amount'])}).")
    tree = line.get("tree")
    if tree is None:
        return out
    rule = tree["rule"]
    for rule in (rule, *tree.get("also", [])):
        out.append(f"Règle {rule['id']} ({rule['title']}) : « {rule['sentence']} »")
    tariff = tree["tariff"]
    adopted = tariff.get("adopted") or {}
    deliberation = tariff["deliberation"] + (
        f" du {french_date(tariff['deliberation_date'])}" if tariff.get("deliberation_date")
        else "")
    out.append(f"Tarif : {tariff['label']} ({tariff['schedule']}, ligne {tariff['line']}), "
               f"{french_amount(tariff['amount'])} ; {deliberation}"
               + (f", barème enregistré au journal sous le n° {adopted['position']}"
                  if adopted else "") + ".")
    for fact in tree["facts"]:
        out.append(f"Fait : {_fact_text(fact)}.")
    period = tree["period"]
    out.append(f"Période : du {french_date(period['start'])} au {french_date(period['end'])} "
               f"— {period['why']}.")
    out.append(f"Calcul : {tree['computation']['text']}.")
    if tree.get("differs"):
        out.append(f"Attention : {tree['differs']}.")
    return out


def to_text(explanation: Mapping[str, Any], line: int | None = None) -> str:
    """The explanation as a French clerk would write it."""
    out = []
    if "number" in explanation:
        kind = "Avoir" if explanation["kind"] == "credit_note" else "Facture"
        out.append(f"{kind} {explanation['number']} du {french_date(explanation['issued_on'])} — "
                   f"{explanation['buyer']['name']} (SIRET {explanation['buyer']['siret']}) — "
                   f"total {french_amount(explanation['total'])} HT")
        if explanation.get("refers_to"):
            out.append(f"Se rapporte à la facture {explanation['refers_to']} : "
                       f"{explanation.get('cause') or ''}")
        issued = explanation["issued"]
        out.append(f"Émis au journal sous le n° {issued['position']}, le "
                   f"{french_date(issued['recorded_at'][:10])}"
                   + (f" par {issued['actor']}" if issued.get("actor") else "")
                   + f" ; calculé sur le journal arrêté au n° {explanation['basis_position']}.")
    else:
        out.append(f"Domaine {explanation['domain']} — charges au "
                   f"{french_date(explanation['as_of'])}, telles que connues au n° "
                   f"{explanation['known_at_position']} du journal")
    for news in explanation.get("late_entries", []):
        out.append(f"Écriture tardive : {news['what']} ({news['domain']}), écriture n° "
                   f"{news['position']} enregistrée le {french_date(news['recorded_at'][:10])}.")
    for item in explanation["lines"]:
        if line is not None and item["line"] != line:
            continue
        out.append("")
        out.extend(line_paragraphs(item))
        if item.get("invoiced_by"):
            out.append(f"Facturée par {item['invoiced_by']}.")
        elif "invoiced_by" in item:
            out.append("Pas encore facturée.")
    return "\n".join(out) + "\n"


def to_markdown(explanation: Mapping[str, Any], line: int | None = None) -> str:
    text = to_text(explanation, line).splitlines()
    out = [f"# {text[0]}", ""]
    for row in text[1:]:
        if row.startswith("Ligne "):
            out += ["", f"## {row}", ""]
        elif row:
            out.append(f"- {row}")
    return "\n".join(out) + "\n"


def to_html(explanation: Mapping[str, Any], line: int | None = None) -> str:
    text = to_text(explanation, line).splitlines()
    body = [f"<h1>{html.escape(text[0])}</h1>"]
    items: list[str] = []
    for row in text[1:]:
        if row.startswith("Ligne "):
            if items:
                body.append("<ul>" + "".join(items) + "</ul>")
                items = []
            body.append(f"<h2>{html.escape(row)}</h2>")
        elif row:
            items.append(f"<li>{html.escape(row)}</li>")
    if items:
        body.append("<ul>" + "".join(items) + "</ul>")
    title = html.escape(text[0])
    return ("<!DOCTYPE html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title></head><body>{''.join(body)}</body></html>\n")


def to_json(explanation: Mapping[str, Any]) -> bytes:
    return orjson.dumps(explanation, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def etat_liquidatif(explanation: Mapping[str, Any]) -> bytes:
    """The état liquidatif of a document: its bases de la liquidation as a PDF/A-3B, from the
    explanation. Deterministic: its dates are the document's."""
    from fpdf import FPDF, FPDF_VERSION

    from exports.invoice_pdf import FAMILY, FONT_FILES, facturx_xmp, font_dir, issue_moment

    doc = FPDF(format="A4", enforce_compliance="PDFA_3B")
    fonts = font_dir()
    for style in ("", "B"):
        doc.add_font(FAMILY, style, str(fonts / FONT_FILES[style]))
    created = issue_moment({"issued_on": explanation["issued_on"]})
    doc.set_creation_date(created)
    doc.set_lang("fr-FR")
    title = f"État liquidatif {explanation['number']}"
    doc.set_title(title)
    doc.set_author(explanation["seller"])
    meta = {"title": title, "author": explanation["seller"],
            "subject": f"Bases de la liquidation de {explanation['number']}",
            "keywords": "État liquidatif"}
    doc.set_subject(meta["subject"])
    doc.set_keywords(meta["keywords"])
    doc.set_xmp_metadata(facturx_xmp(meta, created=created, producer=f"fpdf2 {FPDF_VERSION}",
                                     facturx=False))
    doc.set_auto_page_break(auto=True, margin=15)
    doc.add_page()
    width = doc.epw
    lines = to_text(explanation).splitlines()
    doc.set_font(FAMILY, "B", 12)
    doc.multi_cell(width, 6, "ÉTAT LIQUIDATIF — bases de la liquidation", new_x="LMARGIN",
                   new_y="NEXT")
    doc.set_font(FAMILY, "", 8.5)
    doc.multi_cell(width, 4.5, lines[0], new_x="LMARGIN", new_y="NEXT")
    for row in lines[1:]:
        if not row:
            doc.ln(1.5)
            continue
        doc.set_font(FAMILY, "B" if row.startswith("Ligne ") else "", 8)
        doc.multi_cell(width, 3.8, row, new_x="LMARGIN", new_y="NEXT")
    doc.ln(2)
    doc.set_font(FAMILY, "", 7)
    doc.multi_cell(width, 3.5, f"Document {explanation['number']}, empreinte SHA-256 "
                               f"{explanation['digest']} ; chaque écriture citée figure au "
                               "journal de l'ordonnateur, vérifiable par une preuve "
                               "d'inclusion (ledger audit prove).", new_x="LMARGIN",
                   new_y="NEXT")
    return bytes(doc.output())
