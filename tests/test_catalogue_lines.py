"""Every line of both seed grids, priced once against a value derived by hand from the grid.

Each case: (line id, request, expected € amount) with a comment deriving the value from the
grid's own words (../shared/seeds/000_… for Mégalis, 002_… for Somme Numérique).
"""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest

from ledger.pricing import PriceRequest, PricingError, commitment_total, quote
from ledger.tariff_parser import load_schedule
from ledger.tariffs import Eligibility, Split
from tests.conftest import ROOT

MEGALIS = load_schedule(ROOT / "catalogues" / "megalis-suite-territoriale-2026.toml")
SOMME = load_schedule(ROOT / "catalogues" / "somme-numerique-2025.toml")
E_MEGALIS = load_schedule(ROOT / "catalogues" / "megalis-e-megalis-2007.toml")
REPORT_2015 = load_schedule(ROOT / "catalogues" / "megalis-rapport-2015.toml")

M, NM = True, False  # member, non-member


def req(member=M, **kw):
    for key in ("quantity", "supplier_price", "quoted_amount"):
        if key in kw:
            kw[key] = Decimal(str(kw[key]))
    return PriceRequest(member=member, **kw)


MEGALIS_CASES = [
    # « 600 € (25 Go) » … « 2 500 € (200 Go) » — investissement, frais d'accès
    ("st-access-25gb", req(), "600.00"),
    ("st-access-50gb", req(), "1000.00"),
    ("st-access-100gb", req(), "1500.00"),
    ("st-access-150gb", req(), "2000.00"),
    ("st-access-200gb", req(), "2500.00"),
    # « Go supplémentaires 10 … 60 € », « 20 … 90 € », « 50 … 180 € » (coût annuel HT)
    ("st-extra-10gb", req(), "60.00"),
    ("st-extra-20gb", req(), "90.00"),
    ("st-extra-50gb", req(), "180.00"),
]

