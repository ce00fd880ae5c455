"""Scenario files: a sale event and the crowd that shops it, in TOML.

``load("mi-fan-fest-2015")`` reads a scenario shipped in the package; ``load("x.toml")``
reads a file. Money and FX rates must be decimal strings (``"699.00"``): TOML reads a
bare ``699.00`` as a float, and no float ever touches money. A bad file raises
``ScenarioError`` naming the file, the line and the field (``skus[2].prices.IN``).

``scale`` multiplies every allocation, expected figure, milestone and arrival rate (each
allocation stays at least 1), so a scenario runs at any size; a scaled milestone's label
states the amount it measures (``1,000,000.00 CNY (x0.001 of ¥1 billion)``).

The format, field by field, crowd included (daily rhythm, waves, buyers who come back
after a sold-out): docs/scenarios.md. Every number has a bound: the event's are the
domain's (``lampo.domain.bounds``), the crowd's are below (``MAX_ARRIVALS_PER_SECOND``,
``MAX_WEIGHT``, ``MAX_WAVES``, ...), and a file is at most ``MAX_DOCUMENT_BYTES`` long and
``MAX_DEPTH`` levels deep (``lampo.sim._limits``).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

from lampo.domain.bounds import (
    MAX_AMOUNT,
    MAX_EVENT_SPAN,
    MAX_HOLD_SECONDS,
    MAX_MINOR_UNITS,
    MAX_UNITS,
    show,
)
from lampo.domain.catalog import Category, Sku
from lampo.domain.errors import InvalidRequest, LampoError
from lampo.domain.event import Milestone, Offer, SaleEvent, Window
from lampo.domain.market import Market
from lampo.domain.money import MINOR_UNITS, FxTable, Money
from lampo.domain.report import scaled_milestone
from lampo.sim._limits import MAX_DEPTH, MAX_DOCUMENT_BYTES, depth, read_capped
from lampo.sim._locate import Path as FieldPath
from lampo.sim._locate import format_path, locate

PACKAGE = "lampo.scenarios"
MAX_SCALE = 10.0
_DECIMAL = re.compile(r"^[0-9][0-9_]*(\.[0-9]+)?$")
#: The longest decimal string (a price, a rate, a milestone): 40 characters.
MAX_DECIMAL_TEXT = 40

# The bounds of a crowd (before scaling): each far above the shipped scenarios' and low
# enough that no sum or product of them leaves the finite floats.
#: Buyers arriving per second in one market, at the peak or the baseline.
MAX_ARRIVALS_PER_SECOND = 100_000.0
#: A relative weight (demand per SKU, channel mix, referrals).
MAX_WEIGHT = 1_000_000.0
#: How long the opening spike takes to decay (by 1/e): at most the longest event.
MAX_DECAY_SECONDS = MAX_EVENT_SPAN.total_seconds()
#: The median delay between a hold and its payment: at most the longest hold.
MAX_PAY_DELAY_SECONDS = float(MAX_HOLD_SECONDS)
#: Waves of arrivals a crowd may declare (a daily one counts once).
MAX_WAVES = 64
#: A wave's peak, as a multiple of the market's opening peak.
MAX_PEAK_FACTOR = 100.0


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


@dataclass(frozen=True, slots=True)
class Arrivals:
    """One market's arrivals per second: ``peak * exp(-t / decay) + baseline``."""

    peak_per_second: float
    baseline_per_second: float


@dataclass(frozen=True, slots=True)
class Wave:
    """Another spike of arrivals: at a local date-time (``at``), or every day of the window
    at a local time of day (``daily``), in ``markets`` (None: every market). Its peak is
    ``peak_factor`` times each market's opening peak; it decays by 1/e every
    ``decay_seconds``."""

    peak_factor: float
    decay_seconds: float
    at: datetime | None = None  # naive: local time in each market
    daily: time | None = None
    markets: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Crowd:
    """How buyers behave; shares are probabilities, counts already scaled."""

    decay_seconds: float
    arrivals: Mapping[str, Arrivals]
    demand: Mapping[str, float]
    channels: Mapping[str, Mapping[str, float]]
    referrals: Mapping[str, float]
    two_units: float = 0.0
    add_on: float = 0.0
    never_pay: float = 0.0
    release: float = 0.0
    late_pay: float = 0.0
    retry: float = 0.0
    double_pay: float = 0.0
    repeat: float = 0.0
    pay_delay_seconds: float = 60.0
    #: The baseline's weight per local hour (0 to 23): a daily rhythm. None: flat.
    rhythm: tuple[float, ...] | None = None
    waves: tuple[Wave, ...] = ()
    #: Buyers refused as sold out who try again later (a unit may be back by then).
    comeback: float = 0.0
    comeback_seconds: float = 120.0


