"""Billing a clerk can trust: charges identified by what the ledger checks, previews, honest
exit codes, and bad input refused at the door — on both stores."""

from __future__ import annotations

from datetime import date

import orjson
import pytest

from cli.main import main
from commands.billing import bill, invoicing_state
from commands.corrections import proposals
from commands.importer import ImportRejected, import_file, import_lines
from commands.verification import verify
from ledger.errors import LedgerError
from tests.conftest import activate, add_storage, jsonl, register, sign, terminate
from tests.test_invoicing import OPERATOR

D = date.fromisoformat


def rejected(app, *commands) -> list[tuple[int, str]]:
    with pytest.raises(ImportRejected) as caught:
        import_lines(app, jsonl(*commands))
    return [(e.line, e.message) for e in caught.value.errors]


# Money lost or doubled ------------------------------------------------------------------------

def test_an_order_reference_is_never_recorded_twice_for_a_domain(app, apply):
    apply(register(), sign(), activate(), add_storage(order="BC-26-014"))
    errors = rejected(app, add_storage(order="BC-26-014", signed_on="2026-11-02",
                                       received_on="2026-11-03"))
    assert errors == [(1, "order form BC-26-014 is already recorded for this domain: each "
                          "order form has its own reference (it identifies what is charged)")]
    # Within one file too.
    errors = rejected(app, add_storage(order="BC-26-020"), add_storage(order="BC-26-020"))
    assert [line for line, _ in errors] == [2]


def test_an_order_reference_of_another_domain_is_refused(app, apply):
    apply(register(), sign(), register("plouay"))
    errors = rejected(app, sign("plouay.fr", "plouay", order="BC-26-001"))
    assert "order form BC-26-001 is already recorded for domain 'lanvenec.fr'" in errors[0][1]


def test_two_storage_orders_received_the_same_month_are_both_invoiced_once(app, apply):
    apply(OPERATOR, register(), sign(extra_gb_packs=[]), activate(),
          add_storage(order="BC-A", extra_gb_packs=[10], signed_on="2026-10-02",
                      received_on="2026-10-05"),
          add_storage(order="BC-B", extra_gb_packs=[20], signed_on="2026-10-12",
                      received_on="2026-10-15"))
    first = bill(app, D("2026-11-30"), D("2026-12-01"))
    packs = [line for d in first.issued for line in d["lines"] if line["kind"] == "extra_storage"]
    assert sorted(line["amount"] for line in packs) == ["60.00", "90.00"]
    assert bill(app, D("2026-11-30"), D("2026-12-01")).issued == ()
    assert proposals(app) == []
    for document in first.issued:
        assert verify(app, document["number"]).identical


def test_a_history_with_a_reused_reference_still_charges_each_pack_once(app, apply):
    """Stores written before references were checked may hold one twice: each pack keeps its
    own charge, and the second run bills nothing again."""
    from ledger.identity import subscription_id

    apply(OPERATOR, register(), sign(extra_gb_packs=[]), activate())
    subscription = app.aggregate(subscription_id("lanvenec.fr"))
    for gb, day in ((10, D("2026-10-05")), (20, D("2026-10-15"))):
        subscription._storage_added(order="BC-SAME", extra_gb_packs=(gb,), signed_on=day,
                                    received_on=day)  # the event alone, as an old store holds it
    app.save(subscription)
    issued = bill(app, D("2026-11-30"), D("2026-12-01")).issued
    keys = [line["key"] for d in issued for line in d["lines"] if line["kind"] == "extra_storage"]
    assert sorted(keys) == ["lanvenec.fr/BC-SAME#2/pack-1/2026-11-01",
                            "lanvenec.fr/BC-SAME/pack-1/2026-11-01"]
    assert bill(app, D("2026-11-30"), D("2026-12-01")).issued == ()
    assert proposals(app) == []


def test_a_siret_is_registered_for_one_customer_only(app, apply):
    apply(register("lanvenec"))
    siret = invoicing_siret = register("lanvenec")["siret"]
    errors = rejected(app, register("lanvenec-bis", siret=siret))
    assert errors == [(1, f"SIRET {invoicing_siret} is already registered for customer "
                          "'lanvenec': one public body, one customer key (a CCAS or an EPCI has "
                          "a SIRET of its own)")]
    errors = rejected(app, register("a1", siret="21290093000018"),
                      register("a2", siret="21290093000018"))
    assert [line for line, _ in errors] == [2]


