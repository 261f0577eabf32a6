"""Money: euros excluding VAT (HT) as ``Decimal``, rounded in exactly one place."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def to_cents(amount: Decimal) -> Decimal:
    """Round an amount half-up to the cent. The only rounding in the ledger.

    >>> to_cents(Decimal("10.165"))
    Decimal('10.17')
    """
    if not isinstance(amount, Decimal):
        raise TypeError(f"money must be a Decimal, not {type(amount).__name__}")
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def format_amount(amount: Decimal) -> str:
    """Two-decimal string of an amount, as used in JSON output (``"45.21"``)."""
    return str(to_cents(amount))


NBSP = "\u00a0"


def french_amount(amount: Decimal | str, currency: bool = True) -> str:
    """An amount as a French reader writes it: ``1 500,00 €`` (no-break spaces, so that an
    amount never splits over two lines).

    >>> french_amount(Decimal("1500"))
    '1\\xa0500,00\\xa0€'
    """
    whole, cents = format_amount(Decimal(amount)).split(".")
    sign = "-" if whole.startswith("-") else ""
    digits = whole.lstrip("-")
    groups = []
    while digits:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    text = f"{sign}{NBSP.join(groups or ['0'])},{cents}"
    return f"{text}{NBSP}€" if currency else text
