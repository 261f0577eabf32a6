"""``ledger audit verify``: every entry, every issued document, every checkpoint and closing of
a log checked in one pass, in memory that does not grow with the log (docs/audit.md)."""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs

from commands.audit import registered_verifiers
from commands.issued_documents import Ascending, IssuedDocument, IssuedDocuments
from commands.verification import Basis, rederive
from eventstore.app import LedgerApplication
from eventstore.log import LogEntry
from eventstore.merkle import (
    ProofError,
    consistency_proof,
    root_of,
    verify_consistency,
)
from eventstore.notes import (
    Checkpoint,
    NoteError,
    Verifier,
    open_checkpoint,
)
from eventstore.verify import Failure, LogChecker
from ledger.audit import Audit
from ledger.events import REGISTRY
from ledger.invoicing import SERIES, Invoicing, closing_totals, digest
from projections.charges import subscription_charges
from projections.history import customers_of, subscriptions_by_customer, tariffs_known_at

INVOICE_ISSUED = REGISTRY.name_of(Invoicing, "InvoiceIssued")
CREDIT_NOTE_ISSUED = REGISTRY.name_of(Invoicing, "CreditNoteIssued")
PERIOD_CLOSED = REGISTRY.name_of(Invoicing, "PeriodClosed")
KEY_REGISTERED = REGISTRY.name_of(Audit, "KeyRegistered")
CHECKPOINT_RECORDED = REGISTRY.name_of(Audit, "CheckpointRecorded")
#: A billing run with more documents than this is checked with one pass over the log's
#: subscriptions, a batch of customers at a time (:func:`whole_basis_batches`).
WHOLE_BASIS = 50
#: Subscriptions read at a time when checking a billing run's documents.
BATCH = 2000


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


def verify_ledger(app: LedgerApplication, external: Iterable[str] = (),
                  keys: Iterable[Verifier] = (),
                  on_entry: Callable[[], None] | None = None) -> VerifyReport:
    """Check the whole log, its checkpoints and every issued document. See docs/audit.md."""
    failures: list[Failure] = []
    warnings: list[str] = []
    given_keys, external = list(keys), list(external)
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
    if not external:
        warnings.append("no --checkpoint given: the log was checked against the checkpoints it "
                        "records; give the latest checkpoint the operator published to detect "
                        "entries removed at the end")
    wanted = {int(fields["size"]) for _, fields in recorded} | {c.size for _, c, _ in published}
    checker = LogChecker(wanted)
    try:
        with IssuedDocuments() as documents:
            return _verify(app, recorded, published, given_keys, checker, documents, failures,
                           warnings, on_entry)
    finally:
        checker.close()