@pytest.mark.parametrize("flush", [3, 10_000])
def test_references_are_checked_across_batches_of_one_file(app, monkeypatch, flush):
    """An import looks up order form references and SIRETs a batch of lines at a time (one
    query for the batch); a reference recorded by an earlier batch of the same file — saved
    inside the transaction (``flush``) or not yet — is still refused."""
    monkeypatch.setattr("commands.importer.BATCH", 2)
    monkeypatch.setattr("commands.importer.FLUSH", flush)
    first = register("alpha")
    errors = rejected(app, first, register("beta"),
                      sign("alpha.fr", "alpha", order="BC-X"), activate("alpha.fr"),
                      sign("beta.fr", "beta", order="BC-X"),
                      register("gamma", siret=first["siret"]))
    assert [line for line, _ in errors] == [5, 6]
    assert "order form BC-X is already recorded for domain 'alpha.fr'" in errors[0][1]
    assert "is already registered for customer 'alpha'" in errors[1][1]


def test_charges_dated_after_the_issue_date_wait_unless_asked(app, apply, store, capsys):
    apply(OPERATOR, register(), sign(), activate())
    report = bill(app, D("2028-12-31"), D("2027-01-05"), dry_run=True)
    assert report.deferred > 0
    assert all(line["charge_date"] <= "2027-01-05" for d in report.issued for line in d["lines"])
    assert main(["--store", store, "bill", "--through", "2028-12-31", "--issue-date",
                 "2027-01-05"]) == 0
    out = capsys.readouterr().out
    assert "left for later:" in out and "--in-advance" in out
    assert main(["--store", store, "bill", "--through", "2028-12-31", "--issue-date",
                 "2027-01-05", "--in-advance"]) == 0
    dates = [line["charge_date"] for d in invoicing_state(app).documents.values()
             for line in d["lines"]]
    assert max(dates) > "2027-01-05"


# Previews and honest exit codes --------------------------------------------------------------

def test_a_dry_run_shows_exactly_what_a_run_issues_and_records_nothing(app, apply, store, capsys):
    apply(OPERATOR, register(), sign(), activate(), register("plouay"),
          sign("plouay.fr", "plouay"), activate("plouay.fr"))
    before = app.position()
    assert main(["--store", store, "bill", "--through", "2026-12-31", "--issue-date",
                 "2027-01-05", "--dry-run", "--json"]) == 0
    preview = orjson.loads(capsys.readouterr().out)
    assert app.position() == before and invoicing_state(app).documents == {}
    assert preview["dry_run"] is True
    report = bill(app, D("2026-12-31"), D("2027-01-05"))
    assert [(d["number"], d["customer"], d["total_ht"]) for d in preview["issued"]] == [
        (d["number"], d["buyer"]["customer"], d["total_ht"]) for d in report.issued]
    assert [line["amount"] for d in preview["issued"] for line in d["lines"]] == [
        line["amount"] for d in report.issued for line in d["lines"]]


def test_skipped_customers_are_named_and_the_run_exits_5(app, apply, store, capsys):
    apply(OPERATOR, register(), sign(), activate(),
          register("plouay", address=None), sign("plouay.fr", "plouay"), activate("plouay.fr"),
          {"id": "ref", "type": "set_billing_references", "customer": "lanvenec", "year": 2026,
           "engagement_required": True})
    assert main(["--store", store, "bill", "--through", "2026-12-31", "--issue-date",
                 "2027-01-05"]) == 5
    captured = capsys.readouterr()
    assert "skipped: lanvenec:" in captured.out and "engagement number" in captured.out
    assert "skipped: plouay:" in captured.out and "no postal address" in captured.out
    assert "exit code 5" in captured.err
    assert invoicing_state(app).documents == {}  # nobody invoiced blank
    assert main(["--store", store, "bill", "--through", "2026-12-31", "--issue-date",
                 "2027-01-05", "--dry-run"]) == 5


