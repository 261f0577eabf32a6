"""The auditors' web view in a real headless Chromium (Debian's, driven by Playwright with an
explicit executable path: no browser download)."""

from __future__ import annotations

import os
import shutil
import time
from datetime import datetime, timedelta

import pytest

from tests.api_server import Server, ledger, token
from tests.conftest import MEGALIS_2026, ROOT

ARTIFACTS = ROOT / "test-artifacts"


def chromium() -> str:
    found = os.environ.get("LEDGER_CHROMIUM") or shutil.which("chromium") \
        or shutil.which("chromium-browser")
    if found:
        return found
    reason = "no chromium on this machine (apt-get install -y chromium)"
    if os.environ.get("LEDGER_REQUIRE_BROWSER") == "1":
        pytest.fail(f"LEDGER_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    store = str(tmp_path_factory.mktemp("web") / "ledger.sqlite3")
    ledger(store, "tariff", "adopt", str(MEGALIS_2026))
    for path in sorted((ROOT / "docs" / "examples").glob("*.jsonl")):
        ledger(store, "import", str(path))
    # Billing recorded at least one whole second after the imports, so that a time picked to
    # the second falls between them (the recorded times are the store's own).
    time.sleep(1.1)
    ledger(store, "bill", "--through", "2027-04-30", "--issue-date", "2027-05-03")
    secret = token(store, "auditor", "crc")
    server = Server(store)
    yield server, secret
    assert server.errors() == ""
    server.stop()


def test_an_auditor_reads_a_timeline_as_known_at_a_time_and_a_document(site, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    executable = chromium()
    server, secret = site
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=["--no-sandbox"])
        page = browser.new_page(accept_downloads=True, locale="fr-FR")
        page.goto(f"{server.url}/ui/")
        assert page.url.endswith("/ui/login")  # not signed in: the login form
        page.get_by_label("Jeton d'accès").fill("wrong")
        page.get_by_role("button", name="Se connecter").click()
        expect(page.get_by_role("alert")).to_have_text("Jeton inconnu ou révoqué.")
        page.get_by_label("Jeton d'accès").fill(secret)
        page.keyboard.press("Enter")  # the keyboard alone signs in
        expect(page.get_by_role("heading", level=1)).to_have_text("Membres et documents")
        page.get_by_role("link", name="lanvenec", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Historique de lanvenec")
        everything = page.locator("#position").inner_text()
        rows = page.locator("table >> nth=0 >> tbody tr").count()
        # As known just after the imports, before billing: the invoices' entries are not there.
        times = page.locator("table >> nth=0 >> tbody tr >> td:nth-child(2)").all_inner_texts()
        events = page.locator("table >> nth=0 >> tbody tr >> td:nth-child(4)").all_inner_texts()
        # The member's history in French: what each entry records, and its details.
        details = page.locator("table >> nth=0 >> tbody tr >> td:nth-child(7)").all_inner_texts()
        assert "bon de commande reçu" in events and any("reçu le" in d for d in details)
        assert not any("received on" in d or "customer registered" in e
                       for d, e in zip(details, events))
        imported = [t for t, e in zip(times, events) if e != "facture émise"]
        moment = (datetime.fromisoformat(imported[-1].replace(" à ", "T"))
                  + timedelta(seconds=1)).isoformat()
        page.get_by_label("Tel que connu le (date et heure, UTC)").fill(moment)
        page.get_by_role("button", name="Afficher").click()
        expect(page.locator("#position")).not_to_have_text(everything)
        assert page.locator("table >> nth=0 >> tbody tr").count() < rows
        page.screenshot(path=str(ARTIFACTS / "web-timeline.png"), full_page=True)
        page.goto(f"{server.url}/ui/customers/lanvenec")
        page.get_by_role("link", name="F-2027-000002").first.click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Facture F-2027-000002")
        expect(page.locator("#rederived")).to_contain_text("identique")
        expect(page.locator("pre")).to_contain_text("Règle R3")
        with page.expect_download() as download:
            page.locator("#download-facturx").click()
        saved = tmp_path / "F-2027-000002.pdf"
        download.value.save_as(saved)
        assert saved.read_bytes().startswith(b"%PDF-1.7")
        page.screenshot(path=str(ARTIFACTS / "web-document.png"), full_page=True)
        browser.close()
    print(f"screenshots: {ARTIFACTS / 'web-timeline.png'}, {ARTIFACTS / 'web-document.png'}")


def test_the_pages_errors_are_french_pages_with_their_status(site):
    """No browser needed: an unknown member or document, a time that is not one, a document
    not yet under a signed checkpoint — each a French page, with its HTTP status."""
    import httpx

    server, secret = site
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {secret}"}) \
            as http:
        for path, status, text in (
                ("/ui/customers/nobody", 404, "Aucun membre « nobody » dans ce grand livre."),
                ("/ui/customers/lanvenec?known_at=garbage", 400,
                 "« garbage » n'est pas une date et heure"),
                ("/ui/documents/NOPE", 404, "Aucun document « NOPE » dans ce grand livre."),
                ("/ui/documents/F-2027-000002", 200,
                 "pas encore : aucun point de contrôle signé ne couvre encore son écriture")):
            answer = http.get(path)
            assert answer.status_code == status, (path, answer.status_code)
            assert answer.headers["content-type"].startswith("text/html"), path
            assert text in answer.text.replace("&#34;", '"').replace("&#39;", "'"), path
            assert "no checkpoint" not in answer.text
