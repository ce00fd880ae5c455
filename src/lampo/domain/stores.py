"""The store network: a registry of physical outlets, its CSV form, and its figures.

A store is open at the close of a day ``d`` when ``opened <= d`` and it has not closed by
then (``closed`` is ``None`` or later than ``d``): ``closed`` is the first day it no longer
trades, so a store opened and closed on the same day was never open. Dates are the
market's own calendar days; a period (``domain/period.py``) is read as its calendar days
(``2017Q2``: 1 April to 30 June), whatever its reporting zone.

A registry is read from CSV whole or not at all: ``parse_csv`` checks every row and, if any
is bad, refuses the file with ``StoresRefused`` naming every problem (line, column,
reason); it never returns part of a file.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import Any

from lampo.domain import bounds
from lampo.domain.catalog import check_id, check_name
from lampo.domain.errors import InvalidRequest, StoresRefused
from lampo.domain.period import Period, growth

#: The most stores a registry holds: 100,000, over three times the network's declared
#: target of 30,000 outlets (seed, 11.11 2021), so every count and target here fits.
MAX_STORES = 100_000
#: The most bytes a registry's CSV may take (UTF-8): 64 MiB. A row is at most about 600
#: bytes (an id of 64 characters, a name and a city of 200, dates and coordinates), so
#: ``MAX_STORES`` rows of any allowed content fit.
MAX_CSV_BYTES = 64 * 2**20
#: The longest market code, as ``domain/market.py`` allows.
MAX_MARKET = 8

COLUMNS = ("id", "name", "kind", "market", "city", "opened", "closed", "lat", "lon")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


class StoreKind(StrEnum):
    OWN = "own"
    AUTHORISED = "authorised"
    PARTNER = "partner"


def _kind(value: object) -> StoreKind:
    if isinstance(value, StoreKind):
        return value
    if isinstance(value, str) and value in StoreKind._value2member_map_:
        return StoreKind(value)
    kinds = ", ".join(k.value for k in StoreKind)
    raise InvalidRequest("kind", f"must be one of {kinds}, got {bounds.show(value)}")


def _coordinate(field: str, value: object, limit: int) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(field, f"must be a number or empty, got {bounds.show(value)}")
    if not math.isfinite(value) or not -limit <= value <= limit:
        raise InvalidRequest(field, f"must be from {-limit} to {limit}, got {bounds.show(value)}")
    return float(value)


@dataclass(frozen=True, slots=True)
class Store:
    """One outlet of the network. Every field is checked when it is built."""

    id: str
    name: str
    kind: StoreKind
    market: str
    city: str
    opened: date
    closed: date | None = None
    lat: float | None = None
    lon: float | None = None

    def __post_init__(self) -> None:
        check_id("id", self.id)
        check_name("name", self.name)
        object.__setattr__(self, "kind", _kind(self.kind))
        check_id("market", self.market, MAX_MARKET)
        check_name("city", self.city)
        bounds.day("opened", self.opened)
        if self.closed is not None:
            bounds.day("closed", self.closed)
            if self.closed < self.opened:
                raise InvalidRequest(
                    "closed",
                    f"{self.closed.isoformat()} is before the opening {self.opened.isoformat()}",
                )
        object.__setattr__(self, "lat", _coordinate("lat", self.lat, 90))
        object.__setattr__(self, "lon", _coordinate("lon", self.lon, 180))

    def open_on(self, day: date) -> bool:
        """Whether the store is open at the close of ``day``."""
        return self.opened <= day and (self.closed is None or day < self.closed)


# -- CSV -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int  # the first line of the record; 1 is the header
    column: str  # a column's name, or "row" / "file" for the whole row or file
    reason: str


def _text_date(field: str, text: str) -> date:
    if not _DATE.fullmatch(text):
        raise InvalidRequest(field, f"must be a date such as 2017-06-30, got {bounds.show(text)}")
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(field, f"no such day: {text}") from None
    return bounds.day(field, value)


def _text_coordinate(field: str, text: str, limit: int) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidRequest(field, f"must be a number or empty, got {bounds.show(text)}") from None
    return _coordinate(field, value, limit)


_READERS: dict[str, Callable[[str], object]] = {
    "id": lambda t: check_id("id", t),
    "name": lambda t: check_name("name", t),
    "kind": _kind,
    "market": lambda t: check_id("market", t, MAX_MARKET),
    "city": lambda t: check_name("city", t),
    "opened": lambda t: _text_date("opened", t),
    "closed": lambda t: _text_date("closed", t) if t else None,
    "lat": lambda t: _text_coordinate("lat", t, 90),
    "lon": lambda t: _text_coordinate("lon", t, 180),
}


def parse_csv(text: str) -> list[Store]:
    """Every store of a registry file (header ``id,name,kind,market,city,opened,closed,
    lat,lon``; ``closed``, ``lat`` and ``lon`` may be empty), in file order; or
    ``StoresRefused`` naming every problem, if there is any."""
    if not isinstance(text, str):
        raise InvalidRequest("stores", f"must be CSV text, got {bounds.show(text)}")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_CSV_BYTES:
        problem = f"{size:,} bytes, more than {MAX_CSV_BYTES:,} (MAX_CSV_BYTES)"
        raise StoresRefused([{"line": 0, "column": "file", "reason": problem}])
    problems: list[RowProblem] = []
    stores: list[Store] = []
    first_line: dict[str, int] = {}
    rows = ended = 0
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None or tuple(header) != COLUMNS:
            got = ",".join(header) if header is not None else "nothing"
            reason = f"must be {','.join(COLUMNS)}, got {bounds.show(got)}"
            raise StoresRefused([{"line": 1, "column": "header", "reason": reason}])
        ended = reader.line_num
        for row in reader:
            line, ended = ended + 1, reader.line_num  # a record's first line
            if not row:
                continue
            rows += 1
            if rows > MAX_STORES:
                problems.append(RowProblem(line, "file", f"more than {MAX_STORES:,} stores"))
                break
            store = _row(line, row, problems)
            if store is None:
                continue
            if store.id in first_line:
                reason = f"store {store.id!r} is already on line {first_line[store.id]}"
                problems.append(RowProblem(line, "id", reason))
                continue
            first_line[store.id] = line
            stores.append(store)
    except csv.Error as exc:
        problems.append(RowProblem(reader.line_num, "file", f"not valid CSV: {exc}"))
    if problems:
        raise StoresRefused(
            [{"line": p.line, "column": p.column, "reason": p.reason} for p in problems]
        )
    return stores


def _row(line: int, row: Sequence[str], problems: list[RowProblem]) -> Store | None:
    if len(row) != len(COLUMNS):
        reason = f"has {len(row)} fields, the header {len(COLUMNS)}"
        problems.append(RowProblem(line, "row", reason))
        return None
    values: dict[str, Any] = {}
    bad = False
    for column, text in zip(COLUMNS, row, strict=True):
        try:
            values[column] = _READERS[column](text)
        except InvalidRequest as exc:
            problems.append(RowProblem(line, column, exc.problem))
            bad = True
    if bad:
        return None
    try:
        return Store(**values)
    except InvalidRequest as exc:
        problems.append(RowProblem(line, exc.field, exc.problem))
        return None


def to_csv(stores: Iterable[Store]) -> str:
    """The registry as CSV that ``parse_csv`` reads back to the same stores."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for s in stores:
        writer.writerow(
            [
                s.id,
                s.name,
                s.kind.value,
                s.market,
                s.city,
                s.opened.isoformat(),
                s.closed.isoformat() if s.closed else "",
                "" if s.lat is None else repr(s.lat),
                "" if s.lon is None else repr(s.lon),
            ]
        )
    return out.getvalue()


