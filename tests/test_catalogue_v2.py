"""Issue 11: eligibility and validity as data, the category taxonomy, the seeds' shapes,
validated adoption, seeds 001 and 003, and ``ledger tariff diff``."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from cli.main import main
from commands.importer import ImportRejected, import_lines
from ledger import categories, rules
from ledger.pricing import PriceRequest, PricingError, quote
from ledger.tariff_book import line_in_force
from ledger.tariff_parser import load_schedule
from ledger.tariffs import CatalogueError, Facts
from projections.charges import charges_as_of
from projections.history import known_at, tariffs_known_at
from tests.conftest import (
    MEGALIS_2026,
    ROOT,
    activate,
    add_storage,
    adopt,
    jsonl,
    open_ledger,
    register,
    sign,
)

SOMME_2025 = ROOT / "catalogues" / "somme-numerique-2025.toml"
E_MEGALIS_2007 = ROOT / "catalogues" / "megalis-e-megalis-2007.toml"
RAPPORT_2015 = ROOT / "catalogues" / "megalis-rapport-2015.toml"
REVISION_2027 = ROOT / "tests" / "data" / "megalis-revision-2027.toml"
ST_TEXT = MEGALIS_2026.read_text(encoding="utf-8")

HEAD = """
id = "{id}"
operator = "test-operator"
effective_from = {start}
[deliberation]
reference = "Délibération n° 2019-1"
date = 2019-12-01
"""


def write(tmp_path: Path, text: str, name: str = "grid.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def grid(tmp_path: Path, lines: str, *, id: str = "test-grid", start: str = "2020-01-01",
         name: str = "grid.toml") -> Path:
    return write(tmp_path, HEAD.format(id=id, start=start) + lines, name)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def quote_cli(capsys, catalogue: Path, line: str, *options: str):
    return run(capsys, "tariff", "quote", "--catalogue", str(catalogue), "--line", line,
               *options)


def st_variant(tmp_path: Path, replacements: dict[str, str], extra: str = "") -> Path:
    """The 2026 barème with some text replaced (a deliberation that changed it)."""
    text = ST_TEXT
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    return write(tmp_path, text + extra, "st-variant.toml")


def import_(app, *commands):
    return import_lines(app, jsonl(*commands), source="test.jsonl")


def rejected(app, *commands) -> str:
    with pytest.raises(ImportRejected) as caught:
        import_(app, *commands)
    return str(caught.value)


# 1. Eligibility and validity are data -------------------------------------------------------

def test_the_suite_territoriale_ceilings_are_read_from_the_bareme(tmp_path, store):
    """A commune of 4 000 is refused under the 2026 barème, accepted under one whose
    deliberation raised the ceiling: the rule is the barème's, not the code's."""
    app = open_ledger(store)
    try:
        message = rejected(app, register("grandville", population=4000), sign(
            "grandville.fr", "grandville"))
        assert "not eligible for the Suite Territoriale" in message
        assert "at most 3 500 inhabitants (it has 4 000)" in message
    finally:
        app.close()
    raised = st_variant(tmp_path, {
        'id = "megalis-suite-territoriale-2026"': 'id = "st-raised-ceiling"',
        "population_max = 3500": "population_max = 5000",
        "ends_on = 2028-12-31": "ends_on = 2030-12-31",
    })
    other = tmp_path / "other.sqlite3"
    app = open_store_with(other, raised)
    try:
        import_(app, register("grandville", population=4000),
                sign("grandville.fr", "grandville"), activate("grandville.fr"))
        (access,) = [c for c in charges_as_of(known_at(app), date(2026, 12, 31)) if c.kind == "access_fee"]
        # The contract's end comes from the same barème: the access fee covers up to 2030.
        assert (access.amount, access.period_end) == (Decimal("600.00"), date(2030, 12, 31))
    finally:
        app.close()


def open_store_with(path, catalogue: Path):
    from eventstore.app import open_store

    app = open_store(str(path))
    adopt(app, catalogue)
    return app


def test_a_population_limit_on_a_line_chooses_the_line_instead_of_failing_every_order(
        tmp_path):
    """Before: a population limit on a Suite Territoriale line made every sign_order fail
    (« give --population »). Now the line open to the body is chosen by its facts."""
    two_lines = st_variant(tmp_path, {
        'component = "access"\nvolume_gb = 25\n':
            'component = "access"\nvolume_gb = 25\n'
            'eligibility = { categories = ["commune", "ccas"], population_max = 1000 }\n',
    }, extra="""
