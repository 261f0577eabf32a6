"""Provable history on both stores: every kind of tampering is caught at the right position."""

from __future__ import annotations

import os
from datetime import date, timedelta

import orjson
import pytest
from freezegun import freeze_time

from cli.main import main
from commands.audit import (
    AuditError,
    check_proof,
    checkpoint,
    close_period,
    keygen,
    load_signer,
    prove_document,
    prove_entry,
)
from commands.audit_verify import verify_ledger
from commands.billing import bill, invoicing_state
from commands.verification import verify
from eventstore.canonical import canonical_json
from eventstore.notes import Proof
from ledger.errors import LedgerError
from projections.timeline import history
from tests.conftest import activate, add_storage, register, sign, terminate
from tests.tamper import Raw, recomputed_leaf
from tests.test_invoicing import OPERATOR

D = date.fromisoformat


class Audited:
    """A ledger with invoices, a signing key and two checkpoints the operator published."""

    def __init__(self, app, apply, backend, store, tmp_path):
        self.app = app
        apply(OPERATOR, register(), sign(), activate(), add_storage(),
              register("plouay", population=3000), sign("plouay.fr", "plouay", order="BC-26-002"),
              activate("plouay.fr"))
        bill(app, D("2027-06-30"), D("2027-07-01"), by="Mme Riou")
        self.key = tmp_path / "operator.key"
        self.signer = keygen(app, self.key, "test.example/ledger")
        self.first = checkpoint(app, self.signer)
        self.first_size = app.position() - 1
        apply(terminate(on="2027-08-20"))
        bill(app, D("2027-12-31"), D("2028-01-05"))
        self.published = checkpoint(app, self.signer)
        self.size = app.position() - 1
        operator = os.environ.get("LEDGER_OPERATOR")
        self.raw = Raw(backend, store, operator)

    def verify(self, *published: str):
        return verify_ledger(self.app, published or (self.published,),
                             [self.signer.verifier])

    def detects(self, position: int, *published: str, reason: str = "") -> None:
        report = self.verify(*published)
        assert not report.ok
        assert report.first.position == position, report.failures
        there = [f.reason for f in report.failures if f.position == position]
        assert any(reason in r for r in there), there


@pytest.fixture
def audited(app, apply, backend, store, tmp_path):
    return Audited(app, apply, backend, store, tmp_path)


# An untouched ledger -----------------------------------------------------------------------

def test_an_untouched_ledger_verifies(audited):
    report = audited.verify(audited.first, audited.published)
    assert report.ok, report.failures
    assert report.entries == audited.app.position()
    assert report.documents == len(invoicing_state(audited.app).documents) > 4
    # Two recorded in the log, the same two given: two checkpoints, each checked twice.
    assert report.checkpoints == 2
    assert audited.verify(audited.first).checkpoints == 2
    # A published copy that a witness cosigned is still the same checkpoint.
    import base64

    witness = "\u2014 witness.example/w " + base64.b64encode(b"\x00" * 68).decode() + "\n"
    cosigned = audited.published + witness
    assert cosigned != audited.published
    report = audited.verify(cosigned)
    assert report.ok, report.failures
    assert report.checkpoints == 2


def test_every_recorded_checkpoint_is_in_the_log_it_signs(audited):
    for note, size in ((audited.first, audited.first_size), (audited.published, audited.size)):
        assert note.split("\n")[:2] == ["test.example/ledger", str(size)]


# Each tampering class ------------------------------------------------------------------------

def test_edited_payload_with_triggers_dropped_and_restored(audited):
    signed = audited.raw.find("subscription.order_signed")
    data = orjson.loads(signed["data"])
    audited.raw.update(signed["position"], data=canonical_json({**data, "storage_gb": 200}))
    audited.detects(signed["position"], reason="stored leaf hash is not the hash of its content")


def test_edited_payload_with_every_hash_recomputed_is_caught_by_the_signed_checkpoint(audited):
    signed = audited.raw.find("subscription.order_signed")
    row = {**signed, "data": canonical_json({**orjson.loads(signed["data"]), "storage_gb": 200})}
    audited.raw.update(signed["position"], data=row["data"], leaf=recomputed_leaf(row))
    report = audited.verify()
    assert not report.ok
    reasons = " ".join(f.reason for f in report.failures)
    assert "which no longer have its root" in reasons
    # The checkpoint narrows it to the range it covers; the invoice derived from that order no
    # longer matches what was issued, at its own position.
    assert report.first.position <= signed["position"]
    assert any("differs from the document derived again" in f.reason for f in report.failures)


