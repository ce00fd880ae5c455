"""Sale events: a campaign with a window per market, SKUs on offer, prices and limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from lampo.domain.bounds import (
    MAX_AMOUNT,
    MAX_EVENT_SPAN,
    MAX_HOLD_SECONDS,
    MAX_MINOR_UNITS,
    MAX_UNITS,
    moment,
    show,
    whole,
)
from lampo.domain.catalog import Category, Sku, check_id, check_name
from lampo.domain.channels import MAX_CHANNELS, ChannelSpec, check_pool, stock_key
from lampo.domain.errors import (
    Closed,
    InvalidRequest,
    NotOpen,
    UnknownMarket,
    UnknownSku,
    UpdateRefused,
)
from lampo.domain.frontdoor import FrontDoor
from lampo.domain.market import Channel, ChannelKind, Market
from lampo.domain.money import FxTable, Money


def _keyed(field: str, parts: object, kind: type, key: str) -> None:
    """Refuse ``parts`` unless it maps codes to ``kind`` objects (each under its own code
    ``getattr(part, key)``, when ``key`` is given)."""
    if not isinstance(parts, Mapping):
        raise InvalidRequest(field, "must be a map of codes")
    for code, part in parts.items():
        if not isinstance(part, kind) or (key and getattr(part, key) != code):
            raise InvalidRequest(field, f"{show(code)} must map to its {kind.__name__.lower()}")


@dataclass(frozen=True, slots=True)
class Window:
    """When a market's sale is open: ``opens <= t < closes`` (aware datetimes between
    ``EARLIEST`` and ``LATEST``)."""

    opens: datetime
    closes: datetime

    def __post_init__(self) -> None:
        moment("opens", self.opens)
        moment("closes", self.closes)
        if self.closes <= self.opens:
            raise InvalidRequest("window", "closes must be after opens")

    @property
    def length(self) -> timedelta:
        return self.closes - self.opens


@dataclass(frozen=True, slots=True)
class Offer:
    """A SKU on sale: the stock allocated to the event, the (flash) price per market, the
    per-customer limit (``None``: no limit) and the list price per market the discount is
    measured against (optional: a market without one sells at no discount). Bounds: the
    allocation and the limit at most ``MAX_UNITS``, each price and list price from 1 to
    ``MAX_MINOR_UNITS`` minor units. A list price needs a flash price in its market, in the
    same currency and not above it: a flash price above the list price is refused.

    ``pools`` reserves parts of the allocation for the channels that name them (each from
    0 to the allocation, together at most the allocation); the rest is the shared pool.
    ``fallback``: a channel whose reserved pool cannot serve a line may take it from the
    shared pool instead."""

    sku: str
    allocation: int
    prices: Mapping[str, Money]
    limit_per_customer: int | None = None
    list_prices: Mapping[str, Money] = field(default_factory=dict)
    pools: Mapping[str, int] = field(default_factory=dict)
    fallback: bool = False

    def __post_init__(self) -> None:
        check_id("sku", self.sku)
        whole("allocation", self.allocation, 0, MAX_UNITS, "MAX_UNITS", self.sku)
        if self.limit_per_customer is not None:
            whole(
                "limit_per_customer", self.limit_per_customer, 1, MAX_UNITS, "MAX_UNITS", self.sku
            )
        if not isinstance(self.prices, Mapping):
            raise InvalidRequest("prices", f"{self.sku}: must map markets to prices")
        for money in self.prices.values():
            if not isinstance(money, Money):
                raise InvalidRequest("price", f"{self.sku}: must be money")
            whole("price", money.amount, 1, MAX_MINOR_UNITS, "MAX_MINOR_UNITS", self.sku)
        if not isinstance(self.list_prices, Mapping):
            raise InvalidRequest("list_prices", f"{self.sku}: must map markets to prices")
        for market, listed in self.list_prices.items():
            if not isinstance(listed, Money):
                raise InvalidRequest("list_price", f"{self.sku}: must be money")
            whole("list_price", listed.amount, 1, MAX_MINOR_UNITS, "MAX_MINOR_UNITS", self.sku)
            flash = self.prices.get(market)
            if flash is None:
                raise InvalidRequest(
                    "list_price",
                    f"{self.sku}: a list price in {show(market)}, where it has no price",
                )
            if listed.currency != flash.currency:
                raise InvalidRequest(
                    "list_price",
                    f"{self.sku} in {market}: list price in {listed.currency}, "
                    f"price in {flash.currency}",
                )
            if flash.amount > listed.amount:
                raise InvalidRequest(
                    "list_price",
                    f"{self.sku} in {market}: the flash price {flash} is above the list price "
                    f"{listed}; a flash sale sells at or below list",
                )
        if not isinstance(self.pools, Mapping):
            raise InvalidRequest("pools", f"{self.sku}: must map pool names to units")
        if len(self.pools) > MAX_CHANNELS:
            raise InvalidRequest("pools", f"{self.sku}: more than {MAX_CHANNELS:,} pools")
        for pool, units in self.pools.items():
            check_pool("pools", pool)
            whole("pools", units, 0, MAX_UNITS, "MAX_UNITS", f"{self.sku} {pool}")
        if sum(self.pools.values()) > self.allocation:
            raise InvalidRequest(
                "pools",
                f"{self.sku}: the pools reserve {sum(self.pools.values()):,} units of an "
                f"allocation of {self.allocation:,}",
            )
        if not isinstance(self.fallback, bool):
            raise InvalidRequest("fallback", f"{self.sku}: must be true or false")

    @property
    def shared(self) -> int:
        """The shared pool: the allocation no reserved pool holds."""
        return self.allocation - sum(self.pools.values())


@dataclass(frozen=True, slots=True)
class SaleEvent:
    """A named campaign. ``windows`` maps a market code to its window; ``limit_per_customer``
    bounds the units one customer may hold or buy across every SKU of the event.

    Bounds (``lampo.domain.bounds``): the allocations add up to at most ``MAX_UNITS``;
    ``hold_seconds`` from 1 to ``MAX_HOLD_SECONDS``; the first opening and the last close
    at most ``MAX_EVENT_SPAN`` apart."""

    id: str
    name: str
    markets: Mapping[str, Market]
    windows: Mapping[str, Window]
    categories: Mapping[str, Category]
    skus: Mapping[str, Sku]
    offers: Mapping[str, Offer]
    fx: FxTable
    hold_seconds: int = 900
    limit_per_customer: int | None = None
    milestones: tuple[Milestone, ...] = field(default=())
    channels: Mapping[str, ChannelSpec] = field(default_factory=dict)
    front_door: FrontDoor | None = None

    def __post_init__(self) -> None:
        check_id("event", self.id)
        check_name("name", self.name)
        whole("hold_seconds", self.hold_seconds, 1, MAX_HOLD_SECONDS, "MAX_HOLD_SECONDS")
        if self.limit_per_customer is not None:
            whole("limit_per_customer", self.limit_per_customer, 1, MAX_UNITS, "MAX_UNITS")
        if not isinstance(self.fx, FxTable):
            raise InvalidRequest("fx", "must be an FX table")
        _keyed("markets", self.markets, Market, "code")
        _keyed("windows", self.windows, Window, "")
        _keyed("categories", self.categories, Category, "id")
        _keyed("skus", self.skus, Sku, "id")
        _keyed("offers", self.offers, Offer, "sku")
        for code in self.windows:
            if code not in self.markets:
                raise InvalidRequest("windows", f"market {code!r} is not declared")
        if self.windows and self.closes - self.opens > MAX_EVENT_SPAN:
            raise InvalidRequest(
                "windows",
                f"from the first opening to the last close: {self.closes - self.opens}, "
                f"more than {MAX_EVENT_SPAN.days} days (MAX_EVENT_SPAN)",
            )
        total = self.total_allocation
        if total > MAX_UNITS:
            raise InvalidRequest(
                "allocation",
                f"the allocations add up to {total:,} units, more than {MAX_UNITS:,} (MAX_UNITS)",
            )
        for code, offer in self.offers.items():
            if code not in self.skus:
                raise InvalidRequest("offers", f"SKU {code!r} is not in the catalog")
            for market, price in offer.prices.items():
                if market not in self.markets:
                    raise InvalidRequest("prices", f"{code}: unknown market {market!r}")
                if price.currency != self.markets[market].currency:
                    raise InvalidRequest(
                        "prices",
                        f"{code} in {market} must be priced in {self.markets[market].currency}",
                    )
                self.fx.rate(price.currency)
        for sku in self.skus.values():
            if sku.category not in self.categories:
                raise InvalidRequest("skus", f"{sku.id}: unknown category {sku.category!r}")
        if not isinstance(self.milestones, tuple):
            raise InvalidRequest("milestones", "must be a tuple of milestones")
        for milestone in self.milestones:
            if not isinstance(milestone, Milestone):
                raise InvalidRequest("milestones", "must be a tuple of milestones")
            if milestone.category and milestone.category not in self.categories:
                raise InvalidRequest(
                    "milestones", f"{milestone.label}: unknown category {milestone.category!r}"
                )

        _keyed("channels", self.channels, ChannelSpec, "id")
        if len(self.channels) > MAX_CHANNELS:
            raise InvalidRequest("channels", f"more than {MAX_CHANNELS:,} channels")
        reserved = {pool for offer in self.offers.values() for pool in offer.pools}
        for spec in self.channels.values():
            for code in spec.skus:
                if code not in self.offers:
                    raise InvalidRequest("channels.skus", f"{spec.id}: no offer of {code!r}")
            for market in spec.markets:
                if market not in self.markets:
                    raise InvalidRequest(
                        "channels.markets", f"{spec.id}: unknown market {market!r}"
                    )
            if spec.pool and spec.pool not in reserved:
                raise InvalidRequest(
                    "channels.pool", f"{spec.id}: no offer reserves a pool {spec.pool!r}"
                )
        if reserved and not self.channels:
            raise InvalidRequest("pools", "reserved pools need channels that draw on them")
        door = self.front_door
        if door is not None:
            if not isinstance(door, FrontDoor):
                raise InvalidRequest("front_door", "must be a front door")
            closes = door.registration_closes
            if closes is not None and self.windows and closes > self.opens:
                raise InvalidRequest(
                    "registration_closes", "registration must close by the time the sale opens"
                )

    @property
    def opens(self) -> datetime:
        return min(w.opens for w in self.windows.values())

    @property
    def closes(self) -> datetime:
        return max(w.closes for w in self.windows.values())

    def window(self, market: str) -> Window:
        try:
            return self.windows[market]
        except KeyError:
            raise UnknownMarket(self.id, market) from None

    def check_open(self, market: str, now: datetime) -> None:
        """Raise ``NotOpen`` or ``Closed`` unless ``market``'s window holds ``now``."""
        window = self.window(market)
        if now < window.opens:
            raise NotOpen(market, window.opens)
        if now >= window.closes:
            raise Closed(market, window.closes)

    def offer(self, sku: str) -> Offer:
        try:
            return self.offers[sku]
        except KeyError:
            raise UnknownSku(self.id, sku) from None

    def price(self, sku: str, market: str) -> Money:
        offer = self.offer(sku)
        try:
            return offer.prices[market]
        except KeyError:
            raise UnknownSku(self.id, f"{sku} (not sold in {market})") from None

    def category_of(self, sku: str) -> str:
        return self.skus[sku].category

    @property
    def total_allocation(self) -> int:
        return sum(o.allocation for o in self.offers.values())

    def stock_rows(self) -> dict[str, int]:
        """The allocation of every stock row storage keeps, by stock key: a SKU's shared
        pool under its id, each reserved pool under ``stock_key(sku, pool)``."""
        rows: dict[str, int] = {}
        for sku, offer in self.offers.items():
            rows[sku] = offer.shared
            for pool, units in offer.pools.items():
                rows[stock_key(sku, pool)] = units
        return rows

    def channel_spec(self, channel: Channel, sku: str, market: str) -> ChannelSpec:
        """The declared channel that sells ``sku`` in ``market`` through ``channel``: a
        marketplace by its id; online and a store by the first channel of their kind, in
        declaration order, that sells ``sku`` in ``market`` (a store group covers the
        stores of its markets). Refuses (``InvalidRequest``, field ``channel``) when there
        is none; only an event that declares channels has any."""
        if channel.kind is ChannelKind.MARKETPLACE:
            found = self.channels.get(channel.name)
            specs = [found] if found is not None and found.kind is channel.kind else []
        else:
            specs = [spec for spec in self.channels.values() if spec.kind is channel.kind]
        if not specs:
            what = channel.name if channel.kind is ChannelKind.MARKETPLACE else channel.kind
            raise InvalidRequest("channel", f"{self.id} is not sold through {what!r}")
        for spec in specs:
            if spec.sells(sku, market):
                return spec
        raise InvalidRequest("channel", f"{specs[0].id} does not sell {sku} in {market}")

    def pools_for(self, channel: Channel, sku: str, market: str) -> tuple[str, ...]:
        """The pools a line of ``sku`` sold in ``market`` through ``channel`` may come
        from, in the order they are tried ("": the shared pool): the channel's reserved
        pool, then the shared one if the offer falls back. An event that declares no
        channels sells through any, from the shared pool. Refuses as ``channel_spec``."""
        if not self.channels:
            return ("",)
        spec = self.channel_spec(channel, sku, market)
        offer = self.offer(sku)
        if spec.pool and spec.pool in offer.pools:
            return (spec.pool, "") if offer.fallback else (spec.pool,)
        return ("",)


