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
domain's (``lampo.domain.bounds``), the crowd's are in ``lampo.sim.crowd_spec``
(``MAX_ARRIVALS_PER_SECOND``, ``MAX_WEIGHT``, ``MAX_WAVES``, ...), and a file is at most
``MAX_DOCUMENT_BYTES`` long and ``MAX_DEPTH`` levels deep (``lampo.sim._limits``).

Stores (``[[stores]]`` inline with the registry's fields, or ``stores = "file.csv"``: a
registry file next to the scenario, read with ``domain.stores.parse_csv`` and refused
whole, naming its line and column, on any bad row) are the network the event's store
channels sell through; ``[crowd.stores]`` says how many buyers walk in.

The file is read in three layers: ``lampo.sim.fields`` (typed reads that name the field
and line of a problem), ``lampo.sim.crowd_spec`` (the ``[crowd]`` table) and the event's
tables here.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from fractions import Fraction
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from lampo.domain.bounds import (
    MAX_AMOUNT,
    MAX_HOLD_SECONDS,
    show,
)
from lampo.domain.catalog import Category, Sku
from lampo.domain.channels import SHARED, ChannelSpec
from lampo.domain.errors import InvalidRequest, StoresRefused
from lampo.domain.event import Milestone, Offer, SaleEvent, Window
from lampo.domain.frontdoor import FrontDoor
from lampo.domain.market import ChannelKind, Market
from lampo.domain.money import MINOR_UNITS, FxTable, Money
from lampo.domain.report import scaled_milestone
from lampo.domain.stores import MAX_CSV_BYTES, MAX_STORES, Store, parse_csv
from lampo.sim._limits import MAX_DEPTH, MAX_DOCUMENT_BYTES, depth, read_capped
from lampo.sim._locate import Path as FieldPath
from lampo.sim.crowd_spec import (
    MAX_ARRIVALS_PER_SECOND,
    MAX_DECAY_SECONDS,
    MAX_PAY_DELAY_SECONDS,
    MAX_PEAK_FACTOR,
    MAX_WALK_INS_PER_HOUR,
    MAX_WAVES,
    MAX_WEIGHT,
    Arrivals,
    Crowd,
    CrowdReader,
    StoreTraffic,
    Wave,
)
from lampo.sim.fields import MAX_DECIMAL_TEXT, ScenarioError, in_range

__all__ = [
    "MAX_ARRIVALS_PER_SECOND",
    "MAX_DECAY_SECONDS",
    "MAX_DECIMAL_TEXT",
    "MAX_PAY_DELAY_SECONDS",
    "MAX_PEAK_FACTOR",
    "MAX_SCALE",
    "MAX_STORE_FILE_NAME",
    "MAX_WALK_INS_PER_HOUR",
    "MAX_WAVES",
    "MAX_WEIGHT",
    "Arrivals",
    "Crowd",
    "Expected",
    "Scenario",
    "ScenarioError",
    "StoreTraffic",
    "Wave",
    "available",
    "check_scale",
    "load",
    "loads",
    "parse_toml",
]

PACKAGE = "lampo.scenarios"
MAX_SCALE = 10.0
#: The longest name of a stores file (``stores = "double-11-2021-stores.csv"``).
MAX_STORE_FILE_NAME = 128
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.csv$", re.ASCII)


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
    #: The store network the event's store channels sell through (the whole registry,
    #: at any scale: ``crowd.selling_stores`` picks the scaled share that sells).
    stores: tuple[Store, ...] = ()


def available() -> list[str]:
    """Names of the scenarios shipped in the package."""
    root = resources.files(PACKAGE)
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def check_scale(scale: object) -> float:
    if not in_range(scale, 0.0, MAX_SCALE) or scale == 0:
        raise InvalidRequest("scale", f"must be a number in (0, {MAX_SCALE:g}], got {show(scale)}")
    assert isinstance(scale, int | float)
    return float(scale)


def load(name_or_path: str | Path, scale: float = 1.0) -> Scenario:
    """Read a shipped scenario by name, or a TOML file by path, at ``scale``."""
    scale = check_scale(scale)
    text, label, name, base = _read(name_or_path)
    return _Builder(label, text, scale, base).scenario(name, parse_toml(text, label))


def loads(
    text: str, label: str = "scenario", scale: float = 1.0, base: Path | None = None
) -> Scenario:
    """Read a scenario from TOML ``text``; ``label`` names it in messages. ``base``: the
    folder a ``stores = "file.csv"`` is read from (None, an upload: stores only inline)."""
    scale = check_scale(scale)
    return _Builder(label, text, scale, base).scenario(label, parse_toml(text, label))


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


