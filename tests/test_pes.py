"""PES V2 files for Hélios: titres with their ASAP, réductions, mandats on a closed exercice,
numbers recorded once, files written again byte for byte, every file valid against the DGFiP
5.17 schemas and the rules of their annotations."""

from __future__ import annotations

import base64
import gzip
import hashlib
from datetime import date

import orjson
import pytest
from freezegun import freeze_time
from lxml import etree

from cli.main import main
from commands.billing import bill, invoicing_state
from commands.corrections import apply_correction, proposals
from commands.importer import ImportRejected, import_lines
from commands.messages import parse_line
from exports.explain import etat_liquidatif, explain_document
from exports.invoice_pdf import facturx_pdf
from exports.pes import xsd_errors
from exports.pes_asap import talon
from exports.pes_check import check
from exports.pes_export import export_pes, treasury_state
from ledger.errors import LedgerError
from tests.conftest import activate, add_storage, jsonl, register, sign, siret, terminate

D = date.fromisoformat
OPERATOR = {"id": "op", "type": "register_operator", "name": "Syndicat mixte Mégalis Bretagne",
            "siret": siret(2535053),
            "address": {"line1": "15 rue Claude Chappe", "postcode": "35510",
                        "city": "Cesson-Sévigné"}}
ASAP = {
    "signataire": {"nom": "LE GALL", "prenom": "Yann", "role": "Président du comité syndical"},
    "ref_bdf": "123456",
    "centre_encaissement": {"adr3": "TSA 00000", "cp": "35908", "ville": "RENNES CEDEX 9"},
    "centre_finances_publiques": {"nom": "SGC DE RENNES", "adr2": "1 avenue Janvier",
                                  "cp": "35000", "ville": "Rennes", "bic": "BDFEFRPPCCT",
                                  "iban": "FR7630001007941234567890185"},
    "modalites_reglement": "Paiement par virement au comptable public.",
    "conditions_generales": "Contribution selon le barème adopté par le comité syndical.",
}
PROFILE = {
    "id": "helios", "type": "set_helios_profile", "id_post": "035999",
    "id_coll": siret(2535053), "cod_col": "351", "cod_bud": "00",
    "imputations": [
        {"match": "st-access-*", "nature": "13248", "cod_prod_loc": "STAC"},
        {"match": "st-extra-*", "nature": "70688", "fonction": "020", "cod_prod_loc": "STEX"}],
    "depense": {"imputations": [{"match": "st-*", "nature": "673", "fonction": "020"}]},
    "asap": ASAP,
}
NS = "{http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller}"


def references(customer="lanvenec", year=2026, **fields):
    return {"id": f"refs-{customer}-{year}", "type": "set_billing_references",
            "customer": customer, "year": year, **fields}


@pytest.fixture
def ledger(app, apply):
    apply(OPERATOR, PROFILE, register(), sign(), activate(), add_storage(),
          references(code_service="MAIRIE-FIN", engagement_number="EJ-2026-0042"),
          register("kerbrat", category="epci", kind="cc", population=9000),
          sign("kerbrat.fr", "kerbrat", storage_gb=50, extra_gb_packs=[]),
          activate("kerbrat.fr"))
    return app


def valid(data: bytes) -> bytes:
    assert xsd_errors(data) == []
    assert check(data) == []
    return data


def attachments(data: bytes) -> dict[str, tuple[str, bytes]]:
    root = etree.fromstring(data)
    return {pj.find("IdUnique").get("V"): (pj.find("TypePJ").get("V"), gzip.decompress(
        base64.b64decode(pj.findtext("Contenu/Fichier")))) for pj in root.iter("PJ")}


def v(node, path):
    return node.find(path).get("V")


