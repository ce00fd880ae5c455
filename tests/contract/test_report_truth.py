"""Report truth (guarantee 6) on every backend: the battle report's figures come from the
live totals and equal the recount from the orders, to the minor unit; milestones carry the
exact time of the committed payment that crossed them."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from lampo.domain.channel_report import channel_mix
from lampo.domain.event import Milestone
from lampo.domain.holds import Hold, HoldState
from lampo.domain.market import Channel, ChannelKind
from lampo.domain.report import DIMENSIONS, grand_total, rollup
from lampo.domain.totals import recount
from lampo.services.clock import ManualClock
from lampo.services.report import battle_report
from lampo.services.sales import Sales
from lampo.sim import scenario as scenarios
from lampo.storage import Storage
from tests.factories import sale_event

EVENT = replace(
    sale_event("truth", {"phone-red": 40, "phone-black": 10, "tv-55": 5}, sku_limit=3),
    milestones=(Milestone("CNY 5,000", 500_000), Milestone("10 phones", 10, "phone")),
)


def test_the_battle_report_equals_the_recount_after_a_busy_sequence(
    sales: Sales, store: Storage, clock: ManualClock
) -> None:
    sales.open(EVENT)
    holds = [
        sales.reserve(EVENT.id, f"c{i}", "CN" if i % 3 else "IN", {"phone-red": 1 + i % 2})
        for i in range(12)
    ]
    holds.append(sales.reserve(EVENT.id, "tv", "CN", {"tv-55": 1, "phone-black": 2}))
    for i, hold in enumerate(holds):
        clock.advance(7)
        if i % 5 == 4:
            sales.release(hold.id)
        elif i != 6:
            sales.pay(hold.id, f"pay-{hold.id}")
    sales.refund(holds[1].id)
    clock.advance(3600)
    sales.expire_due(EVENT.id)

    report = battle_report(store, EVENT.id, clock())
    orders = list(store.holds(EVENT.id))
    recounted = recount(orders)
    assert report.truth
    units, count, amounts, money = grand_total(EVENT, recounted)
    assert (report.units, report.orders, report.amounts, report.money) == (
        units,
        count,
        amounts,
        money,
    )
    assert report.units == sum(h.units for h in orders if h.state is HoldState.PAID)
    for dim in DIMENSIONS:
        assert report.by[dim] == rollup(EVENT, recounted, dim), dim
    sold = {s.sku: s.sold for s in report.skus}
    assert sold == {sku: level.sold for sku, level in store.stock(EVENT.id).items()}
    assert isinstance(report.money.amount, int)


def _fan_fest_buys() -> list[str]:
    """A scripted run of China buyers: each takes one phone, dearest SKUs first."""
    return ["mi-note-16g"] * 18 + ["mi-4-16g"] * 30 + ["redmi-note-4g"] * 63


def test_a_scripted_mi_fan_fest_crosses_one_billion_at_the_known_payment(
    store: Storage,
) -> None:
    loaded = scenarios.load("mi-fan-fest-2015", 0.0001)  # ¥1 B becomes ¥100,000
    event = loaded.event
    billion = next(m for m in event.milestones if m.label.endswith("of ¥1 billion)"))
    assert billion.threshold == 10_000_000
    clock = ManualClock(event.opens)
    sales = Sales(store, clock=clock)
    sales.open(event)
    # A big hold placed first and never paid must not count: only committed orders do.
    unpaid = sales.reserve(event.id, "window-shopper", "CN", {"redmi-2": 2})
    paid: list[Hold] = []
    for n, sku in enumerate(_fan_fest_buys()):
        hold = sales.reserve(event.id, f"cn-{n}", "CN", {sku: 1})
        if n % 4 == 3:  # every fourth second, four payments commit in one batch
            clock.advance(1)
            batch = [*[h.id for h in paid[-3:]], hold.id]
            for result in sales.pay_many([(h, f"pay-{h}") for h in batch]):
                assert isinstance(result, Hold)
        paid.append(hold)
    paid_orders = sorted(
        (h for h in store.holds(event.id) if h.state is HoldState.PAID),
        key=lambda h: (h.paid_at, h.id),
    )
    running, expected = 0, None
    for order in paid_orders:
        running += order.amount.amount
        if running >= billion.threshold:
            expected = order
            break
    assert expected is not None
    sales.refund(expected.id)  # dipping below afterwards does not un-fire the milestone
    sales.release(unpaid.id)

    report = battle_report(store, event.id, clock())
    crossing = next(c for c in report.milestones if c.milestone == billion)
    assert crossing.order == expected.id
    assert crossing.at == expected.paid_at
    assert crossing.at is not None
    assert crossing.at.astimezone(event.markets["CN"].zone).strftime("%H:%M") == "10:00"
    assert report.truth
    assert crossing.at - event.opens <= timedelta(minutes=2)


def test_the_channel_mix_equals_the_recounts_and_the_milestone_names_the_crossing_channel(
    sales: Sales, store: Storage, clock: ManualClock
) -> None:
    """Online, marketplace and store orders on one event (which declares no channels, so
    every channel sells from the shared pool): the mix from the live totals is the mix of
    the recount, it adds up to the total, and the money milestone is crossed by a store."""
    sales.open(EVENT)
    plan = [  # CN: phone-black 799.00, phone-red 1,799.00, tv-55 2,799.00 CNY
        (Channel(), "CN", {"phone-red": 1}),  # 1,799.00
        (Channel(ChannelKind.MARKETPLACE, "jd"), "CN", {"phone-black": 1}),  # 2,598.00
        (Channel(ChannelKind.STORE, "s1"), "IN", {"phone-red": 1}),  # 16,999.00 INR: 4,297.90
        (Channel(ChannelKind.STORE, "s2"), "CN", {"tv-55": 1}),  # 7,096.90: crosses 5,000
        (Channel(ChannelKind.MARKETPLACE, "tmall"), "CN", {"phone-black": 1}),  # refunded
    ]
    paid = []
    for n, (channel, market, items) in enumerate(plan):
        clock.advance(5)
        hold = sales.reserve(EVENT.id, f"m{n}", market, items, channel, key=f"mix-{n}")
        paid.append(sales.pay(hold.id, f"pay-mix-{n}"))
    clock.advance(5)
    sales.refund(paid[4].id)

    report = battle_report(store, EVENT.id, clock())
    recounted = recount(store.holds(EVENT.id))
    assert report.truth
    assert report.channels == channel_mix(EVENT, recounted)
    mix = report.channels
    assert mix is not None
    assert mix.money == report.money
    assert sum(p.money.amount for p in mix.by_outlet) == report.money.amount
    assert {p.key: p.units for p in mix.by_kind} == {"online": 1, "marketplace": 1, "store": 2}
    assert mix.offline.money.amount == 169_990 + 279_900
    assert [r.key for r in mix.marketplaces] == ["jd"]  # tmall's order was refunded
    assert [r.key for r in mix.stores] == ["s2", "s1"]  # one unit each: s2 took more money
    money_milestone = report.milestones[0]
    assert money_milestone.channel == "store:s2"
    assert money_milestone.order == paid[3].id
    assert money_milestone.at == paid[3].paid_at