def test_charges_not_yet_invoiced(app, apply, store, capsys):
    apply(OPERATOR, register(), sign(), activate())
    bill(app, D("2026-04-30"), D("2026-05-02"))
    assert main(["--store", store, "charges", "--as-of", "2027-12-31", "--uninvoiced",
                 "--json"]) == 0
    left = orjson.loads(capsys.readouterr().out)
    assert left and all(c["charge_date"] > "2026-04-30" for c in left)
    invoiced = {line["key"] for d in invoicing_state(app).documents.values() for line in d["lines"]}
    assert invoiced and not invoiced & {c["order"] + c["charge_date"] for c in left}


@pytest.mark.parametrize("argv", [["charges"], ["subscription", "x.fr"], ["invoices", "list"],
                                  ["customers"], ["history", "x"], ["audit", "verify"],
                                  ["bill", "--through", "2027-01-01"]])
def test_reading_a_store_that_does_not_exist_names_it_and_creates_nothing(tmp_path, capsys, argv):
    missing = tmp_path / "typo.sqlite3"
    assert main(["--store", str(missing), *argv]) == 1
    assert f"store {missing} does not exist" in capsys.readouterr().err
    assert not missing.exists()


def test_customers_and_subscriptions_are_listed(app, apply, store, capsys):
    apply(register(), sign(), activate(), terminate(on="2027-06-15"), register("plouay"))
    assert main(["--store", store, "customers", "--json"]) == 0
    customers = orjson.loads(capsys.readouterr().out)
    assert [(c["customer"], c["domains"]) for c in customers] == [
        ("lanvenec", ["lanvenec.fr"]), ("plouay", [])]
    assert customers[0]["siret"] == register()["siret"]
    assert main(["--store", store, "subscriptions", "--as-of", "2027-07-01", "--json"]) == 0
    (row,) = orjson.loads(capsys.readouterr().out)
    assert (row["domain"], row["state"], row["customer"]) == ("lanvenec.fr", "notice", "lanvenec")
    assert main(["--store", store, "subscriptions", "--as-of", "2025-01-01"]) == 0
    assert "No order form had been received by 2025-01-01" in capsys.readouterr().out


# Bad input, at the door -----------------------------------------------------------------------

@pytest.mark.parametrize("character", ["\x00", "\x1b", "\x07", "\x7f", "\x85", "\x9b", "\n"])
def test_control_characters_in_text_are_refused_with_the_line(app, character):
    errors = rejected(app, register("ok"), register("bad", name=f"Commune{character}de X"))
    assert errors[0][0] == 2
    assert f"control character U+{ord(character):04X} is not allowed" in errors[0][1]
    assert "'name'" in errors[0][1]


def test_a_tab_and_line_separators_inside_text_are_kept(app, apply, tmp_path):
    path = tmp_path / "names.jsonl"
    lines = jsonl(register("a", name="Commune\tde A"), register("b", name="Commune\u2028de B"),
                  register("c", name="Commune de C"))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_file(app, path)
    assert report.applied == 3 and report.lines == 3
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(jsonl(register("d", name="Commune\u2028de D"),
                                   activate("nowhere.fr"))) + "\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as caught:
        import_file(app, bad)
    assert [e.line for e in caught.value.errors] == [2]  # U+2028 did not split line 1


def test_duplicate_keys_are_refused(app):
    line = ('{"id": "d", "type": "register_customer", "customer": "x", "name": "A", '
            '"name": "B", "siret": "21290093000018", "category": "commune", "population": 10}')
    with pytest.raises(ImportRejected, match="line 1: field 'name' appears twice"):
        import_lines(app, [line])


def test_a_byte_order_mark_is_accepted(app, tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(jsonl(register(), register("b"))).encode())
    assert import_file(app, path).applied == 2


def test_a_non_utf8_line_is_named(app, tmp_path):
    path = tmp_path / "mixed.jsonl"
    good = jsonl(register(), register("b"))
    path.write_bytes(good[0].encode() + b"\n" + good[1].encode() + b"\n"
                     + '{"name": "Lanvénec"}'.encode("latin-1") + b"\n")
    with pytest.raises(LedgerError, match="line 3: not UTF-8 text: byte 0xE9 at column 15"):
        import_file(app, path)