SOMME_CASES = [
    # 1 – Pack dématérialisation
    # « Communes / par habitant 0,10 0,12 … minimum 90 € »: 1 200 inhabitants × 0.10 = 120
    ("sn-demat-commune", req(population=1200, category="commune"), "120.00"),
    # non-member, 500 inh.: 0.12 × 500 = 60 < 90 → minimum 90
    ("sn-demat-commune", req(NM, population=500, category="commune"), "90.00"),
    # member, 1 inh. … the minimum also applies: 0.10 → 90
    ("sn-demat-commune", req(population=1, category="commune"), "90.00"),
    # « EPCI / par habitant 0,07 … maximum 5 000 € »: 40 000 × 0.07 = 2 800
    ("sn-demat-epci", req(population=40000, category="epci"), "2800.00"),
    # 100 000 × 0.07 = 7 000 > 5 000 → maximum 5 000
    ("sn-demat-epci", req(population=100000, category="epci"), "5000.00"),
    # « Autres établissements publics 300,00 »
    ("sn-demat-other", req(category="other_public"), "300.00"),
    # « Clé de signature électronique (retrait Somme Numérique) 130,00 150,00 … pour 3 ans »
    ("sn-signing-key-pickup", req(NM), "150.00"),
    # « Clé … (avec livraison sur site) 180,00 200,00 »
    ("sn-signing-key-delivered", req(), "180.00"),
    # « 1.1 Actes au Contrôle de légalité (seul) 55,00 100,00 »
    ("sn-legality-acts-only", req(NM), "100.00"),
    # 2 – « 65,00 75,00 … prix unitaire par marché publié l'année précédente / plafond de 8000 € »
    # 40 tenders last year × 65 = 2 600
    ("sn-tenders-platform", req(quantity=40), "2600.00"),
    # non-member, 150 tenders × 75 = 11 250 > 8 000 → cap 8 000
    ("sn-tenders-platform", req(NM, quantity=150), "8000.00"),
    # « 2.1 Formation … 250,00 350,00 … par agent et par jour »: 3 agent-days × 350 = 1 050
    ("sn-tenders-training", req(NM, quantity=3), "1050.00"),
    # 3 – « 12,00 dès la 1e unité » and « > 10 : 8,00 à partir du 11e »: 15 names = 10 × 12 + 5 × 8
    ("sn-domain-names", req(quantity=15), "160.00"),
    # 4 names: 4 × 12 = 48 (the first tier only)
    ("sn-domain-names", req(quantity=4), "48.00"),
    # « tarif fournisseur +20% / +22% »: 45.50 × 1.20 = 54.60 ; non-member 45.50 × 1.22 = 55.51
    ("sn-domain-other-ssl", req(supplier_price="45.50"), "54.60"),
    ("sn-domain-other-ssl", req(NM, supplier_price="45.50"), "55.51"),
    # 4 – « Hébergement d'un site Web simple … 30,00 75,00 »
    ("sn-web-hosting", req(NM), "75.00"),
    # « Mise en place et accompagnement préalable … 250,00 300,00 »
    ("sn-web-setup", req(), "250.00"),
    # « Accompagnement renforcé pour communes de moins de 2000 habitants 250,00 300,00 »
    ("sn-web-content-support", req(NM, population=1500, category="commune"), "300.00"),
    # 5 – « Mise à disposition de l'application mobile Intramuros 250,00 300,00 »
    ("sn-intramuros-setup", req(NM), "300.00"),
    # Intramuros bands: « < 150 habitants 60,00 » … « 5001 à 10000 habitants 900,00 »
    ("sn-intramuros-commune", req(population=149, category="commune"), "60.00"),
    ("sn-intramuros-commune", req(population=150, category="commune"), "120.00"),
    ("sn-intramuros-commune", req(population=301, category="commune"), "180.00"),
    ("sn-intramuros-commune", req(population=1000, category="commune"), "240.00"),
    ("sn-intramuros-commune", req(population=1001, category="commune"), "420.00"),
    ("sn-intramuros-commune", req(population=3500, category="commune"), "540.00"),
    ("sn-intramuros-commune", req(population=4200, category="commune"), "720.00"),
    ("sn-intramuros-commune", req(population=10000, category="commune"), "900.00"),
    # « > 10 000 habitants : 0,01 € /hab x 12 »: 12 500 × 0.01 × 12 = 1 500
    ("sn-intramuros-commune", req(population=12500, category="commune"), "1500.00"),
    # « (100 € + 0,01 € / hab.) x 12 … remise de 5 % »: (100 + 0.01 × 20 000) × 12 = 3 600; −5 % = 3 420
    ("sn-intramuros-epci", req(population=20000, category="epci"), "3420.00"),
    # 6 – « Messagerie Zimbra maximum 5Go /compte 15,00 21,00 »: 12 accounts × 15 = 180
    ("sn-mail-5gb", req(quantity=12), "180.00"),
    # « 6.1 … stockage illimité 23,00 28,00 »: non-member 3 × 28 = 84
    ("sn-mail-unlimited", req(NM, quantity=3), "84.00"),
    # « 6.2 Mise en service année 1 /compte 0,00 11,00 »: member 0; non-member 5 × 11 = 55
    ("sn-mail-setup", req(quantity=5), "0.00"),
    ("sn-mail-setup", req(NM, quantity=5), "55.00"),
    # 7 – « Offre de base … Accès à une salle sans contrepartie financière »
    ("sn-visio-base", req(), "0.00"),
    # « salle supplémentaire … 60,00 70,00 »: 2 rooms × 70 = 140
    ("sn-visio-extra-room", req(NM, quantity=2), "140.00"),
    # 8 – Mairie connectée « Accompagnement /installation du matériel informatique 75,00 90,00 »
    ("sn-connected-townhall-install", req(population=800, category="commune"), "75.00"),
    # « Socle numérique V2 commune < 1000 habitants 350,00 » and « de 1001 à 2000 … 450,00 »
    ("sn-connected-townhall-socle", req(population=640, category="commune"), "350.00"),
    ("sn-connected-townhall-socle", req(NM, population=1800, category="commune"), "450.00"),
    # 10 – « Back up sauvegarde locale / FAS 100,00 100,00 »
    ("sn-backup-access", req(NM), "100.00"),
    # « … / 60Go 420,00 480,00 »
    ("sn-backup-60gb", req(NM), "480.00"),
    # « Equipement boitier de sauvegarde NAS 2 disques 400,00 400,00 »
    ("sn-backup-nas", req(), "400.00"),
    # « Supplément annuel / Go supplémentaire consommé 8,00 9,00 »: 25 GB × 8 = 200
    ("sn-backup-extra-gb", req(quantity=25), "200.00"),
    # « Tout autre besoin … sur devis »: the amount comes with the order
    ("sn-backup-custom", req(quoted_amount="1234.56"), "1234.56"),
    # 11 – « VM1 … 420,00 480,00 »: 2 VMs × 420 = 840
    ("sn-vm1", req(quantity=2), "840.00"),
    # « option mémoire vive supplémentaire 60,00 70,00 »
    ("sn-vm-option-ram", req(NM, quantity=1), "70.00"),
    # « option Go supplémentaire 12,00 15,00 »: 20 GB × 12 = 240
    ("sn-vm-option-gb", req(quantity=20), "240.00"),
    # « option cpu supplémentaire 60,00 70,00 »: 2 × 60 = 120
    ("sn-vm-option-cpu", req(quantity=2), "120.00"),
    # « Projet complexe … sur devis »
    ("sn-vm-complex", req(quoted_amount="9800"), "9800.00"),
    # 12 – « Espace privatif … sur étude »
    ("sn-dc-private-space", req(quoted_amount="25000"), "25000.00"),
    # « Location d'une baie 42U - Frais d'accès au service 1 000,00 1 100,00 »
    ("sn-dc-rack-access", req(NM), "1100.00"),
    # « Mise à disposition d'une baie complète … 8 400,00 9 240,00 »
    ("sn-dc-rack", req(), "8400.00"),
    # « Location d'1/2 baie … 800,00 880,00 »
    ("sn-dc-half-rack-access", req(), "800.00"),
    # « Mise à disposition d'1/2 baie … 4 800,00 5 280,00 »
    ("sn-dc-half-rack", req(NM), "5280.00"),
    # « Location d'1/4 baie … 500,00 550,00 »
    ("sn-dc-quarter-rack-access", req(NM), "550.00"),
    # « Mise à disposition d'1/4 baie … 3 000,00 3 300,00 »
    ("sn-dc-quarter-rack", req(), "3000.00"),
    # « Location 1U … 350,00 400,00 »
    ("sn-dc-1u-access", req(), "350.00"),
    # « Mise à disposition d'1 U … 600,00 650,00 »
    ("sn-dc-1u", req(NM), "650.00"),
    # « Part variable … 0,20 0,22 … par kw consommé »: 12 345 kWh × 0.20 = 2 469
    ("sn-dc-electricity", req(quantity=12345), "2469.00"),
    # non-member 1 234.5 kWh × 0.22 = 271.59
    ("sn-dc-electricity", req(NM, quantity="1234.5"), "271.59"),
    # 13 – « Frais d'accès au service 250,00 260,00 … à la borne »: 3 × 250 = 750
    ("sn-wifi-access", req(quantity=3), "750.00"),
    # « Projet simple … (avec engagement 2 ans) 204,00 214,00 »
    ("sn-wifi-simple", req(NM), "214.00"),
    # « Projet complexe … sur devis »
    ("sn-wifi-complex", req(quoted_amount="3100.10"), "3100.10"),
    # 14 – « Communes < 499 habitants 36,00 48,00 », « entre 500 et 1999 84,00 90,00 »,
    #      « > 2000 habitants 180,00 204,00 »
    ("sn-purchasing-group-commune", req(population=320, category="commune"), "36.00"),
    ("sn-purchasing-group-commune", req(NM, population=500, category="commune"), "90.00"),
    ("sn-purchasing-group-commune", req(NM, population=2500, category="commune"), "204.00"),
    # « EPCI / par habitant 240,00 » (read as flat: see the catalogue)
    ("sn-purchasing-group-epci", req(category="epci"), "240.00"),
    # « CD80 / AM 800,00 »
    ("sn-purchasing-group-cd80-am", req(category="departement"), "800.00"),
    # « Autres établissements publics 300,00 »
    ("sn-purchasing-group-other", req(category="ccas"), "300.00"),
    # 15 – « Forfait 2h30 250,00 260,00 », « Forfait 5h 400,00 420,00 », « Forfait 10h 700,00 735,00 »
    ("sn-support-2h30", req(), "250.00"),
    ("sn-support-5h", req(NM), "420.00"),
    ("sn-support-10h", req(NM), "735.00"),
    # « Audit technique initial … 85,00 90,00 … par ordinateur »: 6 × 85 = 510
    ("sn-maintenance-audit", req(quantity=6), "510.00"),
    # « Contrat maintenance postes … 144,00 150,00 … par ordinateur »: 6 × 144 = 864
    ("sn-maintenance-workstation", req(quantity=6), "864.00"),
    # « Contrat maintenance serveur … 840,00 880,00 … par serveur »: non-member 1 × 880
    ("sn-maintenance-server", req(NM, quantity=1), "880.00"),
    # 16 – « Forfait installation, suivi, assistance / 3 ans 75,00 90,00 … par tranche de 7 postes »
    # 15 workstations → 3 started blocks of 7 → 3 × 75 = 225
    ("sn-security-install", req(quantity=15), "225.00"),
    # 14 workstations → exactly 2 blocks → non-member 2 × 90 = 180
    ("sn-security-install", req(NM, quantity=14), "180.00"),
    # « Solution anti-virus poste 18,00 20,00 »: 10 × 18 = 180
    ("sn-antivirus-workstation", req(quantity=10), "180.00"),
    # « Solution anti-virus serveur 200,00 220,00 »: 2 × 220 = 440
    ("sn-antivirus-server", req(NM, quantity=2), "440.00"),
    # « Coffre-fort … 35,00 40,00 … 1e année gratuite pour toute première souscription »
    # first subscription, year 1 → 0; year 2: 4 agents × 35 = 140
    ("sn-password-vault", req(quantity=4, first_subscription=True, year=1), "0.00"),
    ("sn-password-vault", req(quantity=4, first_subscription=True, year=2), "140.00"),
    # « Socle numérique V2 … de 1001 à 2000 habitants 450,00 »: 2 000 itself is in the band
    ("sn-connected-townhall-socle", req(population=2000, category="commune"), "450.00"),
    # Pack Cybersécurité 2025 — « par tranche de 7 postes sur un même site 75,00 90,00 »: 8 → 2 × 75
    ("sn-cyber-install", req(quantity=8), "150.00"),
    # « 1 licence antivirus + 1 coffre-fort 30,00 35,00 »: 8 × 35 = 280
    ("sn-cyber-av-vault", req(NM, quantity=8), "280.00"),
    # Pack Haute sécurité (« moins de 25 postes »): « Audit technique initial + forfait … 85,00
    # 90,00 … par ordinateur »: 8 × 85 = 680
    ("sn-high-security-audit", req(quantity=8, category="commune", workstations=8), "680.00"),
    # « … + 1 contrat d'assistance informatique pour un poste 150,00 165,00 »: 8 × 150 = 1 200
    ("sn-high-security-full", req(quantity=8, category="ccas", workstations=8), "1200.00"),
    # 17 – « Adressage 300,00 330,00 1/2 journée dans vos locaux »
    ("sn-addressing", req(quantity=1), "300.00"),
    # « Accompagnement création de la base adresses locales 250,00 275,00 … avec votre matériel »
    ("sn-bal-creation-sn-premises", req(NM, quantity=2), "550.00"),
    # « Accompagnement création de la base adresses locales 200,00 220,00 … dans vos locaux »
    ("sn-bal-creation-your-premises", req(quantity=1), "200.00"),
    # « Besoin de complément 150,00 165,00 »
    ("sn-bal-complement", req(NM, quantity=1), "165.00"),
    # 18 – « 1/2 journée Chef de projet 320,00 350,00 »: 3 half-days × 320 = 960
    ("sn-project-manager", req(quantity=3), "960.00"),
    # « 1/2 journée assistance technique 220,00 250,00 »
    ("sn-technical-assistance", req(NM, quantity=1), "250.00"),
    # « Astreinte heures non ouvrées - déplacement 170,00 200,00 jusqu'à une heure de présence »
    ("sn-on-call-trip", req(), "170.00"),
    # « toute heure supplémentaire 85,00 90,00 — toute heure entamée est due »: 2.25 h → 3 × 85
    ("sn-on-call-extra-hour", req(quantity="2.25"), "255.00"),
    # « Déplacement d'un agent à la demande de la collectivité 50,00 55,00 »
    ("sn-agent-trip", req(NM, quantity=2), "110.00"),
    # 19 – « Tarif demi-journée petite salle 65,00 75,00 € TTC », « journée 95,00 110,00 € TTC »
    ("sn-room-small-half-day", req(), "65.00"),
    ("sn-room-small-day", req(NM), "110.00"),
    # « Salle Cathedrale ou grand format … comptée double »: 2 × 65 = 130 ; 2 × 110 = 220
    ("sn-room-large-half-day", req(), "130.00"),
    ("sn-room-large-day", req(NM), "220.00"),
]


