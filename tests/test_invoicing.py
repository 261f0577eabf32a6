"""Issued invoices: gapless numbers, immutability, re-derivation, corrections, exports."""

from __future__ import annotations

import multiprocessing
from datetime import date
from decimal import Decimal

import orjson
import pytest
from facturx import get_xml_from_pdf, xml_check_xsd
from freezegun import freeze_time

from cli.main import main
from commands import corrections
from commands.billing import bill, invoicing_state
from commands.corrections import apply_correction, proposals
from commands.importer import import_lines
from commands.verification import verify
from eventstore.app import open_store
from exports.invoice_pdf import facturx_pdf
from exports.journal import journal_rows
from ledger.errors import LedgerError
from ledger.invoicing import Invoicing, lean
from tests.conftest import activate, add_storage, jsonl, register, sign, siret, terminate

OPERATOR = {"id": "op", "type": "register_operator", "name": "Syndicat mixte Mégalis Bretagne",
            "siret": siret(2535053),
            "address": {"line1": "15 rue Claude Chappe", "postcode": "35510",
                        "city": "Cesson-Sévigné"}}

D = date.fromisoformat


def references(customer="lanvenec", year=2026, **fields):
    return {"id": f"refs-{customer}-{year}-{len(fields)}", "type": "set_billing_references",
            "customer": customer, "year": year, **fields}


@pytest.fixture
def ledger(app, apply):
    apply(OPERATOR, register(), sign(), activate(), add_storage())
    return app


def numbers(app):
    return list(invoicing_state(app).documents)


def test_billing_groups_charges_by_customer_and_date(ledger):
    report = bill(ledger, D("2026-12-31"), D("2027-01-05"))
    assert [(d["number"], d["lines"][0]["charge_date"], d["total_ht"]) for d in report.issued] == [
        ("F-2027-000001", "2026-04-01", "60.00"),
        ("F-2027-000002", "2026-04-02", "600.00"),
        ("F-2027-000003", "2026-12-01", "60.00"),
    ]
    assert report.issued[1]["lines"][0]["line"] == "st-access-25gb"


def test_running_the_same_billing_twice_issues_nothing(ledger):
    bill(ledger, D("2026-12-31"), D("2027-01-05"))
    before = ledger.recorder.max_notification_id()
    assert bill(ledger, D("2026-12-31"), D("2027-01-05")).issued == ()
    assert ledger.recorder.max_notification_id() == before


def test_a_run_keeps_no_charge_key_of_its_own_invoices_and_the_log_has_them_all(ledger,
                                                                               monkeypatch):
    """A billing run issues under ``lean(keys=False)``: its invoicing aggregate does not
    collect the charge keys of what it issues (memory), while the aggregate folded from the log
    afterwards holds every one of them."""
    issuing = []
    real_issue = Invoicing.issue

    def issue(self, document, basis_position):
        real_issue(self, document, basis_position)
        issuing.append(set(self.invoiced_keys))

    monkeypatch.setattr(Invoicing, "issue", issue)
    report = bill(ledger, D("2026-12-31"), D("2027-01-05"))
    assert len(issuing) == 3 and all(keys == set() for keys in issuing)
    keys = {line["key"] for document in report.issued for line in document["lines"]}
    assert len(keys) == 3
    assert invoicing_state(ledger).invoiced_keys == keys
    with lean():  # how billing folds it
        assert invoicing_state(ledger).invoiced_keys == keys


def test_later_runs_continue_the_sequence_and_a_new_year_starts_a_new_one(ledger):
    bill(ledger, D("2026-04-30"), D("2026-05-02"))
    bill(ledger, D("2026-12-31"), D("2026-12-31"))
    bill(ledger, D("2027-12-31"), D("2028-01-03"))
    assert numbers(ledger) == ["F-2026-000001", "F-2026-000002", "F-2026-000003",
                               "F-2028-000001", "F-2028-000002"]


def test_numbers_follow_dates(ledger):
    bill(ledger, D("2026-04-30"), D("2026-05-02"))
    with pytest.raises(LedgerError, match="numbers must follow dates"):
        # the pack's period of 2027-04-01, ordered on a form received on 2026-03-17
        bill(ledger, D("2027-04-30"), D("2026-05-01"), in_advance=True)


