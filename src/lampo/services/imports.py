"""Imported figures the reports compare with: earlier sales, market shares, targets, and
results from outside (actual results not sold through lampo, marketplace rankings).

Five small text formats, shipped examples in ``lampo/scenarios/history/``:

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

- **actual results** (CSV, ``actual-results.csv``): what was sold outside lampo, as
  reported: ``period,market,channel,category,units,revenue,currency,source``. ``period``
  a quarter or a year (``2017Q2``, ``2014``); ``market`` a market code or ``all``;
  ``channel`` ``all``, a channel kind (``online``, ``marketplace``, ``store``) or a channel
  id (``jd``); ``category`` a category id or ``all``; ``units`` from 0 to
  ``MAX_OUTSIDE_UNITS`` (10 billion) or empty; ``revenue`` a decimal string in
  ``currency``, at most ``MAX_OUTSIDE_AMOUNT`` minor units, or empty (one of units and
  revenue at least); ``source`` says where the figure comes from and what it measures.
- **marketplace rankings** (CSV, ``marketplace-rankings.csv``): a brand's place on a
  partner's list per period: ``period,marketplace,list,category,rank,brand,source``;
  ``rank`` from 1 to ``MAX_RANK`` (1,000).

Every text cell is at most ``MAX_CELL`` (500) characters; a file at most
``MAX_IMPORT_BYTES`` (1 MiB) and ``MAX_IMPORT_ROWS`` (10,000) rows. The last two formats
are checked whole: a bad file raises ``ImportRowsRefused`` naming every bad row (file,
line, problem) and nothing of it is used. The first three raise ``ImportFileError`` at
their first problem, naming the file, the line and the problem.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
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
ACTUAL_COLUMNS = (
    "period",
    "market",
    "channel",
    "category",
    "units",
    "revenue",
    "currency",
    "source",
)
RANKING_COLUMNS = ("period", "marketplace", "list", "category", "rank", "brand", "source")
#: The shipped results from outside that period reports show beside lampo's own.
DEFAULT_ACTUALS = "actual-results.csv"
DEFAULT_RANKINGS = "marketplace-rankings.csv"
#: Bounds of a file of results from outside, and of its figures: a year's units of a
#: brand worldwide (hundreds of millions of phones) and its revenue in any currency
#: (10^18 minor units: 10^16 yuan) fit with room to spare; a count or amount in a
#: 64-bit integer always.
MAX_IMPORT_BYTES = 1024 * 1024
MAX_IMPORT_ROWS = 10_000
MAX_CELL = 500
MAX_OUTSIDE_UNITS = 10_000_000_000
MAX_OUTSIDE_AMOUNT = 10**18
MAX_RANK = 1_000
ALL = "all"
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$", re.ASCII)
_MARKET = re.compile(r"^[A-Z]{2,8}$", re.ASCII)


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


class ImportRowsRefused(ImportFileError):
    """A file of results from outside refused whole: ``problems`` lists every bad row as
    ``(line, problem)`` (line 0: the file itself). Nothing of the file was used."""

    def __init__(self, file: str, problems: list[tuple[int, str]]) -> None:
        self.problems = problems
        first = problems[0]
        super().__init__(file, first[1], first[0] or None)

    def message(self) -> str:
        shown = "; ".join(
            (f"line {line}: " if line else "") + problem for line, problem in self.problems[:10]
        )
        more = f" (and {len(self.problems) - 10} more)" if len(self.problems) > 10 else ""
        return f"{self.file}: {len(self.problems)} bad row(s): {shown}{more}"


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


# -- results from outside -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ActualResult:
    """A result sold outside lampo, as reported: ``units`` and/or ``revenue`` of a period,
    in ``market`` (or ``all``), through ``channel`` (``all``, a kind or an id), of
    ``category`` (or ``all``)."""

    period: str
    market: str
    channel: str
    category: str
    units: int | None
    revenue: Money | None
    source: str


@dataclass(frozen=True, slots=True)
class MarketplaceRank:
    """A brand's ``rank`` on a marketplace's ``list`` of ``category`` in a period."""

    period: str
    marketplace: str
    list: str
    category: str
    rank: int
    brand: str
    source: str


def _cell(cells: dict[str, str], key: str, required: bool = True) -> str:
    value = cells[key]
    if len(value) > MAX_CELL:
        raise ValueError(f"{key} is longer than {MAX_CELL} characters (MAX_CELL)")
    if required and not value:
        raise ValueError(f"{key} is empty")
    if any(ord(c) < 32 for c in value):
        raise ValueError(f"{key} holds a control character")
    return value


def _period(cells: dict[str, str]) -> str:
    return Period.parse(_cell(cells, "period")).label


def _key(cells: dict[str, str], key: str, pattern: re.Pattern[str], what: str) -> str:
    value = _cell(cells, key)
    if value != ALL and not pattern.match(value):
        raise ValueError(f"{key} must be {what} or {ALL!r}, got {value[:40]!r}")
    return value


def _bounded_whole(text: str, what: str, high: int) -> int | None:
    value = _whole(text, what) if len(text) <= 32 else None
    if len(text) > 32 or (value is not None and value > high):
        raise ValueError(f"{what} must be at most {high:,}")
    return value


def _actual(cells: dict[str, str]) -> ActualResult:
    period = _period(cells)
    market = _key(cells, "market", _MARKET, "a market code such as CN")
    channel = _key(cells, "channel", _ID, "a channel kind or id such as jd")
    category = _key(cells, "category", _ID, "a category id such as phones")
    units = _bounded_whole(_cell(cells, "units", False), "units", MAX_OUTSIDE_UNITS)
    amount = _cell(cells, "revenue", False)
    currency = _cell(cells, "currency", False)
    if len(amount) > 40:
        raise ValueError("revenue must be a decimal of at most 40 characters")
    revenue = _money(amount, currency) if amount else None
    if revenue is None and currency:
        raise ValueError("currency is given without a revenue")
    if revenue is not None and revenue.amount > MAX_OUTSIDE_AMOUNT:
        raise ValueError(f"revenue must be at most {MAX_OUTSIDE_AMOUNT:,} minor units")
    if units is None and revenue is None:
        raise ValueError("needs units or revenue (or both)")
    return ActualResult(period, market, channel, category, units, revenue, _cell(cells, "source"))


def _rank(cells: dict[str, str]) -> MarketplaceRank:
    rank = _bounded_whole(_cell(cells, "rank"), "rank", MAX_RANK)
    if not rank:
        raise ValueError(f"rank must be from 1 to {MAX_RANK:,}")
    return MarketplaceRank(
        _period(cells),
        _key(cells, "marketplace", _ID, "a marketplace id such as jd"),
        _cell(cells, "list"),
        _key(cells, "category", _ID, "a category id such as phones"),
        rank,
        _cell(cells, "brand"),
        _cell(cells, "source"),
    )


def _checked_rows(
    text: str, label: str, columns: tuple[str, ...], build: Callable[[dict[str, str]], T]
) -> list[T]:
    """Every row of a CSV file built, or ``ImportRowsRefused`` naming every bad row. Lines
    that are blank or start with ``#`` are comments."""
    if len(text) > MAX_IMPORT_BYTES:
        raise ImportRowsRefused(label, [(0, f"longer than {MAX_IMPORT_BYTES:,} bytes")])
    lines = text.splitlines(keepends=True)
    content = [(i + 1, ln) for i, ln in enumerate(lines) if ln.strip() and not ln.startswith("#")]
    if not content:
        raise ImportRowsRefused(label, [(0, "is empty")])
    if len(content) - 1 > MAX_IMPORT_ROWS:
        raise ImportRowsRefused(label, [(0, f"more than {MAX_IMPORT_ROWS:,} rows")])
    problems: list[tuple[int, str]] = []
    rows: list[tuple[int, list[str]]] = []
    for lineno, line in content:
        try:
            rows.append((lineno, next(csv.reader([line], strict=True))))
        except (csv.Error, StopIteration) as err:
            problems.append((lineno, f"not valid CSV: {err}"))
    if problems and problems[0][0] == content[0][0]:
        raise ImportRowsRefused(label, problems)
    header = [h.strip() for h in rows[0][1]]
    if tuple(header) != columns:
        want = ",".join(columns)
        raise ImportRowsRefused(label, [(rows[0][0], f"the header must be {want}")])
    out = []
    for lineno, row in rows[1:]:
        if len(row) != len(header):
            problems.append((lineno, f"{len(row)} fields where the header has {len(header)}"))
            continue
        cells = {h: v.strip() for h, v in zip(header, row, strict=True)}
        try:
            out.append(build(cells))
        except (ValueError, LampoError) as err:
            problems.append((lineno, str(err)))
    if problems:
        raise ImportRowsRefused(label, sorted(problems))
    if not out:
        raise ImportRowsRefused(label, [(0, "has a header but no rows")])
    return out


def actual_results(name_or_path: str | Path = DEFAULT_ACTUALS) -> list[ActualResult]:
    """Results sold outside lampo from a CSV file (shipped name or path), checked whole."""
    text, label = read_text(name_or_path)
    return _checked_rows(text, label, ACTUAL_COLUMNS, _actual)


def marketplace_rankings(name_or_path: str | Path = DEFAULT_RANKINGS) -> list[MarketplaceRank]:
    """Brands' places on marketplaces' lists from a CSV file (shipped name or path),
    checked whole."""
    text, label = read_text(name_or_path)
    return _checked_rows(text, label, RANKING_COLUMNS, _rank)


def of_period(rows: list[T], period: Period) -> list[T]:
    """The rows (``ActualResult`` or ``MarketplaceRank``) of ``period``, by its label."""
    return [r for r in rows if getattr(r, "period", None) == period.label]