@pytest.mark.parametrize(("line", "request_", "expected"), MEGALIS_CASES)
def test_megalis_lines(line, request_, expected):
    assert quote(MEGALIS.line(line), request_).amount == Decimal(expected)


@pytest.mark.parametrize(("line", "request_", "expected"), SOMME_CASES)
def test_somme_numerique_lines(line, request_, expected):
    assert quote(SOMME.line(line), request_).amount == Decimal(expected)


def test_every_line_of_both_grids_is_priced_above():
    assert {line.id for line in MEGALIS.lines} == {case[0] for case in MEGALIS_CASES}
    assert {line.id for line in SOMME.lines} == {case[0] for case in SOMME_CASES}


def test_every_pricing_shape_is_used_by_the_grids():
    from ledger.tariffs import SHAPES

    used = {line.shape for schedule in (SOMME, MEGALIS, E_MEGALIS, REPORT_2015)
            for line in schedule.lines}
    assert used == set(SHAPES)


@pytest.mark.parametrize(
    ("line", "request_", "message"),
    [
        ("sn-demat-commune", req(category="commune"), "is priced by population: give --population"),
        ("sn-demat-commune", req(population=45000), "give --category to tell"),
        ("sn-demat-other", req(category="commune"), "reserved for ccas, cias, syndicat, other_public"),
        ("sn-purchasing-group-cd80-am", req(category="commune"), "reserved for departement, epci:ca"),
        ("sn-high-security-full", req(category="commune", quantity=30), "give --workstations"),
        ("sn-high-security-full", req(category="commune", workstations=25, quantity=25),
         "of at most 24 workstations \\(it has 25\\)"),
        ("sn-mail-5gb", req(), "give --quantity"),
        ("sn-domain-other-ssl", req(), "give --supplier-price"),
        ("sn-vm-complex", req(), "quotation"),
        ("sn-web-content-support", req(population=2400, category="commune"),
         "reserved for commune of at most 1 999 inhabitants"),
        ("sn-intramuros-epci", req(population=9000, category="commune"), "reserved for epci"),
        ("sn-demat-commune", req(NM, population=10, category="commune"), None),  # control
    ],
)
def test_missing_input_or_ineligible_request_is_explained(line, request_, message):
    if message is None:
        assert quote(SOMME.line(line), request_).amount == Decimal(90)
        return
    with pytest.raises(PricingError, match=message):
        quote(SOMME.line(line), request_)


