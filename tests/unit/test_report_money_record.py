"""The money record and the battle report's total are one figure, to the minor unit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

from lampo.domain.catalog import Category, Sku
from lampo.domain.event import Offer, SaleEvent, Window
from lampo.domain.market import Market
from lampo.domain.money import FxTable, Money
from lampo.services.clock import ManualClock
from lampo.services.report import battle_report
from lampo.services.sales import Sales
from lampo.storage.memory import MemoryStorage

OPENS = datetime(2015, 4, 8, 4, 30, tzinfo=UTC)


def _event() -> SaleEvent:
    # 1 rupee = 1/3 yuan: each of these prices converts with a remainder of 1/3 fen, so
    # converting per category and adding gives 2 fen less than converting the sum once.
    india = Market("IN", "India", "INR", "Asia/Kolkata")
    return SaleEvent(
        id="fest",
        name="Fest",
        markets={"IN": india},
        windows={"IN": Window(OPENS, OPENS + timedelta(hours=12))},
        categories={"phone": Category("phone", "Phones"), "tv": Category("tv", "TVs")},
        skus={
            "phone-1": Sku("phone-1", "phone", "Phone", "phone"),
            "tv-1": Sku("tv-1", "tv", "TV", "tv"),
        },
        offers={
            "phone-1": Offer("phone-1", 10, {"IN": Money(999_901, "INR")}),
            "tv-1": Offer("tv-1", 10, {"IN": Money(2_999_902, "INR")}),
        },
        fx=FxTable("CNY", date(2015, 4, 8), {"INR": Fraction(1, 3)}),
    )


def test_the_money_record_is_the_report_total_to_the_fen() -> None:
    store = MemoryStorage()
    sales = Sales(store, clock=ManualClock(OPENS))
    sales.open(_event())
    phone = sales.reserve("fest", "a", "IN", {"phone-1": 1}, key="1")
    tv = sales.reserve("fest", "b", "IN", {"tv-1": 1}, key="2")
    sales.pay(phone.id, "p1")
    sales.pay(tv.id, "p2")
    report = battle_report(store, "fest", OPENS + timedelta(hours=1))
    [money] = [r for r in report.records if r.title.startswith("most money")]
    assert report.money == Money(round(Fraction(999_901 + 2_999_902, 3)), "CNY")
    assert money.value == report.money.amount
