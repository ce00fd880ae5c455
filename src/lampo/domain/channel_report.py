"""The channel mix of an event's totals: by kind (online, marketplace, store), by outlet
(each marketplace, each store), the offline share, and the store, city and marketplace
rankings. Pure functions over ``Totals`` and, for cities, a store registry.

Money splits exactly: each currency's sum is converted once (``FxTable.convert``, as the
grand total is), and that converted sum is shared out among the outlets in proportion to
their exact values, each outlet taking the floor of its exact share and the units left
over going to the largest remainders (then the smaller key). So the outlets' money adds up
to the grand total to the minor unit, the kinds are sums of their outlets, and every share
shown is an exact fraction of the total: the parts of a split add up to 1.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import floor

from lampo.domain.event import SaleEvent
from lampo.domain.holds import Hold, HoldState
from lampo.domain.market import ChannelKind
from lampo.domain.money import MINOR_UNITS, FxTable, Money
from lampo.domain.period import Period, cross_rate
from lampo.domain.stores import Store
from lampo.domain.totals import Totals

#: The kinds in the order every report shows them (each one, even when it sold nothing).
KINDS: tuple[str, ...] = tuple(k.value for k in ChannelKind)
#: Where a store that the registry does not list ranks among the cities.
UNKNOWN_CITY = "unknown city"
#: Rows of each ranking unless told otherwise.
TOP = 5


def outlet_key(kind: str, name: str) -> str:
    """``marketplace:jd``, ``store:s1``; the own online store is ``online``."""
    return f"{kind}:{name}" if name else kind


def apportion(total: int, exact: Mapping[str, Fraction]) -> dict[str, int]:
    """``total`` (whole minor units) shared among ``exact``'s keys in proportion to their
    exact values, whose sum ``total`` is the rounding of: each key takes the floor of its
    value, and the units left over go one each to the largest remainders (ties to the
    smaller key). The result adds up to ``total``; each part is within one unit of its
    exact value. When the sum rounded to ``total`` the leftover is from 0 to the number of
    keys, so every unit finds a key."""
    parts = {k: floor(v) for k, v in exact.items()}
    left = total - sum(parts.values())
    if left:
        order = sorted(exact, key=lambda k: (-(exact[k] - parts[k]), k))
        if not 0 <= left <= len(order):
            raise ValueError(f"{total} is not the rounding of the parts' sum")
        for k in order[:left]:
            parts[k] += 1
    return parts


@dataclass(frozen=True, slots=True)
class Sale:
    """Sales of one outlet to be mixed: ``units``, ``orders`` and ``amount`` (minor units of
    ``currency``). Amounts of one ``group`` and currency are converted together, once, at
    ``factor`` (minor units of the reporting currency per minor unit of ``currency``): the
    group is the grain at which the total being split was converted."""

    kind: str
    name: str
    units: int
    orders: int
    currency: str
    amount: int
    group: Hashable = ""
    factor: Fraction = Fraction(1)


def _factor(fx: FxTable, currency: str) -> Fraction:
    scale = Fraction(10 ** MINOR_UNITS[fx.reporting], 10 ** MINOR_UNITS[currency])
    return fx.rate(currency) * scale


def sales_of(event: SaleEvent, totals: Totals) -> list[Sale]:
    """``totals`` as sales per outlet, converted as the grand total is: each currency's sum
    once through the event's FX table."""
    out = []
    for key, row in totals.lines.items():
        cur = event.markets[key.market].currency
        out.append(
            Sale(
                key.channel_kind,
                key.channel_name,
                row.units,
                0,
                cur,
                row.amount,
                factor=_factor(event.fx, cur),
            )
        )
    for okey, orow in totals.orders.items():
        cur = event.markets[okey.market].currency
        out.append(Sale(okey.channel_kind, okey.channel_name, 0, orow.orders, cur, 0))
    return out


