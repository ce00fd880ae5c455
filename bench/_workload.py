"""The sale event every engine and storage benchmark reserves against.

One market, eight phone SKUs whose stock never runs out during a run, a per-SKU and a
per-event customer limit (so the limit checks run), and an hour's hold time.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from lampo.domain.catalog import Category, Sku
from lampo.domain.event import Offer, SaleEvent, Window
from lampo.domain.market import Market
from lampo.domain.money import FxTable, Money

EVENT = "bench"
MARKET = "CN"
SKUS = tuple(f"phone-{i}" for i in range(8))
PRICE = 99_900  # fen: 999.00 CNY
ALLOCATION = 10_000_000  # never sells out during a run; eight of them stay under MAX_UNITS


def bench_event(now: datetime, name: str) -> SaleEvent:
    """The benchmark event, open from an hour before ``now`` to a day after it."""
    return SaleEvent(
        id=EVENT,
        name=name,
        markets={MARKET: Market(MARKET, "China", "CNY", "Asia/Shanghai")},
        windows={MARKET: Window(now - timedelta(hours=1), now + timedelta(days=1))},
        categories={"phones": Category("phones", "Phones", "phones")},
        skus={s: Sku(s, "phone", s, "phones") for s in SKUS},
        offers={
            s: Offer(s, ALLOCATION, {MARKET: Money(PRICE, "CNY")}, limit_per_customer=2)
            for s in SKUS
        },
        fx=FxTable("CNY", date(2015, 4, 8)),
        hold_seconds=3600,
        limit_per_customer=4,
    )