@dataclass(frozen=True, slots=True)
class Milestone:
    """A threshold to announce when crossed: money in the reporting currency (``category``
    empty) or units of one category. ``label`` is what the battle report shows."""

    label: str
    threshold: int
    category: str = ""

    def __post_init__(self) -> None:
        check_name("milestone label", self.label)
        if not isinstance(self.category, str):
            raise InvalidRequest("milestone category", "must be a category id or empty")
        if self.category:
            check_id("milestone category", self.category)
            whole("threshold", self.threshold, 1, MAX_UNITS, "MAX_UNITS", self.label)
        else:
            whole("threshold", self.threshold, 1, MAX_AMOUNT, "MAX_AMOUNT", self.label)

    @property
    def kind(self) -> str:
        return "units" if self.category else "money"


@dataclass(frozen=True, slots=True)
class StockChange:
    """What an update does to stock, by stock key (``channels.stock_key``): new rows with
    their allocation, and the change of allocation of rows already kept (storage adds it to
    ``available`` too). Moving units between an offer's pools changes two rows."""

    added: Mapping[str, int]
    deltas: Mapping[str, int]


def plan_update(old: SaleEvent, new: SaleEvent) -> StockChange:
    """Check that the live event ``old`` may become ``new`` and say what that does to stock.

    A live event may add markets, SKUs, categories and milestones; move windows; change
    prices, names, the hold time and FX rates; raise or lower allocations (storage refuses
    one below what is held and sold); change or drop a per-customer limit. It may not drop
    what holds, orders and totals refer to (a market, window, category, SKU or offer),
    change a market's currency, a SKU's category or the reporting currency, nor add a limit
    where there was none: counters are kept only for limited SKUs, so units bought before
    would not count. Raises ``UpdateRefused`` naming the first part that cannot change.
    """

    def refuse(field: str, problem: str) -> UpdateRefused:
        return UpdateRefused(old.id, field, problem)

    if new.id != old.id:
        raise refuse("id", f"{new.id!r} is another event")
    for code, market in old.markets.items():
        if code not in new.markets:
            raise refuse("markets", f"{code} is gone; close its window instead")
        if new.markets[code].currency != market.currency:
            raise refuse("markets", f"{code} sells in {market.currency}; its currency stays")
    for code in old.windows:
        if code not in new.windows:
            raise refuse("windows", f"{code} is gone; move its close instead")
    for code in old.categories:
        if code not in new.categories:
            raise refuse("categories", f"{code} is gone; totals are kept by category")
    for code, sku in old.skus.items():
        if code not in new.skus:
            raise refuse("skus", f"{code} is gone; holds and orders refer to it")
        if new.skus[code].category != sku.category:
            raise refuse("skus", f"{code} is in {sku.category}; its category stays")
    if new.fx.reporting != old.fx.reporting:
        raise refuse("fx", f"the reporting currency {old.fx.reporting} stays")
    if old.limit_per_customer is None and new.limit_per_customer is not None:
        raise refuse("limit_per_customer", "no limit was kept, so none can be added")
    for code, offer in new.offers.items():
        before = old.offers.get(code)
        if before is None:
            continue
        if before.limit_per_customer is None and offer.limit_per_customer is not None:
            raise refuse("limit_per_customer", f"{code} had no limit, so none can be added")
    for code in old.offers:
        if code not in new.offers:
            raise refuse("offers", f"{code} is gone; lower its allocation instead")
    # Stock rows by stock key: a pool dropped from an offer keeps its row at 0 units.
    rows, kept = new.stock_rows(), old.stock_rows()
    added: dict[str, int] = {}
    deltas: dict[str, int] = {}
    for key in sorted(rows.keys() | kept.keys()):
        if key not in kept:
            added[key] = rows[key]
        elif rows.get(key, 0) != kept[key]:
            deltas[key] = rows.get(key, 0) - kept[key]
    return StockChange(added, deltas)
