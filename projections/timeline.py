"""The timeline of a customer or a domain (``ledger history``): what was recorded about it, when,
by whom, at which log position."""

from __future__ import annotations

from datetime import date
from typing import Any

import attrs
import orjson

from eventstore.app import LedgerApplication
from eventstore.log import LogEntry
from ledger.dates import french_date
from ledger.errors import NotFound
from ledger.events import REGISTRY
from ledger.identity import customer_id, subscription_id
from ledger.money import french_amount
from ledger.subscription import Subscription, ascii_spelling, canonical_domain

ORDER_SIGNED = REGISTRY.name_of(Subscription, "OrderSigned")


# Timelines ------------------------------------------------------------------------------------

@attrs.frozen
class Moment:
    position: int
    recorded_at: str
    business_date: str | None
    event: str
    label: str
    actor: str | None
    source: str | None
    summary: str
    #: The same, in French: what a member reads in a dossier (``history.md``).
    label_fr: str = ""
    summary_fr: str = ""

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def history(app: LedgerApplication, subject: str, upto: int | None = None) -> list[Moment]:
    """The timeline of a customer (by key) or of a domain: every entry about it, in log order."""
    recorder = app.recorder
    entries = {e.id: e for e in recorder.select_events(customer_id(subject), upto=upto)}
    if entries:
        for position in recorder.positions_of(f"customer:{subject}", upto):
            entry = recorder.entry(position)
            if entry is None:
                continue
            entries[position] = entry
            if entry.topic == ORDER_SIGNED:  # the domain's whole story belongs to the customer
                entries.update((own.id, own) for own in
                               recorder.select_events(entry.originator_id, upto=upto))
    else:
        domain = canonical_domain(subject)
        entries = {e.id: e for e in recorder.select_events(subscription_id(domain), upto=upto)}
        legacy = ascii_spelling(domain) if not entries else None
        if legacy is not None:  # recorded by an earlier version under its xn-- spelling
            entries = {e.id: e for e in recorder.select_events(subscription_id(legacy),
                                                                upto=upto)}
        if not entries:
            when = "" if upto is None or upto >= app.position() else \
                f" as known at position {upto}"
            raise NotFound(f"no customer with key {subject!r} and no domain {domain!r} in "
                           f"this ledger{when}")
        for position in recorder.positions_of(f"domain:{domain}", upto):
            entry = entries.get(position) or recorder.entry(position)
            if entry is not None:
                entries[position] = entry
    return [_moment(app, entries[p]) for p in sorted(entries)]


def _moment(app: LedgerApplication, entry: LogEntry) -> Moment:
    kind = app.mapper.event_type(entry)
    fields = app.mapper.fields(entry)
    meta = orjson.loads(entry.metadata)
    business = fields.get(kind.business_date) if kind.business_date else None
    if isinstance(fields.get("document"), dict) and "issued_on" in fields["document"]:
        business = fields["document"]["issued_on"]  # an invoice or a credit note
    origin = meta.get("source") or {}
    source = None
    if origin:
        source = str(origin.get("file"))
        if "line" in meta:
            source += f", line {meta['line']}"
        if origin.get("sha256"):
            source += f" (sha256 {str(origin['sha256'])[:12]}…)"
    elif meta.get("via"):
        source = str(meta["via"])
    return Moment(entry.id, entry.recorded_at_text, str(business) if business else None,
                  kind.name, kind.label, meta.get("actor"), source, _summary(kind.name, fields),
                  LABELS_FR.get(kind.name, kind.label), _summary_fr(fields))


def _summary(name: str, fields: dict[str, Any]) -> str:
    document = fields.get("document")
    if isinstance(document, dict) and "total_ht" in document:
        return f"{document['number']}, {document['total_ht']} € HT"
    if isinstance(document, dict):  # a tariff schedule
        return f"schedule {document.get('id')}"
    if "file" in fields:  # a PES file
        return f"{fields['file']['name']}, {len(fields['file']['documents'])} document(s)"
    shown = {k: v for k, v in fields.items() if k not in ("note", "profile")}
    return _shorten(", ".join(f"{k.replace('_', ' ')} {_english(v)}" for k, v in shown.items()
                              if v not in (None, (), [], "")))


