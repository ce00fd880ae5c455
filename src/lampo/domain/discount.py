"""The discount an event gave: list price minus flash price, per SKU and for the event.

A SKU may have a list price per market (``Offer.list_prices``) beside its flash price; an
event refuses a flash price above the list price, so a discount is never negative. The
discount of the units sold is ``units * list price - amount paid`` per SKU and market,
summed in exact minor units per currency; the reporting-currency figures convert each
currency's sum once through the event's FX table, as revenue does (``FxTable.total``).

A sale without a list price (none given for that SKU and market) was made at no discount:
its list value is what it was sold for. So for every row ``list value = revenue +
discount`` per currency, and the percentage is ``discount / list value`` (an exact
fraction; zero when nothing was sold).

The list price is the one the definition states now: an update that lowers it below the
flash price of units already sold makes their discount negative, and the report says so
rather than hide it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from lampo.domain.event import SaleEvent
from lampo.domain.money import Money
from lampo.domain.totals import Totals


@dataclass(frozen=True, slots=True)
class Discount:
    """The discount of one SKU (``key``), or of the whole event (``key`` empty).

    ``amounts`` and ``list_amounts``: discount and list value of the units sold, in minor
    units per currency; ``money`` and ``list_money`` the same in the reporting currency;
    ``percent``: ``money / list_money`` as an exact fraction of 1 (0.25 is 25 %)."""

    key: str
    units: int
    amounts: Mapping[str, int]
    list_amounts: Mapping[str, int]
    money: Money
    list_money: Money
    percent: Fraction


@dataclass(frozen=True, slots=True)
class Discounts:
    """Per SKU (the largest discount first) and for the event."""

    per_sku: list[Discount]
    total: Discount


def discounts(event: SaleEvent, totals: Totals) -> Discounts:
    """The discount ``event`` gave on what ``totals`` count as sold (net of refunds). A SKU
    the definition does not list (sold under a newer one) is left out."""
    units: Counter[str] = Counter()
    given: dict[str, Counter[str]] = {}
    listed: dict[str, Counter[str]] = {}
    for key, row in totals.lines.items():
        offer = event.offers.get(key.sku)
        market = event.markets.get(key.market)
        if offer is None or market is None:
            continue
        price = offer.list_prices.get(key.market)
        list_value = row.amount if price is None else row.units * price.amount
        units[key.sku] += row.units
        given.setdefault(key.sku, Counter())[market.currency] += list_value - row.amount
        listed.setdefault(key.sku, Counter())[market.currency] += list_value
    rows = [_row(event, sku, units[sku], given[sku], listed[sku]) for sku in given]
    rows.sort(key=lambda d: (-d.money.amount, -d.units, d.key))
    all_given: Counter[str] = Counter()
    all_listed: Counter[str] = Counter()
    for sku in given:
        all_given.update(given[sku])
        all_listed.update(listed[sku])
    total = _row(event, "", sum(units.values()), all_given, all_listed)
    return Discounts(rows, total)


def _row(
    event: SaleEvent, key: str, units: int, given: Counter[str], listed: Counter[str]
) -> Discount:
    money = event.fx.total(dict(given))
    list_money = event.fx.total(dict(listed))
    share = Fraction(money.amount, list_money.amount) if list_money.amount else Fraction(0)
    return Discount(
        key,
        units,
        {c: a for c, a in sorted(given.items()) if a},
        {c: a for c, a in sorted(listed.items()) if a},
        money,
        list_money,
        share,
    )