def test_insert_or_replace_of_an_entry(audited):
    target = audited.raw.find("subscription.service_activated")
    data = orjson.loads(target["data"])
    audited.raw.replace({**target, "data": canonical_json({**data, "activated_on":
                                                           "2026-09-01"})})
    audited.detects(target["position"], reason="stored leaf hash")


@pytest.mark.parametrize("which", ["first", "middle"])
def test_a_deleted_entry(audited, which):
    position = 1 if which == "first" else audited.raw.find("subscription.storage_added")["position"]
    audited.raw.delete(position)
    audited.detects(position, reason="missing")


def test_the_last_entry_deleted_is_caught_by_the_checkpoint_that_covered_it(audited):
    last = audited.size  # the last entry the published checkpoint covers (an invoice)
    # The forger removes the two checkpoint entries too, so that the log itself says nothing.
    for position in range(audited.app.position(), last - 1, -1):
        audited.raw.delete(position)
    audited.detects(last, reason="entries were removed")


def test_the_last_invoice_deleted_cannot_be_issued_again_unnoticed(audited, apply):
    issued = [r for r in audited.raw.rows() if r["event"] == "invoicing.invoice_issued"]
    last = issued[-1]
    audited.raw.delete(audited.app.position())  # the checkpoint entry after it
    audited.raw.delete(last["position"])
    apply(register("lorient"))  # life goes on
    audited.detects(last["position"])


def test_two_swapped_entries(audited):
    first = audited.raw.find("subscription.service_activated")["position"]
    second = audited.raw.find("subscription.storage_added")["position"]
    audited.raw.swap(first, second)
    audited.detects(min(first, second), reason="stored leaf hash")


def test_two_entries_of_one_aggregate_swapped_with_their_hashes_recomputed(audited):
    signed = audited.raw.find("subscription.order_signed")
    later = next(r for r in audited.raw.rows() if r["aggregate_id"] == signed["aggregate_id"]
                 and r["aggregate_version"] == signed["aggregate_version"] + 1)
    audited.raw.swap(signed["position"], later["position"])
    for position in (signed["position"], later["position"]):
        audited.raw.update(position, leaf=recomputed_leaf(audited.raw.row(position)))
    audited.detects(signed["position"], reason=f"version {later['aggregate_version']} where "
                                               f"version {signed['aggregate_version']} was "
                                               "expected next")


def test_a_backdated_entry(audited):
    target = audited.raw.find("subscription.termination_requested")
    earlier = target["recorded_at"] - timedelta(days=400)
    audited.raw.update(target["position"], recorded_at=earlier)
    audited.detects(target["position"])
    report = audited.verify()
    assert any("recorded times never go back" in f.reason for f in report.failures)


def test_a_backdated_entry_even_with_its_hash_recomputed(audited):
    target = audited.raw.find("subscription.termination_requested")
    earlier = {**target, "recorded_at": target["recorded_at"] - timedelta(days=400)}
    audited.raw.update(target["position"], recorded_at=earlier["recorded_at"],
                       leaf=recomputed_leaf(earlier))
    audited.detects(target["position"], reason="recorded times never go back")


def test_an_entry_inserted_in_the_middle_shifts_the_signed_tree(audited):
    rows = audited.raw.rows()
    middle = audited.raw.find("subscription.storage_added")["position"]
    forged = {**rows[middle - 1], "aggregate_version": 99}
    for row in reversed(rows[middle - 1:]):  # make room: every later entry moves down one
        audited.raw.update(row["position"], position=row["position"] + 1)
    audited.raw.insert({**forged, "leaf": recomputed_leaf(forged)})
    report = audited.verify()
    assert not report.ok
    assert report.first.position <= middle


