from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lampo.domain.errors import InvalidRequest
from lampo.domain.money import MINOR_UNITS, FxTable, Money

CURRENCIES = sorted(MINOR_UNITS)
moneys = st.builds(Money, st.integers(-(10**15), 10**15), st.sampled_from(CURRENCIES))

FX = FxTable("CNY", date(2015, 4, 8), {"INR": Fraction(1, 10), "JPY": Fraction(5, 100)})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1999.00 CNY", Money(199_900, "CNY")),
        ("CNY 1999", Money(199_900, "CNY")),
        ("1,999.5 CNY", Money(199_950, "CNY")),
        ("0.01 USD", Money(1, "USD")),
        ("-5.25 EUR", Money(-525, "EUR")),
        ("2080000000 CNY", Money(208_000_000_000, "CNY")),
        ("300 JPY", Money(300, "JPY")),
        ("1 cny", Money(100, "CNY")),
    ],
)
def test_parse_reads_exact_decimals(text: str, expected: Money) -> None:
    assert Money.parse(text) == expected


def test_parse_keeps_amounts_that_a_float_would_round() -> None:
    # 0.1 + 0.2 != 0.3 in binary floating point; in minor units it must be exact.
    total = Money.parse("0.10 CNY") + Money.parse("0.20 CNY")
    assert total == Money.parse("0.30 CNY")
    assert Money.parse("9007199254740993.01 CNY").amount == 900719925474099301


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("19.999 CNY", "money"),
        ("1.5 JPY", "money"),
        ("10 XXX", "currency"),
        ("abc CNY", "money"),
        ("10", "money"),
        ("", "money"),
        ("1 2 CNY", "money"),
        ("nan CNY", "money"),
        ("inf CNY", "money"),
    ],
)
def test_parse_refuses_bad_text_with_the_field_named(text: str, field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        Money.parse(text)
    assert caught.value.field == field
    assert caught.value.reason == "invalid-request"


@pytest.mark.parametrize("value", [19.99, 5, None, b"1 CNY"])
def test_parse_refuses_anything_but_text(value: object) -> None:
    with pytest.raises(InvalidRequest):
        Money.parse(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("amount", [19.99, 1.0, True, "100", None])
def test_money_refuses_amounts_that_are_not_integer_minor_units(amount: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        Money(amount, "CNY")  # type: ignore[arg-type]
    assert caught.value.field == "amount"


def test_money_refuses_an_unknown_currency() -> None:
    with pytest.raises(InvalidRequest) as caught:
        Money(100, "XYZ")
    assert caught.value.field == "currency"


def test_arithmetic_stays_in_one_currency() -> None:
    a, b = Money(150, "CNY"), Money(50, "CNY")
    assert a + b == Money(200, "CNY")
    assert a - b == Money(100, "CNY")
    assert a * 3 == Money(450, "CNY")
    assert 3 * a == Money(450, "CNY")


@pytest.mark.parametrize("op", ["add", "sub"])
def test_arithmetic_refuses_to_mix_currencies(op: str) -> None:
    a, b = Money(100, "CNY"), Money(100, "INR")
    with pytest.raises(InvalidRequest) as caught:
        a + b if op == "add" else a - b
    assert caught.value.field == "currency"
    assert "CNY" in caught.value.problem
    assert "INR" in caught.value.problem


def test_format_shows_grouped_major_units_and_the_currency() -> None:
    assert Money(208_000_000_000, "CNY").format() == "2,080,000,000.00 CNY"
    assert Money(-5, "USD").format() == "-0.05 USD"
    assert str(Money(1234, "JPY")) == "1,234 JPY"


@given(moneys)
def test_parse_of_format_gives_back_the_same_money(money: Money) -> None:
    assert Money.parse(money.format()) == money


@given(st.integers(-(10**12), 10**12), st.sampled_from(CURRENCIES))
def test_parse_reads_the_plain_decimal_text_of_any_amount(minor: int, currency: str) -> None:
    exp = MINOR_UNITS[currency]
    # The decimal text, built by integer arithmetic only.
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exp)
    text = f"{sign}{whole}" + (f".{frac:0{exp}d}" if exp else "")
    assert Money.parse(f"{text} {currency}") == Money(minor, currency)


# -- FX ---------------------------------------------------------------------------------------


def test_fx_leaves_the_reporting_currency_alone() -> None:
    assert FX.convert(Money(12_345, "CNY")) == Money(12_345, "CNY")


def test_fx_converts_exactly_between_minor_units() -> None:
    # 6,999.00 INR at 1/10 is 699.90 CNY; 1,000 JPY at 5/100 is 50.00 CNY.
    assert FX.convert(Money(699_900, "INR")) == Money(69_990, "CNY")
    assert FX.convert(Money(1_000, "JPY")) == Money(5_000, "CNY")


@pytest.mark.parametrize(
    ("paise", "fen"),
    [(5, 0), (15, 2), (25, 2), (35, 4), (-5, 0), (-15, -2), (14, 1), (16, 2)],
)
def test_fx_rounds_half_to_even_on_the_minor_unit(paise: int, fen: int) -> None:
    # paise / 10 fen: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, 3.5 -> 4
    assert FX.convert(Money(paise, "INR")) == Money(fen, "CNY")


def test_fx_without_a_rate_refuses_with_the_currency_and_date() -> None:
    with pytest.raises(InvalidRequest) as caught:
        FX.convert(Money(100, "USD"))
    assert caught.value.field == "fx"
    assert "USD" in caught.value.problem
    assert "2015-04-08" in caught.value.problem


@pytest.mark.parametrize("rate", [Fraction(0), Fraction(-1, 2)])
def test_fx_table_refuses_a_rate_that_is_not_positive(rate: Fraction) -> None:
    with pytest.raises(InvalidRequest):
        FxTable("CNY", date(2015, 4, 8), {"INR": rate})


def test_fx_table_refuses_unknown_currencies() -> None:
    with pytest.raises(InvalidRequest):
        FxTable("ZZZ", date(2015, 4, 8))
    with pytest.raises(InvalidRequest):
        FxTable("CNY", date(2015, 4, 8), {"ZZZ": Fraction(1)})


def test_fx_total_converts_once_per_currency() -> None:
    # Two amounts of 5 paise would each round to 0 fen; their sum (10 paise) is 1 fen.
    assert FX.total({"INR": 10, "CNY": 100}) == Money(101, "CNY")
    assert FX.total({}) == Money(0, "CNY")


@given(st.integers(-(10**12), 10**12), st.integers(-(10**12), 10**12))
def test_fx_of_a_sum_is_the_sum_of_conversions_within_rounding(a: int, b: int) -> None:
    whole = FX.convert(Money(a + b, "INR")).amount
    parts = FX.convert(Money(a, "INR")).amount + FX.convert(Money(b, "INR")).amount
    assert abs(whole - parts) <= 1


@given(st.integers(-(10**12), 10**12), st.sampled_from(["INR", "JPY", "CNY"]))
def test_fx_conversion_is_within_half_a_minor_unit_of_the_exact_value(
    amount: int, currency: str
) -> None:
    converted = FX.convert(Money(amount, currency)).amount
    exact = (
        Fraction(amount, 10 ** MINOR_UNITS[currency]) * FX.rate(currency) * 10 ** MINOR_UNITS["CNY"]
    )
    assert abs(converted - exact) <= Fraction(1, 2)
