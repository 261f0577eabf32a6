"""Provable history: signing keys, checkpoints, proofs, verification, closings, timelines.

What each function proves, and how an auditor checks it without this program,
is in docs/audit.md.
"""

from __future__ import annotations

import base64
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import Any

import attrs
import orjson
from eventsourcing.persistence import IntegrityError

from commands.unit_of_work import record
from commands.verification import Basis, document_entry, rederive
from eventstore.app import LedgerApplication
from eventstore.canonical import leaf_hash
from eventstore.log import LogEntry
from eventstore.merkle import (
    ProofError,
    consistency_proof,
    inclusion_proof,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from eventstore.notes import (
    Checkpoint,
    NoteError,
    Proof,
    Signer,
    Verifier,
    open_checkpoint,
    signed_checkpoint,
)
from eventstore.tree import StoreTree
from eventstore.verify import Failure, LogChecker
from ledger.audit import Audit
from ledger.errors import LedgerError
from ledger.events import REGISTRY
from ledger.identity import audit_id, customer_id, operator_id, subscription_id
from ledger.invoicing import SERIES, Invoicing, closing_totals, digest, period_bounds
from ledger.subscription import Subscription

KEY_VARIABLE = "LEDGER_SIGNING_KEY"
INVOICE_ISSUED = REGISTRY.name_of(Invoicing, "InvoiceIssued")
CREDIT_NOTE_ISSUED = REGISTRY.name_of(Invoicing, "CreditNoteIssued")
PERIOD_CLOSED = REGISTRY.name_of(Invoicing, "PeriodClosed")
KEY_REGISTERED = REGISTRY.name_of(Audit, "KeyRegistered")
CHECKPOINT_RECORDED = REGISTRY.name_of(Audit, "CheckpointRecorded")
ORDER_SIGNED = REGISTRY.name_of(Subscription, "OrderSigned")
#: A billing run with more documents than this is checked with one scan of the log.
WHOLE_BASIS = 50


class AuditError(LedgerError):
    """An audit command that cannot be carried out (no key, no checkpoint, a broken log)."""


# Keys -----------------------------------------------------------------------------------------

def default_origin(app: LedgerApplication, operator: str | None) -> str:
    """The log's name in checkpoints: ``territorial-ledger/<operator's SIRET>``."""
    profile = getattr(app.aggregate(operator_id()), "profile", None) or {}
    return f"territorial-ledger/{profile.get('siret') or operator or 'default'}"


def _audit(app: LedgerApplication) -> Audit:
    return app.aggregate(audit_id()) or Audit()


def keygen(app: LedgerApplication, path: str | Path, origin: str, by: str | None = None) -> Signer:
    """Create an Ed25519 signing key in a new file (mode 600), and record its public key."""
    path = Path(path)
    try:
        signer = Signer.generate(origin)
    except NoteError as error:
        raise AuditError(str(error)) from None
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise AuditError(f"{path} already exists: a signing key is never overwritten; choose "
                         "another file") from None
    except OSError as error:
        raise AuditError(f"cannot create {path}: {error.strerror}") from None
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(signer.text + "\n")
    register_key(app, signer.verifier, by)
    return signer


def register_key(app: LedgerApplication, verifier: Verifier, by: str | None = None) -> bool:
    audit = _audit(app)
    if not audit.register_key(verifier.text):
        return False
    record(app, audit, via="audit key", by=by)
    return True


def load_signer(path: str | Path | None) -> Signer:
    """The signing key from ``path`` (``--key``), else ``$LEDGER_SIGNING_KEY``."""
    chosen = path or os.environ.get(KEY_VARIABLE)
    if not chosen:
        raise AuditError("give the signing key file with --key FILE (or $LEDGER_SIGNING_KEY); "
                         "create one with `ledger audit keygen --out FILE`")
    try:
        text = Path(chosen).read_text(encoding="ascii")
    except FileNotFoundError:
        raise AuditError(f"signing key file {chosen} not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise AuditError(f"cannot read signing key file {chosen}: {error}") from None
    try:
        return Signer.parse(text)
    except NoteError as error:
        raise AuditError(f"{chosen}: {error}") from None


def parse_verifier(text: str) -> Verifier:
    """A verifier key given as text, or as the name of a file holding it."""
    candidate = Path(text)
    if "+" not in text and candidate.is_file():
        text = candidate.read_text(encoding="ascii")
    try:
        return Verifier.parse(text)
    except NoteError as error:
        raise AuditError(f"public key: {error}") from None


def registered_verifiers(app: LedgerApplication) -> list[Verifier]:
    return [Verifier.parse(text) for text in _audit(app).keys]


# Checkpoints ----------------------------------------------------------------------------------

def checkpoint(app: LedgerApplication, signer: Signer, by: str | None = None,
               on_entry: Callable[[], None] | None = None) -> str:
    """Sign the tree of the whole log as it is now, record the checkpoint, return it.

    Before signing, the new entries are checked against their stored leaves and the
    tree is checked against the previous checkpoint: the operator never signs a
    history that does not extend what it signed before.
    """
    audit = _audit(app)
    if signer.verifier.text not in audit.keys:
        raise AuditError(f"the key {signer.verifier.text} is not registered in this ledger: "
                         "create keys with `ledger audit keygen` (which registers them)")
    size = app.position()
    if size == 0:
        raise AuditError("the log is empty: there is nothing to sign yet")
    previous = audit.latest_checkpoint
    old_size = int(previous["size"]) if previous else 0
    for entry in app.scan(old_size + 1, size):
        if entry.computed_leaf() != entry.leaf:
            raise AuditError(f"entry {entry.id} ({entry.topic}) does not match its stored hash: "
                             "nothing was signed — run `ledger audit verify`")
        if on_entry is not None:
            on_entry()
    tree = StoreTree(app.recorder)
    tree.fill(size)
    if previous is not None and base64.b64encode(tree.subtree(0, old_size)).decode() \
            != previous["root"]:
        raise AuditError(f"the first {old_size} entries no longer match the checkpoint signed "
                         "for them: nothing was signed — run `ledger audit verify`")
    root = tree.subtree(0, size)
    note = signed_checkpoint(Checkpoint(signer.name, size, root), signer)
    audit.record_checkpoint(origin=signer.name, size=size,
                            root=base64.b64encode(root).decode(), note=note)
    try:
        record(app, audit, via="audit checkpoint", by=by)
    except IntegrityError:
        raise AuditError("another checkpoint was recorded meanwhile: run the command again") \
            from None
    return note


def latest_checkpoint(app: LedgerApplication) -> str:
    latest = _audit(app).latest_checkpoint
    if latest is None:
        raise AuditError("no checkpoint has been signed yet: run `ledger audit checkpoint`")
    return str(latest["note"])


# Proofs ---------------------------------------------------------------------------------------

def prove_entry(app: LedgerApplication, entry: LogEntry) -> Proof:
    """An inclusion proof of ``entry`` against the latest checkpoint that covers it."""
    audit = _audit(app)
    covering = [c for c in audit.checkpoints if int(c["size"]) >= entry.id]
    if not covering:
        latest = audit.latest_checkpoint
        covered = f"the latest covers {latest['size']}" if latest else "none has been signed"
        raise AuditError(f"no checkpoint covers position {entry.id} yet ({covered}): run "
                         "`ledger audit checkpoint`")
    note = str(covering[-1]["note"])
    try:
        signed, _ = open_checkpoint(note, registered_verifiers(app))
    except NoteError as error:
        raise AuditError(f"the recorded checkpoint does not verify ({error}): run "
                         "`ledger audit verify`") from None
    tree = StoreTree(app.recorder)
    hashes = inclusion_proof(entry.id - 1, signed.size, tree.subtree)
    try:
        verify_inclusion(entry.id - 1, signed.size, entry.computed_leaf(), hashes, signed.root)
    except ProofError:
        raise AuditError(f"the store's tree does not lead to the signed root for position "
                         f"{entry.id}: run `ledger audit verify`") from None
    return Proof(entry.id - 1, tuple(hashes), note, extra=entry.canonical_bytes())


def prove_document(app: LedgerApplication, number: str) -> Proof:
    entry, _ = document_entry(app, number)
    return prove_entry(app, entry)


def proof_json(proof: Proof) -> dict[str, Any]:
    return {"index": proof.index, "leaf": base64.b64encode(proof.extra or b"").decode(),
            "hashes": [base64.b64encode(h).decode() for h in proof.hashes],
            "checkpoint": proof.checkpoint}


def parse_proof(text: str) -> Proof:
    """A proof in the C2SP text form or in the JSON form of ``ledger audit prove --json``."""
    try:
        if text.lstrip().startswith("{"):
            data = orjson.loads(text)
            return Proof(int(data["index"]),
                         tuple(base64.b64decode(h, validate=True) for h in data["hashes"]),
                         str(data["checkpoint"]), base64.b64decode(data["leaf"], validate=True))
        return Proof.parse(text)
    except (NoteError, ValueError, KeyError, TypeError) as error:
        raise AuditError(f"not a proof: {error}") from None


@attrs.frozen
class CheckedProof:
    entry: dict[str, Any]
    checkpoint: Checkpoint


def check_proof(text: str, verifier: Verifier) -> CheckedProof:
    """Check a proof offline: the checkpoint's signature, then the entry's inclusion."""
    proof = parse_proof(text)
    if proof.extra is None:
        raise AuditError("the proof carries no entry (its 'extra' line): nothing to check")
    try:
        signed, _ = open_checkpoint(proof.checkpoint, [verifier])
        verify_inclusion(proof.index, signed.size, leaf_hash(proof.extra), proof.hashes,
                         signed.root)
    except (NoteError, ProofError) as error:
        raise AuditError(f"the proof does not verify: {error}") from None
    entry = orjson.loads(proof.extra)
    if entry.get("position") != proof.index + 1:
        raise AuditError(f"the entry says position {entry.get('position')} but the proof is "
                         f"for index {proof.index}")
    return CheckedProof(entry, signed)


# Verification ---------------------------------------------------------------------------------

@attrs.frozen
class VerifyReport:
    entries: int
    checkpoints: int
    documents: int
    closings: int
    failures: tuple[Failure, ...]
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def first(self) -> Failure | None:
        return min(self.failures) if self.failures else None


@attrs.frozen
class _Document:
    """What the scan keeps of a document: not the document itself (memory would grow with
    every document ever issued), which is read again from its entry when it is derived."""

    position: int
    event: str
    number: str
    kind: str
    issued_on: str
    digest_ok: bool
    basis: int
    refers_to: str | None = None
    total_ht: str = "0.00"
    keys: tuple[str, ...] = ()  # the charge keys of its lines
    customer: str = ""


def verify_ledger(app: LedgerApplication, external: Iterable[str] = (),
                  keys: Iterable[Verifier] = (),
                  on_entry: Callable[[], None] | None = None) -> VerifyReport:
    """Check the whole log, its checkpoints and every issued document. See docs/audit.md."""
    failures: list[Failure] = []
    warnings: list[str] = []
    given_keys = list(keys)
    # Checkpoints recorded in the log are claims until their signature and root are checked.
    recorded = [(e, app.mapper.fields(e)) for e in app.scan(events={CHECKPOINT_RECORDED})]
    published: list[tuple[int, Checkpoint, str]] = []
    for number, note in enumerate(external, start=1):
        verifiers = given_keys or registered_verifiers(app)
        try:
            signed, _ = open_checkpoint(note, verifiers)
        except NoteError as error:
            failures.append(Failure(0, "", f"checkpoint #{number} given: {error}"))
            continue
        published.append((number, signed, note))
    if not given_keys:
        warnings.append("no --key given: signatures were checked with the keys registered in the "
                        "ledger itself; an auditor should give the key the operator published")
    if not published:
        warnings.append("no --checkpoint given: the log was checked against the checkpoints it "
                        "records; give the latest checkpoint the operator published to detect "
                        "entries removed at the end")
    wanted = {int(fields["size"]) for _, fields in recorded} | {c.size for _, c, _ in published}
    checker = LogChecker(wanted)
    keep_leaves = bytearray() if published else None
    documents: list[_Document] = []
    closings: list[tuple[LogEntry, dict[str, Any]]] = []
    keys_at: list[tuple[int, Verifier]] = []
    for entry in app.scan():
        checker.add(entry)
        if keep_leaves is not None:
            keep_leaves += entry.computed_leaf()
        if on_entry is not None:
            on_entry()
        if entry.topic in (INVOICE_ISSUED, CREDIT_NOTE_ISSUED, PERIOD_CLOSED, KEY_REGISTERED):
            try:
                fields = app.mapper.fields(entry)
            except Exception as error:  # noqa: BLE001 - whatever a damaged entry holds
                failures.append(Failure(entry.id, entry.topic, f"cannot be read: {error}"))
                continue
            if entry.topic == PERIOD_CLOSED:
                closings.append((entry, fields))
            elif entry.topic == KEY_REGISTERED:
                try:
                    keys_at.append((entry.id, Verifier.parse(fields["verifier_key"])))
                except NoteError as error:
                    failures.append(Failure(entry.id, entry.topic, f"malformed key: {error}"))
            else:
                document = fields["document"]
                documents.append(_Document(
                    entry.id, entry.topic, document["number"], document.get("kind", "?"),
                    document["issued_on"], digest(document) == fields["digest"],
                    fields["basis_position"], document.get("refers_to"),
                    document.get("total_ht", "0.00"),
                    tuple(line["key"] for line in document["lines"]),
                    document["buyer"]["customer"]))
    failures += checker.failures
    size = checker.size
    good = {0}
    for entry, fields in recorded:
        trusted = given_keys or [v for position, v in keys_at if position < entry.id]
        _check_checkpoint(entry.id, entry.topic, str(fields["note"]), trusted, checker, good,
                          failures)
    for number, signed, _ in published:
        where = f"checkpoint #{number} given"
        if signed.size > size:
            failures.append(Failure(size + 1, "", f"{where} covers {signed.size} entries but the "
                                                  f"log has {size}: entries were removed"))
            continue
        if checker.roots.get(signed.size) != signed.root:
            failures.append(_root_failure(where, signed.size, good, checker))
            continue
        good.add(signed.size)
        if keep_leaves is not None and signed.size > 0:
            leaves = [bytes(keep_leaves[i:i + 32]) for i in range(0, len(keep_leaves), 32)]
            proof = consistency_proof(signed.size, size, lambda lo, hi: root_of(leaves[lo:hi]))
            try:
                verify_consistency(signed.size, size, proof, signed.root, checker.tree.root())
            except ProofError as error:
                failures.append(Failure(signed.size, "", f"{where}: {error}"))
    failures += _check_documents(app, documents)
    failures += _check_closings(closings, documents)
    return VerifyReport(size, len(recorded) + len(published), len(documents), len(closings),
                        tuple(sorted(failures)), tuple(warnings))


def _check_checkpoint(position: int, event: str, note: str, trusted: list[Verifier],
                      checker: LogChecker, good: set[int], failures: list[Failure]) -> None:
    try:
        signed, _ = open_checkpoint(note, trusted)
    except NoteError as error:
        failures.append(Failure(position, event, f"checkpoint signature: {error}"))
        return
    if signed.size >= position:
        failures.append(Failure(position, event, f"a checkpoint recorded at position {position} "
                                                 f"cannot cover {signed.size} entries"))
    elif checker.roots.get(signed.size) != signed.root:
        failures.append(_root_failure(f"the checkpoint recorded at position {position}",
                                      signed.size, good, checker))
    else:
        good.add(signed.size)


def _root_failure(where: str, size: int, good: set[int], checker: LogChecker) -> Failure:
    """A signed root that no longer matches: something changed after the last checkpoint that
    still holds and up to this one's size — at the first entry found changed, if any."""
    start = max((g for g in good if g < size), default=0) + 1
    changed = [f.position for f in checker.failures if start <= f.position <= size]
    return Failure(min(changed, default=start), "",
                   f"{where} signed the first {size} entries, which no longer have its root: "
                   f"something in positions {start}–{size} was changed after it was signed")


def _check_documents(app: LedgerApplication, documents: list[_Document]) -> list[Failure]:
    failures = []
    positions = {d.number: d.position for d in documents}
    counts: dict[tuple[str, int], int] = defaultdict(int)
    last_date: dict[tuple[str, int], str] = {}
    by_basis: dict[int, list[_Document]] = defaultdict(list)
    for item in documents:
        series = (SERIES.get(item.kind, "?"), int(item.issued_on[:4]))
        counts[series] += 1
        expected = f"{series[0]}-{series[1]}-{counts[series]:06d}"
        if item.number != expected:
            failures.append(Failure(item.position, item.event, f"document "
                                    f"{item.number} where {expected} comes next: the "
                                    "series has a gap or a repeat"))
            counts[series] = int(item.number[-6:]) if item.number[-6:].isdigit() \
                else counts[series]
        if item.issued_on < last_date.get(series, ""):
            failures.append(Failure(item.position, item.event, f"{item.number} is "
                                    f"dated {item.issued_on}, before the document ahead "
                                    "of it in its series"))
        last_date[series] = max(item.issued_on, last_date.get(series, ""))
        if not item.digest_ok:
            failures.append(Failure(item.position, item.event, f"{item.number}: the "
                                    "recorded SHA-256 is not the hash of the recorded document"))
        if item.basis >= item.position:
            failures.append(Failure(item.position, item.event, f"{item.number} says "
                                    f"it was derived from position {item.basis}, which is not "
                                    "before it"))
            continue
        by_basis[item.basis].append(item)

    def read(position: int) -> dict[str, Any]:
        fields = app.mapper.fields(app.recorder.entry(position))
        return {"document": fields["document"], "digest": fields["digest"]}

    for position, group in by_basis.items():
        whole = len(group) > WHOLE_BASIS
        basis = Basis(app, position, whole=whole,
                      keys={k for item in group for k in item.keys} if whole else None,
                      customers={item.customer for item in group} if whole else None)
        for item in group:
            recorded = read(item.position)
            originals = {}
            if item.refers_to in positions:
                originals[item.refers_to] = read(positions[item.refers_to])["document"]
            try:
                again = rederive(app, recorded["document"], basis, originals)
            except Exception as error:  # noqa: BLE001 - a damaged history can break anything
                failures.append(Failure(item.position, item.event, f"{item.number}"
                                        f" cannot be derived again: {error or type(error).__name__}"))
                continue
            if digest(again) != recorded["digest"]:
                failures.append(Failure(item.position, item.event, _difference(
                    recorded["document"], again, position)))
    return failures


def _difference(recorded: dict[str, Any], again: dict[str, Any], basis: int) -> str:
    what = [key for key in sorted(recorded) if recorded.get(key) != again.get(key)]
    detail = (f"total {recorded['total_ht']} recorded, {again['total_ht']} derived"
              if "total_ht" in what else ", ".join(what) or "content")
    return (f"{recorded['number']} differs from the document derived again from the log up to "
            f"position {basis} ({detail})")


def _check_closings(closings: list[tuple[LogEntry, dict[str, Any]]],
                    documents: list[_Document]) -> list[Failure]:
    failures = []
    for entry, fields in closings:
        before = [{"issued_on": d.issued_on, "total_ht": d.total_ht, "kind": d.kind}
                  for d in documents if d.position < entry.id]
        expected = closing_totals(before, fields["kind"], fields["period"], fields["start"],
                                  fields["end"])
        wrong = [key for key, value in expected.items() if fields.get(key) != value]
        if wrong:
            failures.append(Failure(entry.id, entry.topic, f"closing of {fields['period']}: "
                                    f"{', '.join(wrong)} do not add up to the documents recorded "
                                    "before it"))
    return failures


# Closings -------------------------------------------------------------------------------------

def close_period(app: LedgerApplication, period: str, signer: Signer, today: date,
                 by: str | None = None) -> tuple[dict[str, Any], str]:
    """Close a month or a year (its totals recorded), then sign a checkpoint covering it."""
    from commands.billing import invoicing_state

    if signer.verifier.text not in _audit(app).keys:
        raise AuditError(f"the key {signer.verifier.text} is not registered in this ledger")
    period_bounds(period)  # a clear error before anything else
    invoicing = invoicing_state(app)
    closing = invoicing.close(period, today)
    try:
        record(app, invoicing, via="audit close", by=by)
    except IntegrityError:
        raise AuditError("documents were issued meanwhile: run the command again") from None
    return closing, checkpoint(app, signer, by)


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