def _verify(app: LedgerApplication, recorded: list[tuple[LogEntry, dict[str, Any]]],
            published: list[tuple[int, Checkpoint, str]], given_keys: list[Verifier],
            checker: LogChecker, documents: IssuedDocuments, failures: list[Failure],
            warnings: list[str], on_entry: Callable[[], None] | None) -> VerifyReport:
    # Leaf hashes are kept (32 bytes each) only to prove a given checkpoint consistent.
    keep_leaves = bytearray() if published else None
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
                documents.add_document(IssuedDocument(
                    entry.id, entry.topic, document["number"], document.get("kind", "?"),
                    document["issued_on"], digest(document) == fields["digest"],
                    fields["basis_position"], document.get("refers_to"),
                    document.get("total_ht", "0.00"), document["buyer"]["customer"]))
    checker.finish()
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
            def subtree(lo: int, hi: int, leaves: bytearray = keep_leaves) -> bytes:
                return root_of(bytes(leaves[i * 32:i * 32 + 32]) for i in range(lo, hi))

            proof = consistency_proof(signed.size, size, subtree)
            try:
                verify_consistency(signed.size, size, proof, signed.root, checker.tree.root())
            except ProofError as error:
                failures.append(Failure(signed.size, "", f"{where}: {error}"))
    failures += _check_documents(app, documents)
    failures += _check_closings(closings, documents)
    # A published checkpoint that the log also records is one checkpoint, checked twice (its
    # copy may carry other signature lines — a witness's cosignature: the tree it signs counts).
    distinct = {(str(fields["origin"]), int(fields["size"]), str(fields["root"]))
                for _, fields in recorded} | \
        {(signed.origin, signed.size, base64.b64encode(signed.root).decode())
         for _, signed, _ in published}
    return VerifyReport(size, len(distinct), documents.count(), len(closings),
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


def _check_documents(app: LedgerApplication, documents: IssuedDocuments) -> list[Failure]:
    failures = []
    counts: dict[tuple[str, int], int] = defaultdict(int)
    last_date: dict[tuple[str, int], str] = {}
    for item in documents.in_order():
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
        if item.basis >= item.position:  # left out of the re-derivation below
            failures.append(Failure(item.position, item.event, f"{item.number} says "
                                    f"it was derived from position {item.basis}, which is not "
                                    "before it"))

    for position, count in documents.bases():
        batches = whole_basis_batches(app, position, documents) if count > WHOLE_BASIS \
            else [(Basis(app, position), documents.of_basis(position))]
        for basis, items in batches:
            failures += _rederived(app, basis, items, documents.position_of)
    return failures


def whole_basis_batches(app: LedgerApplication, position: int, documents: IssuedDocuments
                        ) -> Iterator[tuple[Basis, list[IssuedDocument]]]:
    """The documents of one billing run (derived from ``position``) with what they are derived
    from, a batch of customers at a time: their subscriptions read together, their charges
    derived, the batch let go before the next — memory follows a batch, not the run."""
    wanted = Ascending(documents.customers_of_basis(position))
    schedules = tariffs_known_at(app, position)
    for customers, subscriptions in subscriptions_by_customer(app, position, batch=BATCH,
                                                             only=wanted):
        charges = {charge.key: charge for subscription in subscriptions
                   for charge in subscription_charges(subscription, schedules)
                   if charge.customer in customers}
        yield (Basis.of_batch(app, position, charges, customers_of(app, customers, position)),
               documents.of_basis(position, customers))
    leftover = wanted.never_asked()
    if leftover:  # customers who signed nothing known at that position
        yield Basis(app, position), documents.of_basis(position, leftover)


def _rederived(app: LedgerApplication, basis: Basis, items: list[IssuedDocument],
               position_of: Callable[[str], int | None]) -> list[Failure]:
    """Each document derived again from ``basis`` and compared with the one recorded (the
    documents, and those credit notes refer to, read from the log in one go)."""
    failures = []
    originals = {item.refers_to: position_of(item.refers_to) for item in items
                 if item.refers_to is not None}
    entries = app.recorder.entries(sorted({item.position for item in items}
                                          | {p for p in originals.values() if p is not None}))

    def read(position: int) -> dict[str, Any]:
        fields = app.mapper.fields(entries[position])
        return {"document": fields["document"], "digest": fields["digest"]}

    for item in items:
        recorded = read(item.position)
        original = originals.get(item.refers_to) if item.refers_to is not None else None
        refers = {item.refers_to: read(original)["document"]} if original is not None else {}
        try:
            again = rederive(app, recorded["document"], basis, refers)
        except Exception as error:  # noqa: BLE001 - a damaged history can break anything
            failures.append(Failure(item.position, item.event, f"{item.number}"
                                    f" cannot be derived again: {error or type(error).__name__}"))
            continue
        if digest(again) != recorded["digest"]:
            failures.append(Failure(item.position, item.event, _difference(
                recorded["document"], again, basis.position)))
    return failures


def _difference(recorded: dict[str, Any], again: dict[str, Any], basis: int) -> str:
    what = [key for key in sorted(recorded) if recorded.get(key) != again.get(key)]
    detail = (f"total {recorded['total_ht']} recorded, {again['total_ht']} derived"
              if "total_ht" in what else ", ".join(what) or "content")
    return (f"{recorded['number']} differs from the document derived again from the log up to "
            f"position {basis} ({detail})")


def _check_closings(closings: list[tuple[LogEntry, dict[str, Any]]],
                    documents: IssuedDocuments) -> list[Failure]:
    failures = []
    for entry, fields in closings:
        expected = closing_totals(documents.totals_before(entry.id), fields["kind"],
                                  fields["period"], fields["start"], fields["end"])
        wrong = [key for key, value in expected.items() if fields.get(key) != value]
        if wrong:
            failures.append(Failure(entry.id, entry.topic, f"closing of {fields['period']}: "
                                    f"{', '.join(wrong)} do not add up to the documents recorded "
                                    "before it"))
    return failures