def test_in_advance_invoices_only_what_was_ordered_by_the_issue_date(ledger):
    # The pack added on an order form received on 2026-11-01 is not billed in advance by a run
    # dated 2026-10-15 (an issue date typed years early issued a series older than the orders).
    report = bill(ledger, D("2027-12-31"), D("2026-10-15"), in_advance=True)
    keys = {line["key"] for document in report.issued for line in document["lines"]}
    assert "lanvenec.fr/BC-26-001/pack-1/2027-04-01" in keys  # received 2026-03-17
    assert not any("/BC-S" in key for key in keys)
    assert report.deferred == 2 and report.deferred_amount == Decimal("120.00")  # 2026-12, 2027-12
    assert bill(ledger, D("2027-12-31"), D("1999-02-15"), in_advance=True).count == 0


def test_an_issue_date_whose_due_date_cannot_be_written_is_refused(ledger):
    with pytest.raises(LedgerError, match="after the last day a date can be written"):
        bill(ledger, D("2026-12-31"), D("9999-12-31"))
    assert numbers(ledger) == []


def test_no_operator_no_invoice(app, apply):
    apply(register(), sign(), activate())
    with pytest.raises(LedgerError, match="register_operator"):
        bill(app, D("2026-12-31"), D("2027-01-05"))


def test_missing_mandatory_reference_skips_the_customer_and_says_so(ledger, apply):
    apply(references(code_service_required=True, engagement_required=True,
                     code_service="MAIRIE"))
    report = bill(ledger, D("2026-12-31"), D("2027-01-05"))
    assert report.issued == ()
    assert [str(s) for s in report.skipped] == [
        ("lanvenec: no invoice for 3 charge(s), 720.00 € HT — the engagement number that "
         "Chorus Pro requires for 2026 is missing (set_billing_references)")]
    assert not report.complete
    apply(references(code_service_required=True, engagement_required=True,
                     code_service="MAIRIE", engagement_number="EJ-42"))
    issued = bill(ledger, D("2026-12-31"), D("2027-01-05")).issued
    assert {(d["buyer"]["code_service"], d["buyer"]["engagement_number"]) for d in issued} == {
        ("MAIRIE", "EJ-42")}


def test_an_issued_invoice_does_not_change_when_the_customer_does(ledger, apply, store, capsys):
    bill(ledger, D("2026-12-31"), D("2027-01-05"))
    assert main(["--store", store, "invoice", "show", "F-2027-000002", "--json"]) == 0
    before = capsys.readouterr().out
    apply({"id": "rename", "type": "update_customer", "customer": "lanvenec",
           "name": "Commune nouvelle de Lanvénec-sur-Mer"})
    assert main(["--store", store, "invoice", "show", "F-2027-000002", "--json"]) == 0
    after = capsys.readouterr().out
    assert after == before
    shown = orjson.loads(after)
    assert shown["document"]["buyer"]["name"] == "Commune de Lanvenec"
    assert shown["rederived_identical"] is True


def test_show_rederives_the_document_from_events_up_to_its_issue(ledger, apply):
    bill(ledger, D("2026-12-31"), D("2027-01-05"))
    apply(terminate(on="2026-11-20"))  # late news: does not alter what was issued
    for number in numbers(ledger):
        check = verify(ledger, number)
        assert check.identical, number


def test_unknown_invoice_number(ledger):
    with pytest.raises(LedgerError, match="no invoice or credit note numbered 'F-2099-000001'"):
        verify(ledger, "F-2099-000001")


def late_termination(app, apply):
    """Order received in February: packs renew on 1 March. The letter of 31 January 2027 is
    entered in March, after the 1 March 2027 renewal was invoiced in full."""
    with freeze_time("2026-02-20T09:00:00Z"):
        apply(OPERATOR, register(), sign(signed_on="2026-02-10", received_on="2026-02-16"),
              activate(on="2026-03-02"))
    with freeze_time("2027-03-05T09:00:00Z"):
        bill(app, D("2027-03-01"), D("2027-03-05"))
    with freeze_time("2027-03-12T10:00:00Z"):
        apply(terminate(on="2027-01-31"))