def test_a_read_only_store_ends_with_one_clear_line(tmp_path, capsys, backend, store):
    import os

    from tests.conftest import open_ledger

    if backend == "sqlite":
        open_ledger(store).close()
        target = f"file:{store}?mode=ro"
    else:
        import psycopg

        from tests.conftest import POSTGRES_ADMIN

        operator = os.environ["LEDGER_OPERATOR"]
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f"ALTER ROLE ledger_{operator}_writer SET "
                         "default_transaction_read_only = on")
        target = store
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(jsonl(register())) + "\n", encoding="utf-8")
    assert main(["--store", target, "import", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot be written" in err and "nothing was stored" in err


def test_a_store_locked_by_another_writer_beyond_the_wait_ends_with_one_clear_line(
        tmp_path, capsys, backend, store, monkeypatch):
    from tests.conftest import open_ledger

    monkeypatch.setenv("LEDGER_LOCK_TIMEOUT", "1")
    ledger = open_ledger(store)
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(jsonl(register())) + "\n", encoding="utf-8")
    before = ledger.position()
    with ledger.recorder.session() as other:  # another writer, in the middle of its work
        if backend == "postgres":  # there, the lock is taken by the first append
            import uuid

            from eventstore.log import PendingEntry

            other.append([PendingEntry(originator_id=uuid.uuid4(), originator_version=1,
                                       topic="audit.opened", state=b"{}")], {}, {})
        assert main(["--store", store, "import", str(path)]) == 1
        other.append([], {}, {})
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is busy" in err and "nothing was stored" in err
    assert ledger.position() == before + (1 if backend == "postgres" else 0)


def test_the_csv_journal_defuses_formulas_and_speaks_french_on_request(app, apply, store,
                                                                      tmp_path, capsys):
    apply(OPERATOR, register(name="=HYPERLINK(\"http://x\")"), sign(), activate())
    bill(app, D("2026-04-30"), D("2026-05-02"))
    plain, french = tmp_path / "en.csv", tmp_path / "fr.csv"
    assert main(["--store", store, "invoices", "export", "--csv", str(plain)]) == 0
    assert main(["--store", store, "invoices", "export", "--csv", str(french),
                 "--csv-dialect", "fr"]) == 0
    import csv

    rows = list(csv.DictReader(plain.open(encoding="utf-8")))
    assert rows[0]["buyer_name"] == "'=HYPERLINK(\"http://x\")"
    assert rows[0]["amount_ht"] == "60.00"
    raw = french.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(french.open(encoding="utf-8-sig"), delimiter=";"))
    assert rows[0]["amount_ht"] == "60,00" and rows[0]["buyer_name"].startswith("'=")


# Large imports: one transaction, saved as it goes ---------------------------------------------

def test_an_import_saved_in_steps_is_still_all_or_nothing(app, apply, monkeypatch, tmp_path):
    from commands import importer
    from tests.conftest import sign as sign_line

    monkeypatch.setattr(importer, "BATCH", 3)
    monkeypatch.setattr(importer, "FLUSH", 4)
    lines = []
    for n in range(12):
        lines += [register(f"c{n}"), sign_line(f"commune{n}.fr", f"c{n}"),
                  activate(f"commune{n}.fr")]
    before = app.position()
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(jsonl(*lines, activate("nowhere.fr"))) + "\n", encoding="utf-8")
    with pytest.raises(ImportRejected, match="line 37: no order form for domain 'nowhere.fr'"):
        import_file(app, path)
    assert app.position() == before  # saved steps rolled back with the rest
    path.write_text("\n".join(jsonl(*lines)) + "\n", encoding="utf-8")
    report = import_file(app, path)
    assert (report.applied, report.lines) == (36, 36)
    assert app.position() == before + report.events
    again = import_file(app, path)
    assert (again.applied, again.skipped, again.events) == (0, 36, 0)
    from commands.audit_verify import verify_ledger

    assert verify_ledger(app).ok
