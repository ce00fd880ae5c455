"""The channel mix: totals split by kind and outlet exactly, the offline share, and the
store, city and marketplace rankings (``domain/channel_report.py``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from lampo.domain.channel_report import (
    KINDS,
    UNKNOWN_CITY,
    apportion,
    channel_mix,
    outlet_key,
    period_sales,
)
from lampo.domain.channel_report import mix as mix_of
from lampo.domain.event import Milestone
from lampo.domain.holds import Hold, HoldLine, HoldState
from lampo.domain.market import Channel, ChannelKind
from lampo.domain.money import FxTable
from lampo.domain.network_report import first_stores, network_progress
from lampo.domain.period import NetworkTarget, Period, period_figures
from lampo.domain.report import grand_total, milestone_crossings
from lampo.domain.stores import Store, StoreKind
from lampo.domain.totals import LineKey, LineTotal, OrderKey, OrderTotal, Totals, recount
from tests.factories import CN_OPENS, sale_event

#: A rate that rounds: one INR is a seventh of a CNY, so no split is exact by luck.
EVENT = replace(
    sale_event("mix", {"phone-red": 10_000, "tv-55": 1_000}),
    fx=FxTable("CNY", date(2015, 4, 8), {"INR": Fraction(1, 7)}),
)
STORES = [
    Store("s1", "Mi Home Wangfujing", StoreKind.OWN, "CN", "Beijing", date(2015, 1, 1)),
    Store("s2", "Mi Home Sanlitun", StoreKind.OWN, "CN", "Beijing", date(2015, 1, 1)),
    Store("s3", "Mi Home Nanjing Rd", StoreKind.AUTHORISED, "CN", "Shanghai", date(2015, 1, 1)),
]
STORE_ONE = Channel(ChannelKind.STORE, "s1")
JD = Channel(ChannelKind.MARKETPLACE, "jd")

channels = st.sampled_from(
    [
        ("online", "", ""),
        ("online", "", "weibo"),
        ("marketplace", "jd", ""),
        ("marketplace", "tmall", ""),
        ("store", "s1", ""),
        ("store", "s2", ""),
        ("store", "s3", ""),
        ("store", "s9", ""),  # not in the registry
    ]
)
line_keys = st.builds(
    lambda sku, market, ch: LineKey(sku, market, *ch),
    st.sampled_from(["phone-red", "tv-55"]),
    st.sampled_from(["CN", "IN"]),
    channels,
)
rows = st.builds(LineTotal, st.integers(0, 10**6), st.integers(0, 10**13))


def consistent(lines: dict[LineKey, LineTotal]) -> Totals:
    """Totals whose orders carry their lines' money, as every backend keeps them."""
    orders: dict[OrderKey, OrderTotal] = {}
    for k, row in lines.items():
        ok = OrderKey(k.market, k.channel_kind, k.channel_name, k.referral)
        had = orders.get(ok, OrderTotal(0, 0))
        orders[ok] = OrderTotal(had.orders + 1, had.amount + row.amount)
    return Totals(lines, orders)


totals_strategy = st.dictionaries(line_keys, rows, max_size=24).map(consistent)


def order(
    n: int, channel: Channel, qty: int = 1, market: str = "CN", sku: str = "phone-red"
) -> Hold:
    price = EVENT.price(sku, market)
    at = CN_OPENS + timedelta(minutes=n)
    return Hold(
        id=f"h{n:03d}",
        event=EVENT.id,
        customer=f"c{n}",
        market=market,
        channel=channel,
        lines=(HoldLine(sku, qty, price.amount),),
        currency=price.currency,
        created_at=at - timedelta(seconds=30),
        expires_at=at + timedelta(minutes=10),
        state=HoldState.PAID,
        payment_id=f"p{n}",
        paid_at=at,
        ended_at=at,
    )


@given(totals_strategy)
def test_the_kinds_and_the_outlets_add_up_to_the_grand_total_exactly(totals: Totals) -> None:
    mix = channel_mix(EVENT, totals, STORES)
    units, _, amounts, money = grand_total(EVENT, totals)
    assert mix.money == money
    assert mix.units == units
    assert [p.key for p in mix.by_kind] == list(KINDS)
    for parts in (mix.by_kind, mix.by_outlet):
        assert sum(p.money.amount for p in parts) == money.amount
        assert sum(p.units for p in parts) == units
        for cur, amount in amounts.items():
            assert sum(p.amounts.get(cur, 0) for p in parts) == amount
        if money.amount:
            assert sum(p.money_share for p in parts) == 1
        if units:
            assert sum(p.units_share for p in parts) == 1
    # each kind is the sum of its outlets
    for kind in mix.by_kind:
        mine = [p for p in mix.by_outlet if p.key.split(":")[0] == kind.key]
        assert kind.money.amount == sum(p.money.amount for p in mine)
        assert kind.units == sum(p.units for p in mine)
    assert mix.offline == mix.by_kind[KINDS.index("store")]