def _english(value: Any) -> str:
    """A field's value as the English summary shows it: packs ``10 + 20`` and an address on
    one line, as in French (not Python's ``(10, 20)``, a dict or ``False``)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple | dict):
        return _french(value)
    return str(value)


def source_fr(source: str | None) -> str:
    """Where an entry came from, in French: a file and its line, or the way it came in."""
    return (source or "").replace(", line ", ", ligne ")


def _shorten(text: str, width: int = 120) -> str:
    """``text`` as it is when it fits in ``width`` characters; else cut at the last space
    before it (never inside a word, hyphenated or not) and marked `` …``."""
    if len(text) <= width:
        return text
    cut = text[:width - 2]
    space = cut.rfind(" ")
    return (cut[:space] if space > 0 else cut) + " …"


#: What each entry records, in French: the dossier a member receives, and the web view.
LABELS_FR = {
    "customer.registered": "membre enregistré", "customer.updated": "membre modifié",
    "customer.billing_references_set": "références Chorus Pro",
    "subscription.opened": "domaine ouvert", "subscription.order_signed": "bon de commande reçu",
    "subscription.service_activated": "service activé",
    "subscription.storage_added": "commande de stockage reçue",
    "subscription.termination_requested": "demande de résiliation reçue",
    "receipt.command_applied": "commande appliquée", "tariffs.opened": "barèmes ouverts",
    "tariffs.schedule_adopted": "barème adopté", "operator.opened": "ordonnateur ouvert",
    "operator.registered": "ordonnateur enregistré", "invoicing.opened": "facturation ouverte",
    "invoicing.invoice_issued": "facture émise", "invoicing.credit_note_issued": "avoir émis",
    "invoicing.period_closed": "période clôturée", "treasury.opened": "trésorerie ouverte",
    "treasury.helios_profile_set": "identifiants Hélios enregistrés",
    "treasury.pes_file_recorded": "fichier PES pour le comptable",
    "access.opened": "accès ouverts", "access.token_created": "jeton créé",
    "access.token_revoked": "jeton révoqué", "api.request_answered": "écriture par l'API",
    "audit.opened": "audit ouvert", "audit.key_registered": "clé de signature enregistrée",
    "audit.checkpoint_recorded": "point de contrôle signé",
}

#: The fields of those entries, in French.
FIELDS_FR = {
    "key": "clé", "name": "nom", "siret": "SIRET", "category": "catégorie",
    "population": "population", "kind": "nature", "member": "membre",
    "member_communes": "communes membres", "year": "année", "code_service": "code service",
    "engagement_number": "n° d'engagement", "code_service_required": "code service exigé",
    "engagement_required": "n° d'engagement exigé", "domain": "domaine",
    "order": "bon de commande", "customer": "adhérent", "storage_gb": "stockage (Go)",
    "extra_gb_packs": "stockage supplémentaire (Go)", "signed_on": "signé le",
    "received_on": "reçu le", "ends_on": "fin du contrat", "activated_on": "activé le",
    "command_id": "commande", "command_type": "type de commande", "period": "période",
    "address": "adresse",
}


def _french(value: Any) -> str:
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, date):
        return french_date(value)
    if isinstance(value, list | tuple):
        return " + ".join(str(item) for item in value)
    if isinstance(value, dict):  # an address
        town = " ".join(str(value[k]) for k in ("postcode", "city") if value.get(k))
        return ", ".join(part for part in (value.get("line1"), value.get("line2"), town) if part)
    return str(value)


def _summary_fr(fields: dict[str, Any]) -> str:
    """:func:`_summary` in French."""
    document = fields.get("document")
    if isinstance(document, dict) and "total_ht" in document:
        return f"{document['number']}, {french_amount(document['total_ht'])} HT"
    if isinstance(document, dict):
        return f"barème {document.get('id')}"
    if "file" in fields:
        return f"{fields['file']['name']}, {len(fields['file']['documents'])} document(s)"
    return _shorten(", ".join(f"{FIELDS_FR[k]} {_french(v)}" for k, v in fields.items()
                              if k in FIELDS_FR and v not in (None, (), [], "")), 160)
