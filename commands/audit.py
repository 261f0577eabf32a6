"""Provable history: signing keys, checkpoints, proofs and closings (the check of a whole log is
in :mod:`commands.audit_verify`, timelines in :mod:`projections.timeline`).

What each function proves, and how an auditor checks it without this program,
is in docs/audit.md.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import attrs
import orjson
from eventsourcing.persistence import IntegrityError

from commands.unit_of_work import record
from commands.verification import document_entry
from eventstore.app import LedgerApplication
from eventstore.canonical import leaf_hash
from eventstore.log import LogEntry
from eventstore.merkle import (
    ProofError,
    inclusion_proof,
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
from ledger.audit import Audit
from ledger.errors import LedgerError
from ledger.identity import audit_id, operator_id
from ledger.invoicing import period_bounds

KEY_VARIABLE = "LEDGER_SIGNING_KEY"


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
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(signer.text + "\n")
    except OSError as error:  # a full disk: no empty key file left behind
        path.unlink(missing_ok=True)
        raise AuditError(f"cannot write {path}: {error.strerror}") from None
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
        try:
            text = candidate.read_text(encoding="ascii")
        except UnicodeDecodeError:
            raise AuditError(f"public key: {text} is not a key file (a key is one line of "
                             "text, as `ledger audit key` prints it)") from None
    if text.startswith("PRIVATE+KEY+"):
        raise AuditError("public key: this is a private signing key — give its public key, as "
                         "`ledger audit key` prints it (and keep the private key to yourself)")
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