def test_a_raw_insert_by_the_writer_is_refused_or_caught(audited, backend):
    last = audited.raw.rows()[-1]
    forged = {**last, "position": last["position"] + 1, "aggregate_version": 1,
              "aggregate_id": __import__("uuid").uuid4(),
              "recorded_at": last["recorded_at"] - timedelta(days=30),
              "event": "subscription.termination_requested",
              "data": canonical_json({"received_on": "2026-12-01"})}
    forged["leaf"] = recomputed_leaf(forged)
    if backend == "postgres":
        import psycopg

        from eventstore.config import store_config

        # The writer role may only append through ledger_append: a raw row is refused.
        config = store_config(audited.raw.store)
        with psycopg.connect(audited.raw.store) as conn:
            conn.execute(f"SET search_path TO {config.schema}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("INSERT INTO ledger_log VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                             [forged[k] for k in ("position", "recorded_at", "aggregate_id",
                                                  "aggregate_version", "event", "event_version",
                                                  "data", "metadata", "leaf")])
        assert audited.verify().ok
        return
    audited.raw.insert(forged)  # SQLite has no roles: whoever writes the file can, once
    audited.detects(forged["position"], reason="recorded times never go back")


def test_a_forged_invoice_with_its_document_hash_recomputed(audited):
    from ledger.invoicing import digest

    target = audited.raw.find("invoicing.invoice_issued", 1)
    data = orjson.loads(target["data"])
    document = data["document"]
    document["lines"][0]["amount"] = document["total_ht"] = document["total_ttc"] = "1000.00"
    document["buyer"]["siret"] = "21350238800019"
    forged = {**target, "data": canonical_json({**data, "document": document,
                                                "digest": digest(document)})}
    audited.raw.update(target["position"], data=forged["data"], leaf=recomputed_leaf(forged))
    report = audited.verify()
    assert not report.ok
    invoice = [f for f in report.failures if f.position == target["position"]]
    assert invoice and "differs from the document derived again" in invoice[0].reason
    assert not verify(audited.app, document["number"]).identical


@pytest.fixture
def in_batches(monkeypatch):
    """Every billing run checked as a large one is: a batch of customers at a time (one
    subscription per batch here, so that the two customers come in batches of their own)."""
    from commands import audit_verify

    batches = []
    real = audit_verify.whole_basis_batches

    def counting(*args):
        for basis, items in real(*args):
            batches.append([item.number for item in items])
            yield basis, items
    monkeypatch.setattr(audit_verify, "WHOLE_BASIS", 0)
    monkeypatch.setattr(audit_verify, "BATCH", 1)
    monkeypatch.setattr(audit_verify, "whole_basis_batches", counting)
    return batches


def test_an_untouched_ledger_verifies_a_batch_of_customers_at_a_time(audited, in_batches):
    report = audited.verify(audited.first, audited.published)
    assert report.ok, report.failures
    checked = [number for batch in in_batches for number in batch]
    assert sorted(checked) == sorted(invoicing_state(audited.app).documents)
    assert len(in_batches) == 2, in_batches  # one run, two customers: a batch each


def test_a_forged_invoice_is_caught_when_checked_in_batches(audited, in_batches):
    target = audited.raw.find("invoicing.invoice_issued", 1)
    data = orjson.loads(target["data"])
    document = data["document"]
    document["lines"][0]["amount"] = document["total_ht"] = document["total_ttc"] = "1000.00"
    from ledger.invoicing import digest

    forged = {**target, "data": canonical_json({**data, "document": document,
                                                "digest": digest(document)})}
    audited.raw.update(target["position"], data=forged["data"], leaf=recomputed_leaf(forged))
    report = audited.verify()
    invoice = [f for f in report.failures if f.position == target["position"]]
    assert invoice and "differs from the document derived again" in invoice[0].reason
    assert in_batches


# Proofs -------------------------------------------------------------------------------------

def test_a_proof_of_an_invoice_checks_offline_with_the_public_key_alone(audited):
    number = next(iter(invoicing_state(audited.app).documents))
    proof = prove_document(audited.app, number)
    checked = check_proof(proof.text, audited.signer.verifier)
    assert checked.entry["data"]["document"]["number"] == number
    assert checked.checkpoint.size == audited.size
    forged = proof.text.replace(proof.text.split("\n")[1],
                                "extra " + __import__("base64").b64encode(
                                    proof.extra.replace(b'"lanvenec"', b'"plouay"')).decode())
    with pytest.raises(AuditError, match="does not verify"):
        check_proof(forged, audited.signer.verifier)
    other = __import__("eventstore.notes", fromlist=["Signer"]).Signer.generate(
        "test.example/ledger")
    with pytest.raises(AuditError, match="not signed by a trusted key"):
        check_proof(proof.text, other.verifier)


