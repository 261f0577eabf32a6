from decimal import Decimal

import pytest

from ledger.money import format_amount, to_cents


@pytest.mark.parametrize(
    ("amount", "expected"),
    [("10.165", "10.17"), ("10.164", "10.16"), ("0.005", "0.01"), ("-0.005", "-0.01"), ("7", "7.00")],
)
def test_rounds_half_up_to_the_cent(amount, expected):
    assert to_cents(Decimal(amount)) == Decimal(expected)


def test_refuses_floats():
    with pytest.raises(TypeError):
        to_cents(0.1)


def test_format_amount_has_two_decimals():
    assert format_amount(Decimal("45.2")) == "45.20"
