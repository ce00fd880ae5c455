"""A store sale is taken and paid in one call, and a retried till request sells once."""

from __future__ import annotations

import pytest

from lampo.domain.errors import InvalidRequest, SoldOut
from lampo.domain.holds import HoldState
from lampo.domain.market import Channel, ChannelKind
from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from lampo.storage.memory import MemoryStorage
from tests.factories import CN_OPENS, sale_event


def _sales() -> Sales:
    sales = Sales(MemoryStorage(), clock=ManualClock(CN_OPENS))
    sales.open(sale_event(stock={"redmi-2": 3}))
    return sales


def test_a_store_sale_is_an_order_of_the_store_channel() -> None:
    sales = _sales()
    order = sales.sell_in_store("fest", "mi-home-42", "walk-in-1", "CN", {"redmi-2": 2}, "till-1")
    assert order.state is HoldState.PAID
    assert order.channel.kind is ChannelKind.STORE
    assert order.channel.name == "mi-home-42"
    level = sales.stock("fest")["redmi-2"]
    assert (level.available, level.held, level.sold) == (1, 0, 2)
    assert sales.totals("fest").orders[("CN", "store", "mi-home-42", "")].orders == 1


def test_a_retried_store_sale_sells_once() -> None:
    sales = _sales()
    first = sales.sell_in_store("fest", "mi-home-42", "walk-in-1", "CN", {"redmi-2": 1}, "till-7")
    again = sales.sell_in_store("fest", "mi-home-42", "walk-in-1", "CN", {"redmi-2": 1}, "till-7")
    assert again.id == first.id
    assert sales.stock("fest")["redmi-2"].sold == 1


def test_a_store_sale_half_done_by_a_crash_is_finished_by_the_retry() -> None:
    sales = _sales()
    # The crash: the hold was placed under the till's key, its payment never happened.
    hold = sales.reserve(
        "fest", "walk-in-2", "CN", {"redmi-2": 1}, Channel(ChannelKind.STORE, "s1"), "till-9"
    )
    order = sales.sell_in_store("fest", "s1", "walk-in-2", "CN", {"redmi-2": 1}, "till-9")
    assert order.id == hold.id
    assert order.state is HoldState.PAID
    assert sales.stock("fest")["redmi-2"].sold == 1


def test_a_store_sale_beyond_the_stock_is_refused_and_changes_nothing() -> None:
    sales = _sales()
    with pytest.raises(SoldOut):
        sales.sell_in_store("fest", "s1", "walk-in-3", "CN", {"redmi-2": 4}, "till-2")
    level = sales.stock("fest")["redmi-2"]
    assert (level.available, level.held, level.sold) == (3, 0, 0)


def test_a_store_sale_without_a_key_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        _sales().sell_in_store("fest", "s1", "walk-in-4", "CN", {"redmi-2": 1}, "")