[[lines]]
id = "st-access-25gb-larger"
label = "Messages + Fichiers — frais d'accès (25 Go), communes de plus de 1 000 habitants"
shape = "flat"
amount = 700.00
timing = "access_fee"
offer = "suite-territoriale"
component = "access"
volume_gb = 25
eligibility = { categories = ["commune", "ccas"], population_min = 1001 }

[[lines]]
id = "st-access-25gb-epci"
label = "Messages + Fichiers — frais d'accès (25 Go), EPCI et CIAS"
shape = "flat"
amount = 900.00
timing = "access_fee"
offer = "suite-territoriale"
component = "access"
volume_gb = 25
eligibility = { categories = ["epci", "cias"] }
""")
    app = open_store_with(tmp_path / "lines.sqlite3", two_lines)
    try:
        import_(app,
                register("petite", population=500), sign("petite.fr", "petite"),
                activate("petite.fr"),
                register("moyenne", population=2000), sign("moyenne.fr", "moyenne"),
                activate("moyenne.fr"),
                register("intercom", category="epci", kind="cc", population=9000),
                sign("intercom.fr", "intercom"), activate("intercom.fr"))
        access = {c.customer: (c.amount, c.line) for c in charges_as_of(known_at(app), date(2026, 12, 31))
                  if c.kind == "access_fee"}
        assert access == {
            "petite": (Decimal("600.00"), "st-access-25gb"),
            "moyenne": (Decimal("700.00"), "st-access-25gb-larger"),
            # A category-only limit is not ignored: the EPCI pays the EPCI line.
            "intercom": (Decimal("900.00"), "st-access-25gb-epci"),
        }
    finally:
        app.close()


def test_a_line_no_body_like_this_may_buy_is_refused_at_the_order(tmp_path):
    epci_only = st_variant(tmp_path, {
        'component = "access"\nvolume_gb = 50\n':
            'component = "access"\nvolume_gb = 50\neligibility = { categories = ["epci"] }\n',
    })
    app = open_store_with(tmp_path / "epci.sqlite3", epci_only)
    try:
        stored = app.recorder.max_notification_id()
        message = rejected(app, register("petite", population=500),
                           sign("petite.fr", "petite", storage_gb=50))
        assert "storage tier 50 GB" in message and "reserved for epci (not commune)" in message
        assert app.recorder.max_notification_id() == stored  # nothing of the file is stored
    finally:
        app.close()


@pytest.mark.parametrize(("options", "message"), [
    # The order form's ceilings apply to every line of the offer, when quoted too.
    (("--category", "commune", "--population", "3501"),
     "the offer 'suite-territoriale' is reserved for commune or ccas of at most 3 500 "
     "inhabitants (it has 3 501)"),
    ((), "give --category to tell"),
    (("--category", "commune"), "give --population to tell"),
    (("--category", "region", "--population", "100"), "reserved for commune, ccas, epci, cias "
                                                      "(not region)"),
])
def test_quoting_a_suite_territoriale_line_checks_the_offer(capsys, options, message):
    code, _, err = quote_cli(capsys, MEGALIS_2026, "st-access-25gb", "--on", "2026-03-01",
                             *options)
    assert code == 1 and message in err


def test_quoting_after_the_offer_ends_is_refused(capsys):
    code, _, err = quote_cli(capsys, MEGALIS_2026, "st-access-25gb", "--on", "2029-01-01",
                             "--category", "epci", "--population", "9000")
    assert code == 1 and "the offer 'suite-territoriale' ends on 2028-12-31" in err
    code, out, _ = quote_cli(capsys, MEGALIS_2026, "st-access-25gb", "--on", "2028-12-31",
                             "--category", "epci", "--population", "15000")
    assert code == 0 and "= 600.00 € HT" in out


@pytest.mark.parametrize(("line", "options", "message"), [
    # Category limits are checked even when no category is given: it is asked for.
    ("sn-demat-commune", ("--population", "45000"), "give --category to tell"),
    ("sn-demat-other", ("--category", "commune"),
     "reserved for ccas, cias, syndicat, other_public (not commune)"),
    ("sn-purchasing-group-cd80-am", ("--category", "commune"),
     "reserved for departement, epci:ca (not commune)"),
    ("sn-purchasing-group-cd80-am", ("--category", "epci"), "give --kind to tell"),
    ("sn-purchasing-group-cd80-am", ("--category", "epci", "--kind", "cc"),
     "reserved for departement, epci:ca (not epci)"),
    ("sn-high-security-full", ("--category", "commune", "--workstations", "25"),
     "at most 24 workstations (it has 25)"),
    ("sn-high-security-full", ("--category", "commune"), "give --workstations to tell"),
])
def test_somme_numerique_limits_are_always_checked(capsys, line, options, message):
    code, _, err = quote_cli(capsys, SOMME_2025, line, "--on", "2025-06-01", "--quantity", "1",
                             *options)
    assert code == 1 and message in err, err


def test_somme_numerique_lines_open_to_the_body_quote(capsys):
    code, out, _ = quote_cli(capsys, SOMME_2025, "sn-purchasing-group-cd80-am", "--on",
                             "2025-06-01", "--category", "epci", "--kind", "ca", "--json")
    assert code == 0 and orjson.loads(out)["amount"] == "800.00"
    code, out, _ = quote_cli(capsys, SOMME_2025, "sn-high-security-full", "--on", "2025-06-01",
                             "--category", "commune", "--workstations", "24", "--quantity", "24",
                             "--json")
    assert code == 0 and Decimal(orjson.loads(out)["amount"]) > 0


def test_quote_on_a_day_the_schedule_is_not_in_force(capsys):
    code, _, err = quote_cli(capsys, SOMME_2025, "sn-mail-5gb", "--on", "2024-12-31",
                             "--quantity", "1")
    assert code == 1 and "in force from 2025-01-01 to 2025-12-31, not on 2024-12-31" in err


def test_a_line_is_quoted_only_while_available(capsys, tmp_path):
    path = grid(tmp_path, """