def test_every_entry_covered_by_a_checkpoint_has_a_proof(audited):
    for position in (1, audited.first_size, audited.size):
        proof = prove_entry(audited.app, audited.app.recorder.entry(position))
        assert check_proof(proof.text, audited.signer.verifier).entry["position"] == position
    with pytest.raises(AuditError, match="no checkpoint covers position"):
        prove_entry(audited.app, audited.app.recorder.entry(audited.app.position()))


def test_proof_in_json_form(audited, capsys, store):
    number = next(iter(invoicing_state(audited.app).documents))
    assert main(["--store", store, "audit", "prove", number, "--json"]) == 0
    data = orjson.loads(capsys.readouterr().out)
    assert set(data) == {"index", "leaf", "hashes", "checkpoint"}
    proof = Proof.parse(prove_document(audited.app, number).text)
    assert data["index"] == proof.index and data["checkpoint"] == proof.checkpoint
    assert check_proof(orjson.dumps(data).decode(), audited.signer.verifier)


# Checkpoints --------------------------------------------------------------------------------

def test_a_checkpoint_is_refused_over_a_changed_history(audited):
    target = audited.raw.find("subscription.order_signed")
    row = {**target, "data": canonical_json({**orjson.loads(target["data"]), "order": "X"})}
    audited.raw.update(target["position"], data=row["data"], leaf=recomputed_leaf(row))
    with pytest.raises(AuditError, match="no longer match the checkpoint"):
        checkpoint(audited.app, audited.signer)


def test_a_checkpoint_needs_a_registered_key(audited, tmp_path):
    from eventstore.notes import Signer

    stranger = tmp_path / "stranger.key"
    stranger.write_text(Signer.generate("test.example/ledger").text + "\n")
    with pytest.raises(AuditError, match="is not registered"):
        checkpoint(audited.app, load_signer(stranger))


def test_keygen_never_overwrites_a_key(audited):
    with pytest.raises(AuditError, match="already exists"):
        keygen(audited.app, audited.key, "test.example/ledger")


def test_a_forged_checkpoint_entry_is_caught(audited):
    from eventstore.notes import Checkpoint, Signer, signed_checkpoint

    forger = Signer.generate("test.example/ledger")
    target = audited.raw.find("audit.checkpoint_recorded")
    data = orjson.loads(target["data"])
    note = signed_checkpoint(Checkpoint("test.example/ledger", data["size"], b"\0" * 32), forger)
    forged = {**target, "data": canonical_json({**data, "note": note})}
    audited.raw.update(target["position"], data=forged["data"], leaf=recomputed_leaf(forged))
    report = verify_ledger(audited.app)
    assert not report.ok
    assert any("checkpoint signature" in f.reason for f in report.failures)


# Closings -----------------------------------------------------------------------------------

def test_closing_a_month_records_its_totals_and_then_refuses_documents_dated_in_it(audited):
    closing, note = close_period(audited.app, "2027-07", audited.signer, D("2027-08-15"))
    documents = [d for d in invoicing_state(audited.app).documents.values()
                 if d["issued_on"].startswith("2027-07")]
    assert closing["documents"] == len(documents) > 0
    assert closing["invoiced"] == f"{sum(float(d['total_ht']) for d in documents):.2f}"
    assert note.split("\n")[1] == str(audited.app.position() - 1)
    with pytest.raises(LedgerError, match="already closed"):
        close_period(audited.app, "2027-07", audited.signer, D("2027-08-15"))
    with pytest.raises(LedgerError, match="closed through 2027-07-31"):
        bill(audited.app, D("2027-12-31"), D("2027-07-20"))
    with pytest.raises(LedgerError, match="has not ended"):
        close_period(audited.app, "2028-02", audited.signer, D("2028-02-10"))
    assert verify_ledger(audited.app, [note], [audited.signer.verifier]).ok


