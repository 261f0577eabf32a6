"""Disputes and audits: explanations that recompute their amounts, the état liquidatif,
``ledger diff`` between two states of knowledge, and a dossier that verifies offline."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import zipfile
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import orjson
import pytest
from facturx import get_xml_from_pdf
from freezegun import freeze_time

from cli.main import main
from commands.audit import keygen
from commands.billing import bill, invoicing_state
from commands.corrections import apply_correction, proposals
from exports.dossier_verify import Rejected
from exports.dossier_verify import check as check_dossier
from exports.einvoice import facturx_xml
from exports.explain import etat_liquidatif, explain_document, explain_domain, to_text
from exports.invoice_pdf import facturx_pdf
from projections.diff import charges_diff
from tests.conftest import activate, add_storage, register, sign, siret, terminate
from tests.en16931 import fatal, validate
from tests.pdfa_check import check as check_pdf

D = date.fromisoformat
OPERATOR = {"id": "op", "type": "register_operator", "name": "Syndicat mixte Mégalis Bretagne",
            "siret": siret(2535053),
            "address": {"line1": "15 rue Claude Chappe", "postcode": "35510",
                        "city": "Cesson-Sévigné"}}


def recompute(tree: dict) -> Decimal:
    """The amount from the tree's own numbers, by this test's arithmetic, not the ledger's."""
    computation = tree["computation"]
    operands = computation["operands"]
    if computation["formula"] == "tarif":
        return Decimal(operands["tarif"])
    assert computation["formula"] == "tarif × jours couverts ÷ jours de la période"
    exact = Decimal(operands["tarif"]) * operands["jours_couverts"] / operands["jours_periode"]
    return exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def contested(app, apply):
    """The dispute of docs/disputes.md: a pack renewed on 1 March 2027 and invoiced in full,
    though the termination letter was received on 31 January; the letter is entered on 12
    March, and the correction issued on 15 March."""
    with freeze_time("2026-02-20T09:00:00Z"):
        apply(OPERATOR, register(), sign(signed_on="2026-02-10", received_on="2026-02-16",
                                         extra_gb_packs=[10, 20]),
              activate(on="2026-03-02"), add_storage(received_on="2026-02-18",
                                                     signed_on="2026-02-17"))
    with freeze_time("2027-03-05T09:00:00Z"):
        bill(app, D("2027-03-01"), D("2027-03-05"))
    with freeze_time("2027-03-12T10:00:00Z"):
        apply(terminate(on="2027-01-31"))
    with freeze_time("2027-03-15T10:00:00Z"):
        (proposal,) = proposals(app)
        apply_correction(app, proposal.id, "Mme Riou", D("2027-03-15"))
    return proposal


def test_every_explained_amount_recomputes_from_its_tree(app, apply):
    contested(app, apply)
    invoicing = invoicing_state(app)
    rules_seen = set()
    for number, document in invoicing.documents.items():
        explanation = explain_document(app, number)
        assert explanation["total"] == document["total_ht"]
        assert len(explanation["lines"]) == len(document["lines"])
        for line, recorded in zip(explanation["lines"], document["lines"]):
            tree = line["tree"]
            assert line["amount"] == recorded["amount"] == tree["amount"]
            assert recompute(tree) == Decimal(line["amount"]), (number, line["line"])
            assert "differs" not in tree
            rules_seen.add(tree["rule"]["id"])
            # Every fact names the entry that recorded it, and that entry is in the log.
            for fact in tree["facts"]:
                assert fact["entry"]["position"] == fact["position"]
                assert app.recorder.entry(fact["position"]) is not None
            assert tree["tariff"]["adopted"]["event"] == "tariffs.schedule_adopted"
    assert {"R3", "R4", "R5"} <= rules_seen


def test_a_credit_note_names_the_line_it_reverses_and_the_late_entry(app, apply):
    proposal = contested(app, apply)
    invoicing = invoicing_state(app)
    credit = invoicing.credited[proposal.invoice]
    explanation = explain_document(app, credit)
    (termination,) = explanation["late_entries"]
    assert termination["event"] == "subscription.termination_requested"
    # Its recorded time is the store's (frozen at 12 March on SQLite; the server's on PostgreSQL).
    recorded = app.recorder.recorded_at(termination["position"])
    assert termination["entry"]["recorded_at"][:10] == recorded.date().isoformat()
    for line in explanation["lines"]:
        assert line["reverses"]["document"] == proposal.invoice
    replacement = next(n for n, d in invoicing.documents.items()
                       if d["kind"] == "invoice" and d.get("refers_to") == proposal.invoice)
    cut = explain_document(app, replacement)["lines"][0]["tree"]
    assert cut["rule"]["id"] == "R5"
    assert [f["fact"] for f in cut["facts"]][-1] == "demande de résiliation reçue"
    text = to_text(explain_document(app, replacement))
    assert "Règle R5 (Période écourtée)" in text
    assert "fin de service le 31/03/2027 (R7" in text