@dataclass(frozen=True, slots=True)
class Expected:
    """The seed's headline figures (already scaled): units per category and revenue."""

    units: Mapping[str, int] = field(default_factory=dict)
    revenue: Money | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    source: str
    scale: float
    event: SaleEvent
    crowd: Crowd
    expected: Expected
    home_market: str


def available() -> list[str]:
    """Names of the scenarios shipped in the package."""
    root = resources.files(PACKAGE)
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def _in_range(value: object, lo: float, hi: float) -> bool:
    """Whether ``value`` is a number (not a bool) in ``[lo, hi]``: NaN, infinities and
    integers too large for a float are not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return lo <= value <= hi


def check_scale(scale: object) -> float:
    if not _in_range(scale, 0.0, MAX_SCALE) or scale == 0:
        raise InvalidRequest("scale", f"must be a number in (0, {MAX_SCALE:g}], got {show(scale)}")
    assert isinstance(scale, int | float)
    return float(scale)


def load(name_or_path: str | Path, scale: float = 1.0) -> Scenario:
    """Read a shipped scenario by name, or a TOML file by path, at ``scale``."""
    scale = check_scale(scale)
    text, label, name = _read(name_or_path)
    return _Builder(label, text, scale).scenario(name, parse_toml(text, label))


def loads(text: str, label: str = "scenario", scale: float = 1.0) -> Scenario:
    """Read a scenario from TOML ``text`` (an upload); ``label`` names it in messages."""
    scale = check_scale(scale)
    return _Builder(label, text, scale).scenario(label, parse_toml(text, label))


def parse_toml(text: str, label: str) -> dict[str, Any]:
    """The TOML document ``text``, or ``ScenarioError``: more than ``MAX_DOCUMENT_BYTES``
    characters, nested deeper than ``MAX_DEPTH``, or not valid TOML (an integer of
    thousands of digits included). Nothing else escapes."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise ScenarioError(label, f"longer than {MAX_DOCUMENT_BYTES:,} bytes")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(label, f"not valid TOML: {err}", line=_line_of(str(err))) from None
    except RecursionError:
        data = None  # the parser recursed once per level: far deeper than allowed
    except ValueError as err:  # a number tomllib cannot convert (4,300 digits and more)
        raise ScenarioError(label, f"not valid TOML: {err}") from None
    if data is None or depth(data) > MAX_DEPTH:
        raise ScenarioError(label, f"nested deeper than {MAX_DEPTH} levels (MAX_DEPTH)")
    return data


def _read(name_or_path: str | Path) -> tuple[str, str, str]:
    """(text, label for messages, scenario name)."""
    text_name = str(name_or_path)
    shipped = resources.files(PACKAGE).joinpath(f"{text_name}.toml")
    if "/" not in text_name and "\\" not in text_name and shipped.is_file():
        return shipped.read_text(encoding="utf-8"), f"{text_name}.toml", text_name
    path = Path(name_or_path)
    if path.suffix != ".toml" and not path.exists():
        known = ", ".join(available()) or "none"
        raise ScenarioError(text_name, f"no such scenario; shipped: {known}")
    try:
        content = read_capped(path)
    except FileNotFoundError:
        raise ScenarioError(str(path), "no such file") from None
    except OSError as err:
        raise ScenarioError(str(path), f"cannot read: {err}") from None
    if len(content) > MAX_DOCUMENT_BYTES:
        raise ScenarioError(str(path), f"longer than {MAX_DOCUMENT_BYTES:,} bytes")
    try:
        return content.decode("utf-8"), str(path), path.stem
    except UnicodeDecodeError as err:
        raise ScenarioError(str(path), f"cannot read: {err}") from None


def _line_of(message: str) -> int | None:
    found = re.search(r"line (\d+)", message)
    return int(found.group(1)) if found else None