# -- figures -------------------------------------------------------------------------------
def open_at(stores: Iterable[Store], day: date, market: str | None = None) -> int:
    """How many stores (of ``market``, or of every market) are open at the close of ``day``."""
    return sum(1 for s in stores if s.open_on(day) and (market is None or s.market == market))


def days_of(period: Period) -> tuple[date, date]:
    """The first and last calendar day of ``period``."""
    first = date(period.year, 3 * period.quarter - 2 if period.quarter else 1, 1)
    after = period.next()
    return first, date(after.year, 3 * after.quarter - 2 if after.quarter else 1, 1) - timedelta(1)


@dataclass(frozen=True, slots=True)
class NetworkFigures:
    """One market's network in a period (``market`` is ``"*"`` for the whole network):
    stores open at its end, opened and closed within it, and open at the end of the period
    before."""

    market: str
    open: int
    opened: int
    closed: int
    open_before: int

    @property
    def change(self) -> int:
        """Stores gained over the period before: ``opened - closed``."""
        return self.open - self.open_before

    @property
    def growth(self) -> Fraction | None:
        """``open / open_before - 1`` exactly; ``None`` when there was no store before."""
        return growth(self.open, self.open_before)


@dataclass(frozen=True, slots=True)
class Network:
    period: Period
    by_market: dict[str, NetworkFigures]
    total: NetworkFigures


def _figures(market: str, stores: Sequence[Store], first: date, last: date) -> NetworkFigures:
    return NetworkFigures(
        market=market,
        open=open_at(stores, last),
        opened=sum(1 for s in stores if first <= s.opened <= last),
        closed=sum(1 for s in stores if s.closed is not None and first <= s.closed <= last),
        open_before=open_at(stores, first - timedelta(1)),
    )


def network(stores: Iterable[Store], period: Period) -> Network:
    """The network's figures in ``period``, per market (every market with a store in the
    registry) and in total."""
    everything = list(stores)
    first, last = days_of(period)
    per_market: dict[str, list[Store]] = {}
    for s in everything:
        per_market.setdefault(s.market, []).append(s)
    return Network(
        period=period,
        by_market={m: _figures(m, per_market[m], first, last) for m in sorted(per_market)},
        total=_figures("*", everything, first, last),
    )


def first_store(stores: Iterable[Store], market: str) -> date | None:
    """The milestone of a market: the day its first store opened (``None`` before any)."""
    return min((s.opened for s in stores if s.market == market), default=None)


def progress_to(target_count: int, current: int) -> Fraction:
    """The share of a network target reached (``Fraction(1, 3)`` for 10,000 of 30,000);
    both counts are whole numbers, the target from 1 to ``MAX_STORES``."""
    bounds.whole("target", target_count, 1, MAX_STORES, "MAX_STORES")
    bounds.whole("current", current, 0, MAX_STORES, "MAX_STORES")
    return Fraction(current, target_count)
