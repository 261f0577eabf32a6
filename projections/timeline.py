"""The timeline of a customer or a domain (``ledger history``): what was recorded about it, when,
by whom, at which log position."""

from __future__ import annotations

from typing import Any

import attrs
import orjson

from eventstore.app import LedgerApplication
from eventstore.log import LogEntry
from ledger.errors import LedgerError
from ledger.events import REGISTRY
from ledger.identity import customer_id, subscription_id
from ledger.subscription import Subscription

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
        domain = subject.lower()
        entries = {e.id: e for e in recorder.select_events(subscription_id(domain), upto=upto)}
        if not entries:
            raise LedgerError(f"no customer with key {subject!r} and no domain {domain!r} in "
                              "this ledger")
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
                  kind.name, kind.label, meta.get("actor"), source, _summary(kind.name, fields))


def _summary(name: str, fields: dict[str, Any]) -> str:
    document = fields.get("document")
    if isinstance(document, dict) and "total_ht" in document:
        return f"{document['number']}, {document['total_ht']} € HT"
    if isinstance(document, dict):  # a tariff schedule
        return f"schedule {document.get('id')}"
    if "file" in fields:  # a PES file
        return f"{fields['file']['name']}, {len(fields['file']['documents'])} document(s)"
    shown = {k: v for k, v in fields.items() if k not in ("note", "profile", "address")}
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in shown.items()
                     if v not in (None, (), [], ""))[:120]