def test_explain_from_the_command_line_in_every_format(app, apply, store, tmp_path, capsys):
    proposal = contested(app, apply)
    assert main(["--store", store, "explain", proposal.invoice]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"Facture {proposal.invoice} du 05/03/2027")
    assert "Règle R4 (Go supplémentaires)" in text and "Tarif :" in text
    assert main(["--store", store, "explain", proposal.invoice, "--line", "1", "--json"]) == 0
    data = orjson.loads(capsys.readouterr().out)
    assert [line["line"] for line in data["lines"]] == [1]
    for form, marker in (("md", "# Facture"), ("html", "<!DOCTYPE html>")):
        assert main(["--store", store, "explain", proposal.invoice, "--format", form]) == 0
        assert capsys.readouterr().out.startswith(marker)
    pdf = tmp_path / "etat.pdf"
    assert main(["--store", store, "explain", proposal.invoice, "--format", "pdf", "--out",
                 str(pdf)]) == 0
    report = check_pdf(pdf.read_bytes())
    failing = {name for name, ok, _ in report.results if not ok}
    # A plain PDF/A-3B (no Factur-X inside): fonts embedded, OutputIntent, XMP part 3 B.
    assert failing <= {"XMP Factur-X extension schema", "XMP fx: properties",
                       "EmbeddedFiles has factur-x.xml"}
    assert main(["--store", store, "explain", proposal.invoice, "--line", "9"]) == 1
    assert "line(s), no line 9" in capsys.readouterr().err


def test_explain_a_domain_before_it_is_invoiced(app, apply, store, capsys):
    apply(OPERATOR, register(), sign(), activate())
    bill(app, D("2026-04-30"), D("2026-05-02"))
    explanation = explain_domain(app, "lanvenec.fr", D("2027-06-01"))
    invoiced = {line["invoiced_by"] for line in explanation["lines"]}
    assert None in invoiced and "F-2026-000001" in invoiced
    for line in explanation["lines"]:
        assert recompute(line["tree"]) == Decimal(line["amount"])
    assert main(["--store", store, "explain", "--domain", "lanvenec.fr", "--as-of",
                 "2027-06-01"]) == 0
    assert "Pas encore facturée." in capsys.readouterr().out
    # A domain given where a document number goes: the message says how to ask for it.
    assert main(["--store", store, "explain", "lanvenec.fr"]) == 1
    assert "ledger explain --domain lanvenec.fr" in capsys.readouterr().err


def test_the_etat_liquidatif_is_joined_to_the_factur_x(app, apply):
    proposal = contested(app, apply)
    invoicing = invoicing_state(app)
    etat = etat_liquidatif(explain_document(app, proposal.invoice))
    assert etat == etat_liquidatif(explain_document(app, proposal.invoice))  # same bytes
    xml = facturx_xml(invoicing.documents[proposal.invoice], supporting=etat)
    assert b"ETAT-LIQUIDATIF-" + proposal.invoice.encode() in xml  # BG-24 / BT-122
    assert [p["id"] for p in fatal(validate(xml))] == []
    _, embedded = get_xml_from_pdf(facturx_pdf(invoicing.documents[proposal.invoice],
                                               invoicing.digests[proposal.invoice],
                                               supporting=etat), check_xsd=True)
    assert embedded == xml