def period_sales(
    period: Period,
    currency: str,
    events: Mapping[str, SaleEvent],
    holds: Iterable[Hold],
    fx: FxTable | None = None,
) -> list[Sale]:
    """The orders of ``period`` as sales per outlet, counted as ``period_figures`` counts
    them (paid in the period in, refunded in the period out) and converted as it converts
    them: per event, market, channel kind and currency, once, into ``currency`` through the
    event's FX table (or ``fx``). So their mix adds up to the period's revenue exactly."""
    out = []
    for h in holds:
        if h.paid_at is None or not h.is_order:
            continue
        moves = [(h.paid_at, 1)]
        if h.state is HoldState.REFUNDED and h.refunded_at is not None:
            moves.append((h.refunded_at, -1))
        table = fx or events[h.event].fx
        scale = Fraction(10 ** MINOR_UNITS[currency], 10 ** MINOR_UNITS[h.currency])
        factor = cross_rate(table, h.currency, currency) * scale
        kind, name = h.channel.kind.value, h.channel.name
        group = (h.event, h.market, kind)
        for at, sign in moves:
            if period.contains(at):
                out.append(
                    Sale(
                        kind,
                        name,
                        sign * h.units,
                        sign,
                        h.currency,
                        sign * h.amount.amount,
                        group,
                        factor,
                    )
                )
    return out


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a split: units, orders, exact amounts per currency, money in the
    reporting currency (the parts of a split add up to the total exactly), and exact shares
    of the total units and money (``0`` when the total is nothing)."""

    key: str
    units: int
    orders: int
    amounts: dict[str, int]
    money: Money
    units_share: Fraction
    money_share: Fraction


@dataclass(frozen=True, slots=True)
class RankedOutlet:
    """A row of a ranking: a store (``key`` its id, ``name`` its name, ``city`` its city), a
    city (``key`` and ``name`` the city) or a marketplace (``key`` and ``name`` its id)."""

    rank: int
    key: str
    name: str
    city: str
    units: int
    money: Money


@dataclass(frozen=True, slots=True)
class ChannelMix:
    """An event's totals split by channel kind and by outlet, with the offline share and
    the rankings of stores, cities and marketplaces (``top`` rows each)."""

    units: int
    orders: int
    money: Money
    by_kind: list[Part]  # every kind, in ``KINDS`` order
    by_outlet: list[Part]  # most money first, then most units, then key
    offline: Part  # the store kind's part: its shares are the offline share
    stores: list[RankedOutlet]
    cities: list[RankedOutlet]
    marketplaces: list[RankedOutlet]


def _share(part: int, whole: int) -> Fraction:
    return Fraction(part, whole) if whole else Fraction(0)


def ranked(
    rows: Iterable[tuple[str, str, str, int, int]], currency: str, top: int = TOP
) -> list[RankedOutlet]:
    """``(key, name, city, units, money)`` rows ranked by units, then money, then key (so a
    tie always reads in the same order), rows with no unit left out, the first ``top``."""
    kept = sorted((r for r in rows if r[3] > 0), key=lambda r: (-r[3], -r[4], r[0]))
    return [
        RankedOutlet(i + 1, key, name, city, units, Money(money, currency))
        for i, (key, name, city, units, money) in enumerate(kept[:top])
    ]


def channel_mix(
    event: SaleEvent, totals: Totals, stores: Sequence[Store] = (), top: int = TOP
) -> ChannelMix:
    """``totals`` of ``event`` split by channel kind and outlet, in the event's reporting
    currency, and ranked (``mix``)."""
    return mix(sales_of(event, totals), event.fx.reporting, stores, top)


def mix(
    sales: Iterable[Sale], reporting: str, stores: Sequence[Store] = (), top: int = TOP
) -> ChannelMix:
    """``sales`` split by channel kind and outlet, and ranked: stores (named and placed in a
    city by the ``stores`` registry; a store it does not list ranks under ``UNKNOWN_CITY``),
    cities and marketplaces. The money of each group and currency is converted once and
    apportioned among its outlets, so the outlets add up to the sum of the groups."""
    units: Counter[tuple[str, str]] = Counter()
    orders: Counter[tuple[str, str]] = Counter()
    amounts: dict[tuple[str, str], Counter[str]] = {}
    exact: dict[tuple[Hashable, str, Fraction], Counter[str]] = {}
    group_sums: Counter[tuple[Hashable, str, Fraction]] = Counter()
    for sale in sales:
        outlet = (sale.kind, sale.name)
        units[outlet] += sale.units
        orders[outlet] += sale.orders
        if sale.amount or sale.units:
            amounts.setdefault(outlet, Counter())[sale.currency] += sale.amount
        if sale.amount:
            group = (sale.group, sale.currency, sale.factor)
            exact.setdefault(group, Counter())[outlet_key(*outlet)] += sale.amount
            group_sums[group] += sale.amount
    money: Counter[str] = Counter()
    for group, parts in exact.items():
        factor = group[2]
        money.update(
            apportion(round(group_sums[group] * factor), {k: a * factor for k, a in parts.items()})
        )
    outlets = sorted(set(amounts) | {o for o, n in orders.items() if n})
    total_units = sum(units.values())
    total_money = sum(money.values())

    def part(key: str, n: int, count: int, cash: int, sums: Mapping[str, int]) -> Part:
        return Part(
            key,
            n,
            count,
            {c: a for c, a in sorted(sums.items()) if a},
            Money(cash, reporting),
            _share(n, total_units),
            _share(cash, total_money),
        )

    by_outlet = []
    kind_units: Counter[str] = Counter()
    kind_orders: Counter[str] = Counter()
    kind_money: Counter[str] = Counter()
    kind_sums: dict[str, Counter[str]] = {k: Counter() for k in KINDS}
    for o in outlets:
        label = outlet_key(*o)
        kind = o[0]
        sums = amounts.get(o, Counter())
        kind_units[kind] += units[o]
        kind_orders[kind] += orders[o]
        kind_money[kind] += money[label]
        kind_sums.setdefault(kind, Counter()).update(sums)
        if units[o] or any(sums.values()) or orders[o]:
            by_outlet.append(part(label, units[o], orders[o], money[label], sums))
    by_outlet.sort(key=lambda p: (-p.money.amount, -p.units, p.key))
    kinds = [*KINDS, *sorted(k for k in kind_sums if k not in KINDS)]
    by_kind = [part(k, kind_units[k], kind_orders[k], kind_money[k], kind_sums[k]) for k in kinds]
    registry = {s.id: s for s in stores}
    store_rows = []
    city_units: Counter[str] = Counter()
    city_money: Counter[str] = Counter()
    market_rows = []
    for kind, name in outlets:
        n, cash = units[(kind, name)], money[outlet_key(kind, name)]
        if kind == ChannelKind.STORE.value:
            known = registry.get(name)
            city = known.city if known else UNKNOWN_CITY
            store_rows.append((name, known.name if known else name, city, n, cash))
            city_units[city] += n
            city_money[city] += cash
        elif kind == ChannelKind.MARKETPLACE.value:
            market_rows.append((name, name, "", n, cash))
    city_rows = [(c, c, c, city_units[c], city_money[c]) for c in city_units]
    return ChannelMix(
        units=total_units,
        orders=sum(orders.values()),
        money=Money(total_money, reporting),
        by_kind=by_kind,
        by_outlet=by_outlet,
        offline=next(p for p in by_kind if p.key == ChannelKind.STORE.value),
        stores=ranked(store_rows, reporting, top),
        cities=ranked(city_rows, reporting, top),
        marketplaces=ranked(market_rows, reporting, top),
    )
