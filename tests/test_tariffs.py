"""Catalogue files: validation messages, adoption, revisions, and the ``ledger tariff`` CLI."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from cli.main import main
from ledger.tariff_parser import load_schedule
from ledger.tariffs import CatalogueError
from projections.charges import charges_as_of
from projections.history import known_at, tariffs_known_at
from tests.conftest import MEGALIS_2026, ROOT, activate, add_storage, adopt, register, sign

REVISION_2027 = ROOT / "tests" / "data" / "megalis-revision-2027.toml"
SOMME_2025 = ROOT / "catalogues" / "somme-numerique-2025.toml"

VALID = """
id = "test-2026"
operator = "test-operator"
effective_from = 2026-01-01
[deliberation]
reference = "Délibération n° 2025-42"
date = 2025-12-01

[[lines]]
id = "flat-line"
label = "A flat line"
shape = "flat"
amount = 10.00
timing = "yearly"
"""


def write(tmp_path: Path, text: str, name: str = "bad.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(CatalogueError) as caught:
        load_schedule(path)
    return str(caught.value)


def test_the_valid_template_loads(tmp_path):
    schedule = load_schedule(write(tmp_path, VALID))
    assert (schedule.id, schedule.effective_from, schedule.line("flat-line").params["amount"].member) \
        == ("test-2026", date(2026, 1, 1), Decimal("10.00"))


def test_missing_amount(tmp_path):
    message = error_of(tmp_path, VALID.replace("amount = 10.00\n", ""))
    assert message == f"{tmp_path / 'bad.toml'}, line 'flat-line': missing amount for 'amount' (shape flat)"


def test_negative_price(tmp_path):
    message = error_of(tmp_path, VALID.replace("amount = 10.00", "amount = -5.00"))
    assert message.endswith("line 'flat-line': negative price -5.00 for amount")


def test_negative_member_price(tmp_path):
    message = error_of(tmp_path, VALID.replace("amount = 10.00",
                                              "amount = { member = 10.00, non_member = -1 }"))
    assert "line 'flat-line': negative price -1 for amount.non_member" in message


def test_unknown_shape(tmp_path):
    message = error_of(tmp_path, VALID.replace('shape = "flat"', 'shape = "banded"'))
    assert "bad.toml, line 'flat-line': unknown shape 'banded'" in message


def test_overlapping_population_bands(tmp_path):
    bands = VALID.replace('shape = "flat"\namount = 10.00', '''shape = "population_bands"
bands = [
  { from = 0, to = 500, amount = 60 },
  { from = 400, to = 1000, amount = 120 },
]''')
    message = error_of(tmp_path, bands)
    assert "line 'flat-line': overlapping population bands 0–500 and 400–1000" in message


def test_float_free_decimals_are_kept_exact(tmp_path):
    schedule = load_schedule(write(tmp_path, VALID.replace("amount = 10.00", "amount = 0.10")))
    assert schedule.line("flat-line").params["amount"].member == Decimal("0.10")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("timing = \"yearly\"", "timing = \"monthly\""), "timing must be one of"),
        (("effective_from = 2026-01-01", ""), "missing effective_from"),
        (("id = \"flat-line\"\n", ""), "line #1 has no id"),
        (("amount = 10.00", "amount = 10.00\nrate = 0.1"), "rate does not apply to shape flat"),
        (("amount = 10.00", "amount = 10.00\nprice = 3"), "unknown key(s) price"),
        (("amount = 10.00", "amount = \"ten\""), "amount is not a number: 'ten'"),
        (("[deliberation]", "[deliberations]"), "unknown key(s) deliberations"),
        (("timing = \"yearly\"", "timing = \"multi_year\""), "years must be a whole number"),
        # A typo's exponent could not be rounded to the cent: every later reckoning failed,
        # and an adopted schedule is never removed.
        (("amount = 10.00", "amount = 1e30"), "amount 1E+30 is too large"),
        (("amount = 10.00", "amount = 9223372036854775807"), "is too large"),
        (("id = \"test-2026\"", "id = \"../../tmp/pwned\""), "lower-case letters, digits"),
        (("id = \"test-2026\"", "id = \"<script>\""), "lower-case letters, digits"),
    ],
)
def test_other_mistakes_name_what_is_wrong(tmp_path, change, message):
    assert message in error_of(tmp_path, VALID.replace(*change))


def test_not_toml(tmp_path):
    assert "not valid TOML" in error_of(tmp_path, "id = \n")


def test_a_byte_order_mark_is_read_past(tmp_path):
    assert load_schedule(write(tmp_path, "\ufeff" + VALID)).id == "test-2026"


def test_two_schedules_of_one_operator_effective_the_same_day(app, tmp_path):
    adopt(app, write(tmp_path, VALID, "a.toml"))
    same_day = write(tmp_path, VALID.replace('id = "test-2026"', 'id = "test-2026-bis"'), "b.toml")
    with pytest.raises(CatalogueError) as caught:
        adopt(app, same_day)
    assert str(caught.value) == (
        "b.toml: schedule 'test-2026-bis' of test-operator takes effect on 2026-01-01, "
        "the same day as schedule 'test-2026' (a.toml)")


def test_adopting_the_same_schedule_twice_records_it_once(app, tmp_path):
    assert adopt(app) is False  # the fixture adopted it already
    # The same schedule from a copy of the file, renamed and commented: the same content.
    copy = write(tmp_path, "# copie\n" + MEGALIS_2026.read_text(encoding="utf-8"), "copy.toml")
    assert adopt(app, copy) is False
    assert [s.id for s in tariffs_known_at(app)] == ["megalis-suite-territoriale-2026"]


def test_a_schedule_id_cannot_be_reused_for_other_prices(app, tmp_path):
    changed = MEGALIS_2026.read_text(encoding="utf-8").replace("amount = 600.00", "amount = 601.00")
    with pytest.raises(CatalogueError, match="already adopted with other content"):
        adopt(app, write(tmp_path, changed, "megalis.toml"))


def test_adopted_schedule_replays_to_the_same_schedule(app, store):
    from eventstore.app import open_store

    assert tariffs_known_at(open_store(store)) == (load_schedule(MEGALIS_2026),)


# Revisions ---------------------------------------------------------------------------------

def history(apply):
    apply(register(), sign(), activate(), add_storage(),
          sign("ploemeur.fr", order="BC-27-003", signed_on="2027-02-01", received_on="2027-02-03",
               extra_gb_packs=[]),
          activate("ploemeur.fr", on="2027-02-15"))


def as_rows(charges):
    return [(c.domain, str(c.charge_date), str(c.amount), c.schedule) for c in charges]


def test_a_2027_revision_changes_renewals_from_2027_and_nothing_before(app, apply):
    history(apply)
    before = charges_as_of(known_at(app), date(2028, 12, 31))
    adopt(app, REVISION_2027)
    after = charges_as_of(known_at(app), date(2028, 12, 31))

    assert [c for c in before if c.charge_date.year < 2027] == \
        [c for c in after if c.charge_date.year < 2027]
    assert as_rows(c for c in after if c.charge_date.year >= 2027) == [
        # 10 GB pack ordered 2026-03-17: renewals on 2027-04-01 at 66 €, and 2028-04-01 cut at the
        # contract end: 66 × 275/365 = 49.726… → 49.73
        ("lanvenec.fr", "2027-04-01", "66.00", "megalis-suite-territoriale-2027-example"),
        ("lanvenec.fr", "2027-12-01", "66.00", "megalis-suite-territoriale-2027-example"),
        ("lanvenec.fr", "2028-04-01", "49.73", "megalis-suite-territoriale-2027-example"),
        # 10 GB pack added 2026-11-01: its 2028-12-01 period is cut too: 66 × 31/365 = 5.605… → 5.61
        ("lanvenec.fr", "2028-12-01", "5.61", "megalis-suite-territoriale-2027-example"),
        # access fee of an order received 2027-02-03: the 2027 schedule, 650 €
        ("ploemeur.fr", "2027-02-15", "650.00", "megalis-suite-territoriale-2027-example"),
    ]
    assert [c.amount for c in before if c.charge_date.year >= 2027] == [
        Decimal("60.00"), Decimal("60.00"), Decimal("45.21"), Decimal("5.10"), Decimal("600.00")]


def test_access_fee_is_priced_on_the_order_receipt_not_the_activation(app, apply):
    adopt(app, REVISION_2027)
    # received in December 2026 (2026 prices), activated in January 2027
    apply(register(), sign(signed_on="2026-12-10", received_on="2026-12-14", extra_gb_packs=[]),
          activate(on="2027-01-05"))
    (fee,) = charges_as_of(known_at(app), date(2027, 1, 5))
    assert (fee.amount, fee.schedule, fee.line) == (
        Decimal("600.00"), "megalis-suite-territoriale-2026", "st-access-25gb")


def test_known_at_before_the_revision_was_adopted_uses_the_old_prices(store, apply, app):
    history(apply)
    earlier = app.position()
    adopt(app, REVISION_2027)
    renewal = [c for c in charges_as_of(known_at(app, earlier), date(2027, 4, 1))
               if c.charge_date == date(2027, 4, 1)]
    assert [c.amount for c in renewal] == [Decimal("60.00")]


# CLI ---------------------------------------------------------------------------------------

def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_quote_json(capsys):
    code, out, _ = run(capsys, "tariff", "quote", "--catalogue", str(SOMME_2025), "--on",
                       "2025-06-01", "--line", "sn-tenders-platform", "--non-member",
                       "--quantity", "150", "--json")
    assert code == 0
    answer = orjson.loads(out)
    assert (answer["amount"], answer["schedule"], answer["vat"]["code"]) == (
        "8000.00", "somme-numerique-2025", "O")
    assert answer["steps"] == ["75.00 × 150 marchés publiés l'année précédente = 11250.00",
                               "above the maximum → 8000.00", "= 8000.00 € HT"]


def test_cli_quote_text(capsys):
    code, out, _ = run(capsys, "tariff", "quote", "--catalogue", str(SOMME_2025), "--on",
                       "2025-06-01", "--line", "sn-security-install", "--quantity", "15")
    assert code == 0
    assert "15 postes → 3 started block(s) of 7" in out and "= 225.00 € HT" in out
    assert "timing: access_fee" in out


def test_cli_quote_errors(capsys):
    code, _, err = run(capsys, "tariff", "quote", "--catalogue", str(SOMME_2025), "--on",
                       "2025-06-01", "--line", "sn-nope")
    assert (code, err) == (1, "error: schedule 'somme-numerique-2025' has no line 'sn-nope'\n")
    code, _, err = run(capsys, "tariff", "quote", "--catalogue", str(SOMME_2025), "--on",
                       "2025-06-01", "--line", "sn-mail-5gb")
    assert code == 1 and "give --quantity" in err
    # The 2025 grid does not price 2026, and a line past its availability is refused.
    code, _, err = run(capsys, "tariff", "quote", "--catalogue", str(SOMME_2025), "--on",
                       "2026-02-01", "--line", "sn-mail-5gb", "--quantity", "1")
    assert code == 1 and "in force from 2025-01-01 to 2025-12-31, not on 2026-02-01" in err


def test_cli_list_catalogue(capsys):
    code, out, _ = run(capsys, "tariff", "list", "--catalogue", str(SOMME_2025), "--json")
    assert code == 0
    listing = orjson.loads(out)
    assert len(listing["lines"]) == 77
    by_id = {line["id"]: line for line in listing["lines"]}
    assert by_id["sn-demat-commune"]["price"] == "0.10 / 0.12 per inhabitant, min 90.00"
    code, out, _ = run(capsys, "tariff", "list", "--catalogue", str(SOMME_2025))
    assert code == 0 and "sn-intramuros-epci" in out


def test_cli_adopt_and_list_the_store(capsys, store):
    code, out, _ = run(capsys, "--store", store, "tariff", "adopt", str(MEGALIS_2026))
    assert code == 0 and "Adopted" in out
    code, out, _ = run(capsys, "--store", store, "tariff", "adopt", str(MEGALIS_2026))
    assert code == 0 and "already adopted" in out
    code, out, _ = run(capsys, "--store", store, "tariff", "list", "--json")
    assert [s["id"] for s in orjson.loads(out)] == ["megalis-suite-territoriale-2026"]


def test_adopting_a_schedule_effective_before_issued_documents_says_so(capsys, app, apply,
                                                                        store, tmp_path):
    from commands.billing import bill
    from tests.test_invoicing import OPERATOR

    apply(OPERATOR, register(), sign(), activate())
    code, _, err = run(capsys, "--store", store, "tariff", "adopt", str(REVISION_2027))
    assert code == 0 and "note:" not in err  # nothing issued yet
    bill(app, date(2027, 6, 30), date(2027, 7, 1))
    revision = REVISION_2027.read_text().replace(
        'id = "megalis-suite-territoriale-2027-example"', 'id = "revision-b"').replace(
        "effective_from = 2027-01-01", "effective_from = 2027-03-01")
    path = write(tmp_path, revision, "revision-b.toml")
    code, _, err = run(capsys, "--store", store, "tariff", "adopt", str(path))
    assert code == 0
    assert "documents were already issued up to 2027-07-01, after 2027-03-01" in err
    assert "`ledger corrections` lists the invoices it changes" in err


def test_cli_adopt_a_bad_file(capsys, store, tmp_path):
    path = write(tmp_path, VALID.replace("amount = 10.00", "amount = -1"))
    code, _, err = run(capsys, "--store", store, "tariff", "adopt", str(path))
    assert code == 1 and f"{path}, line 'flat-line': negative price -1 for amount" in err
