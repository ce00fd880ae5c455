"""The sale service over the in-memory backend: window, pricing, limits, idempotency."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from lampo.domain.errors import (
    AlreadyPaid,
    Closed,
    HoldExpired,
    IdempotencyConflict,
    InvalidRequest,
    LimitExceeded,
    NotOpen,
    SoldOut,
    UnknownEvent,
    UnknownHold,
    UnknownMarket,
    UnknownSku,
)
from lampo.domain.holds import HoldLine, HoldState, ReserveRequest
from lampo.domain.market import Channel, ChannelKind
from lampo.domain.money import Money
from lampo.domain.totals import recount
from lampo.services.clock import ManualClock
from lampo.services.sales import ReserveCommand, Sales
from lampo.storage.memory import MemoryStorage
from lampo.storage.port import Result
from tests.factories import CN_OPENS, IN_OPENS, NOW, price_cn, price_in, sale_event, sku_index


class CountingStorage(MemoryStorage):
    """A real memory backend that counts the reserve calls that reach it."""

    def __init__(self) -> None:
        super().__init__()
        self.reserve_calls = 0

    def reserve(self, requests: Sequence[ReserveRequest]) -> list[Result]:
        self.reserve_calls += 1
        return super().reserve(requests)


def make_sales(**event_kw: Any) -> tuple[Sales, ManualClock]:
    clock = ManualClock(NOW)
    sales = Sales(MemoryStorage(), clock=clock)
    sales.open(sale_event(**event_kw))
    return sales, clock


def available(sales: Sales, sku: str) -> int:
    return sales.stock("fest")[sku].available


# -- window -----------------------------------------------------------------------------------


def test_a_reservation_before_the_markets_opening_is_refused() -> None:
    sales, clock = make_sales()
    clock.set(CN_OPENS + timedelta(minutes=30))
    with pytest.raises(NotOpen) as caught:
        sales.reserve("fest", "c1", "IN", {"phone-red": 1})
    assert caught.value.opens_at == IN_OPENS
    assert sales.reserve("fest", "c1", "CN", {"phone-red": 1}).market == "CN"


def test_a_reservation_after_the_window_is_refused_as_closed() -> None:
    sales, clock = make_sales(hours=12)
    clock.set(CN_OPENS + timedelta(hours=12))
    with pytest.raises(Closed):
        sales.reserve("fest", "c1", "CN", {"phone-red": 1})
    assert sales.refusals[("fest", "closed")] == 1


# -- pricing ----------------------------------------------------------------------------------


def test_a_hold_is_priced_from_the_event_in_the_markets_currency() -> None:
    sales, _ = make_sales()
    event = sales.event("fest")
    hold = sales.reserve("fest", "c1", "IN", {"phone-red": 2, "tv-55": 1})
    red, tv = sku_index(event, "phone-red"), sku_index(event, "tv-55")
    assert hold.currency == "INR"
    assert set(hold.lines) == {
        HoldLine("phone-red", 2, price_in(red).amount),
        HoldLine("tv-55", 1, price_in(tv).amount),
    }
    assert hold.amount == Money(2 * price_in(red).amount + price_in(tv).amount, "INR")
    assert hold.expires_at == NOW + timedelta(seconds=event.hold_seconds)


def test_a_hold_keeps_its_channel() -> None:
    sales, _ = make_sales()
    channel = Channel(ChannelKind.MARKETPLACE, "flipkart")
    assert sales.reserve("fest", "c1", "IN", {"phone-red": 1}, channel).channel == channel


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "refusal"),
    [
        ({"event": "nope"}, UnknownEvent),
        ({"market": "MY"}, UnknownMarket),
        ({"items": {"phone-gold": 1}}, UnknownSku),
        ({"items": {}}, InvalidRequest),
        ({"items": {"phone-red": 0}}, InvalidRequest),
        ({"items": {"phone-red": -3}}, InvalidRequest),
        ({"items": {"phone-red": 1.5}}, InvalidRequest),
        ({"items": {"phone-red": "2"}}, InvalidRequest),
        ({"items": {"phone-red": True}}, InvalidRequest),
        ({"items": {"phone-red": 10**9}}, InvalidRequest),
        ({"customer": ""}, InvalidRequest),
        ({"customer": "two words"}, InvalidRequest),
        ({"customer": None}, InvalidRequest),
        ({"key": "k" * 500}, InvalidRequest),
    ],
)
def test_bad_reserve_input_is_refused_cleanly(kwargs: dict[str, Any], refusal: type) -> None:
    sales, _ = make_sales()
    args: dict[str, Any] = {
        "event": "fest",
        "customer": "c1",
        "market": "CN",
        "items": {"phone-red": 1},
        **kwargs,
    }
    with pytest.raises(refusal):
        sales.reserve(**args)
    assert available(sales, "phone-red") == 50


@pytest.mark.parametrize(("hold_id", "payment_id"), [("", "p1"), ("h1", ""), ("h 1", "p1")])
def test_bad_pay_input_is_refused_cleanly(hold_id: str, payment_id: str) -> None:
    sales, _ = make_sales()
    with pytest.raises(InvalidRequest):
        sales.pay(hold_id, payment_id)


def test_paying_an_unknown_hold_is_refused() -> None:
    sales, _ = make_sales()
    with pytest.raises(UnknownHold):
        sales.pay("nope", "p1")


def test_paying_the_wrong_amount_is_refused() -> None:
    sales, _ = make_sales()
    hold = sales.reserve("fest", "c1", "CN", {"phone-red": 1})
    with pytest.raises(InvalidRequest) as caught:
        sales.pay(hold.id, "p1", amount=hold.amount + Money(1, "CNY"))
    assert caught.value.field == "amount"
    assert sales.hold(hold.id).state is HoldState.HELD


# -- limits -----------------------------------------------------------------------------------


def test_a_customer_cannot_pass_the_sku_limit_across_holds() -> None:
    sales, _ = make_sales(sku_limit=2)
    sales.reserve("fest", "c1", "CN", {"phone-red": 1})
    with pytest.raises(LimitExceeded) as caught:
        sales.reserve("fest", "c1", "CN", {"phone-red": 2})
    assert caught.value.detail() == {"customer": "c1", "limit": 2, "already": 1, "sku": "phone-red"}
    sales.reserve("fest", "c1", "CN", {"phone-red": 1})
    sales.reserve("fest", "c2", "CN", {"phone-red": 2})  # another customer has their own


def test_a_customer_cannot_pass_the_event_limit_across_skus() -> None:
    sales, _ = make_sales(event_limit=3)
    sales.reserve("fest", "c1", "CN", {"phone-red": 2})
    with pytest.raises(LimitExceeded) as caught:
        sales.reserve("fest", "c1", "CN", {"tv-55": 1, "phone-black": 1})
    assert (caught.value.limit, caught.value.already, caught.value.sku) == (3, 2, None)
    sales.reserve("fest", "c1", "CN", {"tv-55": 1})


def test_paid_units_count_toward_the_limit_and_released_ones_do_not() -> None:
    sales, _ = make_sales(sku_limit=1)
    first = sales.reserve("fest", "c1", "CN", {"phone-red": 1})
    sales.pay(first.id, "p1")
    with pytest.raises(LimitExceeded):
        sales.reserve("fest", "c1", "CN", {"phone-red": 1})
    sales.refund(first.id)
    second = sales.reserve("fest", "c1", "CN", {"phone-red": 1})
    sales.release(second.id)
    assert sales.reserve("fest", "c1", "CN", {"phone-red": 1}).state is HoldState.HELD


# -- idempotency -------------------------------------------------------------------------------


def test_the_same_key_returns_the_same_hold_and_takes_stock_once() -> None:
    sales, clock = make_sales()
    first = sales.reserve("fest", "c1", "CN", {"phone-red": 2}, key="k1")
    clock.advance(5)
    again = sales.reserve("fest", "c1", "CN", {"phone-red": 2}, key="k1")
    assert again == first
    assert available(sales, "phone-red") == 48


def test_the_same_key_with_other_content_is_a_conflict() -> None:
    sales, _ = make_sales()
    sales.reserve("fest", "c1", "CN", {"phone-red": 2}, key="k1")
    with pytest.raises(IdempotencyConflict) as caught:
        sales.reserve("fest", "c1", "CN", {"phone-red": 3}, key="k1")
    assert "k1" in caught.value.key
    assert available(sales, "phone-red") == 48


def test_keys_belong_to_their_customer() -> None:
    sales, _ = make_sales()
    a = sales.reserve("fest", "c1", "CN", {"phone-red": 1}, key="k1")
    b = sales.reserve("fest", "c2", "CN", {"phone-red": 1}, key="k1")
    assert a.id != b.id


def test_requests_without_a_key_are_all_new() -> None:
    sales, _ = make_sales()
    a = sales.reserve("fest", "c1", "CN", {"phone-red": 1})
    b = sales.reserve("fest", "c1", "CN", {"phone-red": 1})
    assert a.id != b.id
    assert available(sales, "phone-red") == 48


def test_the_same_payment_id_pays_once() -> None:
    sales, clock = make_sales()
    hold = sales.reserve("fest", "c1", "CN", {"phone-red": 1})
    paid = sales.pay(hold.id, "p1")
    clock.advance(10)
    assert sales.pay(hold.id, "p1") == paid
    assert sales.stock("fest")["phone-red"].sold == 1
    assert sales.totals("fest").units == 1
    with pytest.raises(AlreadyPaid) as caught:
        sales.pay(hold.id, "p2")
    assert caught.value.payment_id == "p1"


def test_a_batch_returns_one_result_per_command_in_order() -> None:
    sales, _ = make_sales(stock={"tv-55": 1})
    results = sales.reserve_many(
        [
            ReserveCommand("fest", "c1", "CN", {"tv-55": 1}),
            ReserveCommand("fest", "c2", "MY", {"tv-55": 1}),
            ReserveCommand("fest", "c3", "CN", {"tv-55": 1}),
        ]
    )
    assert [type(r).__name__ for r in results] == ["Hold", "UnknownMarket", "SoldOut"]
    assert sales.refusals[("fest", "sold-out")] == 1


# -- release, expire, refund ---------------------------------------------------------------------


def test_a_released_hold_returns_its_stock_at_once() -> None:
    sales, _ = make_sales()
    hold = sales.reserve("fest", "c1", "CN", {"phone-red": 3})
    assert available(sales, "phone-red") == 47
    assert sales.release(hold.id).state is HoldState.RELEASED
    assert sales.stock("fest")["phone-red"].available == 50
    assert sales.release(hold.id).state is HoldState.RELEASED  # again: no-op


def test_a_hold_that_expires_returns_its_stock() -> None:
    sales, clock = make_sales(hold_seconds=60)
    hold = sales.reserve("fest", "c1", "CN", {"phone-red": 3})
    clock.advance(59)
    assert sales.expire_due() == []
    clock.advance(1)
    [expired] = sales.expire_due()
    assert (expired.id, expired.state) == (hold.id, HoldState.EXPIRED)
    assert available(sales, "phone-red") == 50
    with pytest.raises(HoldExpired):
        sales.pay(hold.id, "p1")


def test_an_overdue_hold_cannot_be_paid_before_the_sweeper_runs() -> None:
    sales, clock = make_sales(hold_seconds=60)
    hold = sales.reserve("fest", "c1", "CN", {"phone-red": 1})
    clock.advance(60)
    with pytest.raises(HoldExpired):
        sales.pay(hold.id, "p1")
    assert sales.hold(hold.id).state is HoldState.HELD
    assert sales.stock("fest")["phone-red"].sold == 0


def test_the_sweeper_works_in_pages() -> None:
    sales, clock = make_sales(hold_seconds=60)
    for i in range(7):
        sales.reserve("fest", f"c{i}", "CN", {"phone-red": 1})
    clock.advance(61)
    assert len(sales.expire_due("fest", limit=3)) == 7
    assert available(sales, "phone-red") == 50


def test_a_refund_takes_the_money_out_of_the_totals() -> None:
    sales, _ = make_sales()
    a = sales.reserve("fest", "c1", "CN", {"phone-red": 1})
    b = sales.reserve("fest", "c2", "CN", {"phone-red": 2})
    sales.pay(a.id, "pa")
    sales.pay(b.id, "pb")
    price = price_cn(sku_index(sales.event("fest"), "phone-red")).amount
    before = sales.totals("fest")
    assert before.orders[("CN", "online", "", "")] == (2, 3 * price)
    refunded = sales.refund(b.id)
    after = sales.totals("fest")
    assert refunded.state is HoldState.REFUNDED
    assert after.orders[("CN", "online", "", "")] == (1, price)
    assert after == recount(sales.storage.holds("fest"))
    stock = sales.stock("fest")["phone-red"]
    assert (stock.available, stock.sold) == (49, 1)


# -- sold out from memory -------------------------------------------------------------------------


def test_a_known_sold_out_sku_is_refused_without_asking_storage() -> None:
    storage = CountingStorage()
    sales = Sales(storage, clock=ManualClock(NOW), soldout_ttl=60)
    sales.open(sale_event(stock={"tv-55": 1}))
    sales.reserve("fest", "c1", "CN", {"tv-55": 1})
    with pytest.raises(SoldOut):
        sales.reserve("fest", "c2", "CN", {"tv-55": 1})
    calls = storage.reserve_calls
    with pytest.raises(SoldOut) as caught:
        sales.reserve("fest", "c3", "CN", {"tv-55": 1})
    assert storage.reserve_calls == calls
    assert caught.value.available == 0
    assert sales.refusals[("fest", "sold-out")] == 2


def test_the_sold_out_memory_forgets_after_a_release() -> None:
    storage = CountingStorage()
    sales = Sales(storage, clock=ManualClock(NOW), soldout_ttl=60)
    sales.open(sale_event(stock={"tv-55": 1}))
    hold = sales.reserve("fest", "c1", "CN", {"tv-55": 1})
    with pytest.raises(SoldOut):
        sales.reserve("fest", "c2", "CN", {"tv-55": 1})
    sales.release(hold.id)
    assert sales.reserve("fest", "c2", "CN", {"tv-55": 1}).customer == "c2"


def test_without_a_ttl_every_request_reaches_storage() -> None:
    storage = CountingStorage()
    sales = Sales(storage, clock=ManualClock(NOW))
    sales.open(sale_event(stock={"tv-55": 0}))
    for _ in range(3):
        with pytest.raises(SoldOut):
            sales.reserve("fest", "c1", "CN", {"tv-55": 1})
    assert storage.reserve_calls == 3


def test_opening_an_event_twice_keeps_its_stock() -> None:
    sales, _ = make_sales()
    sales.reserve("fest", "c1", "CN", {"phone-red": 5})
    sales.open(sale_event())
    assert available(sales, "phone-red") == 45


def test_reading_the_stock_of_an_unknown_event_is_refused() -> None:
    sales, _ = make_sales()
    with pytest.raises(UnknownEvent):
        sales.stock("nope")