def test_late_termination_yields_exactly_one_credit_note_of_the_right_amount(app, apply):
    late_termination(app, apply)
    (proposal,) = proposals(app)
    renewal = invoicing_state(app).documents[proposal.invoice]
    assert renewal["lines"][0]["period_start"] == "2027-03-01"
    # Received 2027-01-31 → notice from 2027-02-01 → last day 2027-03-31 (after the first
    # anniversary 2027-03-02). The 2027-03-01 period (366 days) is cut to 31 days:
    # 60 × 31 / 366 = 5.0819… → 5.08, so 60.00 is credited and 5.08 invoiced again.
    assert (proposal.old_total, proposal.new_total, proposal.difference) == (
        Decimal("60.00"), Decimal("5.08"), Decimal("-54.92"))
    assert proposal.cause.startswith("Résiliation reçue le 31/01/2027 (lanvenec.fr), enregistrée le ")
    assert proposal.cause.endswith(" : période réduite au 31/03/2027")
    with freeze_time("2027-03-15T10:00:00Z"):
        issued = apply_correction(app, proposal.id, "Mme Riou", D("2027-03-15"))
    credit, replacement = issued
    assert (credit["number"], credit["kind"], credit["total_ht"], credit["refers_to"]) == (
        "A-2027-000001", "credit_note", "60.00", proposal.invoice)
    assert (replacement["number"], replacement["total_ht"], replacement["refers_to"]) == (
        "F-2027-000004", "5.08", proposal.invoice)
    credit_notes = [d for d in invoicing_state(app).documents.values() if d["kind"] == "credit_note"]
    assert len(credit_notes) == 1
    assert proposals(app) == []
    assert verify(app, "A-2027-000001").identical and verify(app, "F-2027-000004").identical


def test_a_charge_no_longer_due_is_credited_without_a_new_invoice(app, apply):
    with freeze_time("2026-04-10T09:00:00Z"):
        apply(OPERATOR, register(), sign(), activate(on="2026-04-02"),
              add_storage(signed_on="2027-05-05", received_on="2027-05-10"))
    with freeze_time("2027-07-01T09:00:00Z"):
        bill(app, D("2027-06-30"), D("2027-07-01"))
    # The letter received 2027-03-15 is entered late. Notice from 2027-04-01, last day of
    # service 2027-05-31. The 2027-04-01 renewal was known to be cut: 60 × 61/366 = 10.00; the
    # pack added in May would start 2027-06-01, after the end of service: not due at all.
    with freeze_time("2027-07-20T09:00:00Z"):
        apply(terminate(on="2027-03-15"))
    found = sorted(proposals(app), key=lambda p: p.invoice)
    assert [(p.old_total, p.new_total) for p in found] == [
        (Decimal("60.00"), Decimal("10.00")), (Decimal("60.00"), Decimal("0.00"))]
    with freeze_time("2027-07-21T09:00:00Z"):
        issued = apply_correction(app, found[1].id, "Mme Riou", D("2027-07-21"))
    assert [(d["number"], d["total_ht"]) for d in issued] == [("A-2027-000001", "60.00")]


@pytest.mark.parametrize("issued_on", ["2026-01-02", "2027-03-04"])
def test_a_correction_is_not_issued_before_the_invoice_it_corrects(app, apply, issued_on):
    """The renewal was invoiced on 5 March 2027: its credit note dated earlier (a typo in the
    year, most often) would sit in an exercice the titre was never in."""
    late_termination(app, apply)
    (proposal,) = proposals(app)
    before = app.position()
    with freeze_time("2027-03-15T10:00:00Z"), pytest.raises(
            LedgerError, match=f"{proposal.invoice} was issued on 2027-03-05: its correction "
                               f"cannot be issued before that \\(--issue-date {issued_on}\\)"):
        apply_correction(app, proposal.id, "Mme Riou", D(issued_on))
    assert app.position() == before
    with freeze_time("2027-03-15T10:00:00Z"):  # the day of the invoice itself is fine
        credit, _ = apply_correction(app, proposal.id, "Mme Riou", D("2027-03-05"))
    assert credit["issued_on"] == "2027-03-05"


