"""Money in integer minor units with an ISO 4217 currency, and dated FX tables. No floats."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction

from lampo.domain.bounds import MAX_FX_TERM, day, show
from lampo.domain.errors import InvalidRequest

#: A decimal amount as ``Money.parse`` reads it: a sign, digits (``_`` or ``,`` between
#: them) and at most one point; no exponent (``Fraction("1e999999999")`` would build a huge
#: number). 40 characters are far more than any bounded amount needs.
_AMOUNT = re.compile(r"[-+]?[0-9][0-9_,]*(\.[0-9]+)?")
_MAX_AMOUNT_TEXT = 40

#: Minor-unit exponents (ISO 4217) of the currencies lampo knows.
MINOR_UNITS: dict[str, int] = {
    "CNY": 2,
    "USD": 2,
    "EUR": 2,
    "INR": 2,
    "IDR": 2,
    "MYR": 2,
    "SGD": 2,
    "HKD": 2,
    "TWD": 2,
    "PHP": 2,
    "THB": 2,
    "VND": 0,
    "JPY": 0,
    "KRW": 0,
    "GBP": 2,
    "BRL": 2,
    "RUB": 2,
}


def check_currency(code: object) -> str:
    if not isinstance(code, str) or code not in MINOR_UNITS:
        raise InvalidRequest("currency", f"unknown ISO 4217 code {show(code)}")
    return code


@dataclass(frozen=True, slots=True, order=True)
class Money:
    """An exact amount: ``amount`` minor units (fen, paise, cents) of ``currency``."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise InvalidRequest("amount", f"must be whole minor units, got {self.amount!r}")
        check_currency(self.currency)

    @classmethod
    def parse(cls, text: str) -> Money:
        """Parse ``"1999.00 CNY"`` or ``"CNY 1999"`` exactly (no float on the way)."""
        if not isinstance(text, str):
            raise InvalidRequest("money", f"expected text such as '19.99 CNY', got {text!r}")
        parts = text.split()
        if len(parts) != 2:
            raise InvalidRequest("money", f"expected 'AMOUNT CUR', got {text!r}")
        a, b = parts
        number, code = (a, b) if b.isalpha() else (b, a)
        code = check_currency(code.upper())
        exp = MINOR_UNITS[code]
        if len(number) > _MAX_AMOUNT_TEXT or not _AMOUNT.fullmatch(number):
            raise InvalidRequest("money", f"not a decimal amount: {show(number)}")
        value = Fraction(number.replace("_", "").replace(",", ""))
        minor = value * 10**exp
        if minor.denominator != 1:
            raise InvalidRequest("money", f"{text!r} has more than {exp} decimals")
        return cls(int(minor), code)

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, n: int) -> Money:
        return Money(self.amount * n, self.currency)

    __rmul__ = __mul__

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise InvalidRequest("currency", f"cannot mix {self.currency} and {other.currency}")

    def format(self) -> str:
        exp = MINOR_UNITS[self.currency]
        sign = "-" if self.amount < 0 else ""
        whole, frac = divmod(abs(self.amount), 10**exp)
        text = f"{whole:,}" + (f".{frac:0{exp}d}" if exp else "")
        return f"{sign}{text} {self.currency}"

    def __str__(self) -> str:
        return self.format()


@dataclass(frozen=True, slots=True)
class FxTable:
    """Rates into the reporting currency, fixed for one event (``on`` is the rate date).

    ``rates[c]`` is the value of one *major* unit of ``c`` in major units of ``reporting``,
    held as an exact fraction: positive, its numerator and denominator at most
    ``MAX_FX_TERM``. Conversion rounds half to even, once, on the minor unit.
    """

    reporting: str
    on: date
    rates: dict[str, Fraction] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_currency(self.reporting)
        day("fx.on", self.on)
        if not isinstance(self.rates, dict):
            raise InvalidRequest("fx", "rates must map currency codes to fractions")
        for code, rate in self.rates.items():
            check_currency(code)
            exact = isinstance(rate, Fraction | int) and not isinstance(rate, bool)
            if not exact or rate <= 0:
                raise InvalidRequest("fx", f"rate for {code} must be a positive fraction")
            if rate.numerator > MAX_FX_TERM or rate.denominator > MAX_FX_TERM:
                raise InvalidRequest(
                    "fx",
                    f"rate for {code}: {show(rate.numerator)}/{show(rate.denominator)} has a "
                    f"term above {MAX_FX_TERM:,} (MAX_FX_TERM)",
                )

    def rate(self, currency: str) -> Fraction:
        if currency == self.reporting:
            return Fraction(1)
        try:
            return self.rates[currency]
        except KeyError:
            raise InvalidRequest(
                "fx", f"no rate from {currency} to {self.reporting} on {self.on}"
            ) from None

    def convert(self, money: Money) -> Money:
        """``money`` in the reporting currency, rounded half-even to its minor unit."""
        exact = (
            Fraction(money.amount, 10 ** MINOR_UNITS[money.currency])
            * self.rate(money.currency)
            * 10 ** MINOR_UNITS[self.reporting]
        )
        return Money(round(exact), self.reporting)

    def total(self, amounts: dict[str, int]) -> Money:
        """Sum of minor-unit amounts per currency, converted once per currency."""
        out = 0
        for code, amount in sorted(amounts.items()):
            out += self.convert(Money(amount, code)).amount
        return Money(out, self.reporting)
