"""The Hélios profile of a budget (``set_helios_profile``): the identifiers the comptable gives,
the imputations of the chart of accounts (M57), the ASAP settings — checked field by field
before anything is recorded, each mistake naming its field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from stdnum import iban as stdnum_iban
from stdnum.fr import siret as stdnum_siret

# The profile (set_helios_profile) --------------------------------------------------------------

def _need(mapping: Mapping[str, Any], key: str, where: str, pattern: str | None = None,
          what: str = "", size: int | None = None) -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}{key}: required text{(' (' + what + ')') if what else ''}")
    if pattern and not re.fullmatch(pattern, value):
        raise ValueError(f"{where}{key}: {value!r} is not {what}")
    if size and len(value) > size:
        # The PES file's field holds no more (its schema): refused here rather than cut there.
        raise ValueError(f"{where}{key}: at most {size} characters (got {len(value)})")
    return value


def _maybe(mapping: Mapping[str, Any], key: str, where: str, pattern: str | None = None,
           what: str = "", size: int | None = None) -> str | None:
    if mapping.get(key) is None:
        return None
    return _need(mapping, key, where, pattern, what, size)


def _known(mapping: Any, keys: set[str], where: str) -> Mapping[str, Any]:
    if not isinstance(mapping, Mapping):
        raise ValueError(f"{where.rstrip('.')}: expected an object")
    unknown = sorted(set(mapping) - keys)
    if unknown:
        raise ValueError(f"{where}{', '.join(unknown)}: unknown (expected "
                         f"{', '.join(sorted(keys))})")
    return mapping


def _rules(raw: Any, where: str, recette: bool) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{where}: a list of at least one rule")
    keys = {"match", "nature", "fonction", "operation", "label"}
    if recette:
        keys |= {"cod_prod_loc", "natpce"}
    rules = []
    for n, rule in enumerate(raw, start=1):
        at = f"{where}[{n}]."
        _known(rule, keys, at)
        match = rule.get("match")
        if isinstance(match, str):
            match = [match]
        if not isinstance(match, list) or not match or not all(
                isinstance(m, str) and m for m in match):
            raise ValueError(f"{at}match: a catalogue line id, schedule/line or charge kind "
                             "(globs allowed), or a list of them")
        checked = {"match": match,
                   "nature": _need(rule, "nature", at, r"0*[1-9][0-9]{0,11}",
                                   "a compte par nature of 1 to 12 digits (M57)"),
                   "fonction": _maybe(rule, "fonction", at, r"[0-9]{1,10}", "up to 10 digits"),
                   "operation": _maybe(rule, "operation", at, r"[0-9A-Za-z]{1,10}",
                                       "up to 10 letters or digits"),
                   "label": _maybe(rule, "label", at, size=160)}
        if recette:
            checked["cod_prod_loc"] = _need(rule, "cod_prod_loc", at, r"(?!0+$)[0-9A-Za-z]{1,4}",
                                            "a local product code of 1 to 4 letters or digits")
            checked["natpce"] = _maybe(rule, "natpce", at, r"0[12]",
                                       "01 (fonctionnement) or 02 (investissement)")
        rules.append(checked)
    return rules


def _address(raw: Any, where: str, street: bool) -> dict[str, str | None]:
    _known(raw, {"adr2", "adr3", "cp", "ville"}, where)
    return {"adr2": _need(raw, "adr2", where, size=38) if street
            else _maybe(raw, "adr2", where, size=38),
            "adr3": _maybe(raw, "adr3", where, size=38),
            "cp": _need(raw, "cp", where, r"[0-9]{5}", "a 5-digit postcode"),
            "ville": _need(raw, "ville", where, size=38)}


def check_profile(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The Hélios profile as recorded, or ``ValueError`` naming the first wrong field.

    Identifiers come from the comptable (the Hélios set-up of the budget); the imputations
    from the budget's chart of accounts (M57); the ASAP settings from the comptable too.
    """
    _known(raw, {"id_post", "libelle_poste", "id_coll", "cod_col", "cod_bud",
                 "libelle_col_bud", "cod_serv", "imputations", "depense", "asap"}, "")
    id_coll = _need(raw, "id_coll", "", what="the budget's SIRET")
    if not stdnum_siret.is_valid(id_coll):
        raise ValueError(f"id_coll: {id_coll!r} is not a valid SIRET (14 digits, Luhn key)")
    profile: dict[str, Any] = {
        "id_post": _need(raw, "id_post", "", r"02[AB][0-9]{3,4}|[0-9]{6,7}",
                         "a poste comptable codique (6 or 7 digits, or 02A/02B and 3 or 4 "
                         "digits)"),
        "libelle_poste": _maybe(raw, "libelle_poste", "", size=38),
        "id_coll": id_coll,
        "cod_col": _need(raw, "cod_col", "", r"(?!000)[0-9]{3}", "a code collectivité of 3 "
                         "digits, not 000"),
        "cod_bud": _need(raw, "cod_bud", "", r"[0-9A-Z][0-9]", "a code budget such as 00"),
        "libelle_col_bud": _maybe(raw, "libelle_col_bud", "", size=38),
        "cod_serv": _maybe(raw, "cod_serv", "", size=10),
        "imputations": _rules(raw.get("imputations"), "imputations", recette=True),
    }
    depense = raw.get("depense")
    if depense is not None:
        _known(depense, {"imputations", "mod_regl"}, "depense.")
        profile["depense"] = {
            "imputations": _rules(depense.get("imputations"), "depense.imputations",
                                  recette=False),
            "mod_regl": _maybe(depense, "mod_regl", "depense.", r"0[1-9]|1[01]",
                               "a mode de règlement from 01 to 11")}
    asap = raw.get("asap")
    if asap is None:
        raise ValueError("asap: required (the avis des sommes à payer that Hélios deposits on "
                         "Chorus Pro: signataire, ref_bdf, centres, modalités)")
    _known(asap, {"signataire", "ref_bdf", "tel", "email", "horaires", "centre_encaissement",
                  "centre_finances_publiques", "modalites_reglement", "modalites_contestation",
                  "conditions_generales"}, "asap.")
    signataire = _known(asap.get("signataire"), {"nom", "prenom", "role"}, "asap.signataire.")
    cfp = _known(asap.get("centre_finances_publiques"),
                 {"nom", "adr2", "adr3", "cp", "ville", "bic", "iban", "titulaire", "tel",
                  "horaires", "email"}, "asap.centre_finances_publiques.")
    iban = _need(cfp, "iban", "asap.centre_finances_publiques.")
    if not stdnum_iban.is_valid(iban):
        raise ValueError(f"asap.centre_finances_publiques.iban: {iban!r} is not a valid IBAN")
    profile["asap"] = {
        "signataire": {key: _need(signataire, key, "asap.signataire.", size=size)
                       for key, size in (("nom", 38), ("prenom", 38), ("role", 50))},
        "ref_bdf": _need(asap, "ref_bdf", "asap.", r"[0-9A-Z]{1,35}",
                         "the budget's numéro émetteur (from the comptable)"),
        "tel": _maybe(asap, "tel", "asap.", size=20),
        "email": _maybe(asap, "email", "asap.", r"[^@\s]+@[^@\s]+", "an e-mail address",
                        size=50),
        "horaires": _maybe(asap, "horaires", "asap.", size=38),
        "centre_encaissement": _address(asap.get("centre_encaissement"),
                                        "asap.centre_encaissement.", street=False),
        "centre_finances_publiques": {
            **_address({k: v for k, v in cfp.items() if k in ("adr2", "adr3", "cp", "ville")},
                       "asap.centre_finances_publiques.", street=True),
            "nom": _need(cfp, "nom", "asap.centre_finances_publiques.", size=38),
            "bic": _maybe(cfp, "bic", "asap.centre_finances_publiques.",
                          r"[A-Z]{6}[A-Z2-9][A-NP-Z0-9]([A-Z0-9]{3})?", "a BIC"),
            "iban": stdnum_iban.compact(iban),
            "titulaire": _maybe(cfp, "titulaire", "asap.centre_finances_publiques.", size=32),
            "tel": _maybe(cfp, "tel", "asap.centre_finances_publiques.", size=20),
            "horaires": _maybe(cfp, "horaires", "asap.centre_finances_publiques.", size=38),
            "email": _maybe(cfp, "email", "asap.centre_finances_publiques.", size=50)},
        "modalites_reglement": _need(asap, "modalites_reglement", "asap."),
        "modalites_contestation": _maybe(asap, "modalites_contestation", "asap.", size=420),
        "conditions_generales": _need(asap, "conditions_generales", "asap."),
    }
    for key, size in (("modalites_reglement", 250), ("conditions_generales", 250)):
        if len(profile["asap"][key]) > size:
            raise ValueError(f"asap.{key}: at most {size} characters")
    return profile