def test_applying_an_unknown_proposal(ledger):
    with pytest.raises(LedgerError, match="no correction 'F-2027-000009' is proposed"):
        apply_correction(ledger, "F-2027-000009", "me", D("2027-03-15"))


def _race(store: str, through: str, issued_on: str, barrier) -> int:
    app = open_store(store)
    barrier.wait()
    return len(bill(app, D(through), D(issued_on)).issued)


def test_two_racing_billing_runs_leave_no_gap_and_no_duplicate(store, app, apply):
    apply(OPERATOR, *[c for n in range(12) for c in (
        register(f"c{n}"), sign(f"commune{n}.fr", f"c{n}", extra_gb_packs=[10, 20]),
        activate(f"commune{n}.fr"))])
    context = multiprocessing.get_context("spawn")
    barrier = context.Manager().Barrier(2)
    with context.Pool(2) as pool:
        counts = pool.starmap(_race, [(store, "2027-12-31", "2028-01-10", barrier)] * 2)
    invoicing = invoicing_state(open_store(store))
    issued = list(invoicing.documents)
    assert sum(counts) == len(issued)
    assert issued == [f"F-2028-{n:06d}" for n in range(1, len(issued) + 1)]
    keys = [line["key"] for d in invoicing.documents.values() for line in d["lines"]]
    assert len(keys) == len(set(keys))
    assert len(set(keys)) == 12 * (1 + 2 * 2)  # access fee + two packs × two periods each


def test_every_exported_facturx_passes_the_xsd(app, apply, tmp_path):
    late_termination(app, apply)
    apply(references(year=2027, code_service="MAIRIE-FIN", engagement_number="EJ-2027-7"))
    with freeze_time("2027-03-15T10:00:00Z"):
        (proposal,) = proposals(app)
        apply_correction(app, proposal.id, "Mme Riou", D("2027-03-15"))
    invoicing = invoicing_state(app)
    assert len(invoicing.documents) == 5
    for number, document in invoicing.documents.items():
        pdf = facturx_pdf(document, invoicing.digests[number])
        assert pdf.startswith(b"%PDF")
        filename, xml = get_xml_from_pdf(pdf, check_xsd=False)
        assert filename == "factur-x.xml"
        assert xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
        assert number.encode() in xml
    credit_xml = get_xml_from_pdf(facturx_pdf(invoicing.documents["A-2027-000001"], "x"),
                                  check_xsd=False)[1]
    assert b"<ram:TypeCode>381</ram:TypeCode>" in credit_xml
    assert proposal.invoice.encode() in credit_xml  # BG-3, the invoice it credits


def test_facturx_carries_chorus_pro_references_siret_periods_and_vat(ledger, apply):
    apply(references(code_service="MAIRIE-FIN", engagement_number="EJ-2026-0042"))
    document = bill(ledger, D("2026-04-30"), D("2026-05-02")).issued[0]
    _, xml = get_xml_from_pdf(facturx_pdf(document, "digest"), check_xsd=False)
    text = xml.decode()
    assert "<ram:BuyerReference>MAIRIE-FIN</ram:BuyerReference>" in text  # BT-10
    assert "<ram:IssuerAssignedID>EJ-2026-0042</ram:IssuerAssignedID>" in text  # BT-13
    assert f'<ram:ID schemeID="0002">{OPERATOR["siret"]}</ram:ID>' in text
    assert f'<ram:ID schemeID="0002">{document["buyer"]["siret"]}</ram:ID>' in text
    assert "<udt:DateTimeString format=\"102\">20260401</udt:DateTimeString>" in text  # BT-134
    assert "<udt:DateTimeString format=\"102\">20270331</udt:DateTimeString>" in text  # BT-135
    assert "<ram:CategoryCode>O</ram:CategoryCode>" in text
    assert "<ram:ExemptionReason>Contribution hors du champ d'application de la TVA" in text


