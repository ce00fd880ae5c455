"""Imported figures the reports compare with: earlier sales, market shares and targets.

Three small text formats, shipped examples in ``lampo/scenarios/history/``:

- **past results** (CSV): ``name,date,window_hours,category,units,money,currency,
  first_hour_units,sellout_seconds,sellout_units,source``; one row per sale and category;
  empty cells are unknown; ``money`` is a decimal string in ``currency``; ``date`` is the
  sale's day (``2014-09-02``: some time that day, anywhere) or its start with a UTC offset
  (``2014-09-02T14:00+05:30``), in the years 1970 to 9998; ``window_hours`` is from a
  second to 8,784 (a leap year). A record is set only against sales over before it opened.
- **market shares** (CSV): ``period,market,brand,share_percent,units,source``.
- **targets** (TOML): ``[fx]`` planning rates (``reporting``, ``on``, ``[fx.rates]``) and
  ``[[targets]]`` with ``label``, ``period`` (``2017``, ``2018Q1``) and either ``money`` +
  ``currency`` or ``units`` (+ ``category``); and ``[[network_targets]]`` for the store
  network, with ``label``, ``stores`` (open stores, 1 to 100,000), ``by`` (a date) and
  optionally ``market`` (every market when absent) and ``from`` (the date it was set: a
  period that ends before it does not show it), at most 1,000 of them.

A malformed file raises ``ImportFileError`` naming the file, the line and the problem.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from lampo.domain import bounds
from lampo.domain.catalog import check_id
from lampo.domain.errors import InvalidRequest, LampoError
from lampo.domain.money import MINOR_UNITS, FxTable, Money
from lampo.domain.period import MAX_NETWORK_TARGET, NetworkTarget, Period, Target, Targets
from lampo.domain.records import PastResult, day_bounds
from lampo.domain.report import MarketShare
from lampo.domain.stores import MAX_MARKET

PACKAGE = "lampo.scenarios"
HISTORY = "history"
#: The earlier sales every battle report compares with unless told otherwise.
DEFAULT_HISTORY = "fan-festivals.csv"
#: The shipped market shares and targets period reports read unless told otherwise.
DEFAULT_SHARES = "market-share.csv"
DEFAULT_TARGETS = "targets.toml"
#: Bounds of a past result's date and length (a sale lasts at most a leap year).
MIN_YEAR, MAX_YEAR = 1970, 9998
MAX_WINDOW_HOURS = 366 * 24
#: The most ``[[network_targets]]`` a targets file may declare.
MAX_NETWORK_TARGETS = 1_000
_DECIMAL = re.compile(r"^-?[0-9][0-9_]*(\.[0-9]+)?$")
T = TypeVar("T")

PAST_COLUMNS = (
    "name",
    "date",
    "window_hours",
    "category",
    "units",
    "money",
    "currency",
    "first_hour_units",
    "sellout_seconds",
    "sellout_units",
    "source",
)
SHARE_COLUMNS = ("period", "market", "brand", "share_percent", "units", "source")


class ImportFileError(LampoError):
    """An import file that cannot be used: where (file, line) and why."""

    reason = "invalid-import"

    def __init__(self, file: str, problem: str, line: int | None = None) -> None:
        self.file = file
        self.problem = problem
        self.line = line
        super().__init__()

    def message(self) -> str:
        return f"{self.file}" + (f", line {self.line}" if self.line else "") + f": {self.problem}"


def read_text(name_or_path: str | Path) -> tuple[str, str]:
    """(text, label) of a shipped history file by name (``fan-festivals.csv``) or a path."""
    name = str(name_or_path)
    shipped = resources.files(PACKAGE).joinpath(HISTORY, name)
    if "/" not in name and "\\" not in name and shipped.is_file():
        return shipped.read_text(encoding="utf-8"), f"history/{name}"
    path = Path(name_or_path)
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except FileNotFoundError:
        raise ImportFileError(name, "no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ImportFileError(name, f"cannot read: {err}") from None


def _decimal(text: str, what: str) -> Fraction:
    text = text.strip().replace(",", "")
    if not _DECIMAL.match(text):
        raise ValueError(f"{what} must be a decimal number, got {text!r}")
    return Fraction(text.replace("_", ""))


def _whole(text: str, what: str) -> int | None:
    text = text.strip().replace("_", "").replace(",", "")
    if not text:
        return None
    if not text.isdigit():
        raise ValueError(f"{what} must be a whole number >= 0, got {text!r}")
    return int(text)


def _money(amount: str, currency: str) -> Money | None:
    if not amount.strip():
        return None
    code = currency.strip().upper()
    if code not in MINOR_UNITS:
        raise ValueError(f"unknown currency {currency!r}")
    minor = _decimal(amount, "money") * 10 ** MINOR_UNITS[code]
    if minor.denominator != 1 or minor < 0:
        raise ValueError(f"money {amount!r} has more decimals than {code} allows or is negative")
    return Money(int(minor), code)


def _rows(
    text: str, label: str, columns: tuple[str, ...], build: Callable[[dict[str, str]], T]
) -> list[T]:
    lines = [ln for ln in text.splitlines(keepends=True)]
    content = [(i + 1, ln) for i, ln in enumerate(lines) if ln.strip() and not ln.startswith("#")]
    if not content:
        raise ImportFileError(label, "is empty")
    reader = csv.reader(io.StringIO("".join(ln for _, ln in content)))
    try:
        rows = list(reader)
    except csv.Error as err:
        raise ImportFileError(label, f"not valid CSV: {err}") from None
    header = [h.strip() for h in rows[0]]
    missing = [c for c in columns if c not in header]
    if missing:
        raise ImportFileError(label, f"missing column(s): {', '.join(missing)}", content[0][0])
    out = []
    for (lineno, _), row in zip(content[1:], rows[1:], strict=False):
        if len(row) != len(header):
            raise ImportFileError(
                label, f"{len(row)} fields where the header has {len(header)}", lineno
            )
        cells = {h: v.strip() for h, v in zip(header, row, strict=True)}
        try:
            out.append(build(cells))
        except (ValueError, LampoError) as err:
            raise ImportFileError(label, str(err), lineno) from None
    if not out:
        raise ImportFileError(label, "has a header but no rows")
    return out


def _when(text: str, window: timedelta) -> tuple[datetime, datetime]:
    """(started, ended) of a sale from its ``date`` cell: a day (``2014-09-02``, the sale
    ran at some time of that day) or its start with a UTC offset
    (``2014-09-02T14:00+05:30``)."""
    try:
        start = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"date must be a day such as 2014-09-02 or a start such as "
            f"2014-09-02T14:00+05:30, got {text!r}"
        ) from None
    if not MIN_YEAR <= start.year <= MAX_YEAR:
        raise ValueError(f"date must be in the years {MIN_YEAR} to {MAX_YEAR}, got {text!r}")
    if "T" not in text.upper() and " " not in text:
        return day_bounds(start.date(), window)
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError(f"date {text!r} needs a UTC offset, such as 2014-09-02T14:00+05:30")
    return start.astimezone(UTC), (start + window).astimezone(UTC)


def _past(cells: dict[str, str]) -> PastResult:
    if not cells["name"]:
        raise ValueError("name is empty")
    hours = _decimal(cells["window_hours"], "window_hours")
    if hours * 3600 < 1 or hours > MAX_WINDOW_HOURS:
        raise ValueError(f"window_hours must be from 1 second to {MAX_WINDOW_HOURS} hours")
    window = timedelta(seconds=int(hours * 3600))
    started, ended = _when(cells["date"], window)
    units = _whole(cells["units"], "units")
    if units is None:
        raise ValueError("units is empty")
    if not cells["category"]:
        raise ValueError("category is empty")
    sellout = cells["sellout_seconds"]
    return PastResult(
        name=cells["name"],
        category=cells["category"],
        started=started,
        ended=ended,
        window=window,
        units=units,
        money=_money(cells["money"], cells["currency"]),
        first_hour_units=_whole(cells["first_hour_units"], "first_hour_units"),
        sellout_seconds=_decimal(sellout, "sellout_seconds") if sellout else None,
        sellout_units=_whole(cells["sellout_units"], "sellout_units"),
        source=cells["source"] or "imported",
    )


def past_results(name_or_path: str | Path = DEFAULT_HISTORY) -> list[PastResult]:
    """Earlier sales' results from a CSV file (shipped name or path), as reported: a scaled
    run is set against the real figures, as ``lampo report event`` reads its storage."""
    text, label = read_text(name_or_path)
    return _rows(text, label, PAST_COLUMNS, _past)


def _share(cells: dict[str, str]) -> MarketShare:
    Period.parse(cells["period"])
    for key in ("market", "brand"):
        if not cells[key]:
            raise ValueError(f"{key} is empty")
    share = _decimal(cells["share_percent"], "share_percent") / 100
    if not 0 <= share <= 1:
        raise ValueError("share_percent must be between 0 and 100")
    return MarketShare(
        cells["period"].upper(),
        cells["market"],
        cells["brand"],
        share,
        _whole(cells["units"], "units"),
        cells["source"],
    )


def market_shares(name_or_path: str | Path = DEFAULT_SHARES) -> list[MarketShare]:
    """Brands' shares per market and period from a CSV file (shipped name or path)."""
    text, label = read_text(name_or_path)
    return _rows(text, label, SHARE_COLUMNS, _share)


