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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import floor

from lampo.domain.event import SaleEvent
from lampo.domain.market import ChannelKind
from lampo.domain.money import MINOR_UNITS, Money
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


def split_money(event: SaleEvent, amounts: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """Minor units of the reporting currency per group, from each group's exact amounts per
    currency (``amounts[group][currency]``): each currency's sum converted once, then
    apportioned. The groups' money adds up to ``event.fx.total`` of the currencies' sums."""
    fx = event.fx
    out: Counter[str] = Counter({g: 0 for g in amounts})
    currencies = sorted({c for a in amounts.values() for c in a})
    for cur in currencies:
        factor = fx.rate(cur) * 10 ** MINOR_UNITS[fx.reporting] / 10 ** MINOR_UNITS[cur]
        exact = {g: a[cur] * factor for g, a in amounts.items() if a.get(cur)}
        converted = fx.convert(Money(sum(a.get(cur, 0) for a in amounts.values()), cur))
        out.update(apportion(converted.amount, exact))
    return dict(out)


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
    """``totals`` of ``event`` split by channel kind and outlet, and ranked: stores (named
    and placed in a city by the ``stores`` registry; a store it does not list ranks under
    ``UNKNOWN_CITY``), cities and marketplaces. SKUs and markets the event does not list
    (a newer definition's) are counted at their market's currency if the event knows it."""
    units: Counter[tuple[str, str]] = Counter()
    amounts: dict[tuple[str, str], Counter[str]] = {}
    for key, row in totals.lines.items():
        outlet = (key.channel_kind, key.channel_name)
        units[outlet] += row.units
        cur = event.markets[key.market].currency
        amounts.setdefault(outlet, Counter())[cur] += row.amount
    orders: Counter[tuple[str, str]] = Counter()
    for okey, orow in totals.orders.items():
        orders[(okey.channel_kind, okey.channel_name)] += orow.orders
    outlets = sorted(set(units) | set(amounts) | {o for o, n in orders.items() if n})
    money = split_money(event, {outlet_key(*o): dict(amounts.get(o, Counter())) for o in outlets})
    total_units = sum(units.values())
    total_money = sum(money.values())
    reporting = event.fx.reporting

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
