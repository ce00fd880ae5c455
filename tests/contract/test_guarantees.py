"""The seven guarantees of the design, shown on every backend (durability: test_durability)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest

from lampo.domain.errors import (
    AlreadyPaid,
    Closed,
    HoldExpired,
    IdempotencyConflict,
    IllegalTransition,
    InvalidRequest,
    LampoError,
    LimitExceeded,
    NotOpen,
    SoldOut,
    UnknownEvent,
    UnknownHold,
    UnknownMarket,
    UnknownSku,
)
from lampo.domain.holds import Hold, HoldLine, HoldState, PayRequest, ReserveRequest
from lampo.domain.market import Channel, ChannelKind
from lampo.domain.money import Money
from lampo.domain.totals import recount
from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from lampo.storage import Storage
from tests.contract.conftest import assert_consistent, snapshot, units_by_customer
from tests.factories import CN_OPENS, NOW, sale_event

EVENT = sale_event(
    stock={"phone-red": 10, "phone-black": 4, "tv-55": 2},
    sku_limit={"phone-red": 3, "phone-black": None, "tv-55": 1},
    event_limit=5,
    hold_seconds=600,
)


@pytest.fixture
def opened(sales: Sales) -> Sales:
    sales.open(EVENT)
    return sales


def reserve(sales: Sales, customer: str, key: str = "", market: str = "CN", **items: int) -> Hold:
    return sales.reserve(
        EVENT.id, customer, market, {k.replace("_", "-"): v for k, v in items.items()}, key=key
    )


# -- 1. no oversell ------------------------------------------------------------------------------


def test_stock_is_sold_down_to_zero_and_never_below(opened: Sales, store: Storage) -> None:
    holds = [reserve(opened, f"c{i}", phone_black=1) for i in range(4)]
    with pytest.raises(SoldOut) as caught:
        reserve(opened, "c9", phone_black=1)
    assert caught.value.detail() == {"sku": "phone-black", "requested": 1, "available": 0}
    level = store.stock(EVENT.id)["phone-black"]
    assert (level.available, level.held, level.sold) == (0, 4, 0)
    opened.pay(holds[0].id, "p0")
    level = store.stock(EVENT.id)["phone-black"]
    assert (level.available, level.held, level.sold) == (0, 3, 1)
    assert_consistent(store, EVENT)


def test_a_request_for_more_than_is_left_gets_nothing(opened: Sales, store: Storage) -> None:
    reserve(opened, "c1", phone_black=3)
    with pytest.raises(SoldOut) as caught:
        reserve(opened, "c2", phone_black=2)
    assert (caught.value.requested, caught.value.available) == (2, 1)
    assert store.stock(EVENT.id)["phone-black"].available == 1


def test_a_multi_line_hold_is_all_or_nothing(opened: Sales, store: Storage) -> None:
    reserve(opened, "c1", tv_55=1)
    reserve(opened, "c2", tv_55=1)
    with pytest.raises(SoldOut) as caught:
        reserve(opened, "c3", phone_red=2, tv_55=1)
    assert caught.value.sku == "tv-55"
    assert store.stock(EVENT.id)["phone-red"].available == 10
    assert_consistent(store, EVENT)


def test_a_batch_places_what_fits_and_refuses_the_rest(store: Storage, sales: Sales) -> None:
    sales.open(EVENT)
    template = reserve(sales, "c0", tv_55=1)
    requests = [
        ReserveRequest(f"k{i}", replace(template, id=f"h{i}", customer=f"b{i}"), (None,))
        for i in range(3)
    ]
    results = store.reserve(requests)
    assert isinstance(results[0], Hold)
    assert [type(r) for r in results[1:]] == [SoldOut, SoldOut]
    assert store.stock(EVENT.id)["tv-55"].held == 2
    assert_consistent(store, EVENT)


def test_setting_up_an_event_twice_does_not_reset_its_stock(opened: Sales, store: Storage) -> None:
    reserve(opened, "c1", phone_red=2)
    store.setup(EVENT)
    assert store.stock(EVENT.id)["phone-red"].available == 8
    assert store.events() == [EVENT.id]


# -- 2. limits hold ------------------------------------------------------------------------------


def test_the_per_sku_limit_counts_every_hold_of_the_customer(opened: Sales, store: Storage) -> None:
    reserve(opened, "c1", phone_red=2)
    with pytest.raises(LimitExceeded) as caught:
        reserve(opened, "c1", phone_red=2)
    assert caught.value.detail() == {"customer": "c1", "limit": 3, "already": 2, "sku": "phone-red"}
    reserve(opened, "c1", phone_red=1)
    assert units_by_customer(list(store.holds(EVENT.id)))[("c1", "phone-red")] == 3


def test_the_event_limit_counts_across_skus(opened: Sales, store: Storage) -> None:
    reserve(opened, "c1", phone_red=3, tv_55=1)
    with pytest.raises(LimitExceeded) as caught:
        reserve(opened, "c1", phone_black=2)
    assert (caught.value.limit, caught.value.already, caught.value.sku) == (5, 4, None)
    reserve(opened, "c1", phone_black=1)
    assert units_by_customer(list(store.holds(EVENT.id)))[("c1", "")] == 5


def test_a_released_or_refunded_unit_no_longer_counts(opened: Sales) -> None:
    first = reserve(opened, "c1", tv_55=1)
    opened.release(first.id)
    second = reserve(opened, "c1", tv_55=1)
    opened.pay(second.id, "p2")
    with pytest.raises(LimitExceeded):
        reserve(opened, "c1", tv_55=1)
    opened.refund(second.id)
    assert reserve(opened, "c1", tv_55=1).state is HoldState.HELD


def test_an_expired_unit_no_longer_counts(opened: Sales, clock: ManualClock) -> None:
    reserve(opened, "c1", tv_55=1)
    clock.advance(EVENT.hold_seconds)
    assert len(opened.expire_due(EVENT.id)) == 1
    assert reserve(opened, "c1", tv_55=1).state is HoldState.HELD


# -- 3. idempotency ------------------------------------------------------------------------------


def test_a_repeated_reserve_key_returns_the_first_hold_once(opened: Sales, store: Storage) -> None:
    first = reserve(opened, "c1", key="k1", phone_red=2)
    again = [reserve(opened, "c1", key="k1", phone_red=2) for _ in range(3)]
    assert all(h == first for h in again)
    assert store.stock(EVENT.id)["phone-red"].held == 2
    assert len(list(store.holds(EVENT.id))) == 1


def test_a_repeated_key_after_payment_returns_the_order(opened: Sales, store: Storage) -> None:
    first = reserve(opened, "c1", key="k1", phone_red=1)
    paid = opened.pay(first.id, "p1")
    assert reserve(opened, "c1", key="k1", phone_red=1) == paid
    assert store.stock(EVENT.id)["phone-red"].sold == 1


def test_a_key_reused_for_other_content_is_refused(opened: Sales, store: Storage) -> None:
    reserve(opened, "c1", key="k1", phone_red=1)
    with pytest.raises(IdempotencyConflict):
        reserve(opened, "c1", key="k1", phone_red=2)
    with pytest.raises(IdempotencyConflict):
        reserve(opened, "c1", key="k1", phone_black=1)
    with pytest.raises(IdempotencyConflict):
        reserve(opened, "c1", key="k1", market="IN", phone_red=1)
    assert len(list(store.holds(EVENT.id))) == 1


def test_a_repeated_payment_id_returns_the_first_payment_once(
    opened: Sales, store: Storage, clock: ManualClock
) -> None:
    hold = reserve(opened, "c1", phone_red=2)
    paid = opened.pay(hold.id, "p1")
    clock.advance(EVENT.hold_seconds * 2)  # a retry long after, even past the hold's expiry
    assert opened.pay(hold.id, "p1") == paid
    assert store.stock(EVENT.id)["phone-red"].sold == 2
    assert store.totals(EVENT.id).order_count == 1
    with pytest.raises(AlreadyPaid):
        opened.pay(hold.id, "p2")


def test_a_repeated_payment_in_one_batch_counts_once(opened: Sales, store: Storage) -> None:
    hold = reserve(opened, "c1", phone_red=1)
    results = store.pay([PayRequest(hold.id, "p1", NOW)] * 3)
    assert all(isinstance(r, Hold) and r.state is HoldState.PAID for r in results)
    assert store.totals(EVENT.id).units == 1
    assert_consistent(store, EVENT)


def test_release_and_refund_repeat_without_a_second_effect(opened: Sales, store: Storage) -> None:
    a = reserve(opened, "c1", phone_red=1)
    b = reserve(opened, "c2", phone_red=1)
    opened.pay(b.id, "p1")
    for _ in range(2):
        opened.release(a.id)
        opened.refund(b.id)
    level = store.stock(EVENT.id)["phone-red"]
    assert (level.available, level.held, level.sold) == (10, 0, 0)
    assert store.totals(EVENT.id).units == 0


# -- 4. conservation; every hold ends exactly once ------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "refusal"),
    [
        ("pay", "release", IllegalTransition),
        ("release", "pay", IllegalTransition),
        ("expire", "pay", HoldExpired),
        ("expire", "release", IllegalTransition),
        ("release", "refund", IllegalTransition),
        ("expire", "refund", IllegalTransition),
    ],
)
def test_a_hold_ends_exactly_once(
    opened: Sales, store: Storage, clock: ManualClock, first: str, second: str, refusal: type
) -> None:
    hold = reserve(opened, "c1", phone_red=2)
    steps: dict[str, Callable[[], object]] = {
        "pay": lambda: opened.pay(hold.id, "p1"),
        "release": lambda: opened.release(hold.id),
        "refund": lambda: opened.refund(hold.id),
        "expire": lambda: (clock.advance(EVENT.hold_seconds), opened.expire_due(EVENT.id)),
    }
    steps[first]()
    ended = store.hold(hold.id)
    assert ended is not None
    before = snapshot(store, EVENT.id)
    with pytest.raises(refusal):
        steps[second]()
    assert snapshot(store, EVENT.id) == before
    assert_consistent(store, EVENT)


def test_the_sweeper_expires_only_due_held_holds_once(
    opened: Sales, store: Storage, clock: ManualClock
) -> None:
    early = reserve(opened, "c1", phone_red=1)
    paid = reserve(opened, "c2", phone_red=1)
    opened.pay(paid.id, "p2")
    clock.advance(EVENT.hold_seconds // 2)
    late = reserve(opened, "c3", phone_red=1)
    clock.advance(EVENT.hold_seconds // 2)
    assert [h.id for h in opened.expire_due(EVENT.id)] == [early.id]
    assert opened.expire_due(EVENT.id) == []
    clock.advance(EVENT.hold_seconds)
    assert [h.id for h in opened.expire_due(EVENT.id)] == [late.id]
    states = {h.id: h.state for h in store.holds(EVENT.id)}
    assert states == {
        early.id: HoldState.EXPIRED,
        paid.id: HoldState.PAID,
        late.id: HoldState.EXPIRED,
    }
    assert store.stock(EVENT.id)["phone-red"].available == 9
    assert_consistent(store, EVENT)


def test_a_hold_remembers_when_and_how_it_ended(opened: Sales, store: Storage) -> None:
    hold = reserve(opened, "c1", phone_red=1)
    opened.pay(hold.id, "p1")
    stored = store.hold(hold.id)
    assert stored is not None
    assert (stored.state, stored.payment_id, stored.paid_at, stored.ended_at) == (
        HoldState.PAID,
        "p1",
        NOW,
        NOW,
    )
    assert stored.lines == hold.lines
    assert stored.created_at == hold.created_at
    assert stored.expires_at == hold.expires_at


# -- 6. report truth -----------------------------------------------------------------------------


def test_live_totals_equal_the_recount_after_a_busy_sequence(
    opened: Sales, store: Storage, clock: ManualClock
) -> None:
    channels = [
        Channel(),
        Channel(ChannelKind.MARKETPLACE, "flipkart"),
        Channel(ChannelKind.STORE, "mi-home-1"),
        Channel(referral="weibo"),
    ]
    holds = []
    for i in range(12):
        market = "IN" if i % 3 == 0 else "CN"
        sku = ["phone-red", "phone-black", "tv-55"][i % 3]
        try:
            holds.append(opened.reserve(EVENT.id, f"c{i % 5}", market, {sku: 1}, channels[i % 4]))
        except LampoError:
            continue
    for i, hold in enumerate(holds):
        if i % 4 != 3:
            opened.pay(hold.id, f"p{i}")
    for i, hold in enumerate(holds):
        if i % 5 == 0:
            if opened.hold(hold.id).state is HoldState.PAID:
                opened.refund(hold.id)
            else:
                opened.release(hold.id)
    clock.advance(EVENT.hold_seconds)
    opened.expire_due(EVENT.id)
    totals = store.totals(EVENT.id)
    assert totals == recount(store.holds(EVENT.id))
    assert totals.units > 0
    assert {k.channel_kind for k in totals.orders} >= {"online", "marketplace", "store"}
    assert_consistent(store, EVENT)


def test_totals_are_exact_integer_minor_units_per_market(opened: Sales, store: Storage) -> None:
    cn = reserve(opened, "c1", phone_red=3)
    india = reserve(opened, "c2", market="IN", phone_black=1)
    opened.pay(cn.id, "p1")
    opened.pay(india.id, "p2")
    totals = store.totals(EVENT.id)
    currencies = {m: EVENT.markets[m].currency for m in EVENT.markets}
    amounts = totals.amounts_by_currency(currencies)
    assert amounts == {"CNY": cn.amount.amount, "INR": india.amount.amount}
    assert all(type(v) is int for row in totals.orders.values() for v in row)
    reporting = EVENT.fx.total(amounts)
    assert reporting == EVENT.fx.convert(cn.amount) + EVENT.fx.convert(india.amount)
    assert reporting.currency == "CNY"


# -- 7. clean refusal ----------------------------------------------------------------------------


def _sold_out(s: Sales, c: ManualClock) -> None:
    reserve(s, "x1", tv_55=1)
    reserve(s, "x2", tv_55=1)
    reserve(s, "c1", tv_55=1)


def _limit_sku(s: Sales, c: ManualClock) -> None:
    reserve(s, "c1", phone_red=3)
    reserve(s, "c1", phone_red=1)


def _limit_event(s: Sales, c: ManualClock) -> None:
    reserve(s, "c1", phone_black=4)
    reserve(s, "c1", phone_red=2)


def _conflict(s: Sales, c: ManualClock) -> None:
    reserve(s, "c1", key="k", phone_red=1)
    reserve(s, "c1", key="k", phone_red=2)


def _not_open(s: Sales, c: ManualClock) -> None:
    reserve(s, "c0", phone_red=1)
    c.set(CN_OPENS + timedelta(minutes=1))
    reserve(s, "c1", market="IN", phone_red=1)


def _closed(s: Sales, c: ManualClock) -> None:
    reserve(s, "c0", phone_red=1)
    c.advance(24 * 3600)
    reserve(s, "c1", phone_red=1)


def _expired(s: Sales, c: ManualClock) -> None:
    hold = reserve(s, "c1", phone_red=1)
    c.advance(EVENT.hold_seconds)
    s.pay(hold.id, "p1")


def _already_paid(s: Sales, c: ManualClock) -> None:
    hold = reserve(s, "c1", phone_red=1)
    s.pay(hold.id, "p1")
    s.pay(hold.id, "p2")


def _payment_id_reused(s: Sales, c: ManualClock) -> None:
    s.pay(reserve(s, "c1", phone_red=1).id, "p1")
    s.pay(reserve(s, "c2", phone_red=1).id, "p1")


def _illegal(s: Sales, c: ManualClock) -> None:
    hold = reserve(s, "c1", phone_red=1)
    s.pay(hold.id, "p1")
    s.release(hold.id)


def _wrong_amount(s: Sales, c: ManualClock) -> None:
    hold = reserve(s, "c1", phone_red=1)
    s.pay(hold.id, "p1", amount=Money(1, "CNY"))


def _unknown_hold(s: Sales, c: ManualClock) -> None:
    reserve(s, "c1", phone_red=1)
    s.pay("no-such-hold", "p1")


def _unknown_sku(s: Sales, c: ManualClock) -> None:
    reserve(s, "c1", phone_red=1)
    s.reserve(EVENT.id, "c1", "CN", {"phone-red": 1, "phone-gold": 1})


def _unknown_market(s: Sales, c: ManualClock) -> None:
    reserve(s, "c1", phone_red=1)
    reserve(s, "c1", market="MY", phone_red=1)


def _unknown_event(s: Sales, c: ManualClock) -> None:
    reserve(s, "c1", phone_red=1)
    s.reserve("other", "c1", "CN", {"phone-red": 1})


def _bad_quantity(s: Sales, c: ManualClock) -> None:
    reserve(s, "c1", phone_red=1)
    s.reserve(EVENT.id, "c1", "CN", {"phone-red": -1})


REFUSALS: list[tuple[Callable[[Sales, ManualClock], None], type]] = [
    (_sold_out, SoldOut),
    (_limit_sku, LimitExceeded),
    (_limit_event, LimitExceeded),
    (_conflict, IdempotencyConflict),
    (_not_open, NotOpen),
    (_closed, Closed),
    (_expired, HoldExpired),
    (_already_paid, AlreadyPaid),
    (_payment_id_reused, IdempotencyConflict),
    (_illegal, IllegalTransition),
    (_wrong_amount, InvalidRequest),
    (_unknown_hold, UnknownHold),
    (_unknown_sku, UnknownSku),
    (_unknown_market, UnknownMarket),
    (_unknown_event, UnknownEvent),
    (_bad_quantity, InvalidRequest),
]


@pytest.mark.parametrize(
    ("scenario", "refusal"), REFUSALS, ids=lambda x: getattr(x, "__name__", "")
)
def test_a_refused_request_changes_nothing(
    opened: Sales,
    store: Storage,
    clock: ManualClock,
    scenario: Callable[[Sales, ManualClock], None],
    refusal: type[LampoError],
) -> None:
    """Every scenario's last call is refused; we compare the state just before it."""
    states: list[tuple[object, ...]] = []

    class Recording:
        """Take a snapshot before each call that reaches the service."""

        def __getattr__(self, name: str) -> object:
            attr = getattr(opened, name)
            if callable(attr) and name in {"reserve", "pay", "release", "refund"}:

                def call(*a: object, **kw: object) -> object:
                    states.append(snapshot(store, EVENT.id))
                    return attr(*a, **kw)

                return call
            return attr

    with pytest.raises(refusal) as caught:
        scenario(Recording(), clock)  # type: ignore[arg-type]
    assert snapshot(store, EVENT.id) == states[-1]
    assert caught.value.reason
    assert isinstance(caught.value.detail(), dict)
    assert_consistent(store, EVENT)


def test_a_refused_key_is_not_remembered(opened: Sales, store: Storage) -> None:
    a = reserve(opened, "c1", tv_55=1)
    reserve(opened, "c2", tv_55=1)
    with pytest.raises(SoldOut):
        reserve(opened, "c3", key="k3", tv_55=1)
    opened.release(a.id)
    assert reserve(opened, "c3", key="k3", tv_55=1).customer == "c3"


def test_a_refusal_in_a_batch_leaves_its_neighbours_alone(opened: Sales, store: Storage) -> None:
    template = reserve(opened, "c0", phone_red=1)
    good = ReserveRequest("g", replace(template, id="good", customer="g1"), (None,))
    bad = ReserveRequest(
        "b",
        replace(template, id="bad", customer="b1", lines=(HoldLine("phone-gold", 1, 100),)),
        (None,),
    )
    also = ReserveRequest("a", replace(template, id="also", customer="a1"), (None,))
    results = store.reserve([good, bad, also])
    assert [type(r) for r in results] == [Hold, UnknownSku, Hold]
    assert store.hold("bad") is None
    assert store.stock(EVENT.id)["phone-red"].held == 3
    assert_consistent(store, EVENT)