@given(totals_strategy)
def test_an_outlet_takes_its_exact_value_within_a_minor_unit_per_currency(totals: Totals) -> None:
    mix = channel_mix(EVENT, totals, STORES)
    for p in mix.by_outlet:
        exact = sum(
            a * EVENT.fx.rate(c) for c, a in p.amounts.items()
        )  # both currencies have two decimals
        assert abs(p.money.amount - exact) < len(p.amounts) + 1 or not p.amounts


@given(totals_strategy)
def test_rankings_are_ordered_by_units_then_money_then_id(totals: Totals) -> None:
    mix = channel_mix(EVENT, totals, STORES, top=100)
    for ranking in (mix.stores, mix.cities, mix.marketplaces):
        assert [r.rank for r in ranking] == list(range(1, len(ranking) + 1))
        keys = [(-r.units, -r.money.amount, r.key) for r in ranking]
        assert keys == sorted(keys)
        assert all(r.units > 0 for r in ranking)
    store_parts = {p.key: p for p in mix.by_outlet if p.key.startswith("store:")}
    for r in mix.stores:
        assert store_parts[outlet_key("store", r.key)].units == r.units
        assert store_parts[outlet_key("store", r.key)].money == r.money
    # a city is the sum of its stores
    assert sum(r.units for r in mix.cities) == sum(r.units for r in mix.stores)
    assert sum(r.money.amount for r in mix.cities) == sum(r.money.amount for r in mix.stores)


@given(st.dictionaries(st.sampled_from("abcdefgh"), st.fractions(0, 10**6), max_size=8))
def test_apportion_shares_the_rounded_sum_within_a_unit_of_each_part(
    exact: dict[str, Fraction],
) -> None:
    total = round(sum(exact.values(), Fraction(0)))
    parts = apportion(total, exact)
    assert sum(parts.values()) == total
    assert all(abs(parts[k] - v) < 1 for k, v in exact.items())


def test_ties_rank_in_the_order_of_their_ids_whatever_the_order_of_the_totals() -> None:
    holds = [order(1, Channel(ChannelKind.STORE, "s2")), order(2, STORE_ONE)]
    forward = channel_mix(EVENT, recount(holds), STORES)
    backward = channel_mix(EVENT, recount(reversed(holds)), STORES)
    assert [r.key for r in forward.stores] == ["s1", "s2"] == [r.key for r in backward.stores]
    assert forward.stores[0].rank == 1
    assert forward.stores[1].rank == 2


def test_stores_rank_by_city_from_the_registry_and_an_unlisted_one_under_unknown_city() -> None:
    holds = [
        order(1, STORE_ONE, qty=3),
        order(2, Channel(ChannelKind.STORE, "s2"), qty=2),
        order(3, Channel(ChannelKind.STORE, "s3"), qty=4),
        order(4, Channel(ChannelKind.STORE, "s9"), qty=1),
        order(5, JD, qty=7),
        order(6, Channel(ChannelKind.MARKETPLACE, "tmall"), qty=6),
        order(7, Channel(), qty=10),
    ]
    mix = channel_mix(EVENT, recount(holds), STORES)
    assert [(r.key, r.name, r.city, r.units) for r in mix.stores] == [
        ("s3", "Mi Home Nanjing Rd", "Shanghai", 4),
        ("s1", "Mi Home Wangfujing", "Beijing", 3),
        ("s2", "Mi Home Sanlitun", "Beijing", 2),
        ("s9", "s9", UNKNOWN_CITY, 1),
    ]
    assert [(r.key, r.units) for r in mix.cities] == [
        ("Beijing", 5),
        ("Shanghai", 4),
        (UNKNOWN_CITY, 1),
    ]
    assert [(r.key, r.units) for r in mix.marketplaces] == [("jd", 7), ("tmall", 6)]
    assert mix.offline.units == 10
    assert mix.offline.units_share == Fraction(10, 33)
    assert mix.offline.money_share == Fraction(10, 33)  # one price throughout
    assert [(p.key, p.units) for p in mix.by_kind] == [
        ("online", 10),
        ("marketplace", 13),
        ("store", 10),
    ]


def test_without_a_registry_a_store_ranks_by_its_id_under_unknown_city() -> None:
    mix = channel_mix(EVENT, recount([order(1, STORE_ONE)]))
    assert [(r.key, r.name, r.city) for r in mix.stores] == [("s1", "s1", UNKNOWN_CITY)]
    assert [r.key for r in mix.cities] == [UNKNOWN_CITY]


def test_nothing_sold_splits_into_zero_parts_and_zero_shares() -> None:
    mix = channel_mix(EVENT, Totals())
    assert [(p.key, p.units, p.money.amount, p.money_share) for p in mix.by_kind] == [
        (k, 0, 0, 0) for k in KINDS
    ]
    assert mix.by_outlet == []
    assert mix.stores == mix.cities == mix.marketplaces == []