def test_cli_exports(ledger, store, tmp_path, capsys):
    assert main(["--store", store, "bill", "--through", "2026-12-31", "--issue-date",
                 "2027-01-05", "--by", "M. Le Gall"]) == 0
    assert "3 invoice(s) issued, 720.00 € HT." in capsys.readouterr().out
    pdf = tmp_path / "f.pdf"
    assert main(["--store", store, "invoice", "export", "F-2027-000001", "--format", "facturx",
                 "--out", str(pdf)]) == 0
    assert get_xml_from_pdf(pdf.read_bytes(), check_xsd=True)[0] == "factur-x.xml"
    js = tmp_path / "f.json"
    assert main(["--store", store, "invoice", "export", "F-2027-000001", "--format", "json",
                 "--out", str(js)]) == 0
    exported = orjson.loads(js.read_bytes())
    assert (exported["document"]["number"], exported["issued_by"]) == ("F-2027-000001",
                                                                      "M. Le Gall")
    journal = tmp_path / "journal.csv"
    assert main(["--store", store, "invoices", "export", "--csv", str(journal)]) == 0
    rows = journal.read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("number,kind,issued_on")
    assert len(rows) == 1 + 3
    capsys.readouterr()
    assert main(["--store", store, "corrections"]) == 0
    assert "No correction to propose" in capsys.readouterr().out


def test_journal_signs_credit_notes_negative(app, apply):
    late_termination(app, apply)
    with freeze_time("2027-03-15T10:00:00Z"):
        (proposal,) = proposals(app)
        apply_correction(app, proposal.id, "Mme Riou", D("2027-03-15"))
    rows = list(journal_rows(invoicing_state(app).documents.values()))
    assert sum(Decimal(r["amount_ht"]) for r in rows) == Decimal("60.00") + Decimal("600.00") \
        + Decimal("5.08")
    assert [r["amount_ht"] for r in rows if r["kind"] == "credit_note"] == ["-60.00"]


def test_cli_corrections_flow(app, apply, store, capsys):
    late_termination(app, apply)
    assert main(["--store", store, "corrections", "--json"]) == 0
    (listed,) = orjson.loads(capsys.readouterr().out)
    assert (listed["difference"], listed["credit_note"]) == ("-54.92", "60.00")
    assert main(["--store", store, "corrections", "apply", listed["id"], "--by", "Mme Riou",
                 "--issue-date", "2027-03-15"]) == 0
    assert "A-2027-000001 issued (credit note, 60.00 € HT)" in capsys.readouterr().out
    assert main(["--store", store, "corrections", "apply", listed["id"], "--by", "Mme Riou"]) == 1
    assert "no correction" in capsys.readouterr().err


def test_unknown_number_on_the_command_line(ledger, store, capsys):
    assert main(["--store", store, "invoice", "show", "F-2030-000001"]) == 1
    assert "no invoice or credit note numbered" in capsys.readouterr().err


def test_import_of_operator_and_references_validates_them(app):
    from commands.importer import ImportRejected

    bad = {**OPERATOR, "id": "op-bad", "address": {"line1": "x", "postcode": "355", "city": "y"}}
    with pytest.raises(ImportRejected, match="postcode must have 5 digits"):
        import_lines(app, jsonl(bad))
    with pytest.raises(ImportRejected, match="expected true or false"):
        import_lines(app, jsonl(register(), references(code_service_required="yes")))
    with pytest.raises(ImportRejected, match="expected a year"):
        import_lines(app, jsonl(register(), references(year=26)))


def test_a_run_that_loses_the_race_retries_from_fresh_state(store, app, apply, monkeypatch):
    """Deterministic interleaving: run B commits while run A is between reading and saving."""
    from commands import billing

    apply(OPERATOR, register(), sign(), activate())
    run_a, run_b = open_store(store), open_store(store)
    real = billing.iter_subscriptions_known_at
    calls = []

    def subscriptions_with_a_rival(app_, *args, **kwargs):
        calls.append(app_)
        if len(calls) == 1:  # A has loaded the invoicing aggregate: B issues everything now
            monkeypatch.setattr(billing, "iter_subscriptions_known_at", real)
            bill(run_b, D("2026-12-31"), D("2027-01-05"))
            monkeypatch.setattr(billing, "iter_subscriptions_known_at",
                                subscriptions_with_a_rival)
        return real(app_, *args, **kwargs)

    monkeypatch.setattr(billing, "iter_subscriptions_known_at", subscriptions_with_a_rival)
    report_a = bill(run_a, D("2026-12-31"), D("2027-01-05"))
    assert report_a.issued == ()  # its first attempt conflicted; the retry found nothing left
    assert len(calls) == 2
    assert numbers(open_store(store)) == ["F-2027-000001", "F-2027-000002"]


