"""Battle-report rules, on hand-made orders: milestones, roll-ups, sell-out, records, ranks."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from fractions import Fraction

from lampo.domain.event import Milestone
from lampo.domain.holds import Hold, HoldLine, HoldState
from lampo.domain.market import Channel, ChannelKind
from lampo.domain.money import Money
from lampo.domain.records import PastResult, compare_records
from lampo.domain.report import (
    MarketShare,
    brand_ranks,
    grand_total,
    milestone_crossings,
    rankings,
    rollup,
    sales_curve,
    sold_out_times,
)
from lampo.domain.totals import recount
from tests.factories import CN_OPENS, NOW, sale_event

EVENT = replace(
    sale_event("fest", {"phone-red": 10, "tv-55": 2}),
    milestones=(
        Milestone("CNY 2,000", 200_000),  # 2,000.00 CNY
        Milestone("3 phones", 3, "phone"),
    ),
)


def order(
    n: int,
    at: datetime,
    sku: str = "phone-red",
    qty: int = 1,
    market: str = "CN",
    refunded: datetime | None = None,
    channel: Channel | None = None,
) -> Hold:
    price = EVENT.price(sku, market)
    return Hold(
        id=f"h{n:03d}",
        event=EVENT.id,
        customer=f"c{n}",
        market=market,
        channel=channel or Channel(),
        lines=(HoldLine(sku, qty, price.amount),),
        currency=price.currency,
        created_at=at - timedelta(seconds=30),
        expires_at=at + timedelta(minutes=10),
        state=HoldState.REFUNDED if refunded else HoldState.PAID,
        payment_id=f"p{n}",
        paid_at=at,
        ended_at=at,
        refunded_at=refunded,
    )


def test_a_money_milestone_fires_at_the_payment_that_crossed_it() -> None:
    # phone-red costs 799.00 CNY: the third payment takes the total from 1,598 to 2,397.
    times = [NOW + timedelta(seconds=s) for s in (1, 5, 9, 12)]
    orders = [order(i, t) for i, t in enumerate(times)]
    money, phones = milestone_crossings(EVENT, reversed(orders))
    assert (money.at, money.order, money.value) == (times[2], "h002", 239_700)
    assert (phones.at, phones.order, phones.value) == (times[2], "h002", 3)


def test_a_hold_that_is_not_paid_never_counts_toward_a_milestone() -> None:
    paid = [order(i, NOW + timedelta(seconds=i)) for i in range(2)]
    held = replace(order(9, NOW), state=HoldState.HELD, paid_at=None, ended_at=None)
    money, phones = milestone_crossings(EVENT, [*paid, held])
    assert not money.reached
    assert not phones.reached


def test_a_refund_before_the_crossing_delays_it_and_one_after_does_not_unfire_it() -> None:
    t = [NOW + timedelta(seconds=s) for s in range(10)]
    orders = [
        order(0, t[0], refunded=t[1]),  # paid then refunded before the others
        order(1, t[2]),
        order(2, t[3]),
        order(3, t[4], refunded=t[8]),  # crosses, then is refunded: the crossing stays
        order(4, t[9]),
    ]
    money, _ = milestone_crossings(EVENT, orders)
    assert (money.at, money.order) == (t[4], "h003")
    assert len([c for c in milestone_crossings(EVENT, orders) if c.order == "h004"]) == 0


def test_payments_in_one_batch_cross_in_a_stable_order() -> None:
    batch = [order(i, NOW) for i in (7, 3, 5, 1)]
    money, _ = milestone_crossings(EVENT, batch)
    assert money.at == NOW
    assert money.order == "h005"  # h001, h003, h005: the third by id crosses 2,000.00


def test_foreign_money_counts_through_the_fx_table_converted_once_per_currency() -> None:
    # 6,999.00 INR at 1/10 is 699.90 CNY; three of them make 2,099.70 CNY: crossing at the 3rd.
    t = [NOW + timedelta(seconds=s) for s in range(3)]
    orders = [order(i, t[i], market="IN") for i in range(3)]
    money, _ = milestone_crossings(EVENT, orders)
    assert (money.at, money.value) == (t[2], 209_970)
    _, _, amounts, total = grand_total(EVENT, recount(orders))
    assert amounts == {"INR": 3 * 699_900}
    assert total == Money(money.value, "CNY")


def test_rollups_add_up_to_the_totals_by_every_dimension() -> None:
    orders = [
        order(1, NOW, qty=2),
        order(2, NOW, market="IN", channel=Channel(ChannelKind.MARKETPLACE, "flipkart")),
        order(3, NOW, sku="tv-55", channel=Channel(referral="weibo")),
    ]
    totals = recount(orders)
    for dim in ("sku", "category", "market", "channel", "outlet", "referral"):
        rows = rollup(EVENT, totals, dim)
        assert sum(r.units for r in rows) == 4, dim
    markets = {r.key: r for r in rollup(EVENT, totals, "market")}
    assert markets["IN"].amounts == {"INR": 699_900}
    assert markets["IN"].money == Money(69_990, "CNY")
    assert markets["CN"].orders == 2
    outlets = {r.key: r.units for r in rollup(EVENT, totals, "outlet")}
    assert outlets == {"online": 3, "marketplace:flipkart": 1}


def test_a_sku_is_sold_out_when_its_last_unit_is_held_and_not_before() -> None:
    event = sale_event("tiny", {"phone-red": 2})
    a = order(1, NOW)
    b = replace(order(2, NOW + timedelta(seconds=60)), state=HoldState.EXPIRED, paid_at=None)
    c = order(3, NOW + timedelta(seconds=120))
    out = sold_out_times(event, [a, b, c])
    assert out == {"phone-red": b.created_at}
    assert sold_out_times(event, [a]) == {}


def test_the_curve_puts_each_payment_in_its_minute_and_second() -> None:
    event = sale_event("curve", {"phone-red": 10})
    orders = [order(1, CN_OPENS + timedelta(seconds=5)), order(2, CN_OPENS + timedelta(seconds=65))]
    curve = sales_curve(event, orders, first_seconds=10)
    assert [b.units for b in curve.per_minute[:3]] == [1, 1, 0]
    assert curve.per_second[5].units == 1
    assert curve.per_second[5].money == 79_900
    assert sum(b.units for b in curve.per_second) == 1


def test_a_record_is_beaten_only_by_a_higher_figure_in_a_window_no_longer() -> None:
    h12 = timedelta(hours=12)
    before = CN_OPENS - timedelta(days=365)

    def earlier(name: str, window: timedelta, units: int) -> PastResult:
        return PastResult(name, "phone", before, before + window, window, units)

    past = [
        replace(earlier("fest 2014", h12, 1_300_000), money=Money(150_000_000_000, "CNY")),
        earlier("a day", timedelta(hours=24), 9_000_000),
        replace(earlier("flash", timedelta(minutes=30), 40_000), sellout_seconds=Fraction(21, 5)),
    ]
    now = [
        PastResult(
            "fest 2015",
            "phone",
            CN_OPENS,
            CN_OPENS + h12,
            h12,
            2_112_010,
            Money(208_000_000_000, "CNY"),
            700_000,
            Fraction(3),
        )
    ]
    records = {r.title: r for r in compare_records(now, past, {"phone": "phones"})}
    most = records["most phones in a 12-hour window"]
    assert (most.best_name, most.beaten, most.margin) == ("fest 2014", True, 812_010)
    assert records["most money in a 12-hour window"].margin == 58_000_000_000
    fastest = records["fastest sell-out of a SKU"]
    assert (fastest.beaten, fastest.margin) == (True, Fraction(6, 5))
    assert records["most phones in the first hour"].beaten is None


def test_the_category_champion_is_the_best_seller_of_its_category() -> None:
    orders = [order(1, NOW, qty=3), order(2, NOW, sku="tv-55"), order(3, NOW, market="IN")]
    ranks = rankings(EVENT, recount(orders))
    assert [(r.rank, r.key, r.units) for r in ranks.overall] == [
        (1, "phone-red", 4),
        (2, "tv-55", 1),
    ]
    assert ranks.champions["tv"].key == "tv-55"
    assert ranks.per_market["IN"][0].units == 1


def test_brands_rank_by_share_and_ties_share_a_rank() -> None:
    shares = [
        MarketShare("2021Q3", "CN", b, Fraction(p, 100))
        for b, p in (("Xiaomi", 14), ("Vivo", 23), ("Apple", 14), ("OPPO", 20))
    ]
    ranks = brand_ranks(shares, "2021Q3", "CN")
    assert [(r.rank, r.brand) for r in ranks] == [
        (1, "Vivo"),
        (2, "OPPO"),
        (3, "Apple"),
        (3, "Xiaomi"),
    ]
    assert brand_ranks(shares, "2021Q2", "CN") == []


def test_the_referral_rollup_names_referrals_of_online_sales_only() -> None:
    """A marketplace's or a store's sale was brought by no referral: it counts under its
    channel kind, not with the online sales that came without one ("-")."""
    orders = [
        order(1, NOW),
        order(2, NOW, channel=Channel(referral="weibo")),
        order(3, NOW, market="IN", channel=Channel(ChannelKind.MARKETPLACE, "flipkart")),
        order(4, NOW, channel=Channel(ChannelKind.STORE, "mi-home-1")),
    ]
    rows = {r.key: (r.units, r.orders) for r in rollup(EVENT, recount(orders), "referral")}
    assert rows == {"-": (1, 1), "weibo": (1, 1), "marketplace": (1, 1), "store": (1, 1)}