def test_the_money_milestone_names_the_store_whose_payment_crossed_it() -> None:
    event = replace(EVENT, milestones=(Milestone("CNY 2,000", 200_000),))
    price = event.price("phone-red", "CN").amount  # 799.00 CNY
    assert 2 * price < 200_000 <= 3 * price
    holds = [order(1, Channel()), order(2, JD), order(3, STORE_ONE), order(4, Channel())]
    (crossing,) = milestone_crossings(event, holds)
    assert crossing.at == holds[2].paid_at
    assert crossing.order == "h003"
    assert crossing.channel == "store:s1"
    assert crossing.value == 3 * price


# -- periods --------------------------------------------------------------------------------
holds_strategy = st.lists(
    st.tuples(
        st.sampled_from([Channel(), JD, STORE_ONE, Channel(ChannelKind.STORE, "s9")]),
        st.sampled_from(["CN", "IN"]),
        st.sampled_from(["phone-red", "tv-55"]),
        st.integers(1, 5),
        st.integers(0, 60 * 24 * 200),  # minutes after the opening: some in Q3
        st.none() | st.integers(0, 60 * 24 * 200),  # refunded that many minutes later
    ),
    max_size=20,
)


@given(holds_strategy, st.sampled_from(["CNY", "INR"]))
def test_a_periods_mix_adds_up_to_its_revenue_in_its_currency_exactly(
    plan: list[tuple[Channel, str, str, int, int, int | None]], currency: str
) -> None:
    holds = []
    for n, (channel, market, sku, qty, minutes, refund) in enumerate(plan):
        hold = order(n, channel, qty, market, sku)
        paid = CN_OPENS + timedelta(minutes=minutes)
        hold = replace(hold, paid_at=paid, ended_at=paid)
        if refund is not None:
            hold = replace(
                hold, state=HoldState.REFUNDED, refunded_at=paid + timedelta(minutes=refund)
            )
        holds.append(hold)
    fx = FxTable("CNY", date(2015, 4, 8), {"INR": Fraction(1, 7)})
    inr = FxTable("INR", date(2015, 4, 8), {"CNY": Fraction(7)})
    event = replace(EVENT, fx=fx if currency == "CNY" else inr)
    events = {event.id: event}
    for period in (Period(2015, 2), Period(2015, 3), Period(2015)):
        figures = period_figures(period, currency, events, holds)
        mix = mix_of(period_sales(period, currency, events, holds), currency, STORES)
        assert mix.money.amount == figures.revenue
        assert mix.units == figures.units
        assert mix.orders == figures.orders
        assert sum(p.money.amount for p in mix.by_outlet) == figures.revenue
        assert {s.key: s.money for s in figures.by_channel if s.money or s.units} == {
            p.key: p.money.amount for p in mix.by_kind if p.money.amount or p.units
        }


# -- the store network in a period ------------------------------------------------------------
def test_network_progress_counts_the_stores_open_at_the_periods_end_or_the_targets_day() -> None:
    stores = [
        *STORES,
        Store("s4", "Mi Home Chengdu", StoreKind.OWN, "CN", "Chengdu", date(2017, 8, 1)),
        Store("i1", "Mi Home Bangalore", StoreKind.OWN, "IN", "Bangalore", date(2017, 5, 11)),
    ]
    goals = [
        NetworkTarget("10 stores", 10, date(2020, 1, 1)),
        NetworkTarget("2 in India", 2, date(2017, 5, 31), "IN"),
        NetworkTarget("over", 3, date(2016, 12, 31)),  # before the period: not shown
        NetworkTarget("later", 9, date(2024, 1, 1), since=date(2017, 7, 1)),  # set after it
    ]
    progress = network_progress(stores, Period(2017, 2), goals)
    assert [(p.target.label, p.as_of, p.open, p.share) for p in progress] == [
        ("10 stores", date(2017, 6, 30), 4, Fraction(2, 5)),
        ("2 in India", date(2017, 5, 31), 1, Fraction(1, 2)),
    ]
    assert not any(p.reached for p in progress)
    assert network_progress(stores, Period(2017, 3), goals[:1])[0].open == 5
    assert [p.target.label for p in network_progress(stores, Period(2017, 3), goals)] == [
        "10 stores",
        "later",
    ]


def test_the_first_store_of_a_market_is_a_milestone_of_the_period_it_opened_in() -> None:
    stores = [
        *STORES,
        Store("i2", "Mi Home Delhi", StoreKind.OWN, "IN", "Delhi", date(2017, 6, 1)),
        Store("i1", "Mi Home Bangalore", StoreKind.OWN, "IN", "Bangalore", date(2017, 5, 11)),
    ]
    (first,) = first_stores(stores, Period(2017, 2))
    assert (first.market, first.store, first.opened, first.city) == (
        "IN",
        "i1",
        date(2017, 5, 11),
        "Bangalore",
    )
    assert first_stores(stores, Period(2017, 3)) == []
    assert [f.market for f in first_stores(stores, Period(2015))] == ["CN"]