def targets(name_or_path: str | Path = DEFAULT_TARGETS, tz: str = "UTC") -> Targets:
    """Targets and forecasts per period from a TOML file (shipped name or path)."""
    text, label = read_text(name_or_path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ImportFileError(label, f"not valid TOML: {err}") from None
    try:
        return _targets(data, tz)
    except (ValueError, TypeError, KeyError, LampoError) as err:
        problem = f"missing {err}" if isinstance(err, KeyError) else str(err)
        raise ImportFileError(label, problem) from None


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string")
    return value


def _targets(data: dict[str, Any], tz: str) -> Targets:
    fx = None
    if "fx" in data:
        raw = data["fx"]
        on = raw["on"]
        if not isinstance(on, date) or isinstance(on, datetime):
            raise ValueError("fx.on must be a date such as 2017-06-30")
        rates = {}
        for code, value in raw.get("rates", {}).items():
            if not isinstance(value, str):
                raise ValueError(f"fx.rates.{code} must be a decimal string, not {value!r}")
            rates[code] = _decimal(value, f"fx.rates.{code}")
        fx = FxTable(_text(raw["reporting"], "fx.reporting"), on, rates)
    out = []
    items = data.get("targets", [])
    network = _network_targets(data.get("network_targets", []))
    if not isinstance(items, list) or not (items or network):
        raise ValueError("needs at least one [[targets]] or [[network_targets]] table")
    for i, t in enumerate(items):
        where = f"targets[{i}]"
        label = _text(t.get("label"), f"{where}.label")
        period = Period.parse(_text(t.get("period"), f"{where}.period"), tz)
        if "money" in t:
            if not isinstance(t["money"], str):
                raise ValueError(f"{where}.money must be a decimal string (never a float)")
            money = _money(t["money"], _text(t.get("currency"), f"{where}.currency"))
            out.append(Target(label, period, money=money))
        elif "units" in t:
            units = t["units"]
            if not isinstance(units, int) or isinstance(units, bool) or units < 1:
                raise ValueError(f"{where}.units must be a whole number >= 1")
            out.append(Target(label, period, units=units, category=str(t.get("category", ""))))
        else:
            raise ValueError(f"{where} needs money (+ currency) or units")
    return Targets(out, fx, network)


_NETWORK_KEYS = frozenset({"label", "stores", "by", "market", "from"})


def _network_targets(items: object) -> list[NetworkTarget]:
    """``[[network_targets]]``: ``label``, ``stores`` (whole, 1 to ``MAX_NETWORK_TARGET``),
    ``by`` (a TOML date) and optionally ``market`` and ``from`` (the date it was set, not
    after ``by``); at most ``MAX_NETWORK_TARGETS``; any other key is refused (a misspelt
    ``market`` would otherwise count every market)."""
    if not isinstance(items, list):
        raise ValueError("network_targets must be an array of tables ([[network_targets]])")
    if len(items) > MAX_NETWORK_TARGETS:
        raise ValueError(f"more than {MAX_NETWORK_TARGETS} [[network_targets]] tables")
    out = []
    for i, t in enumerate(items):
        where = f"network_targets[{i}]"
        if not isinstance(t, dict):
            raise ValueError(f"{where} must be a table")
        unknown = sorted(set(t) - _NETWORK_KEYS)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
        market = t.get("market", "")
        if market:
            check_id(f"{where}.market", market, MAX_MARKET)
        try:
            stores = bounds.whole(
                "stores", t.get("stores"), 1, MAX_NETWORK_TARGET, "MAX_NETWORK_TARGET"
            )
            by = bounds.day("by", t.get("by"))
            since = bounds.day("from", t["from"]) if "from" in t else None
            label = _text(t.get("label"), f"{where}.label")
            out.append(NetworkTarget(label, stores, by, market, since))
        except InvalidRequest as err:
            raise ValueError(f"{where}.{err.field} {err.problem}") from None
    return out
