"""Typed reads of a parsed TOML document (a scenario file), each naming the field and the
line of its problem (``FieldReader``), and ``ScenarioError``, the refusal they raise."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from lampo.domain.bounds import MAX_MINOR_UNITS, MAX_UNITS, show
from lampo.domain.errors import LampoError
from lampo.domain.market import Market
from lampo.domain.money import MINOR_UNITS, Money
from lampo.sim._locate import Path as FieldPath
from lampo.sim._locate import format_path, locate

_DECIMAL = re.compile(r"^[0-9][0-9_]*(\.[0-9]+)?$")
#: The longest decimal string (a price, a rate, a milestone): 40 characters.
MAX_DECIMAL_TEXT = 40


class ScenarioError(LampoError):
    """A scenario file that cannot be used: where (file, line, field) and why."""

    reason = "invalid-scenario"

    def __init__(self, file: str, problem: str, field: str = "", line: int | None = None) -> None:
        self.file = file
        self.problem = problem
        self.field = field
        self.line = line
        super().__init__()

    def message(self) -> str:
        where = self.file + (f", line {self.line}" if self.line else "")
        what = f"{self.field}: " if self.field else ""
        return f"{where}: {what}{self.problem}"


def in_range(value: object, lo: float, hi: float) -> bool:
    """Whether ``value`` is a number (not a bool) in ``[lo, hi]``: NaN, infinities and
    integers too large for a float are not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return lo <= value <= hi


class FieldReader:
    """Reads values out of a document at a path, or fails naming the path and its line."""

    def __init__(self, label: str, text: str, scale: float) -> None:
        self.label = label
        self.text = text
        self.scale = scale

    # -- errors and typed reads -------------------------------------------------
    def fail(self, path: FieldPath, problem: str) -> ScenarioError:
        return ScenarioError(self.label, problem, format_path(path), locate(self.text, path))

    def get(self, data: Mapping[str, Any], path: FieldPath, key: str, default: Any = ...) -> Any:
        if key in data:
            return data[key]
        if default is ...:
            raise self.fail((*path, key), "is missing")
        return default

    def table(self, value: Any, path: FieldPath) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a table, got {kind_of(value)}")
        return value

    def string(self, value: Any, path: FieldPath) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(path, f"must be a non-empty string, got {kind_of(value)}")
        return value

    def integer(
        self, value: Any, path: FieldPath, minimum: int = 0, maximum: int = MAX_UNITS
    ) -> int:
        """A whole number from ``minimum`` to ``maximum`` (default ``MAX_UNITS``)."""
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(path, f"must be a whole number, got {kind_of(value)}")
        if value < minimum:
            raise self.fail(path, f"must be at least {minimum}, got {show(value)}")
        if value > maximum:
            raise self.fail(path, f"must be at most {maximum:,}, got {show(value)}")
        return value

    def number(self, value: Any, path: FieldPath, lo: float, hi: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"must be a number, got {kind_of(value)}")
        if not in_range(value, lo, hi):
            raise self.fail(path, f"must be between {lo:g} and {hi:g}, got {show(value)}")
        return float(value)

    def share(self, value: Any, path: FieldPath) -> float:
        return self.number(value, path, 0.0, 1.0)

    def decimal(self, value: Any, path: FieldPath) -> Fraction:
        if isinstance(value, float):
            raise self.fail(
                path,
                f'must be a decimal string such as "{value}", not a bare number '
                "(TOML reads it as a float, and money is never a float)",
            )
        if (
            not isinstance(value, str)
            or len(value) > MAX_DECIMAL_TEXT
            or not _DECIMAL.match(value.strip())
        ):
            raise self.fail(
                path,
                f'must be a decimal string such as "699.00" of at most {MAX_DECIMAL_TEXT} '
                f"characters, got {kind_of(value)}",
            )
        return Fraction(value.strip().replace("_", ""))

    def money(
        self, value: Any, path: FieldPath, currency: str, high: int = MAX_MINOR_UNITS
    ) -> Money:
        """Positive money in ``currency``, at most ``high`` minor units (default: a price's
        bound, ``MAX_MINOR_UNITS``)."""
        amount = self.decimal(value, path) * 10 ** MINOR_UNITS[currency]
        if amount.denominator != 1:
            raise self.fail(path, f"{value} has more decimals than {currency} allows")
        if amount <= 0:
            raise self.fail(path, "must be positive")
        if amount > high:
            limit = Money(high, currency)
            raise self.fail(path, f"must be at most {limit} ({high:,} minor units)")
        return Money(int(amount), currency)

    def local_time(self, value: Any, path: FieldPath, market: Market) -> datetime:
        if not isinstance(value, datetime):
            raise self.fail(
                path, f"must be a date-time such as 2015-04-08T10:00:00, got {kind_of(value)}"
            )
        try:
            if value.tzinfo is None:
                return value.replace(tzinfo=market.zone).astimezone(UTC)
            return value.astimezone(UTC)
        except OverflowError:  # year 1 or 9999 moved by an offset
            raise self.fail(path, f"{value.isoformat()} is out of range") from None

    def domain(self, path: FieldPath, build: Any, *args: Any, **kwargs: Any) -> Any:
        """Build a domain object, turning its refusal into an error at ``path``."""
        try:
            return build(*args, **kwargs)
        except LampoError as err:
            raise self.fail(path, str(err)) from None


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, float):
        return f"a float ({value})"
    if isinstance(value, int):
        return f"a number ({show(value)})"
    if isinstance(value, str):
        return f"a string ({show(value)})"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__