def test_periods_are_closed_in_order_and_a_year_after_its_months(audited):
    """A year is closed once its months are; a year that ended before a later closing (a
    period skipped, a mistyped year) is refused, as a month already covered is."""
    for month in range(1, 13):
        close_period(audited.app, f"2027-{month:02d}", audited.signer, D("2028-01-02"))
    closing, _ = close_period(audited.app, "2027", audited.signer, D("2028-01-02"))
    assert closing["kind"] == "year" and closing["end"] == D("2027-12-31")
    before = audited.app.position()
    for year in ("2026", "1900"):
        with pytest.raises(LedgerError, match=f"closed through 2027-12-31, after the end of "
                                              f"year {year}: periods are closed in order"):
            close_period(audited.app, year, audited.signer, D("2028-01-02"))
    with pytest.raises(LedgerError, match="which includes month 2026-11"):
        close_period(audited.app, "2026-11", audited.signer, D("2028-01-02"))
    assert audited.app.position() == before


def test_a_closing_whose_totals_were_changed_is_caught(audited):
    close_period(audited.app, "2027", audited.signer, D("2028-01-02"))
    target = audited.raw.find("invoicing.period_closed")
    data = orjson.loads(target["data"])
    forged = {**target, "data": canonical_json({**data, "invoiced": "1.00", "net": "1.00"})}
    audited.raw.update(target["position"], data=forged["data"], leaf=recomputed_leaf(forged))
    report = verify_ledger(audited.app)
    assert any(f.position == target["position"] and "do not add up" in f.reason
               for f in report.failures)


# Who and from where -------------------------------------------------------------------------

def test_history_of_a_customer_shows_positions_actors_and_business_dates(audited):
    moments = history(audited.app, "lanvenec")
    assert [m.position for m in moments] == sorted(m.position for m in moments)
    events = [m.event for m in moments]
    assert events[0] == "customer.registered"
    assert {"subscription.order_signed", "subscription.termination_requested",
            "invoicing.invoice_issued"} <= set(events)
    signed = next(m for m in moments if m.event == "subscription.order_signed")
    assert signed.business_date == "2026-03-17" and signed.source.startswith("test.jsonl")
    issued = next(m for m in moments if m.event == "invoicing.invoice_issued")
    assert issued.actor == "Mme Riou" and issued.business_date == "2027-07-01"
    by_domain = history(audited.app, "plouay.fr")
    assert {m.event for m in by_domain} >= {"subscription.order_signed",
                                           "invoicing.invoice_issued"}
    with pytest.raises(LedgerError, match="no customer with key 'nobody' and no domain "
                                          "'nobody' in this ledger$"):
        history(audited.app, "nobody")
    with pytest.raises(LedgerError, match="no customer with key 'lanvenec' and no domain "
                                          "'lanvenec' in this ledger as known at position 1$"):
        history(audited.app, "lanvenec", upto=1)


# Regressions of "known at" -----------------------------------------------------------------

def test_a_termination_recorded_after_an_invoice_at_the_same_time_leaves_it_identical(
        app, apply, backend):
    with freeze_time("2030-03-05T09:00:00Z"):
        apply(OPERATOR, register(), sign(signed_on="2026-02-10", received_on="2026-02-16"),
              activate(on="2026-03-02"))
        (invoice, *_) = bill(app, D("2027-03-01"), D("2027-03-05")).issued[-1:]
        apply(terminate(on="2027-01-31"))
    rows = list(app.scan())
    if backend == "sqlite":  # the very same recorded time for the invoice and the letter
        assert rows[-1].recorded_at == next(
            r for r in rows if r.topic == "invoicing.invoice_issued").recorded_at
    check = verify(app, invoice["number"])
    assert check.identical and check.document["total_ht"] == "60.00"