def test_a_long_run_is_saved_in_batches_and_keeps_no_document(ledger, apply, monkeypatch):
    """Documents are saved every BATCH inside the run's one transaction and handed over once it
    is committed; the report can keep none."""
    from commands import billing
    from eventstore.app import Session

    apply(register("kerbrat"), sign("kerbrat.fr", "kerbrat", extra_gb_packs=[10, 20]),
          activate("kerbrat.fr"))
    monkeypatch.setattr(billing, "BATCH", 2)
    saves, handed, positions = [], [], []
    real_save = Session.save

    def counting_save(self, *objs, **kwargs):
        saves.append(len(real_save(self, *objs, **kwargs)))
        return saves[-1]
    monkeypatch.setattr(Session, "save", counting_save)
    before = ledger.position()

    def on_issued(document):
        handed.append(document["number"])
        positions.append(ledger.position())  # committed when handed over

    report = bill(ledger, D("2026-12-31"), D("2027-01-05"), keep_documents=False,
                  on_issued=on_issued)
    assert report.issued == () and report.count == len(handed) >= 5
    assert report.total == sum(Decimal(d["total_ht"])
                               for d in invoicing_state(ledger).documents.values())
    assert handed == numbers(ledger)  # gapless, in order, across the saves
    assert len(saves) >= 3  # more than one save …
    assert set(positions) == {before + sum(saves)}  # … all committed before any is shown


def test_a_run_that_fails_half_way_stores_nothing(ledger, apply, monkeypatch):
    """A billing run is all or nothing: a failure after some batches were saved in its
    transaction rolls them back, and nothing is handed over as issued."""
    from commands import billing

    apply(register("kerbrat"), sign("kerbrat.fr", "kerbrat", extra_gb_packs=[10, 20]),
          activate("kerbrat.fr"))
    monkeypatch.setattr(billing, "BATCH", 2)
    real_build, built = billing.build_document, []

    def failing_build(**kwargs):
        built.append(kwargs["number"])
        if len(built) == 4:  # two batches saved already
            raise RuntimeError("disk full")
        return real_build(**kwargs)
    monkeypatch.setattr(billing, "build_document", failing_build)
    before, handed = ledger.position(), []
    with pytest.raises(RuntimeError, match="disk full"):
        bill(ledger, D("2026-12-31"), D("2027-01-05"), on_issued=handed.append)
    assert ledger.position() == before and numbers(ledger) == [] and handed == []
    monkeypatch.setattr(billing, "build_document", real_build)
    report = bill(ledger, D("2026-12-31"), D("2027-01-05"))
    assert numbers(ledger)[0] == "F-2027-000001" and report.count == len(numbers(ledger)) >= 5


def test_corrections_of_one_customer_read_its_documents_only(app, apply, monkeypatch):
    """Through the index of references: the other customers' documents are never read."""
    late_termination(app, apply)
    apply(register("kerbrat"), sign("kerbrat.fr", "kerbrat"), activate("kerbrat.fr"))
    bill(app, D("2027-03-31"), D("2027-04-02"))
    everything = corrections.proposals(app)
    with monkeypatch.context() as patch:
        patch.setattr(corrections, "invoicing_state", lambda *a, **k: pytest.fail("read all"))
        assert corrections.proposals(app, "lanvenec") == everything
        assert corrections.proposals(app, "kerbrat") == []
    issued = apply_correction(app, everything[0].id, "Mme Riou", D("2027-04-05"))
    assert issued[0]["kind"] == "credit_note" and issued[0]["refers_to"] == everything[0].id