[[lines]]
id = "launch-offer"
label = "Offre de lancement"
shape = "flat"
amount = 100.00
timing = "one_off"
available_from = 2020-03-01
available_until = 2020-06-30
""")
    for day, expected in (("2020-02-29", "available from 2020-03-01 only"),
                          ("2020-07-01", "available until 2020-06-30 only")):
        code, _, err = quote_cli(capsys, path, "launch-offer", "--on", day)
        assert code == 1 and expected in err
    code, out, _ = quote_cli(capsys, path, "launch-offer", "--on", "2020-06-30")
    assert code == 0 and "= 100.00 € HT" in out


def test_quote_defaults_to_today(capsys, tmp_path):
    from freezegun import freeze_time

    with freeze_time("2025-06-01"):
        code, out, _ = quote_cli(capsys, SOMME_2025, "sn-mail-5gb", "--quantity", "2")
    assert code == 0 and "price on 2025-06-01" in out
    with freeze_time("2026-06-01"):
        code, _, err = quote_cli(capsys, SOMME_2025, "sn-mail-5gb", "--quantity", "2")
    assert code == 1 and "not on 2026-06-01" in err


# 2. Taxonomy --------------------------------------------------------------------------------

@pytest.mark.parametrize(("category", "cat_tiers", "nat_jur"), [
    ("commune", "23", "09"), ("ccas", "26", "09"), ("cias", "26", "09"), ("epci", "24", "09"),
    ("syndicat", "24", "09"), ("departement", "22", "09"), ("region", "21", "09"),
    ("other_public", "29", "09"), ("company", "60", "03"), ("association", "60", "06"),
])
def test_each_category_maps_to_its_dgfip_codes(category, cat_tiers, nat_jur):
    found = categories.category(category)
    assert (found.cat_tiers, found.nat_jur) == (cat_tiers, nat_jur)


def test_the_old_other_category_reads_as_other_public():
    assert categories.category("other").id == "other_public"
    assert categories.matches("other_public", "other", None) is True


def test_kinds_of_epci_and_syndicats(capsys, store):
    app = open_ledger(store)
    try:
        import_(app, register("agglo", category="epci", kind="ca", population=60000,
                              member_communes=24),
                register("smo", category="syndicat", kind="mixte_ouvert", population=45000))
        code, out, _ = run(capsys, "--store", store, "customers", "--json")
        rows = {row["customer"]: row for row in orjson.loads(out)}
        assert (rows["agglo"]["kind"], rows["agglo"]["member_communes"]) == ("ca", 24)
        assert rows["agglo"]["category_label"] == "Communauté d'agglomération"
        assert rows["smo"]["category_label"] == "Syndicat mixte ouvert"
        message = rejected(app, register("bourg", kind="ca"))
        assert "field 'kind': a commune has no kind (got 'ca')" in message
        message = rejected(app, register("cc2", category="epci", kind="cx"))
        assert "the kind of a epci is one of cc, ca, cu, metropole, ept (got 'cx')" in message
    finally:
        app.close()


def test_a_category_selector_names_a_kind():
    assert categories.matches("epci:ca", "epci", "ca") is True
    assert categories.matches("epci:ca", "epci", "cc") is False
    assert categories.matches("epci:ca", "epci", None) is None
    assert categories.matches("epci", "epci", None) is True
    with pytest.raises(ValueError, match="the kind of a syndicat is one of"):
        categories.valid_selector("syndicat:ca")


# 3. Shapes ----------------------------------------------------------------------------------

def test_a_band_with_a_fixed_part_and_a_variable_part(tmp_path):
    schedule = load_schedule(grid(tmp_path, """