def _read(name_or_path: str | Path) -> tuple[str, str, str, Traversable | Path]:
    """(text, label for messages, scenario name, the folder it is in)."""
    text_name = str(name_or_path)
    root = resources.files(PACKAGE)
    shipped = root.joinpath(f"{text_name}.toml")
    if "/" not in text_name and "\\" not in text_name and shipped.is_file():
        return shipped.read_text(encoding="utf-8"), f"{text_name}.toml", text_name, root
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
        return content.decode("utf-8"), str(path), path.stem, path.parent
    except UnicodeDecodeError as err:
        raise ScenarioError(str(path), f"cannot read: {err}") from None


def _line_of(message: str) -> int | None:
    found = re.search(r"line (\d+)", message)
    return int(found.group(1)) if found else None


def _scaled(n: int, scale: float, at_least: int = 1) -> int:
    if n == 0:
        return 0
    return max(at_least, round(n * Fraction(scale)))


class _Builder(CrowdReader):
    """Turns the parsed TOML into domain objects, naming the field of every problem.
    ``base``: the folder a stores file is read from (None: an upload, which must declare
    its stores inline)."""

    def __init__(
        self, label: str, text: str, scale: float, base: Traversable | Path | None = None
    ) -> None:
        super().__init__(label, text, scale)
        self.base = base

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
            channels=self.channels(data.get("channels", [])),
            front_door=self.front_door(data.get("front_door"), markets[home]),
        )
        crowd = self.crowd(self.table(self.get(data, (), "crowd"), ("crowd",)), event)
        self.declared_channels(crowd, event)
        stores = self.stores(data.get("stores", []))
        self.store_channels(crowd, event, stores)
        expected = self.expected(data.get("expected", {}), fx, categories)
        return Scenario(name, self.label, self.scale, event, crowd, expected, home, stores)

    # -- stores -----------------------------------------------------------------
    def stores(self, raw: Any) -> tuple[Store, ...]:
        """``[[stores]]`` inline, or ``stores = "file.csv"`` next to the scenario."""
        if isinstance(raw, str):
            return self.stores_file(raw)
        if not isinstance(raw, list):
            raise self.fail(
                ("stores",), "must be an array of tables ([[stores]]) or a CSV file's name"
            )
        if len(raw) > MAX_STORES:
            raise self.fail(("stores",), f"more than {MAX_STORES:,} stores (MAX_STORES)")
        out: list[Store] = []
        seen: set[str] = set()
        for i, item in enumerate(raw):
            path: FieldPath = ("stores", i)
            s = self.table(item, path)
            unknown = sorted(set(s) - set(Store.__slots__))
            if unknown:
                raise self.fail((*path, unknown[0]), "is not a field of a store")
            for key in ("opened", "closed"):
                if key in s and (not isinstance(s[key], date) or isinstance(s[key], datetime)):
                    raise self.fail(
                        (*path, key), f"must be a date such as 2017-06-30, got {s[key]!r}"
                    )
            for key in ("lat", "lon"):
                if key in s and (isinstance(s[key], bool) or not isinstance(s[key], int | float)):
                    raise self.fail((*path, key), "must be a number")
            fields = {k: s[k] for k in ("closed", "lat", "lon") if k in s}
            store = self.domain(
                path,
                Store,
                self.string(self.get(s, path, "id"), (*path, "id")),
                self.string(self.get(s, path, "name"), (*path, "name")),
                self.string(self.get(s, path, "kind"), (*path, "kind")),
                self.string(self.get(s, path, "market"), (*path, "market")),
                self.string(self.get(s, path, "city"), (*path, "city")),
                self.get(s, path, "opened"),
                **fields,
            )
            if store.id in seen:
                raise self.fail((*path, "id"), f"store {show(store.id)} is declared twice")
            seen.add(store.id)
            out.append(store)
        return tuple(out)

    def stores_file(self, name: str) -> tuple[Store, ...]:
        path: FieldPath = ("stores",)
        if len(name) > MAX_STORE_FILE_NAME or not _FILE_NAME.match(name):
            raise self.fail(
                path,
                f"must name a .csv file next to the scenario (letters, digits, '.', '_', "
                f"'-'; at most {MAX_STORE_FILE_NAME} characters), got {show(name)}",
            )
        if self.base is None:
            raise self.fail(path, "an uploaded scenario declares its stores inline ([[stores]])")
        file = self.base.joinpath(name)
        label = str(file) if isinstance(self.base, Path) else name
        try:
            if not file.is_file():
                raise self.fail(path, f"{label}: no such file")
            with file.open("rb") as handle:
                content = handle.read(MAX_CSV_BYTES + 1)
            text = content.decode("utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise self.fail(path, f"{label}: cannot read: {err}") from None
        try:
            return tuple(parse_csv(text))
        except StoresRefused as refused:
            first = refused.problems[0]
            raise ScenarioError(
                label, refused.message(), f"stores ({first['column']})", first["line"] or None
            ) from None

    def store_channels(self, crowd: Crowd, event: SaleEvent, stores: tuple[Store, ...]) -> None:
        """Walk-ins need stores, and stores of the event's markets that the event, when
        it declares its channels, sells through: a ``store`` channel for their market."""
        if crowd.stores is None:
            return
        path: FieldPath = ("crowd", "stores")
        markets = {s.market for s in stores if s.market in event.markets}
        if not markets:
            raise self.fail(
                path,
                'walk-ins need stores ([[stores]] or stores = "file.csv") in a market of the event',
            )
        if not event.channels:
            return
        for market in sorted(markets):
            if not any(
                spec.kind is ChannelKind.STORE and (not spec.markets or market in spec.markets)
                for spec in event.channels.values()
            ):
                raise self.fail(
                    path,
                    f"the event declares its channels ([[channels]]) and no store channel "
                    f"sells in {market}, where stores are",
                )

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
            pools = {}
            for pool, units in self.table(s.get("pools", {}), (*path, "pools")).items():
                # floored, so that scaled pools never add up to more than the scaled allocation
                units = self.integer(units, (*path, "pools", pool))
                pools[pool] = int(units * Fraction(self.scale))
            fallback = s.get("fallback", False)
            if not isinstance(fallback, bool):
                raise self.fail((*path, "fallback"), "must be true or false")
            offers[sid] = self.domain(
                (*path, "list_prices") if listed else (*path, "pools") if pools else path,
                Offer,
                sid,
                _scaled(allocation, self.scale),
                prices,
                None if limit is None else self.integer(limit, (*path, "limit"), 1),
                listed,
                pools,
                fallback,
            )
        return skus, offers

    def front_door(self, raw: Any, home: Market) -> FrontDoor | None:
        """``[front_door]`` (docs/front-door.md): times without an offset are read in the
        home market's zone; ``admit_per_second`` is scaled with the crowd (at least 1)."""
        if raw is None:
            return None
        path: FieldPath = ("front_door",)
        d = self.table(raw, path)
        known = {
            "registration_opens", "registration_closes", "require_registration", "unique",
            "lottery_factor", "waiting_room", "admit_per_second", "admission_seconds",
            "pow_bits", "target_latency_ms",
        }  # fmt: skip
        for key in d:
            if key not in known:
                raise self.fail((*path, key), f"is not one of {', '.join(sorted(known))}")
        times = {
            k: self.local_time(d[k], (*path, k), home)
            for k in ("registration_opens", "registration_closes")
            if k in d
        }
        unique = d.get("unique", [])
        if not isinstance(unique, list) or not all(isinstance(u, str) for u in unique):
            raise self.fail((*path, "unique"), "must be an array of identities")
        flags = {}
        for key, default in (("require_registration", False), ("waiting_room", True)):
            flags[key] = d.get(key, default)
            if not isinstance(flags[key], bool):
                raise self.fail((*path, key), "must be true or false")
        numbers = {
            k: self.integer(d[k], (*path, k), 0, 10**9)
            for k in (
                "lottery_factor",
                "admit_per_second",
                "admission_seconds",
                "pow_bits",
                "target_latency_ms",
            )
            if k in d
        }
        if "admit_per_second" in numbers:  # the room admits in proportion to the crowd
            numbers["admit_per_second"] = max(1, round(numbers["admit_per_second"] * self.scale))
        door: FrontDoor = self.domain(
            path, FrontDoor, **times, unique=tuple(unique), **flags, **numbers
        )
        return door

    def channels(self, raw: Any) -> dict[str, ChannelSpec]:
        """``[[channels]]``: ``id``, ``kind`` (online, marketplace, store), optional
        ``skus`` and ``markets`` (default: all) and ``pool`` (default: shared)."""
        if not isinstance(raw, list):
            raise self.fail(("channels",), "must be an array of tables ([[channels]])")
        out: dict[str, ChannelSpec] = {}
        for i, item in enumerate(raw):
            path: FieldPath = ("channels", i)
            c = self.table(item, path)
            cid = self.string(self.get(c, path, "id"), (*path, "id"))
            if cid in out:
                raise self.fail((*path, "id"), f"channel {show(cid)} is declared twice")
            lists = {}
            for name in ("skus", "markets"):
                value = c.get(name, [])
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise self.fail((*path, name), "must be an array of ids")
                lists[name] = tuple(value)
            pool = self.string(c.get("pool", SHARED), (*path, "pool"))
            out[cid] = self.domain(
                path,
                ChannelSpec,
                cid,
                self.string(self.get(c, path, "kind"), (*path, "kind")),
                lists["skus"],
                lists["markets"],
                "" if pool == SHARED else pool,
            )
        return out

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