def test_a_bordereau_of_titres_with_their_asap_and_factur_x(ledger):
    issued = bill(ledger, D("2026-12-31"), D("2027-01-05")).issued
    export = export_pes(ledger, file_date=D("2027-01-06"), by="Mme Riou")
    data = valid(export.data)
    root = etree.fromstring(data)
    assert root.tag == f"{NS}PES_Aller"
    (bordereau,) = root.iter("Bordereau")
    assert [v(bordereau, f"BlocBordereau/{k}") for k in ("Exer", "IdBord", "TypBord", "NbrPce")] \
        == ["2027", "1", "01", str(len(issued))]
    pieces = bordereau.findall("Piece")
    # One titre per invoice, numbered from 1 in the exercice, in issue order.
    assert [v(p, "BlocPiece/IdPce") for p in pieces] == [str(n) for n in range(1, len(issued) + 1)]
    assert [v(p, "BlocPiece/NumeroFacture") for p in pieces] == [d["number"] for d in issued]
    by_number = {v(p, "BlocPiece/NumeroFacture"): p for p in pieces}
    number = next(d["number"] for d in issued
                  if d["buyer"]["customer"] == "lanvenec" and d["lines"][0]["kind"] == "access_fee")
    access = by_number[number]  # lanvenec's access fee: investissement
    assert (v(access, "BlocPiece/TypPce"), v(access, "BlocPiece/NatPce"),
            v(access, "BlocPiece/Edition")) == ("01", "02", "02")
    assert (v(access, "BlocPiece/CodeService"), v(access, "BlocPiece/NumeroEngagement")) == (
        "MAIRIE-FIN", "EJ-2026-0042")
    line = access.find("LigneDePiece/BlocLignePiece/InfoLignePiece")
    assert (v(line, "Nature"), v(line, "CodProdLoc"), v(line, "MtHT")) == ("13248", "STAC",
                                                                         "600.00")
    tiers = access.find("LigneDePiece/Tiers/InfoTiers")
    siret_ = next(d for d in issued if d["number"] == number)["buyer"]["siret"]
    assert (v(tiers, "NatIdTiers"), v(tiers, "IdTiers"), v(tiers, "CatTiers"),
            v(tiers, "NatJur")) == ("01", siret_, "23", "09")
    pack = by_number["F-2027-000001"]
    assert v(pack, "BlocPiece/NatPce") == "01"  # the pack: fonctionnement
    epci = [p for p in pieces if v(p, "LigneDePiece/Tiers/InfoTiers/RefTiers") == "kerbrat"]
    assert {v(p, "LigneDePiece/Tiers/InfoTiers/CatTiers") for p in epci} == {"24"}
    # The ASAP (PES_Facture typed 09) points to its titre; the Factur-X is the document's own.
    files = attachments(data)
    uid = "35100" + number.replace("-", "")
    type_pj, asap = files[f"{uid}ASAP"]
    assert type_pj == "006" and xsd_errors(asap) == []
    asap_root = etree.fromstring(asap)
    assert v(asap_root, "PES_Facture/TypeFact") == "09"
    ref = asap_root.find("PES_Facture/FactureIndiv/RefTitre")
    assert [v(ref, k) for k in ("Exercice", "NumBordereau", "NumTitre", "NumLigne")] == [
        "2027", "1", v(access, "BlocPiece/IdPce"), "1"]
    assert v(asap_root, "PES_Facture/FactureIndiv/TotalAPayer/MtTotalTTC") == "600.00"
    invoicing = invoicing_state(ledger)
    etat = etat_liquidatif(explain_document(ledger, number))
    assert files[f"{uid}FX"] == (
        "008", facturx_pdf(invoicing.documents[number], invoicing.digests[number],
                           supporting=etat))
    # The bases de la liquidation, joined to the titre (décret 2012-1246, art. 24).
    assert files[f"{uid}EL"] == ("008", etat)
    refs = [v(ref, "IdUnique") for ref in access.iterfind("BlocPiece/PJRef")]
    assert refs == [f"{uid}ASAP", f"{uid}FX", f"{uid}EL"]