[[lines]]
id = "hosting"
label = "Hébergement"
shape = "population_bands"
timing = "yearly"
bands = [
  { from = 0, to = 999, amount = 100.00 },
  { from = 1000, amount = 150.00, rate = 0.05 },
]
"""))
    line = schedule.line("hosting")
    assert quote(line, PriceRequest(population=500)).amount == Decimal("100.00")
    price = quote(line, PriceRequest(population=3000))
    assert price.amount == Decimal("300.00")
    assert "150.00 + 0.05 × 3000 = 300.00" in price.steps[0]


@pytest.mark.parametrize(("shape", "population", "expected"), [
    ("formula", 10, "50.00"),        # (10 + 1 × 10) = 20 → minimum 50
    ("formula", 5000, "1000.00"),    # 5 010 → maximum 1 000
    ("population_bands", 10, "50.00"),
    ("population_bands", 5000, "1000.00"),
])
def test_minimum_and_maximum_apply_to_any_shape(tmp_path, shape, population, expected):
    body = ('fixed = 10.00\nrate = 1.00\n' if shape == "formula"
            else 'bands = [{ from = 0, rate = 1.00 }]\n')
    schedule = load_schedule(grid(tmp_path, f"""
[[lines]]
id = "bounded"
label = "Borné"
shape = "{shape}"
timing = "yearly"
minimum = 50.00
maximum = 1000.00
{body}"""))
    price = quote(schedule.line("bounded"), PriceRequest(population=population))
    assert price.amount == Decimal(expected)
    assert any("minimum" in step or "maximum" in step for step in price.steps)


def test_a_minimum_above_the_maximum_is_refused(tmp_path):
    with pytest.raises(CatalogueError, match="minimum 2000.00 is above maximum 1000.00"):
        load_schedule(grid(tmp_path, """
[[lines]]
id = "bounded"
label = "Borné"
shape = "per_inhabitant"
rate = 1.00
timing = "yearly"
minimum = 2000.00
maximum = 1000.00
"""))


def test_member_only_and_non_member_only_lines_including_on_quotation(capsys):
    code, _, err = quote_cli(capsys, RAPPORT_2015, "mr-individual-access", "--on", "2015-06-01",
                             "--quoted-amount", "300", "--non-member")
    assert code == 1 and "offered to members only" in err
    code, out, _ = quote_cli(capsys, RAPPORT_2015, "mr-individual-access", "--on", "2015-06-01",
                             "--quoted-amount", "300")
    assert code == 0 and "= 300.00 € HT" in out


def test_non_member_only_line(tmp_path):
    schedule = load_schedule(grid(tmp_path, """
[[lines]]
id = "outsiders"
label = "Tarif non-adhérents"
shape = "quoted"
timing = "one_off"
offered_to = "non_members"
"""))
    line = schedule.line("outsiders")
    with pytest.raises(PricingError, match="offered to non-members only"):
        quote(line, PriceRequest(member=True, quoted_amount=Decimal(5)))
    assert quote(line, PriceRequest(member=False, quoted_amount=Decimal(5))).amount == 5


def test_conditions_combined_with_or(tmp_path):
    schedule = load_schedule(grid(tmp_path, """
