"""Small builders of sale events for tests.

``sale_event()`` gives a two-market event (China in CNY, India in INR) that opens at
10:00 local time in each market on 8 April 2015, with SKUs named ``<category>-<variant>``
(``phone-red`` is in the ``phone`` category). ``NOW`` is a moment when both markets are open.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

from lampo.domain.catalog import Category, Sku
from lampo.domain.event import Offer, SaleEvent, Window
from lampo.domain.market import Market
from lampo.domain.money import FxTable, Money

#: 10:00 in Beijing on the day of the 2015 fan festival.
CN_OPENS = datetime(2015, 4, 8, 2, 0, tzinfo=UTC)
#: 10:00 in New Delhi the same day: two and a half hours later.
IN_OPENS = datetime(2015, 4, 8, 4, 30, tzinfo=UTC)
#: Both markets are open.
NOW = datetime(2015, 4, 8, 6, 0, tzinfo=UTC)

CN = Market("CN", "China", "CNY", "Asia/Shanghai")
IN = Market("IN", "India", "INR", "Asia/Kolkata")

#: One INR is worth a tenth of a CNY (close to the April 2015 rate, and easy to check).
FX = FxTable("CNY", date(2015, 4, 8), {"INR": Fraction(1, 10)})


def price_cn(index: int) -> Money:
    """The CNY price of the ``index``-th SKU: 799.00, 1,799.00, 2,799.00 ..."""
    return Money(79_900 + 100_000 * index, "CNY")


def price_in(index: int) -> Money:
    """The INR price of the ``index``-th SKU: 6,999.00, 16,999.00 ..."""
    return Money(699_900 + 1_000_000 * index, "INR")


def sale_event(
    event_id: str = "fest",
    stock: Mapping[str, int] | None = None,
    *,
    sku_limit: int | Mapping[str, int | None] | None = None,
    event_limit: int | None = None,
    hold_seconds: int = 900,
    hours: int = 12,
) -> SaleEvent:
    """An event with ``stock`` (SKU -> allocation; default two phones and a TV).

    ``sku_limit`` is the per-customer limit of every SKU, or a mapping per SKU;
    ``event_limit`` bounds a customer's units across the event.
    """
    stock = dict(stock if stock is not None else {"phone-red": 50, "phone-black": 20, "tv-55": 5})
    categories = {}
    skus = {}
    offers = {}
    for index, (sku, allocation) in enumerate(sorted(stock.items())):
        category = sku.split("-")[0]
        categories[category] = Category(category, category.title())
        skus[sku] = Sku(sku, f"{category}-product", sku, category)
        limit = sku_limit.get(sku) if isinstance(sku_limit, Mapping) else sku_limit
        offers[sku] = Offer(sku, allocation, {"CN": price_cn(index), "IN": price_in(index)}, limit)
    length = timedelta(hours=hours)
    return SaleEvent(
        id=event_id,
        name=f"Test sale {event_id}",
        markets={"CN": CN, "IN": IN},
        windows={
            "CN": Window(CN_OPENS, CN_OPENS + length),
            "IN": Window(IN_OPENS, IN_OPENS + length),
        },
        categories=categories,
        skus=skus,
        offers=offers,
        fx=FX,
        hold_seconds=hold_seconds,
        limit_per_customer=event_limit,
    )


def sku_index(event: SaleEvent, sku: str) -> int:
    """The index ``price_cn``/``price_in`` use for ``sku`` (SKUs in sorted order)."""
    return sorted(event.offers).index(sku)


def door_event(
    event_id: str = "fest",
    stock: Mapping[str, int] | None = None,
    *,
    days: int = 7,
    **door: object,
) -> SaleEvent:
    """``sale_event`` with a front door (``door``: ``FrontDoor``'s fields); a registration
    window of ``days`` closing at the first opening when the door asks for registration,
    a lottery or ``with_window=True``."""
    from dataclasses import replace

    from lampo.domain.frontdoor import FrontDoor

    fields = dict(door)
    window = bool(fields.pop("with_window", False))
    if window or fields.get("require_registration") or fields.get("lottery_factor"):
        fields.setdefault("registration_opens", CN_OPENS - timedelta(days=days))
        fields.setdefault("registration_closes", CN_OPENS)
    return replace(sale_event(event_id, stock), front_door=FrontDoor(**fields))  # type: ignore[arg-type]