def test_numbers_are_recorded_once_and_a_file_is_written_again_byte_for_byte(ledger, store,
                                                                               tmp_path, capsys):
    bill(ledger, D("2026-12-31"), D("2027-01-05"))
    first = tmp_path / "first.xml"
    with freeze_time("2027-01-06"):
        assert main(["--store", store, "invoices", "export", "--format", "pes", "--out",
                     str(first), "--by", "Mme Riou"]) == 0
    out = capsys.readouterr().out
    assert "recorded and written" in out
    recorded = treasury_state(ledger)
    (file,) = recorded.files.values()
    assert file["sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()
    # The same range later, another day: the same bytes, nothing recorded.
    before = ledger.position()
    again = tmp_path / "again.xml"
    with freeze_time("2027-06-30"):
        assert main(["--store", store, "invoices", "export", "--format", "pes", "--out",
                     str(again), "--from", file["documents"][0], "--to",
                     file["documents"][-1]]) == 0
    assert "written again identical" in capsys.readouterr().out
    assert again.read_bytes() == first.read_bytes()
    assert ledger.position() == before
    # Nothing new to send; a range overlapping a file sent is refused, naming it.
    with pytest.raises(LedgerError, match="every issued document was already sent"):
        export_pes(ledger)
    with pytest.raises(LedgerError, match="already sent .* a document is sent once"):
        export_pes(ledger, first=file["documents"][1], last=file["documents"][2])
    # The next invoices continue the series: titres and bordereau.
    bill(ledger, D("2027-12-31"), D("2028-01-04"))
    bill(ledger, D("2027-04-30"), D("2027-05-03"))  # nothing new before: still numbered after
    export = export_pes(ledger, file_date=D("2028-01-05"))
    valid(export.data)
    root = etree.fromstring(export.data)
    assert [v(b, "BlocBordereau/Exer") + "/" + v(b, "BlocBordereau/IdBord")
            for b in root.iter("Bordereau")] == ["2028/1"]
    assert v(next(root.iter("Piece")), "BlocPiece/IdPce") == "1"  # a new exercice: from 1


def test_a_file_that_cannot_be_written_is_not_recorded_as_sent(ledger, store, tmp_path,
                                                                capsys):
    bill(ledger, D("2026-12-31"), D("2027-01-05"))
    before = ledger.position()
    for out in (tmp_path / "missing" / "titres.xml", tmp_path):  # no such folder; a folder
        with freeze_time("2027-01-06"):
            assert main(["--store", store, "invoices", "export", "--format", "pes", "--out",
                         str(out)]) == 1
        assert f"cannot write {out}" in capsys.readouterr().err
        assert ledger.position() == before and not treasury_state(ledger).files
    assert not list(tmp_path.glob(".*.part"))
    written = tmp_path / "titres.xml"
    with freeze_time("2027-01-06"):
        assert main(["--store", store, "invoices", "export", "--format", "pes", "--out",
                     str(written)]) == 0
    (file,) = treasury_state(ledger).files.values()
    assert file["sha256"] == hashlib.sha256(written.read_bytes()).hexdigest()


def test_a_file_date_typed_years_ahead_and_pes_options_without_pes_are_refused(
        ledger, store, tmp_path, capsys):
    with pytest.raises(LedgerError, match="no document has been issued yet"):
        export_pes(ledger, file_date=D("2027-01-06"))
    bill(ledger, D("2026-12-31"), D("2027-01-05"))
    before = ledger.position()
    with pytest.raises(LedgerError, match="more than a year after 2027"):
        export_pes(ledger, file_date=D("9999-12-31"))
    assert ledger.position() == before and not treasury_state(ledger).files
    # A journal asked with a PES option is a PES file meant: nothing written in its place.
    out = tmp_path / "titres.xml"
    assert main(["--store", store, "invoices", "export", "--out", str(out), "--file-date",
                 "2028-01-03"]) == 1
    assert "--file-date: for the PES file only" in capsys.readouterr().err
    assert not out.exists()
    # The exercice's complementary period, in the next January, is a date a file may have.
    assert export_pes(ledger, file_date=D("2028-01-20")).new


def late_termination(app, apply, *, sent: bool) -> None:
    """The 1 March 2027 renewal invoiced (and ``sent`` to the comptable, or not); the letter of
    31 January 2027 entered on 12 March."""
    with freeze_time("2026-02-20T09:00:00Z"):
        apply(OPERATOR, PROFILE, register(),
              sign(signed_on="2026-02-10", received_on="2026-02-16"), activate(on="2026-03-02"))
    with freeze_time("2027-03-05T09:00:00Z"):
        bill(app, D("2027-03-01"), D("2027-03-05"))
        if sent:
            export_pes(app, file_date=D("2027-03-05"))
    with freeze_time("2027-03-12T10:00:00Z"):
        apply(terminate(on="2027-01-31"))


def test_a_credit_note_of_the_same_exercice_is_a_reduction_of_the_titre(app, apply):
    late_termination(app, apply, sent=True)
    with freeze_time("2027-03-15T10:00:00Z"):
        (proposal,) = proposals(app)
        credit, replacement = apply_correction(app, proposal.id, "Mme Riou", D("2027-03-15"))
        original = treasury_state(app).sent[proposal.invoice]
        export = export_pes(app, file_date=D("2027-03-16"))
    valid(export.data)
    root = etree.fromstring(export.data)
    bordereaux = {v(b, "BlocBordereau/TypBord"): b for b in root.iter("Bordereau")}
    assert set(bordereaux) == {"01", "02"}  # the replacement invoice, and the réduction
    (reduction,) = bordereaux["02"].findall("Piece")
    assert (v(reduction, "BlocPiece/TypPce"), v(reduction, "BlocPiece/NatPce")) == ("02", "06")
    attach = reduction.find("LigneDePiece/BlocLignePiece/RattachPiece")
    assert [v(attach, k) for k in ("NatPceOrig", "ExerRat", "IdPceOrig", "IdLigneOrig")] == [
        "01", "2027", str(original["id_pce"]), "1"]
    assert v(reduction, "LigneDePiece/BlocLignePiece/InfoLignePiece/MtHT") == credit["total_ht"]
    # Titre numbers go on without a gap, bordereau numbers per type of bordereau.
    numbers = sorted(int(v(p, "BlocPiece/IdPce")) for p in root.iter("Piece"))
    assert numbers == [original["id_pce"] + 1, original["id_pce"] + 2]
    assert v(bordereaux["01"], "BlocBordereau/IdBord") == "2"
    assert v(bordereaux["02"], "BlocBordereau/IdBord") == "1"
    assert replacement["refers_to"] == proposal.invoice


def closed_year_credit(app, apply):
    """The 2027 pack period invoiced in advance in December 2026 and sent in 2026; a
    termination received on 20 December 2026, entered in January, cuts it short: the credit
    note of 2027 credits an invoice of the closed exercice 2026."""
    with freeze_time("2025-12-22T09:00:00Z"):
        apply(OPERATOR, PROFILE, register(),
              sign(signed_on="2025-12-19", received_on="2025-12-20"), activate(on="2026-01-05"))
    with freeze_time("2026-12-21T09:00:00Z"):
        bill(app, D("2027-01-01"), D("2026-12-21"), in_advance=True)
        export_pes(app, file_date=D("2026-12-21"))
    with freeze_time("2027-01-10T10:00:00Z"):
        apply(terminate(on="2026-12-20"))
        (proposal,) = proposals(app)
        apply_correction(app, proposal.id, "Mme Riou", D("2027-01-10"))
    return proposal


def test_a_credit_note_on_a_closed_exercice_is_a_mandat_annulant_un_titre(app, apply):
    proposal = closed_year_credit(app, apply)
    original = treasury_state(app).sent[proposal.invoice]
    with pytest.raises(LedgerError, match="closed exercice.*--mandat-bordereau N --first-mandat"):
        export_pes(app, file_date=D("2027-01-11"))
    assert not any(n.startswith("A-") for n in treasury_state(app).sent)  # nothing recorded
    export = export_pes(app, file_date=D("2027-01-11"), mandats=(23, 118))
    valid(export.data)
    root = etree.fromstring(export.data)
    (mandats,) = root.iterfind("PES_DepenseAller/Bordereau")
    assert [v(mandats, f"BlocBordereau/{k}") for k in ("Exer", "IdBord", "TypBord")] == [
        "2027", "23", "01"]
    (piece,) = mandats.findall("Piece")
    info = piece.find("BlocPiece/InfoPce")
    assert [v(info, k) for k in ("IdPce", "TypPce", "NatPce")] == ["118", "02", "09"]
    line = piece.find("LigneDePiece/BlocLignePiece/InfoLignePce")
    assert v(line, "Nature") == "673"
    attach = piece.find("LigneDePiece/BlocLignePiece/RattachPiece")
    assert [v(attach, k) for k in ("NatPceOrig", "ExerRat", "IdPceOrig")] == [
        "02", "2026", str(original["id_pce"])]
    # The schema orders the spending flow before the receipts.
    flows = [child.tag for child in root if child.tag.startswith("PES_")]
    assert flows.index("PES_DepenseAller") < flows.index("PES_RecetteAller")


def test_a_credit_note_whose_invoice_was_never_sent_is_refused(app, apply):
    late_termination(app, apply, sent=False)
    with freeze_time("2027-03-12T10:00:00Z"):
        (proposal,) = proposals(app)
        apply_correction(app, proposal.id, "Mme Riou", D("2027-03-12"))
    documents = list(invoicing_state(app).documents)
    credit = next(n for n in documents if n.startswith("A-"))
    with pytest.raises(LedgerError, match=f"{credit} credits {proposal.invoice}, which no PES"):
        export_pes(app, first=credit, last=credit, file_date=D("2027-03-13"))
    # Everything at once: the invoice credited before it was sent and its credit note cancel
    # out and are not sent; the rest is.
    export = export_pes(app, file_date=D("2027-03-13"))
    valid(export.data)
    sent = treasury_state(app).sent
    assert proposal.invoice not in sent and credit not in sent and len(sent) >= 1


def test_no_profile_no_file(app, apply):
    apply(OPERATOR, register(), sign(), activate())
    bill(app, D("2026-12-31"), D("2027-01-05"))
    with pytest.raises(LedgerError, match="set_helios_profile"):
        export_pes(app, file_date=D("2027-01-06"))


@pytest.mark.parametrize(("change", "message"), [
    ({"id_post": "35999"}, "id_post: '35999' is not a poste comptable codique"),
    ({"cod_col": "000"}, "cod_col: '000' is not a code collectivité"),
    ({"cod_bud": "0A"}, "cod_bud: '0A' is not a code budget"),
    ({"id_coll": "25350535800032"}, "id_coll: '25350535800032' is not a valid SIRET"),
    ({"imputations": []}, "imputations: a list of at least one rule"),
    ({"imputations": [{"match": "st-*", "nature": "7068a", "cod_prod_loc": "ST"}]},
     "imputations[1].nature: '7068a' is not a compte par nature"),
    ({"imputations": [{"match": "st-*", "nature": "70688"}]},
     "imputations[1].cod_prod_loc: required text"),
    ({"asap": {**ASAP, "ref_bdf": None}}, "asap.ref_bdf: required text"),
    ({"asap": {**ASAP, "centre_finances_publiques": {
        **ASAP["centre_finances_publiques"], "iban": "FR7630001007941234567890186"}}},
     "asap.centre_finances_publiques.iban: 'FR7630001007941234567890186' is not a valid "
     "IBAN"),
    ({"asap": {**ASAP, "tip": True}}, "asap.tip: unknown"),
])
def test_a_wrong_profile_is_refused_naming_the_field_and_nothing_is_stored(app, change,
                                                                           message):
    before = app.position()
    with pytest.raises(ImportRejected) as caught:
        import_lines(app, jsonl({**PROFILE, **change}), source="helios.jsonl")
    assert f"helios.jsonl, line 1: field {message}" in str(caught.value)
    assert app.position() == before


def _with(profile, path, value):
    """A copy of ``profile`` with the text at ``path`` (keys, dotted) replaced."""
    copy = orjson.loads(orjson.dumps(profile))
    *parents, last = path.split(".")
    node = copy
    for key in parents:
        node = node[key]
    node[last] = value
    return copy


@pytest.mark.parametrize(("path", "size"), [
    ("asap.signataire.nom", 38), ("asap.signataire.prenom", 38), ("asap.signataire.role", 50),
    ("asap.centre_finances_publiques.nom", 38), ("asap.centre_finances_publiques.adr2", 38),
    ("asap.centre_finances_publiques.ville", 38), ("asap.centre_encaissement.ville", 38),
    ("asap.centre_encaissement.adr3", 38), ("asap.email", 50),
])
def test_a_profile_text_longer_than_its_pes_field_is_refused_not_cut(app, path, size):
    """The PES file holds no more of these texts: the profile that the titres would print cut
    (or, for an e-mail address, wrong) is refused when it is set, naming the field."""
    fill = (lambda n: "a" * (n - 7) + "@ex.org") if path.endswith("email") else \
        (lambda n: "A" * n)
    accepted = parse_line(orjson.dumps(_with(PROFILE, path, fill(size))).decode())
    assert accepted.command.profile  # at the limit: accepted
    before = app.position()
    with pytest.raises(ImportRejected) as caught:
        import_lines(app, jsonl(_with(PROFILE, path, fill(size + 1))), source="helios.jsonl")
    assert (f"helios.jsonl, line 1: field {path}: at most {size} characters (got {size + 1})"
            in str(caught.value))
    assert app.position() == before


def test_a_line_without_imputation_is_refused_before_anything_is_recorded(ledger, apply):
    apply({**PROFILE, "id": "helios-2", "imputations": [
        {"match": "st-access-*", "nature": "13248", "cod_prod_loc": "STAC"}]})
    bill(ledger, D("2026-12-31"), D("2027-01-05"))
    before = ledger.position()
    with pytest.raises(LedgerError, match="no imputation configured for the catalogue line "
                                          "'st-extra-10gb'"):
        export_pes(ledger, file_date=D("2027-01-06"))
    assert ledger.position() == before


def test_the_annex_checks_catch_what_the_xsd_does_not(ledger):
    bill(ledger, D("2026-12-31"), D("2027-01-05"))
    data = export_pes(ledger, file_date=D("2027-01-06")).data
    root = etree.fromstring(data)
    block = next(root.iter("BlocBordereau"))
    block.find("MtBordHt").set("V", "1.00")
    block.find("NbrPce").set("V", "9")
    piece = next(root.iter("Piece"))
    piece.find("LigneDePiece/Tiers/InfoTiers/IdTiers").set("V", "21787789332879")
    broken = etree.tostring(root)
    assert xsd_errors(broken) == []  # the schema alone accepts all of it
    problems = " | ".join(check(broken))
    assert "NbrPce 9 for" in problems
    assert "MtBordHt 1.00 is not the sum of the lines" in problems
    assert "IdTiers 21787789332879 is not a valid SIRET" in problems


def test_the_talon_is_made_of_the_characters_the_schema_allows():
    line1, line2 = talon({"id_post": "02A1234", "cod_col": "351", "cod_bud": "00"}, 2027, 3,
                         45, 60000)
    assert line1 == "02A1234 35100 2027 0000003 00000045"
    assert line2 == "000000000060000"


def test_the_demo_profile_is_valid(tmp_path):
    from tests.conftest import ROOT

    lines = (ROOT / "docs" / "examples" / "00-operator.jsonl").read_text(encoding="utf-8")
    profile = next(orjson.loads(line) for line in lines.splitlines()
                   if '"set_helios_profile"' in line)
    assert parse_line(orjson.dumps(profile).decode()).command.profile["cod_col"] == "351"


def test_an_invoice_of_format_1_mixing_sections_is_reissued_then_sent(app, apply, store,
                                                                       capsys):
    """Before documents were split, one invoice could hold an access fee (investissement) and
    a pack (fonctionnement) due the same day: no titre can hold both."""
    apply(OPERATOR, PROFILE, register(), sign(received_on="2026-03-17"),
          activate(on="2026-04-01"))
    (old,) = bill(app, D("2026-04-30"), D("2026-05-02"), format=1).issued
    assert "format" not in old and len(old["lines"]) == 2
    with pytest.raises(LedgerError, match="before documents stated their budget section: give "
                                          "the imputation rule of 'st-(access-25gb|extra-10gb)' "
                                          "its natpce"):
        export_pes(app, file_date=D("2026-05-03"))
    sections = [{**PROFILE["imputations"][0], "natpce": "02"},
                {**PROFILE["imputations"][1], "natpce": "01"}]
    apply({**PROFILE, "id": "helios-sections", "imputations": sections})
    with pytest.raises(LedgerError, match=f"fonctionnement and investissement .* ledger "
                                          f"corrections reissue {old['number']}"):
        export_pes(app, file_date=D("2026-05-03"))
    assert main(["--store", store, "corrections", "reissue", old["number"], "--by", "Mme Riou",
                 "--issue-date", "2026-05-03"]) == 0
    out = capsys.readouterr().out
    assert out.count("(invoice,") == 2 and "(credit note, 660.00 € HT)" in out
    invoicing = invoicing_state(app)
    credit = invoicing.documents[invoicing.credited[old["number"]]]
    assert credit["cause"].startswith("Facture remplacée par des documents conformes")
    # Credited before it was sent, nothing of the old invoice is owed: neither it nor its credit
    # note goes to the comptable; the new invoices become titres 1 and 2.
    export = export_pes(app, file_date=D("2026-05-04"))
    valid(export.data)
    sent = treasury_state(app).sent
    assert old["number"] not in sent and credit["number"] not in sent
    assert sorted(sent[n]["id_pce"] for n in sent) == [1, 2]
    # Nothing else to reissue.
    new = [d for d in invoicing.documents.values() if d.get("refers_to") == old["number"]
           and d["kind"] == "invoice"]
    with pytest.raises(LedgerError, match="can be sent as it is"):
        apply_correction(app, new[0]["number"], "Mme Riou", D("2026-05-04"), reissue=True)


def test_the_demo_store_gives_a_valid_file(tmp_path, capsys):
    """What scripts/demo.sh does: the example files, billing, then the PES export."""
    from tests.conftest import MEGALIS_2026, ROOT

    store = str(tmp_path / "demo.sqlite3")
    assert main(["--store", store, "tariff", "adopt", str(MEGALIS_2026)]) == 0
    for path in sorted((ROOT / "docs" / "examples").glob("*.jsonl")):
        assert main(["--store", store, "import", str(path)]) == 0
    assert main(["--store", store, "bill", "--through", "2027-04-30", "--issue-date",
                 "2027-05-03", "--by", "demo"]) == 0
    out = tmp_path / "titres.xml"
    capsys.readouterr()
    assert main(["--store", store, "invoices", "export", "--format", "pes", "--out", str(out),
                 "--file-date", "2027-05-04", "--by", "demo", "--json"]) == 0
    summary = orjson.loads(capsys.readouterr().out)
    assert summary["new"] is True and len(summary["documents"]) == 8
    assert [b["type"] for b in summary["bordereaux"]] == ["01"]
    valid(out.read_bytes())