[[lines]]
id = "small-bodies"
label = "Petites collectivités"
shape = "flat"
amount = 10.00
timing = "yearly"
eligibility = { any_of = [
  { categories = ["commune", "ccas"], population_max = 3500 },
  { categories = ["epci:cc", "cias"], population_max = 15000 },
] }
"""))
    line = schedule.line("small-bodies")

    def price(**facts):
        return quote(line, PriceRequest(**facts)).amount

    assert price(category="commune", population=3500) == Decimal("10.00")
    assert price(category="epci", kind="cc", population=15000) == Decimal("10.00")
    with pytest.raises(PricingError, match="at most 3 500 inhabitants"):
        price(category="commune", population=3501)
    with pytest.raises(PricingError, match="give --kind"):
        price(category="epci", population=10000)
    with pytest.raises(PricingError, match=r"not epci\)|reserved for"):
        price(category="epci", kind="ca", population=10000)


def test_the_solidarity_ratios_of_seed_003(capsys):
    # « 400 € par an pour une petite Communauté de communes à 30 000 € par an pour une
    # Métropole » — « 75 fois plus élevée que la plus petite ».
    code, out, _ = quote_cli(capsys, RAPPORT_2015, "mr-services-bundle", "--on", "2015-06-01",
                             "--category", "epci", "--ratio", "75", "--json")
    assert code == 0 and orjson.loads(out)["amount"] == "30000.00"
    code, _, err = quote_cli(capsys, RAPPORT_2015, "mr-services-bundle", "--on", "2015-06-01",
                             "--category", "epci", "--ratio", "76")
    assert code == 1 and "the ratio must be between 1 and 75 (got 76)" in err
    # The statutory participation's base is left to the economic model: it is asked for.
    code, _, err = quote_cli(capsys, RAPPORT_2015, "mr-statutory-participation", "--on",
                             "2015-06-01", "--category", "commune", "--ratio", "500")
    assert code == 1 and "give --base" in err
    code, out, _ = quote_cli(capsys, RAPPORT_2015, "mr-statutory-participation", "--on",
                             "2015-06-01", "--category", "commune", "--ratio", "500",
                             "--base", "12.50", "--json")
    assert code == 0 and orjson.loads(out)["amount"] == "6250.00"


LOCKED = """
[[lines]]
id = "participation"
label = "Participation annuelle, fixée pour une durée de 5 ans"
shape = "flat"
amount = {amount}
timing = "yearly"
locked_years = 5
"""


def locked_grids(tmp_path: Path) -> tuple[Path, Path]:
    """A participation fixed for 5 years (100 € from 2020) and its revision (150 € from 2022)."""
    first = grid(tmp_path, LOCKED.format(amount="100.00"), id="grid-2020", start="2020-01-01",
                 name="2020.toml")
    revised = grid(tmp_path, LOCKED.format(amount="150.00"), id="grid-2022", start="2022-01-01",
                   name="2022.toml")
    return first, revised


def test_a_price_locked_for_five_years_from_adhesion(tmp_path, store):
    first, revised = locked_grids(tmp_path)
    from eventstore.app import open_store

    app = open_store(store)
    try:
        adopt(app, first)
        adopt(app, revised)
        schedules = tariffs_known_at(app)

        def price(day: str, adhesion: str | None) -> tuple[str, Decimal]:
            schedule, line = line_in_force(schedules, "participation", date.fromisoformat(day),
                                           adhesion and date.fromisoformat(adhesion))
            return schedule.id, quote(line, PriceRequest()).amount

        assert price("2023-06-01", "2020-06-01") == ("grid-2020", Decimal("100.00"))
        assert price("2025-05-31", "2020-06-01") == ("grid-2020", Decimal("100.00"))
        assert price("2025-06-01", "2020-06-01") == ("grid-2022", Decimal("150.00"))
        assert price("2023-06-01", "2022-03-01") == ("grid-2022", Decimal("150.00"))
        assert price("2023-06-01", None) == ("grid-2022", Decimal("150.00"))
    finally:
        app.close()


def test_locked_price_through_the_cli(capsys, tmp_path, store):
    first, revised = locked_grids(tmp_path)
    for path in (first, revised):
        assert run(capsys, "--store", store, "tariff", "adopt", str(path))[0] == 0
    code, out, _ = run(capsys, "--store", store, "tariff", "quote", "--line", "participation",
                       "--on", "2023-01-10", "--adhesion-on", "2021-02-01", "--json")
    assert code == 0 and (orjson.loads(out)["amount"], orjson.loads(out)["schedule"]) == (
        "100.00", "grid-2020")


# 4. Validated adoption ----------------------------------------------------------------------

@pytest.mark.parametrize(("eligibility", "message"), [
    ('{ categories = ["commune"], population_max = "3500" }',
     "eligibility.population_max must be a whole number ≥ 0 (got '3500')"),
    ('{ categories = ["commune"], populaton_max = 3500 }', "unknown key(s) populaton_max"),
    ('{ categories = ["village"] }', "category must be one of"),
    ('{ categories = ["commune"], population_min = 5000, population_max = 3500 }',
     "population_min 5000 is above population_max 3500"),
    ('{ any_of = [] }', "any_of"),
    ('"communes"', "eligibility"),
])
def test_an_ill_typed_eligibility_is_refused_naming_file_line_and_key(tmp_path, eligibility,
                                                                      message):
    path = grid(tmp_path, f"""