def test_an_import_committed_after_a_billing_run_is_not_known_to_it(app, apply, backend):
    from commands.handlers import handle
    from commands.messages import parse_line
    from commands.unit_of_work import UnitOfWork
    from projections.charges import charges_as_of
    from projections.history import known_at

    apply(OPERATOR, register(), sign(signed_on="2026-02-10", received_on="2026-02-16"),
          activate(on="2026-03-02"))
    # 10:00 — a clerk's import is applied in memory (events created) …
    with freeze_time("2031-01-10T10:00:00Z"):
        uow = UnitOfWork(app)
        handle(parse_line(orjson.dumps(terminate(on="2027-01-31")).decode()).command, uow)
    # 10:05 — … while a billing run issues the 1 March 2027 renewal …
    with freeze_time("2031-01-10T10:05:00Z"):
        (invoice,) = [d for d in bill(app, D("2027-03-01"), D("2027-03-05")).issued
                      if d["lines"][0]["period_start"] == "2027-03-01"]
        billed_at = app.position()
    # 10:10 — … and the import is committed.
    with freeze_time("2031-01-10T10:10:00Z"):
        app.save(*uow.changed())
    letter = app.recorder.entry(app.position())
    assert letter.id > billed_at
    if backend == "sqlite":
        from datetime import UTC, datetime

        assert letter.recorded_at == datetime(2031, 1, 10, 10, 10, tzinfo=UTC)
        at_1005 = datetime(2031, 1, 10, 10, 5, tzinfo=UTC)
        renewal = [c for c in charges_as_of(known_at(app, at_1005), D("2027-03-01"))
                   if c.charge_date == D("2027-03-01")]
        assert [str(c.amount) for c in renewal] == [invoice["lines"][0]["amount"]]
    renewal = [c for c in charges_as_of(known_at(app, billed_at), D("2027-03-01"))
               if c.charge_date == D("2027-03-01")]
    assert [str(c.amount) for c in renewal] == ["60.00"]
    assert verify(app, invoice["number"]).identical


# The command line ---------------------------------------------------------------------------

def test_verify_on_the_command_line_exits_4_naming_the_first_failure(audited, store, tmp_path,
                                                                      capsys):
    published = tmp_path / "published.txt"
    published.write_text(audited.published)
    key = audited.signer.verifier.text
    assert main(["--store", store, "audit", "verify", "--checkpoint", str(published),
                 "--key", key]) == 0
    assert "Verified:" in capsys.readouterr().out
    target = audited.raw.find("subscription.storage_added")
    audited.raw.update(target["position"], event_version=2)
    assert main(["--store", store, "audit", "verify", "--checkpoint", str(published),
                 "--key", key, "--json"]) == 4
    report = orjson.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["first_failure"]["position"] == target["position"]
    assert report["first_failure"]["event"] == "subscription.storage_added"


def test_keygen_checkpoint_prove_and_check_proof_on_the_command_line(app, apply, store,
                                                                     tmp_path, capsys):
    apply(OPERATOR, register(), sign(), activate())
    bill(app, D("2026-12-31"), D("2027-01-05"))
    key = tmp_path / "k.key"
    assert main(["--store", store, "audit", "keygen", "--out", str(key)]) == 0
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    public = capsys.readouterr().out.split("publish it: ")[1].strip()
    assert public.startswith("territorial-ledger/")
    assert main(["--store", store, "audit", "key"]) == 0
    assert capsys.readouterr().out.strip() == public
    assert main(["--store", store, "audit", "checkpoint", "--key", str(key)]) == 0
    assert capsys.readouterr().out.split("\n")[1] == str(app.position() - 1)
    proof = tmp_path / "F.tlog-proof"
    assert main(["--store", store, "audit", "prove", "F-2027-000001", "--out", str(proof)]) == 0
    capsys.readouterr()
    assert main(["audit", "check-proof", str(proof), "--key", public]) == 0
    assert "Proof verified: entry" in capsys.readouterr().out
    proof.write_text(proof.read_text().replace("index ", "index 1", 1))
    assert main(["audit", "check-proof", str(proof), "--key", public]) == 4
    assert "PROOF REJECTED" in capsys.readouterr().err
    assert main(["--store", store, "audit", "checkpoint"]) == 1
    assert "give the signing key file with --key" in capsys.readouterr().err


