"""A live event takes a new definition: more stock, new SKUs, moved windows, new prices.

Every backend applies an update in one atomic step and refuses, changing nothing, what
would break a guarantee: an allocation below the units held and sold, or dropping what
holds and totals refer to.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest

from lampo.domain.catalog import Category, Sku
from lampo.domain.errors import LampoError, SoldOut, UnknownEvent, UpdateRefused
from lampo.domain.event import Offer, SaleEvent, Window
from lampo.domain.money import Money
from lampo.services.sales import Sales
from lampo.storage import Storage
from tests.contract.conftest import assert_consistent, snapshot
from tests.factories import NOW, sale_event


def with_allocation(event: SaleEvent, sku: str, allocation: int) -> SaleEvent:
    offers = dict(event.offers)
    offers[sku] = replace(offers[sku], allocation=allocation)
    return replace(event, offers=offers)


def with_new_sku(event: SaleEvent, sku: str, allocation: int) -> SaleEvent:
    category = sku.split("-")[0]
    categories = {**event.categories, category: Category(category, category.title())}
    skus = {**event.skus, sku: Sku(sku, f"{category}-product", sku, category)}
    prices = {"CN": Money(99_900, "CNY"), "IN": Money(999_900, "INR")}
    offers = {**event.offers, sku: Offer(sku, allocation, prices)}
    return replace(event, categories=categories, skus=skus, offers=offers)


def without_india(event: SaleEvent) -> SaleEvent:
    offers = {k: replace(o, prices={"CN": o.prices["CN"]}) for k, o in event.offers.items()}
    markets = {"CN": event.markets["CN"]}
    return replace(event, markets=markets, windows={"CN": event.windows["CN"]}, offers=offers)


def reserve(sales: Sales, event: SaleEvent, customer: str, sku: str, qty: int = 1) -> None:
    sales.reserve(event.id, customer, "CN", {sku: qty}, key=f"{customer}-{sku}")


def test_adding_stock_makes_it_available_at_once(store: Storage, sales: Sales) -> None:
    event = sale_event(stock={"phone-red": 2})
    sales.open(event)
    reserve(sales, event, "a", "phone-red", 2)
    with pytest.raises(SoldOut):
        reserve(sales, event, "b", "phone-red")

    more = with_allocation(event, "phone-red", 5)
    sales.update(more)

    level = store.stock(event.id)["phone-red"]
    assert (level.allocation, level.available, level.held) == (5, 3, 2)
    for customer in "bcd":
        reserve(sales, more, customer, "phone-red")
    with pytest.raises(SoldOut):
        reserve(sales, more, "e", "phone-red")
    assert store.load_events() == [more]
    assert_consistent(store, more)


def test_an_allocation_may_fall_to_the_units_held_and_sold_but_not_below(
    store: Storage, sales: Sales
) -> None:
    event = sale_event(stock={"phone-red": 10})
    sales.open(event)
    for customer in "abc":
        reserve(sales, event, customer, "phone-red")
    before = snapshot(store, event.id)

    with pytest.raises(UpdateRefused) as refused:
        sales.update(with_allocation(event, "phone-red", 2))
    assert refused.value.reason == "update-refused"
    assert refused.value.field == "allocation"
    assert snapshot(store, event.id) == before
    assert store.load_events() == [event]

    exact = with_allocation(event, "phone-red", 3)
    sales.update(exact)
    assert store.stock(event.id)["phone-red"].available == 0
    with pytest.raises(SoldOut):
        reserve(sales, exact, "d", "phone-red")
    assert_consistent(store, exact)


def test_a_new_sku_goes_on_sale_with_its_allocation(store: Storage, sales: Sales) -> None:
    event = sale_event(stock={"phone-red": 3})
    sales.open(event)
    reserve(sales, event, "a", "phone-red")

    wider = with_new_sku(event, "tv-65", 4)
    sales.update(wider)

    assert store.stock(event.id)["tv-65"].available == 4
    reserve(sales, wider, "b", "tv-65", 4)
    with pytest.raises(SoldOut):
        reserve(sales, wider, "c", "tv-65")
    assert store.load_events() == [wider]
    assert_consistent(store, wider)


def test_new_prices_apply_to_new_holds_only(store: Storage, sales: Sales) -> None:
    event = sale_event(stock={"phone-red": 5})
    sales.open(event)
    first = sales.reserve(event.id, "a", "CN", {"phone-red": 1}, key="k1")
    offers = dict(event.offers)
    cheaper = {**offers["phone-red"].prices, "CN": Money(59_900, "CNY")}
    offers["phone-red"] = replace(offers["phone-red"], prices=cheaper)
    discounted = replace(event, offers=offers)

    sales.update(discounted)

    second = sales.reserve(event.id, "b", "CN", {"phone-red": 1}, key="k2")
    assert first.lines[0].unit_price == event.offers["phone-red"].prices["CN"].amount
    assert second.lines[0].unit_price == 59_900
    assert store.hold(first.id) == first
    assert_consistent(store, discounted)


def test_a_moved_close_ends_the_sale(store: Storage, sales: Sales) -> None:
    event = sale_event(stock={"phone-red": 5})
    sales.open(event)
    windows = dict(event.windows)
    windows["CN"] = Window(windows["CN"].opens, NOW - timedelta(minutes=1))
    ended = replace(event, windows=windows)

    sales.update(ended)

    with pytest.raises(LampoError) as refused:
        reserve(sales, ended, "a", "phone-red")
    assert refused.value.reason == "closed"
    assert store.load_events() == [ended]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda e: replace(e, offers={k: v for k, v in e.offers.items() if k != "tv-55"}),
            id="offer-dropped",
        ),
        pytest.param(lambda e: without_india(e), id="market-dropped"),
        pytest.param(lambda e: replace(e, limit_per_customer=3), id="event-limit-added"),
        pytest.param(
            lambda e: replace(
                e, offers={**e.offers, "tv-55": replace(e.offers["tv-55"], limit_per_customer=1)}
            ),
            id="sku-limit-added",
        ),
    ],
)
def test_what_holds_and_counters_depend_on_cannot_change(
    store: Storage, sales: Sales, change: object
) -> None:
    event = sale_event()
    sales.open(event)
    reserve(sales, event, "a", "tv-55")
    before = snapshot(store, event.id)
    changed = change(event)  # type: ignore[operator]

    with pytest.raises(UpdateRefused) as refused:
        store.update(changed)

    assert refused.value.reason == "update-refused"
    assert snapshot(store, event.id) == before
    assert store.load_events() == [event]


def test_an_unknown_event_cannot_be_updated(store: Storage) -> None:
    with pytest.raises(UnknownEvent):
        store.update(sale_event("never-set-up"))
    assert store.events() == []


def test_the_same_definition_again_changes_nothing(store: Storage, sales: Sales) -> None:
    event = sale_event(stock={"phone-red": 5})
    sales.open(event)
    reserve(sales, event, "a", "phone-red")
    before = snapshot(store, event.id)
    grown = with_allocation(event, "phone-red", 7)
    store.update(grown)
    store.update(grown)  # a retried update: applied once
    assert store.stock(event.id)["phone-red"].available == before[0]["phone-red"].available + 2  # type: ignore[index]
    assert_consistent(store, grown)


def test_a_limit_may_be_raised(store: Storage, sales: Sales) -> None:
    event = sale_event(stock={"phone-red": 10}, sku_limit=1)
    sales.open(event)
    reserve(sales, event, "a", "phone-red")
    with pytest.raises(LampoError) as refused:
        sales.reserve(event.id, "a", "CN", {"phone-red": 1}, key="again")
    assert refused.value.reason == "limit-exceeded"
    offers = {"phone-red": replace(event.offers["phone-red"], limit_per_customer=2)}
    sales.update(replace(event, offers=offers))
    sales.reserve(event.id, "a", "CN", {"phone-red": 1}, key="again")
    with pytest.raises(LampoError) as third:
        sales.reserve(event.id, "a", "CN", {"phone-red": 1}, key="third")
    assert third.value.reason == "limit-exceeded"


def test_lowering_an_allocation_while_buyers_reserve_never_oversells(
    store: Storage, sales: Sales
) -> None:
    """Buyers in 8 threads race a series of updates that lower and raise the allocation;
    whatever order the storage takes them in, held + sold never exceeds the allocation it
    ends with, and stock matches the holds."""
    event = sale_event(stock={"phone-red": 60})
    sales.open(event)
    definitions = [with_allocation(event, "phone-red", n) for n in (50, 40, 45, 30, 35, 20)]
    applied: list[SaleEvent] = [event]
    refusals: list[str] = []
    start = threading.Barrier(9)

    def buyer(n: int) -> None:
        start.wait()
        for i in range(12):
            try:
                reserve(sales, event, f"c{n}-{i}", "phone-red")
            except LampoError:
                pass

    def admin() -> None:
        start.wait()
        for definition in definitions:
            try:
                store.update(definition)
                applied.append(definition)
            except UpdateRefused as refused:
                refusals.append(refused.field)

    threads = [threading.Thread(target=buyer, args=(n,)) for n in range(8)]
    threads.append(threading.Thread(target=admin))
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert set(refusals) <= {"allocation"}
    final = applied[-1]
    assert store.load_events() == [final]
    level = store.stock(event.id)["phone-red"]
    assert level.held + level.sold <= level.allocation == final.offers["phone-red"].allocation
    assert_consistent(store, final)