def _scaled(n: int, scale: float, at_least: int = 1) -> int:
    if n == 0:
        return 0
    return max(at_least, round(n * Fraction(scale)))


class _Builder:
    """Turns the parsed TOML into domain objects, naming the field of every problem."""

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
            raise self.fail(path, f"must be a table, got {_kind(value)}")
        return value

    def string(self, value: Any, path: FieldPath) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(path, f"must be a non-empty string, got {_kind(value)}")
        return value

    def integer(
        self, value: Any, path: FieldPath, minimum: int = 0, maximum: int = MAX_UNITS
    ) -> int:
        """A whole number from ``minimum`` to ``maximum`` (default ``MAX_UNITS``)."""
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(path, f"must be a whole number, got {_kind(value)}")
        if value < minimum:
            raise self.fail(path, f"must be at least {minimum}, got {show(value)}")
        if value > maximum:
            raise self.fail(path, f"must be at most {maximum:,}, got {show(value)}")
        return value

    def number(self, value: Any, path: FieldPath, lo: float, hi: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"must be a number, got {_kind(value)}")
        if not _in_range(value, lo, hi):
            raise self.fail(path, f"must be between {lo:g} and {hi:g}, got {show(value)}")
        return float(value)

    def share(self, value: Any, path: FieldPath) -> float:
        return self.number(value, path, 0.0, 1.0)

    def rate(self, value: Any, path: FieldPath) -> float:
        """Arrivals per second, up to ``MAX_ARRIVALS_PER_SECOND``."""
        return self.number(value, path, 0.0, MAX_ARRIVALS_PER_SECOND)

    def weight(self, value: Any, path: FieldPath) -> float:
        """A relative weight, up to ``MAX_WEIGHT``."""
        return self.number(value, path, 0.0, MAX_WEIGHT)

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
                f"characters, got {_kind(value)}",
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
                path, f"must be a date-time such as 2015-04-08T10:00:00, got {_kind(value)}"
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

    # -- the scenario -----------------------------------------------------------
    def scenario(self, name: str, data: dict[str, Any]) -> Scenario:
        ev = self.table(self.get(data, (), "event"), ("event",))
        fx = self.fx(self.table(self.get(data, (), "fx"), ("fx",)))
        markets = self.markets(self.table(self.get(data, (), "markets"), ("markets",)))
        if not markets:
            raise self.fail(("markets",), "needs at least one market")
        for code, market in markets.items():
            if market.currency != fx.reporting and market.currency not in fx.rates:
                raise self.fail(
                    ("fx", "rates", market.currency),
                    f"missing: market {code} sells in {market.currency}",
                )
        windows = self.windows(ev, self.table(data.get("markets"), ("markets",)), markets)
        categories = self.categories(self.table(self.get(data, (), "categories"), ("categories",)))
        skus, offers = self.skus(self.get(data, (), "skus"), markets, categories)
        home = self.string(
            self.get(ev, ("event",), "home_market", next(iter(markets))), ("event", "home_market")
        )
        if home not in markets:
            raise self.fail(("event", "home_market"), f"{show(home)} is not a declared market")
        limit = ev.get("limit_per_customer")
        event = self.domain(
            ("event",),
            SaleEvent,
            id=self.string(self.get(ev, ("event",), "id"), ("event", "id")),
            name=self.string(self.get(ev, ("event",), "name"), ("event", "name")),
            markets=markets,
            windows=windows,
            categories=categories,
            skus=skus,
            offers=offers,
            fx=fx,
            hold_seconds=self.integer(
                self.get(ev, ("event",), "hold_seconds", 900),
                ("event", "hold_seconds"),
                1,
                MAX_HOLD_SECONDS,
            ),
            limit_per_customer=None
            if limit is None
            else self.integer(limit, ("event", "limit_per_customer"), 1),
            milestones=self.milestones(data.get("milestones", []), fx, categories),
        )
        crowd = self.crowd(self.table(self.get(data, (), "crowd"), ("crowd",)), event)
        expected = self.expected(data.get("expected", {}), fx, categories)
        return Scenario(name, self.label, self.scale, event, crowd, expected, home)

    def fx(self, fx: dict[str, Any]) -> FxTable:
        reporting = self.string(self.get(fx, ("fx",), "reporting"), ("fx", "reporting"))
        if reporting not in MINOR_UNITS:
            raise self.fail(("fx", "reporting"), f"unknown currency {show(reporting)}")
        on = self.get(fx, ("fx",), "on")
        if not isinstance(on, date) or isinstance(on, datetime):
            raise self.fail(("fx", "on"), f"must be a date such as 2015-04-08, got {show(on)}")
        rates = {}
        for code, value in self.table(self.get(fx, ("fx",), "rates", {}), ("fx", "rates")).items():
            path = ("fx", "rates", code)
            if code not in MINOR_UNITS:
                raise self.fail(path, f"unknown currency {show(code)}")
            rates[code] = self.decimal(value, path)
            if rates[code] <= 0:
                raise self.fail(path, "must be positive")
        fx_table: FxTable = self.domain(("fx",), FxTable, reporting, on, rates)
        return fx_table

    def markets(self, table: dict[str, Any]) -> dict[str, Market]:
        out = {}
        for code, raw in table.items():
            path: FieldPath = ("markets", code)
            m = self.table(raw, path)
            currency = self.string(self.get(m, path, "currency"), (*path, "currency"))
            if currency not in MINOR_UNITS:
                raise self.fail((*path, "currency"), f"unknown currency {show(currency)}")
            out[code] = self.domain(
                path,
                Market,
                code,
                self.string(self.get(m, path, "name"), (*path, "name")),
                currency,
                self.string(self.get(m, path, "tz"), (*path, "tz")),
            )
        return out

    def windows(
        self, ev: dict[str, Any], raw: dict[str, Any], markets: dict[str, Market]
    ) -> dict[str, Window]:
        out = {}
        for code, market in markets.items():
            opens = raw[code].get("opens", ev.get("opens"))
            closes = raw[code].get("closes", ev.get("closes"))
            where: FieldPath = ("markets", code) if "opens" in raw[code] else ("event",)
            if opens is None or closes is None:
                raise self.fail((*where, "opens" if opens is None else "closes"), "is missing")
            o = self.local_time(opens, (*where, "opens"), market)
            c = self.local_time(closes, (*where, "closes"), market)
            out[code] = self.domain((*where, "closes"), Window, o, c)
        return out

    def categories(self, table: dict[str, Any]) -> dict[str, Category]:
        out = {}
        for cid, raw in table.items():
            path: FieldPath = ("categories", cid)
            c = self.table(raw, path)
            out[cid] = self.domain(
                path,
                Category,
                cid,
                self.string(self.get(c, path, "name", cid), (*path, "name")),
                self.string(self.get(c, path, "unit", "units"), (*path, "unit")),
            )
        return out

    def skus(
        self, raw: Any, markets: dict[str, Market], categories: dict[str, Category]
    ) -> tuple[dict[str, Sku], dict[str, Offer]]:
        if not isinstance(raw, list) or not raw:
            raise self.fail(("skus",), "must be a non-empty array of tables ([[skus]])")
        skus: dict[str, Sku] = {}
        offers: dict[str, Offer] = {}
        for i, item in enumerate(raw):
            path: FieldPath = ("skus", i)
            s = self.table(item, path)
            sid = self.string(self.get(s, path, "id"), (*path, "id"))
            if sid in skus:
                raise self.fail((*path, "id"), f"SKU {show(sid)} is declared twice")
            category = self.string(self.get(s, path, "category"), (*path, "category"))
            if category not in categories:
                raise self.fail((*path, "category"), f"{show(category)} is not a declared category")
            skus[sid] = self.domain(
                path,
                Sku,
                sid,
                self.string(self.get(s, path, "product", sid), (*path, "product")),
                self.string(self.get(s, path, "name", sid), (*path, "name")),
                category,
            )
            allocation = self.integer(self.get(s, path, "allocation"), (*path, "allocation"))
            limit = s.get("limit")
            prices = {}
            table = self.table(self.get(s, path, "prices"), (*path, "prices"))
            if not table:
                raise self.fail((*path, "prices"), "needs a price in at least one market")
            for market, value in table.items():
                if market not in markets:
                    raise self.fail((*path, "prices", market), "is not a declared market")
                prices[market] = self.money(
                    value, (*path, "prices", market), markets[market].currency
                )
            listed = {}
            listing = self.table(s.get("list_prices", {}), (*path, "list_prices"))
            for market, value in listing.items():
                if market not in prices:
                    raise self.fail((*path, "list_prices", market), "has no price in that market")
                listed[market] = self.money(
                    value, (*path, "list_prices", market), markets[market].currency
                )
            offers[sid] = self.domain(
                (*path, "list_prices") if listed else path,
                Offer,
                sid,
                _scaled(allocation, self.scale),
                prices,
                None if limit is None else self.integer(limit, (*path, "limit"), 1),
                listed,
            )
        return skus, offers

    def milestones(
        self, raw: Any, fx: FxTable, categories: dict[str, Category]
    ) -> tuple[Milestone, ...]:
        if not isinstance(raw, list):
            raise self.fail(("milestones",), "must be an array of tables ([[milestones]])")
        out = []
        names = {cid: c.unit for cid, c in categories.items()}
        for i, item in enumerate(raw):
            path: FieldPath = ("milestones", i)
            m = self.table(item, path)
            label = self.string(self.get(m, path, "label"), (*path, "label"))
            if ("money" in m) == ("units" in m):
                raise self.fail(path, "needs exactly one of money or units")
            if "money" in m:
                money = self.money(m["money"], (*path, "money"), fx.reporting, MAX_AMOUNT)
                threshold = _scaled(money.amount, self.scale)
                milestone = self.domain((*path, "money"), Milestone, label, threshold)
            else:
                units = self.integer(m["units"], (*path, "units"), 1)
                category = self.string(self.get(m, path, "category"), (*path, "category"))
                if category not in categories:
                    raise self.fail((*path, "category"), f"{show(category)} is not a category")
                threshold = _scaled(units, self.scale)
                milestone = self.domain((*path, "units"), Milestone, label, threshold, category)
            # the label was written for the full-size threshold: say what is measured now
            out.append(
                self.domain(
                    (*path, "label"), scaled_milestone, milestone, self.scale, fx.reporting, names
                )
            )
        return tuple(out)

    def expected(self, raw: Any, fx: FxTable, categories: dict[str, Category]) -> Expected:
        e = self.table(raw, ("expected",))
        units = {}
        for cid, value in self.table(e.get("units", {}), ("expected", "units")).items():
            path: FieldPath = ("expected", "units", cid)
            if cid not in categories:
                raise self.fail(path, f"{show(cid)} is not a declared category")
            units[cid] = _scaled(self.integer(value, path), self.scale)
        revenue = None
        if "revenue" in e:
            money = self.money(e["revenue"], ("expected", "revenue"), fx.reporting, MAX_AMOUNT)
            revenue = Money(_scaled(money.amount, self.scale), fx.reporting)
        source = self.string(e.get("source", "-"), ("expected", "source"))
        return Expected(units, revenue, source)

    def crowd(self, c: dict[str, Any], event: SaleEvent) -> Crowd:
        base: FieldPath = ("crowd",)
        shares = {
            key: self.share(c.get(key, 0.0), (*base, key))
            for key in (
                "two_units",
                "add_on",
                "never_pay",
                "release",
                "late_pay",
                "retry",
                "double_pay",
                "repeat",
            )
        }
        if shares["never_pay"] + shares["release"] + shares["late_pay"] > 1:
            raise self.fail((*base, "never_pay"), "never_pay + release + late_pay exceed 1")
        arrivals = {}
        raw_arrivals = self.table(self.get(c, base, "arrivals"), (*base, "arrivals"))
        for market, raw in raw_arrivals.items():
            path: FieldPath = (*base, "arrivals", market)
            if market not in event.markets:
                raise self.fail(path, "is not a declared market")
            a = self.table(raw, path)
            peak = self.get(a, path, "peak_per_second")
            baseline = a.get("baseline_per_second", 0.0)
            arrivals[market] = Arrivals(
                self.rate(peak, (*path, "peak_per_second")) * self.scale,
                self.rate(baseline, (*path, "baseline_per_second")) * self.scale,
            )
        if not arrivals:
            raise self.fail((*base, "arrivals"), "needs at least one market")
        demand = {}
        for sku, value in self.table(self.get(c, base, "demand"), (*base, "demand")).items():
            path = (*base, "demand", sku)
            if sku not in event.offers:
                raise self.fail(path, f"{show(sku)} is not a declared SKU")
            demand[sku] = self.weight(value, path)
        if not any(demand.values()):
            raise self.fail((*base, "demand"), "needs a positive weight for at least one SKU")
        channels: dict[str, dict[str, float]] = {}
        for market, raw in self.table(c.get("channels", {}), (*base, "channels")).items():
            path = (*base, "channels", market)
            if market not in event.markets:
                raise self.fail(path, "is not a declared market")
            mix = {k: self.weight(v, (*path, k)) for k, v in self.table(raw, path).items()}
            if not any(mix.values()):
                raise self.fail(path, "needs a positive weight")
            channels[market] = mix
        referrals = {
            k: self.weight(v, (*base, "referrals", k))
            for k, v in self.table(
                c.get("referrals", {"direct": 1.0}), (*base, "referrals")
            ).items()
        }
        decay = self.number(
            self.get(c, base, "decay_seconds"), (*base, "decay_seconds"), 1.0, MAX_DECAY_SECONDS
        )
        return Crowd(
            decay_seconds=decay,
            arrivals=arrivals,
            demand=demand,
            channels=channels,
            referrals=referrals or {"direct": 1.0},
            pay_delay_seconds=self.number(
                c.get("pay_delay_seconds", 60.0),
                (*base, "pay_delay_seconds"),
                1.0,
                MAX_PAY_DELAY_SECONDS,
            ),
            rhythm=self.rhythm(c.get("rhythm"), (*base, "rhythm")),
            waves=self.waves(c.get("waves", []), (*base, "waves"), event, decay),
            comeback=self.share(c.get("comeback", 0.0), (*base, "comeback")),
            comeback_seconds=self.number(
                c.get("comeback_seconds", 120.0),
                (*base, "comeback_seconds"),
                1.0,
                MAX_DECAY_SECONDS,
            ),
            **shares,
        )

    def rhythm(self, raw: Any, path: FieldPath) -> tuple[float, ...] | None:
        if raw is None:
            return None
        if not isinstance(raw, list) or len(raw) != 24:
            raise self.fail(path, "must be an array of 24 weights, one per local hour 0-23")
        weights = tuple(self.weight(w, (*path, i)) for i, w in enumerate(raw))
        if not any(weights):
            raise self.fail(path, "needs a positive weight")
        return weights

    def waves(self, raw: Any, path: FieldPath, event: SaleEvent, decay: float) -> tuple[Wave, ...]:
        if not isinstance(raw, list):
            raise self.fail(path, "must be an array of tables ([[crowd.waves]])")
        if len(raw) > MAX_WAVES:
            raise self.fail(path, f"at most {MAX_WAVES} waves (MAX_WAVES), got {len(raw)}")
        out = []
        for i, item in enumerate(raw):
            where: FieldPath = (*path, i)
            w = self.table(item, where)
            at = self.get(w, where, "at")
            if isinstance(at, datetime) and at.tzinfo is None:
                one, daily = at, None
            elif isinstance(at, time) and at.tzinfo is None:
                one, daily = None, at
            else:
                raise self.fail(
                    (*where, "at"),
                    "must be a local date-time (2021-11-11T00:00:00) or a local time of day "
                    f"(20:00:00, every day), got {_kind(at)}",
                )
            markets = None
            if "markets" in w:
                names = w["markets"]
                if not isinstance(names, list) or not names:
                    raise self.fail((*where, "markets"), "must be a non-empty array of markets")
                for j, m in enumerate(names):
                    if m not in event.markets:
                        raise self.fail((*where, "markets", j), f"{show(m)} is not a market")
                markets = frozenset(names)
            out.append(
                Wave(
                    peak_factor=self.number(
                        self.get(w, where, "peak_factor"),
                        (*where, "peak_factor"),
                        0.0,
                        MAX_PEAK_FACTOR,
                    ),
                    decay_seconds=self.number(
                        w.get("decay_seconds", decay),
                        (*where, "decay_seconds"),
                        1.0,
                        MAX_DECAY_SECONDS,
                    ),
                    at=one,
                    daily=daily,
                    markets=markets,
                )
            )
        return tuple(out)


def _kind(value: Any) -> str:
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