def test_what_an_auditor_or_the_operator_gets_wrong_is_an_error_and_records_nothing(
        audited, store, tmp_path, capsys):
    def run(*argv):
        code = main(["--store", store, "audit", *argv])
        return code, capsys.readouterr().err

    size = audited.app.position()
    # A checkpoint that cannot be written is not recorded either.
    code, err = run("checkpoint", "--key", str(audited.key), "--out", str(tmp_path))
    assert code == 1 and "it is a folder" in err and audited.app.position() == size
    code, err = run("checkpoint", "--key", str(audited.key), "--out",
                    str(tmp_path / "missing" / "cp.txt"))
    assert code == 1 and audited.app.position() == size
    # A key name other tools could not read: refused before any file is made.
    code, err = run("keygen", "--out", str(tmp_path / "g.key"), "--origin", "é/ü")
    assert code == 1 and "printable ASCII" in err and not (tmp_path / "g.key").exists()
    assert audited.app.position() == size
    # A file that is not a checkpoint is a wrong argument (1), not a failed verification (4).
    for text in ("", audited.published[:40]):
        (tmp_path / "cp.txt").write_text(text)
        code, err = run("verify", "--checkpoint", str(tmp_path / "cp.txt"))
        assert code == 1 and "is not a checkpoint" in err, err
    code, err = run("verify", "--key", str(audited.key))
    assert code == 1 and "this is a private signing key" in err
    code, err = run("prove", "--position", str(2 ** 63))
    assert code == 1 and f"no entry at position {2 ** 63}" in err


def test_the_standalone_verifier_checks_a_proof_without_the_ledger(audited, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "scripts" / "verify_proof.py"
    number = next(iter(invoicing_state(audited.app).documents))
    proof = tmp_path / "proof.tlog-proof"
    proof.write_text(prove_document(audited.app, number).text)
    key = audited.signer.verifier.text

    def run(path):
        # -I: isolated mode, no current folder on the path — nothing of the ledger is importable.
        return subprocess.run([sys.executable, "-I", str(script), str(path), key],
                              capture_output=True, text=True, cwd=tmp_path, timeout=60)

    done = run(proof)
    assert done.returncode == 0, done.stderr
    assert f"{number} of " in done.stdout
    forged = tmp_path / "forged.tlog-proof"
    forged.write_text(proof.read_text().replace("\nindex ", "\nindex 1", 1))
    assert run(forged).returncode == 4
    # An index written otherwise than tlog-proof writes it is refused, as check-proof does.
    padded = tmp_path / "padded.tlog-proof"
    index = next(line for line in proof.read_text().split("\n") if line.startswith("index "))
    padded.write_text(proof.read_text().replace(f"\n{index}\n", f"\nindex 0{index[6:]}\n", 1))
    assert run(padded).returncode == 4 and "is not an 'index N' line" in run(padded).stderr
    # A user's mistakes are said in one line, never with a traceback.
    missing = run(tmp_path / "missing.tlog-proof")
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    garbled = tmp_path / "garbled.tlog-proof"
    garbled.write_text("c2sp.org/tlog-proof@v1\nextra !!!\nindex x\n")
    for done in (missing, run(garbled)):
        assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
    assert run(garbled).returncode == 4
    bad_key = subprocess.run([sys.executable, "-I", str(script), str(proof), "not a key"],
                             capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert bad_key.returncode == 1 and "is not a verifier key" in bad_key.stderr
    # Every line of the proof damaged in turn: a rejection or an error, never a traceback.
    lines = proof.read_text().split("\n")
    for number in range(len(lines)):
        damaged = tmp_path / f"damaged-{number}.tlog-proof"
        damaged.write_text("\n".join(lines[:number] + ["#!" + lines[number][::-1]]
                                     + lines[number + 1:]))
        done = run(damaged)
        assert done.returncode in (1, 4) and "Traceback" not in done.stderr, (number, done)


def test_membership_in_a_sorted_stream_sets_aside_the_keys_never_asked_about():
    from commands.issued_documents import Ascending

    wanted = Ascending(["b", "d", "f", "h"])
    assert [key in wanted for key in ["a", "b", "c", "d", "g"]] == [
        False, True, False, True, False]
    assert wanted.never_asked() == ["f", "h"]
    everything = Ascending(["a", "c"])
    assert "c" in everything and "z" not in everything
    assert everything.never_asked() == ["a"]
    assert Ascending([]).never_asked() == [] and "a" not in Ascending([])