[[lines]]
id = "checked"
label = "Vérifiée"
shape = "flat"
amount = 10.00
timing = "yearly"
eligibility = {eligibility}
""")
    with pytest.raises(CatalogueError) as caught:
        load_schedule(path)
    text = str(caught.value)
    assert text.startswith(f"{path}, line 'checked': ") and message in text, text


@pytest.mark.parametrize(("change", "message"), [
    (("timing = \"yearly\"", "timing = \"yearly\"\nlocked_years = \"5\""),
     "locked_years must be a whole number"),
    (("timing = \"yearly\"", "timing = \"yearly\"\navailable_until = \"2020-12-31\""),
     "available_until must be a date"),
    (("timing = \"yearly\"", "timing = \"yearly\"\navailable_from = 2021-01-01\n"
                             "available_until = 2020-12-31"),
     "available_until 2020-12-31 is before available_from 2021-01-01"),
    (("timing = \"yearly\"", "timing = \"yearly\"\noffered_to = \"adherents\""),
     "offered_to must be one of"),
    (("timing = \"yearly\"", "timing = \"yearly\"\nminimum = \"90\""), "minimum is not a number"),
    (("timing = \"yearly\"", "timing = \"yearly\"\nbudget = \"capital\""),
     "budget must be one of fonctionnement, investissement (got 'capital')"),
    (("timing = \"yearly\"", "timing = \"yearly\"\nvat = \"exempt\""),
     "an exempt line states its reason"),
    (("timing = \"yearly\"", "timing = \"yearly\"\nvat_reason_code = \"CGI 261\""),
     "vat_reason_code must be a VATEX code"),
])
def test_other_typed_checks_name_the_key(tmp_path, change, message):
    text = """