def test_diff_names_the_entries_behind_each_change(app, apply, store, capsys):
    contested(app, apply)
    before = app.recorder.positions_of("order:BC-26-001")[0]  # any position before the letter
    termination = next(p for p in range(1, app.position() + 1)
                       if app.recorder.entry(p).topic == "subscription.termination_requested")
    result = charges_diff(app, termination - 1, termination)
    changed = [c for c in result["changes"] if c["change"] == "changed"]
    assert changed and all(c["because"][0]["position"] == termination for c in changed)
    renewal = next(c for c in changed if c["before"]["period_start"] == "2027-03-01")
    assert (renewal["before"]["period_end"], renewal["after"]["period_end"]) == (
        "2028-02-29", "2027-03-31")
    assert Decimal(result["net"]) < 0
    assert charges_diff(app, before, before)["changes"] == []
    assert main(["--store", store, "diff", "--known-at-position", str(termination - 1),
                 "--known-at-position", str(termination), "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out)["changes"] == result["changes"]
    assert main(["--store", store, "diff", "--known-at-position", "3"]) == 1
    assert "give two states of knowledge" in capsys.readouterr().err
    # A position past the end of the log is a mistake, said as such (not "no change").
    end = app.position()
    assert main(["--store", store, "diff", "--known-at-position", str(end),
                 "--known-at-position", str(end + 9)]) == 1
    err = capsys.readouterr().err
    assert f"--known-at-position {end + 9} is past the end of the log, which has {end} " \
           "entries" in err and "Traceback" not in err
    assert main(["--store", store, "charges", "--known-at-position", str(end + 1)]) == 1
    assert "past the end of the log" in capsys.readouterr().err
    assert main(["--store", store, "charges", "--known-at-position", str(end), "--json"]) == 0


def test_a_new_bareme_shows_in_the_diff(app, apply):
    from tests.conftest import ROOT, adopt

    apply(OPERATOR, register(), sign(), activate())
    before = app.position()
    adopt(app, ROOT / "tests" / "data" / "megalis-revision-2027.toml")
    result = charges_diff(app, before, app.position())
    assert result["changes"]
    for change in result["changes"]:
        assert change["before"]["period_start"] >= "2027-01-01"
        assert change["because"][0]["what"] == "barème megalis-suite-territoriale-2027-example " \
                                               "adopté"


def dossier_files(app, apply, tmp_path) -> tuple[dict[str, bytes], str]:
    contested(app, apply)
    signer = keygen(app, tmp_path / "operator.key", "territorial-ledger/test")
    out = tmp_path / "dossier.zip"
    from exports.dossier import make_dossier

    make_dossier(app, "lanvenec", out, signer)
    with zipfile.ZipFile(out) as archive:
        files = {info.filename: archive.read(info) for info in archive.infolist()}
    return files, signer.verifier.text


def test_the_dossier_verifies_offline_and_any_alteration_is_caught(app, apply, tmp_path):
    files, key = dossier_files(app, apply, tmp_path)
    assert {"history.json", "checkpoint.txt", "verify.py", "VERIFY.md", "rules.md",
            "MANIFEST.json", "MANIFEST.sig"} <= set(files)
    numbers = orjson.loads(files["MANIFEST.json"])["documents"]
    assert len(numbers) == 5
    for number in numbers:
        assert {f"documents/{number}.json", f"documents/{number}.pdf",
                f"documents/{number}.xml", f"explanations/{number}.md"} <= set(files)
    assert check_dossier(files, key).startswith("OK:")
    # Altering any file, adding one, or checking with another key is caught.
    for name in sorted(files):
        altered = dict(files)
        altered[name] = files[name] + b" "
        with pytest.raises(Rejected):
            check_dossier(altered, key)
    with pytest.raises(Rejected, match="not in the manifest"):
        check_dossier({**files, "documents/extra.pdf": b"%PDF"}, key)
    other = keygen(app, tmp_path / "other.key", "territorial-ledger/other").verifier.text
    with pytest.raises(Rejected, match="not signed by"):
        check_dossier(files, other)


def test_the_dossier_history_speaks_french(app, apply, tmp_path):
    """The member reads history.md: French labels, fields, dates and amounts; no text cut
    inside a word."""
    files, _ = dossier_files(app, apply, tmp_path)
    text = files["history.md"].decode()
    rows = [line for line in text.splitlines()[4:] if line.startswith("|")]
    assert rows and len(rows) == len(orjson.loads(files["history.json"]))
    for label in ("membre enregistré", "bon de commande reçu", "service activé",
                  "demande de résiliation reçue", "facture émise"):
        assert f"| {label} |" in text
    assert re.search(r"SIRET \d{14}", text) and "reçu le 16/02/2026" in text
    assert "\xa0€ HT |" in text and "catégorie commune" in text
    for english in ("customer.registered", "registered", "signed on", "received on", ", line "):
        assert english not in text
    guide = files["VERIFY.md"].decode()
    assert guide.startswith("# Vérifier ce dossier\n") and "Contenu : `history.json`" in guide
    for english in ("Checking", "Contents", "the customer's entries", "as recorded"):
        assert english not in guide
    for row in rows:  # a summary is whole, or cut between words and marked
        summary = row.rstrip(" |").rsplit(" | ", 1)[1]
        assert len(summary) <= 160 and (not summary.endswith("…") or summary.endswith(" …"))


def test_a_long_timeline_summary_is_cut_between_words():
    from projections.timeline import _summary, _summary_fr

    fields = {"key": "x" * 30, "name": "Communauté de communes " + "de Brocéliande " * 12,
              "siret": "21560103000012", "population": 14200, "member": True}
    for summary in (_summary("customer.registered", fields), _summary_fr(fields)):
        assert len(summary) <= 160 and summary.endswith(" …")
        assert summary[:-2].split()[-1] in fields["name"].split() + ["de"]
    moved = {"name": None, "address": {"line1": "Place de la Mairie", "postcode": "56320",
                                       "city": "Lanvénec"}, "member": False}
    assert _summary_fr(moved) == "adresse Place de la Mairie, 56320 Lanvénec, membre non"
    assert _summary("customer.updated", moved) == \
        "address Place de la Mairie, 56320 Lanvénec, member no"
    assert _summary("subscription.order_signed", {"extra_gb_packs": (10, 20)}) == \
        "extra gb packs 10 + 20"
    assert _summary_fr({"address": {"postcode": "56320", "city": "Lanvénec"}}) == \
        "adresse 56320 Lanvénec"
    # Hyphenated names are words too; a summary that fits is left as it is, spaces included.
    hyphens = {"name": "Syndicat " + "Saint-Jean-de-Brévelay " * 8}
    for summary in (_summary("customer.updated", hyphens), _summary_fr(hyphens)):
        assert summary.endswith(" …") and summary[:-2].split()[-1] == "Saint-Jean-de-Brévelay"
    assert _summary_fr({"name": "Le  Faouët"}) == "nom Le  Faouët"


def test_the_dossier_verifier_runs_alone(app, apply, tmp_path):
    """With Python's standard library and cryptography only: no ledger on the path."""
    files, key = dossier_files(app, apply, tmp_path)
    folder = tmp_path / "unzipped"
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    run = subprocess.run([sys.executable, "-I", str(folder / "verify.py"), "--key", key],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("OK:")
    (folder / "documents" / next(n for n in files if n.endswith(".json")
                                 and n.startswith("documents/")).split("/")[1]).write_bytes(
        b"{}")
    run = subprocess.run([sys.executable, "-I", str(folder / "verify.py"), "--key", key],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 4 and "REJECTED" in run.stderr
    # The zip itself is checked the same way.
    zipped = tmp_path / "dossier.zip"
    run = subprocess.run([sys.executable, "-I", str(folder / "verify.py"), "--key", key,
                          str(zipped)], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr


def test_dossier_from_the_command_line(app, apply, store, tmp_path, capsys):
    contested(app, apply)
    key = tmp_path / "operator.key"
    assert main(["--store", store, "audit", "keygen", "--out", str(key)]) == 0
    capsys.readouterr()
    out = tmp_path / "d.zip"
    assert main(["--store", store, "dossier", "lanvenec", "--key", str(key), "--out",
                 str(out)]) == 0
    assert "5 document(s)" in capsys.readouterr().out
    with zipfile.ZipFile(io.BytesIO(out.read_bytes())) as archive:
        assert "VERIFY.md" in archive.namelist()
    assert main(["--store", store, "dossier", "nobody", "--key", str(key), "--out",
                 str(out)]) == 1
    assert "no customer 'nobody'" in capsys.readouterr().err


def test_a_dossier_that_cannot_be_written_records_nothing(app, apply, store, tmp_path, capsys):
    """A dossier signs a checkpoint when the latest does not cover what it proves: a zip that
    could not be written must not leave that checkpoint behind, nor a run with dates that
    hold nothing pass for an empty dossier."""
    contested(app, apply)
    key = tmp_path / "operator.key"
    assert main(["--store", store, "audit", "keygen", "--out", str(key)]) == 0
    capsys.readouterr()
    before = app.position()
    for out, message in ((tmp_path / "missing" / "d.zip", "missing/d.zip"),
                         (tmp_path, "it is a folder")):
        assert main(["--store", store, "dossier", "lanvenec", "--key", str(key), "--out",
                     str(out)]) == 1
        assert message in capsys.readouterr().err
        assert app.position() == before
    assert main(["--store", store, "dossier", "lanvenec", "--key", str(key), "--out",
                 str(tmp_path / "d.zip"), "--from", "2028-01-01", "--to", "2027-01-01"]) == 1
    assert "--from 2028-01-01 is after --to 2027-01-01" in capsys.readouterr().err
    assert app.position() == before and not (tmp_path / "d.zip").exists()


def test_an_unknown_customer_is_an_error_not_an_empty_answer(app, apply, store, capsys):
    """`corrections` and `diff` for a customer the ledger does not know say so, as `charges`
    does, instead of "nothing to propose" or "nothing changed"."""
    contested(app, apply)
    upto = str(app.position())
    for argv in (["corrections", "--customer", "nobody"],
                 ["diff", "--known-at-position", "1", "--known-at-position", upto,
                  "--customer", "nobody"],
                 ["charges", "--customer", "nobody"]):
        assert main(["--store", store, *argv]) == 1, argv
        assert "unknown customer 'nobody'" in capsys.readouterr().err
    assert main(["--store", store, "diff", "--known-at-position", "1", "--known-at-position",
                 upto, "--customer", "lanvenec"]) == 0
    assert main(["--store", store, "corrections", "--customer", "lanvenec"]) == 0
