"""The service places each line in its channel's pool, falls back to the shared pool when
the offer allows, and keeps what it learns of sold-out pools apart."""

from __future__ import annotations

import pytest

from lampo.domain.channels import stock_key
from lampo.domain.errors import InvalidRequest, SoldOut
from lampo.domain.holds import HoldState
from lampo.domain.market import Channel, ChannelKind
from lampo.services.clock import ManualClock
from lampo.services.sales import ReserveCommand, Sales
from lampo.storage.memory import MemoryStorage
from tests.factories import CN_OPENS, channel_event

JD = Channel(ChannelKind.MARKETPLACE, "jd")
STORE = Channel(ChannelKind.STORE, "s1")


def _sales(**kw: object) -> Sales:
    sales = Sales(MemoryStorage(), clock=ManualClock(CN_OPENS), soldout_ttl=60.0)
    sales.open(channel_event(**kw))  # type: ignore[arg-type]
    return sales


def _pools(sales: Sales) -> dict[str, tuple[int, int, int]]:
    return {k: (v.available, v.held, v.sold) for k, v in sales.storage.pools("fest").items()}


def test_each_channel_sells_from_its_own_pool() -> None:
    sales = _sales()
    jd = sales.sell("fest", JD, "jd:u1", "CN", {"phone-red": 2}, "o1")
    till = sales.sell("fest", STORE, "store:s1:r1", "CN", {"phone-red": 1}, "r1")
    online = sales.reserve("fest", "u1", "CN", {"phone-red": 3}, key="k1")
    assert [ln.pool for ln in jd.lines] == ["jd"]
    assert [ln.pool for ln in till.lines] == ["stores"]
    assert [ln.pool for ln in online.lines] == [""]
    assert jd.state is HoldState.PAID
    assert till.state is HoldState.PAID
    pools = _pools(sales)
    assert pools[stock_key("phone-red", "jd")] == (8, 0, 2)
    assert pools[stock_key("phone-red", "stores")] == (4, 0, 1)
    assert pools["phone-red"] == (32, 3, 0)


def test_a_dry_reserved_pool_falls_back_to_the_shared_one_line_whole() -> None:
    sales = _sales(jd=2)
    first = sales.sell("fest", JD, "jd:u1", "CN", {"phone-red": 2}, "o1")
    second = sales.sell("fest", JD, "jd:u2", "CN", {"phone-red": 3}, "o2")
    assert [ln.pool for ln in first.lines] == ["jd"]
    assert [ln.pool for ln in second.lines] == [""]  # whole from one pool, not 0 + 3
    pools = _pools(sales)
    assert pools[stock_key("phone-red", "jd")] == (0, 0, 2)
    assert pools["phone-red"][2] == 3
    assert sales.refusals == {}  # the first try's sold-out was not a refusal


def test_without_fallback_a_dry_pool_is_sold_out_and_the_shared_pool_untouched() -> None:
    sales = _sales(jd=1, fallback=False)
    with pytest.raises(SoldOut) as refused:
        sales.sell("fest", JD, "jd:u1", "CN", {"phone-red": 2}, "o1")
    assert refused.value.sku == "phone-red"
    assert _pools(sales)["phone-red"] == (44, 0, 0)


def test_a_sold_out_reserved_pool_does_not_turn_online_buyers_away() -> None:
    sales = _sales(jd=1, fallback=False)
    sales.sell("fest", JD, "jd:u1", "CN", {"phone-red": 1}, "o1")
    with pytest.raises(SoldOut):
        sales.sell("fest", JD, "jd:u2", "CN", {"phone-red": 1}, "o2")
    # the sold-out memory now knows the jd pool is empty; the shared pool is not
    online = sales.reserve("fest", "u1", "CN", {"phone-red": 1}, key="k1")
    assert online.lines[0].pool == ""


def test_online_buyers_never_draw_on_a_reserved_pool() -> None:
    sales = _sales(jd=10, stores=5, allocation=16)  # one unit shared
    sales.reserve("fest", "u1", "CN", {"phone-red": 1}, key="k1")
    with pytest.raises(SoldOut):
        sales.reserve("fest", "u2", "CN", {"phone-red": 1}, key="k2")
    assert _pools(sales)[stock_key("phone-red", "jd")] == (10, 0, 0)


def test_a_channel_the_event_does_not_declare_is_refused_before_storage() -> None:
    sales = _sales()
    results = sales.reserve_many(
        [
            ReserveCommand(
                "fest", "u1", "CN", {"phone-red": 1}, Channel(ChannelKind.MARKETPLACE, "x")
            ),
            ReserveCommand(  # tmall sells TVs only
                "fest", "u2", "CN", {"phone-red": 1}, Channel(ChannelKind.MARKETPLACE, "tmall")
            ),
        ]
    )
    assert all(isinstance(r, InvalidRequest) and r.field == "channel" for r in results)
    assert _pools(sales)["phone-red"] == (35, 0, 0)


def test_a_retried_sale_after_a_fallback_is_the_same_sale() -> None:
    sales = _sales(jd=0)
    first = sales.sell("fest", JD, "jd:u1", "CN", {"phone-red": 1}, "o1")
    sales.storage.update(channel_event(jd=5))  # the jd pool gets units meanwhile
    sales.learn(channel_event(jd=5))
    again = sales.sell("fest", JD, "jd:u1", "CN", {"phone-red": 1}, "o1")
    assert again.id == first.id  # no conflict, no second sale
    assert again.lines[0].pool == ""