[[lines]]
id = "checked"
label = "Vérifiée"
shape = "flat"
amount = 10.00
timing = "yearly"
"""
    path = grid(tmp_path, text.replace(*change))
    with pytest.raises(CatalogueError) as caught:
        load_schedule(path)
    assert message in str(caught.value), str(caught.value)


def test_a_refused_catalogue_records_nothing(capsys, store, tmp_path):
    path = st_variant(tmp_path, {"population_max = 3500": 'population_max = "3500"'})
    code, _, err = run(capsys, "--store", store, "tariff", "adopt", str(path))
    assert code == 1 and "population_max must be a whole number ≥ 0 (got '3500')" in err
    assert "Traceback" not in err
    from eventstore.app import open_store

    app = open_store(store)
    try:
        assert tariffs_known_at(app) == ()
    finally:
        app.close()


def test_replay_reads_the_normalised_schedule_not_today_s_parser(store, monkeypatch):
    """A schedule adopted under yesterday's checks replays even if today's are stricter."""
    app = open_ledger(store)
    import_(app, register(), sign(), activate())
    before = [(c.key, c.amount) for c in charges_as_of(known_at(app), date(2027, 12, 31))]
    app.close()

    import ledger.tariff_book
    import ledger.tariff_parser

    def stricter(*_args, **_kwargs):
        raise AssertionError("replay must not parse the catalogue again")

    monkeypatch.setattr(ledger.tariff_parser, "parse_schedule", stricter)
    monkeypatch.setattr(ledger.tariff_book, "parse_schedule", stricter)
    from eventstore.app import open_store

    app = open_store(store)
    try:
        after = [(c.key, c.amount) for c in charges_as_of(known_at(app), date(2027, 12, 31))]
        assert after == before and after
        (schedule,) = tariffs_known_at(app)
        assert schedule.line("st-access-25gb").params["amount"].member == Decimal("600.00")
    finally:
        app.close()


def test_the_normalised_form_round_trips_every_catalogue():
    from ledger.tariff_plain import from_plain, to_plain

    for path in sorted((ROOT / "catalogues").glob("*.toml")):
        schedule = load_schedule(path)
        plain = orjson.loads(orjson.dumps(to_plain(schedule)))
        again = from_plain(plain, schedule.document)
        assert to_plain(again) == to_plain(schedule), path.name
        assert again.lines == schedule.lines and again.offers == schedule.offers


# 5. Seeds 001 and 003 -----------------------------------------------------------------------

def test_seeds_001_and_003_are_adopted_and_quoted(capsys, store):
    for path in (E_MEGALIS_2007, RAPPORT_2015):
        code, out, err = run(capsys, "--store", store, "tariff", "adopt", str(path))
        assert code == 0, err
    code, out, _ = run(capsys, "--store", store, "tariff", "list", "--json")
    assert {s["id"] for s in orjson.loads(out)} == {"megalis-e-megalis-2007",
                                                     "megalis-rapport-2015"}
    # « une petite collectivité (- 2.000 habitants) paiera seulement 50 € HT par an »
    for population, amount in ((1500, "50.00"), (7500, "200.00"), (180000, "1500.00")):
        code, out, _ = run(capsys, "--store", store, "tariff", "quote", "--line",
                           "em-platform-access", "--on", "2007-06-01", "--category", "commune",
                           "--population", str(population), "--json")
        assert code == 0 and orjson.loads(out)["amount"] == amount
    # Populations the release gives no amount for are refused, not guessed.
    code, _, err = run(capsys, "--store", store, "tariff", "quote", "--line",
                       "em-platform-access", "--on", "2007-06-01", "--category", "commune",
                       "--population", "3000")
    assert code == 1 and "no band for 3000 inhabitants" in err
    code, out, _ = run(capsys, "--store", store, "tariff", "quote", "--line",
                       "mr-services-bundle", "--on", "2015-03-01", "--category", "epci",
                       "--ratio", "1", "--json")
    assert code == 0 and orjson.loads(out)["amount"] == "400.00"


def test_every_seed_row_about_prices_is_a_line_or_a_note():
    """Seed 003: the report's amounts (400 €, 30 000 €, 500×, 75×) each appear in the file."""
    text = RAPPORT_2015.read_text(encoding="utf-8")
    for quoted_text in ("400 € par an", "30 000 € par an", "500 fois plus élevée",
                        "75 fois plus élevée", "fixée pour une durée de 5 ans",
                        "certificats électroniques", "ADS", "visioconférence",
                        "orthophotographiques"):
        assert quoted_text.lower() in text.lower(), quoted_text
    seed = (ROOT.parent / "shared" / "seeds" / "001_d7fc96f177c70bd2.txt")
    text = E_MEGALIS_2007.read_text(encoding="utf-8")
    for quoted_text in ("50 € HT par an", "200 € HT par an", "1.500 € HT par an", "35 à 60 %"):
        assert quoted_text in text, quoted_text
    if seed.exists():  # the seeds travel beside the repository, not in it
        assert "50 € HT" in seed.read_text(encoding="utf-8")


# 6. tariff diff -----------------------------------------------------------------------------

def test_tariff_diff_lists_line_changes(capsys):
    code, out, _ = run(capsys, "tariff", "diff", str(MEGALIS_2026), str(REVISION_2027),
                       "--json")
    assert code == 0
    changes = {c["line"]: c for c in orjson.loads(out)["lines"]}
    assert changes["st-access-25gb"]["change"] == "changed"
    assert changes["st-access-25gb"]["before"].startswith("600.00")
    assert changes["st-access-25gb"]["after"].startswith("650.00")
    assert changes["st-extra-50gb"]["after"].startswith("198.00")
    assert "st-access-50gb" not in changes  # unchanged lines are not listed


def test_tariff_diff_shows_added_removed_and_terms(capsys, tmp_path):
    changed = st_variant(tmp_path, {
        'id = "megalis-suite-territoriale-2026"': 'id = "st-next"',
        "population_max = 3500": "population_max = 5000",
        '[[lines]]\nid = "st-access-200gb"': '[[lines]]\nid = "st-access-250gb"',
    })
    code, out, _ = run(capsys, "tariff", "diff", str(MEGALIS_2026), str(changed), "--json")
    assert code == 0
    changes = {c["line"]: c["change"] for c in orjson.loads(out)["lines"]}
    assert changes == {"st-access-200gb": "removed", "st-access-250gb": "added",
                       "offer suite-territoriale": "terms"}


