"""Kinds of bodies an operator bills, as French public law names them, and their DGFiP codes.

A customer has a **category** and, where the law distinguishes several, a **kind**: an EPCI à
fiscalité propre is a communauté de communes, d'agglomération, urbaine, a métropole or an
établissement public territorial (CGCT L5210-1-1 A, L5219-2); a syndicat is a SIVU, a SIVOM
or a syndicat mixte (fermé or ouvert, L5711-1 and L5721-2). Grids price and restrict by
either (« EPCI ≤ 15 000 habitants », « communautés d'agglomération »).

Each category maps to the codes a titre de recette needs in a PES V2 file (``CatTiers`` and
``NatJur``, CommunPES.xsd 5.17: 21 Régions, 22 Départements, 23 Communes, 24 Groupements de
collectivités, 26 CCAS, 29 Autres établissements publics, 60 Personnes morales de droit privé;
NatJur 09 Collectivité territoriale / EPL / EPS, 03 Société, 06 Association).
"""

from __future__ import annotations


class Category:
    """A kind of body. A plain class (not attrs): the command line reads these at start-up."""

    __slots__ = ("id", "label", "kinds", "cat_tiers", "nat_jur", "public")

    def __init__(self, id: str, label: str, kinds: tuple[tuple[str, str], ...] = (),  # noqa: A002
                 cat_tiers: str = "29", nat_jur: str = "09", public: bool = True) -> None:
        self.id = id
        self.label = label  # French, as printed for a member
        self.kinds = kinds  # (id, label)
        self.cat_tiers, self.nat_jur, self.public = cat_tiers, nat_jur, public

    def __repr__(self) -> str:
        return f"Category({self.id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Category) and self.id == other.id

    def __hash__(self) -> int:
        return hash(self.id)

    def kind_label(self, kind: str | None) -> str:
        return dict(self.kinds).get(kind or "", self.label)


CATEGORY_LIST: tuple[Category, ...] = (
    Category("commune", "Commune", cat_tiers="23"),
    Category("ccas", "Centre communal d'action sociale (CCAS)", cat_tiers="26"),
    # A CIAS is the CCAS of an EPCI (CASF L123-4-1); the DGFiP grid names only « CCAS » for 26.
    Category("cias", "Centre intercommunal d'action sociale (CIAS)", cat_tiers="26"),
    Category("epci", "Établissement public de coopération intercommunale", (
        ("cc", "Communauté de communes"), ("ca", "Communauté d'agglomération"),
        ("cu", "Communauté urbaine"), ("metropole", "Métropole"),
        ("ept", "Établissement public territorial")), cat_tiers="24"),
    Category("syndicat", "Syndicat", (
        ("sivu", "Syndicat intercommunal à vocation unique"),
        ("sivom", "Syndicat intercommunal à vocation multiple"),
        ("mixte_ferme", "Syndicat mixte fermé"), ("mixte_ouvert", "Syndicat mixte ouvert")),
             cat_tiers="24"),
    Category("departement", "Département", cat_tiers="22"),
    Category("region", "Région", cat_tiers="21"),
    # Hospitals, schools, chambers, GIP…: named by the customer's own label.
    Category("other_public", "Autre établissement public", cat_tiers="29"),
    Category("company", "Entreprise", cat_tiers="60", nat_jur="03", public=False),
    Category("association", "Association", cat_tiers="60", nat_jur="06", public=False),
)
CATEGORIES = {category.id: category for category in CATEGORY_LIST}
#: Older names still read in stored history (before the taxonomy): ``other`` was any public
#: body that was neither a commune, a CCAS, an EPCI nor a CIAS.
ALIASES = {"other": "other_public"}


def category(name: str) -> Category:
    return CATEGORIES[ALIASES.get(name, name)]


def valid_category(text: str) -> str:
    name = ALIASES.get(text, text)
    if name not in CATEGORIES:
        raise ValueError(f"category must be one of {', '.join(CATEGORIES)} (got {text!r})")
    return name


def valid_kind(category_id: str, kind: str | None) -> str | None:
    """``kind`` if the category has such a kind; ``None`` stays ``None`` (not always known)."""
    if kind is None:
        return None
    kinds = dict(category(category_id).kinds)
    if not kinds:
        raise ValueError(f"a {category_id} has no kind (got {kind!r})")
    if kind not in kinds:
        raise ValueError(f"the kind of a {category_id} is one of {', '.join(kinds)} "
                         f"(got {kind!r})")
    return kind


def matches(wanted: str, category_id: str, kind: str | None) -> bool | None:
    """Whether a body is of ``wanted`` (``epci`` or ``epci:ca``); ``None`` if its kind, which
    ``wanted`` names, is not known."""
    name, _, wanted_kind = wanted.partition(":")
    if ALIASES.get(category_id, category_id) != name:
        return False
    if not wanted_kind:
        return True
    if kind is None:
        return None
    return kind == wanted_kind


def valid_selector(text: str) -> str:
    """A category, or ``category:kind``, as catalogues write who a line is for."""
    name, _, kind = text.partition(":")
    valid_category(name)
    if kind:
        valid_kind(name, kind)
    return text
