"""Amounts and currencies for deals (crm_core/currencies.py): decimal strings only, the
currency's minor digits, exact conversion, one rounding at the end."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_core.currencies import (
    MINOR_DIGITS,
    MoneyError,
    format_amount,
    parse_amount,
    parse_rate,
    round_amount,
    to_base,
    total_in_base,
)


@pytest.mark.parametrize(
    ("text", "currency", "expected"),
    [
        ("12500.00", "EUR", Decimal("12500.00")),
        ("12500", "EUR", Decimal("12500")),
        ("0.5", "USD", Decimal("0.5")),
        ("0", "GBP", Decimal("0")),
        ("100", "JPY", Decimal("100")),
        ("1.234", "KWD", Decimal("1.234")),
        ("999999999999999.99", "EUR", Decimal("999999999999999.99")),
    ],
)
def test_amounts_are_taken_as_written(text: str, currency: str, expected: Decimal) -> None:
    assert parse_amount(text, currency) == expected


@pytest.mark.parametrize(
    ("value", "currency", "why"),
    [
        (12500.0, "EUR", "decimal string"),  # a JSON float
        (12500, "EUR", "decimal string"),  # a JSON integer
        ("12.345", "EUR", "2 digit"),
        ("100.5", "JPY", "0 digit"),
        ("1.2345", "KWD", "3 digit"),
        ("-5.00", "EUR", "not an amount"),
        ("+5.00", "EUR", "not an amount"),
        ("1e3", "EUR", "not an amount"),
        ("NaN", "EUR", "not an amount"),
        ("Infinity", "EUR", "not an amount"),
        (" 5.00", "EUR", "not an amount"),
        ("5.", "EUR", "not an amount"),
        (".5", "EUR", "not an amount"),
        ("007", "EUR", "not an amount"),
        ("1,000.00", "EUR", "not an amount"),
        ("1000000000000000", "EUR", "not an amount"),  # 16 whole digits
        ("\u0665", "EUR", "not an amount"),  # ARABIC-INDIC DIGIT FIVE: not ASCII
        ("5.00", "eur", "ISO 4217"),
        ("5.00", "XAU", "ISO 4217"),  # gold is not a deal's currency
        ("5.00", "XTS", "ISO 4217"),
        ("5.00", "HRK", "ISO 4217"),  # withdrawn in 2023
    ],
)
def test_what_is_not_an_amount_of_the_currency_is_refused(
    value: Any, currency: str, why: str
) -> None:
    with pytest.raises(MoneyError, match=why):
        parse_amount(value, currency)


def test_amounts_are_shown_with_the_currencys_minor_digits() -> None:
    assert format_amount(Decimal("12500"), "EUR") == "12500.00"
    assert format_amount(Decimal("12500"), "JPY") == "12500"
    assert format_amount(Decimal("1.5"), "BHD") == "1.500"
    assert format_amount(Decimal("0.005"), "USD") == "0.01"  # half up
    assert format_amount(Decimal("0.0049"), "USD") == "0.00"
    assert format_amount(Decimal("1E+3"), "EUR") == "1000.00"  # never an exponent


@pytest.mark.parametrize("text", ["0", "0.00", "-1", "1e2", "abc", "0.1234567890123"])
def test_a_rate_is_a_positive_decimal_string_of_at_most_12_digits(text: str) -> None:
    with pytest.raises(MoneyError):
        parse_rate(text)


def test_rates_are_taken_as_written() -> None:
    assert parse_rate("0.92") == Decimal("0.92")
    assert parse_rate("149.123456789") == Decimal("149.123456789")
    with pytest.raises(MoneyError, match="decimal string"):
        parse_rate(0.92)


def test_different_currencies_are_never_added_unconverted() -> None:
    rates = {"USD": Decimal("0.92")}
    assert to_base(Decimal("100.00"), "EUR", "EUR", rates) == Decimal("100.00")
    assert to_base(Decimal("100.00"), "USD", "EUR", rates) == Decimal("92.0000")
    with pytest.raises(MoneyError, match="no rate from GBP to EUR"):
        to_base(Decimal("1.00"), "GBP", "EUR", rates)


def test_a_sum_is_rounded_once_not_per_amount() -> None:
    # 3 x 0.005 USD at 1.0: rounding each would give 0.03, the exact sum is 0.015 -> 0.02.
    rates = {"USD": Decimal("1.0")}
    amounts = [(Decimal("0.005"), "USD")] * 3
    assert total_in_base(amounts, "EUR", rates) == Decimal("0.02")


amounts = st.lists(
    st.tuples(
        st.decimals(min_value=0, max_value=Decimal("999999999999999.99"), places=2),
        st.sampled_from(["EUR", "USD", "JPY", "KWD"]),
    ),
    max_size=50,
)
rates = st.fixed_dictionaries(
    {
        c: st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("100000"), places=6)
        for c in ("USD", "JPY", "KWD")
    }
)


@given(amounts, rates)
def test_a_total_is_the_exact_sum_rounded_once_whatever_the_order(
    items: list[tuple[Decimal, str]], table: dict[str, Decimal]
) -> None:
    items = [(round_amount(a, c), c) for a, c in items]  # as parse_amount would hold them
    exact = sum((a if c == "EUR" else a * table[c] for a, c in items), Decimal(0))
    expected = exact.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
    assert total_in_base(items, "EUR", table) == expected
    assert total_in_base(list(reversed(items)), "EUR", table) == expected


def test_the_table_has_the_currencies_people_price_deals_in() -> None:
    for code, digits in {"EUR": 2, "USD": 2, "GBP": 2, "JPY": 0, "CHF": 2, "INR": 2}.items():
        assert MINOR_DIGITS[code] == digits
    assert all(len(code) == 3 and code.isupper() for code in MINOR_DIGITS)