def test_commitment_totals_price_each_year():
    # « Contrat maintenance postes … (eng. 3 ans) 144,00 »: 6 computers × 144 × 3 years = 2 592
    assert commitment_total(SOMME.line("sn-maintenance-workstation"), req(quantity=6)) == Decimal(2592)
    # Coffre-fort, first subscription: year 1 free, then 2 × (4 × 35) = 280
    vault = SOMME.line("sn-password-vault")
    assert commitment_total(vault, req(quantity=4, first_subscription=True)) == Decimal(280)
    # not a first subscription: 3 × 140 = 420
    assert commitment_total(vault, req(quantity=4)) == Decimal(420)
    assert commitment_total(SOMME.line("sn-web-hosting"), req()) is None


def test_steps_show_how_the_amount_was_computed():
    price = quote(SOMME.line("sn-intramuros-epci"), req(population=20000, category="epci"))
    assert price.steps == (
        "(100.00 + 0.01 × 20000) × 12 = 3600.00",
        "minus 5 % = 3420.00",
        "= 3420.00 € HT",
    )


def test_a_population_outside_every_band_is_reported():
    # The « Socle numérique » bands stop at 2 000 inhabitants; without the section's
    # eligibility condition, 2 500 inhabitants falls in no band.
    socle = attrs.evolve(SOMME.line("sn-connected-townhall-socle"), eligibility=Eligibility())
    with pytest.raises(PricingError, match="no band for 2500 inhabitants"):
        quote(socle, req(population=2500, category="commune"))


def test_members_only_line_refuses_a_non_member_price():
    line = attrs.evolve(SOMME.line("sn-legality-acts-only"),
                        params={"amount": Split(Decimal(55), None)})
    with pytest.raises(PricingError, match="no non-member price"):
        quote(line, req(NM))