def test_tariff_diff_customers_shows_what_each_would_pay(capsys, store):
    app = open_ledger(store)
    try:
        import_(app, register(), sign(extra_gb_packs=[10, 50]), activate(),
                register("kerbrat"), sign("kerbrat.fr", "kerbrat", storage_gb=50,
                                          extra_gb_packs=[]),
                activate("kerbrat.fr"), add_storage("kerbrat.fr", extra_gb_packs=[20]))
    finally:
        app.close()
    code, out, err = run(capsys, "--store", store, "tariff", "diff", str(MEGALIS_2026),
                         str(REVISION_2027), "--customers", "--json")
    assert code == 0, err
    rows = {r["domain"]: r for r in orjson.loads(out)["customers"]}
    assert (rows["lanvenec.fr"]["yearly_old"], rows["lanvenec.fr"]["yearly_new"]) == (
        "240.00", "264.00")
    assert rows["lanvenec.fr"]["access_fee_new"] == "650.00"
    assert (rows["kerbrat.fr"]["yearly_old"], rows["kerbrat.fr"]["yearly_new"],
            rows["kerbrat.fr"]["yearly_difference"]) == ("90.00", "99.00", "9.00")
    code, out, _ = run(capsys, "--store", store, "tariff", "diff", str(MEGALIS_2026),
                       str(REVISION_2027), "--customers")
    assert code == 0 and "lanvenec.fr" in out


# The four readings --------------------------------------------------------------------------

def test_the_readings_of_the_somme_numerique_grid(capsys):
    schedule = load_schedule(SOMME_2025)
    # « Frais d'accès par tranche de 7 postes »: a one-off access fee, not a commitment.
    install = schedule.line("sn-security-install")
    assert (install.timing, install.commitment_years) == ("access_fee", None)
    # « de 1001 à 2000 habitants » includes 2 000.
    code, out, _ = quote_cli(capsys, SOMME_2025, "sn-connected-townhall-socle", "--on",
                             "2025-06-01", "--category", "commune", "--population", "2000")
    assert code == 0 and "= 450.00 € HT" in out
    # « par kw consommé »: the unit says so.
    assert "kw" in (schedule.line("sn-dc-electricity").unit or "").lower() + (
        schedule.line("sn-dc-electricity").note or "").lower()
    # The « Pack Haute sécurité … moins de 25 postes » rows are limited by workstations, not
    # by a date.
    for line_id in ("sn-high-security-audit", "sn-high-security-full"):
        line = schedule.line(line_id)
        assert line.available_until is None
        assert {c.workstations_max for c in line.eligibility.any_of} == {24}


def test_rules_price_with_the_facts_of_the_order(tmp_path):
    """R3/R4 take the body's facts: the same volume may cost differently for an EPCI."""
    schedule = load_schedule(st_variant(tmp_path, {}, extra="""
[[lines]]
id = "st-extra-10gb-epci"
label = "Pack 10 Go, EPCI"
shape = "flat"
amount = 75.00
timing = "yearly"
offer = "suite-territoriale"
component = "extra_storage"
volume_gb = 10
eligibility = { categories = ["epci"] }
"""))
    # The commune line has no limit and comes first: an EPCI meets it too, so a barème that
    # wants the EPCI line chosen limits the commune line (as the test above does).
    commune = Facts("commune", None, 500)
    assert rules.pack_fee((schedule,), 10, date(2026, 5, 1), commune).amount == Decimal("60.00")
    assert rules.access_fee((schedule,), 25, date(2026, 5, 1), commune).line == "st-access-25gb"


@pytest.mark.parametrize(("options", "message"), [
    (["--category", "epci", "--kind", "bogus"],
     "--kind: the kind of a epci is one of cc, ca, cu, metropole, ept (got 'bogus')"),
    (["--kind", "cc"], "--kind needs --category"),
    (["--category", "commune", "--kind", "cc"], "--kind: a commune has no kind (got 'cc')"),
])
def test_a_quote_refuses_a_kind_the_command_files_refuse(capsys, options, message):
    """A quote is the price a member would be told: a body that cannot be registered is not
    priced as if its kind had been understood."""
    catalogue = SOMME_2025
    code, out, err = quote_cli(capsys, catalogue, "sn-intramuros-epci", "--on", "2025-06-01",
                               "--population", "10000", *options)
    assert (code, out) == (1, "") and message in err
    code, out, _ = quote_cli(capsys, catalogue, "sn-intramuros-epci", "--on", "2025-06-01",
                             "--population", "10000", "--category", "epci", "--kind", "cc")
    assert code == 0 and "€ HT" in out
    with pytest.raises(SystemExit):
        quote_cli(capsys, catalogue, "sn-intramuros-epci", "--year", "0")
    assert "--year: expected a whole number ≥ 1, got '0'" in capsys.readouterr().err
