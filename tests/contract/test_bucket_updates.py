"""Updates of a bucketed event (``buckets=N``): the steps around bucket 0's update.lua.

The contract suite (test_event_updates.py) runs every update rule on both bucketed
backends; these tests aim at what only buckets have: where the units of an update go,
and each crash point of the protocol (docs/storage-redis-postgres.md, "Updating a live
event"), simulated by running only the steps before it, then checking that the state is
consistent and that running ``update`` again completes it.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from lampo.domain.codec import event_to_dict
from lampo.domain.errors import UpdateRefused
from lampo.domain.event import SaleEvent, plan_update
from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from lampo.storage import from_url
from lampo.storage._buckets import shares
from lampo.storage.redis import RedisStorage
from tests.contract import test_stock_buckets
from tests.contract.conftest import assert_consistent, snapshot
from tests.contract.test_event_updates import with_allocation, with_new_sku
from tests.contract.test_stock_buckets import (
    _lend,
    _replace_option,
    customers,
    lent,
    per_bucket,
    redis_url_of,
)
from tests.factories import NOW, sale_event

# test_stock_buckets.py's fixtures: the bucketed stores, a Sales, an open 12-unit event.
spec = test_stock_buckets.spec
store = test_stock_buckets.store
sales = test_stock_buckets.sales
event = test_stock_buckets.event


def take_bucket_0(sales: Sales, event: SaleEvent, n: int) -> int:
    """Every unit of bucket 0's own share held, by its customers; how many."""
    mine = shares(12, n)[0]
    for who in customers(0, n, mine):
        sales.reserve(event.id, who, "CN", {"phone-red": 1})
    return mine


def text(event: SaleEvent) -> str:
    return json.dumps(event_to_dict(event), sort_keys=True)


def definitions(store: RedisStorage, event: str) -> list[str]:
    """The definition kept in each bucket (bucket 0's is the one that counts)."""
    n = store._bucket_count(event)
    return [store._r.get(store._base(event, b) + ":def") for b in range(n)]


def test_new_units_are_spread_over_the_buckets_as_setup_spreads_them(
    store: RedisStorage, sales: Sales
) -> None:
    event = sale_event(stock={"phone-red": 10})
    sales.open(event)
    n = store.buckets
    more = with_new_sku(with_allocation(event, "phone-red", 17), "tv-65", 11)
    sales.update(more)
    assert [a for a, *_ in per_bucket(store, event.id, "tv-65")] == shares(11, n)
    expected = [a + b for a, b in zip(shares(10, n), shares(7, n), strict=True)]
    assert [a for a, *_ in per_bucket(store, event.id, "phone-red")] == expected
    assert lent(store, event.id) == 0
    assert definitions(store, event.id) == [text(more)] * n
    assert_consistent(store, more)


def test_a_lower_allocation_takes_units_from_every_bucket_that_has_them(
    store: RedisStorage, sales: Sales, event: SaleEvent
) -> None:
    n = store.buckets
    mine = take_bucket_0(sales, event, n)  # bucket 0 has nothing left of its own
    lower = with_allocation(event, "phone-red", mine + 1)  # one unit left, anywhere
    sales.update(lower)
    levels = per_bucket(store, event.id, "phone-red")
    assert sum(a for a, *_ in levels) == mine + 1
    assert all(v >= 0 and a == v + h + s for a, v, h, s in levels)
    assert store.stock(event.id)["phone-red"].available == 1
    assert_consistent(store, lower)


def test_a_refused_lower_allocation_moves_nothing(
    store: RedisStorage, sales: Sales, event: SaleEvent
) -> None:
    for b in range(store.buckets):
        for who in customers(b, store.buckets, 2):
            sales.reserve(event.id, who, "CN", {"phone-red": 1})
    before = snapshot(store, event.id), per_bucket(store, event.id, "phone-red")
    held = 2 * store.buckets
    with pytest.raises(UpdateRefused) as refused:
        sales.update(with_allocation(event, "phone-red", held - 1))
    assert refused.value.field == "allocation"
    assert (snapshot(store, event.id), per_bucket(store, event.id, "phone-red")) == before
    assert store.load_events() == [event]


def test_a_crash_after_gathering_changes_nothing_reads_see_and_update_again_completes(
    store: RedisStorage, sales: Sales, event: SaleEvent
) -> None:
    n = store.buckets
    take_bucket_0(sales, event, n)
    new = with_new_sku(with_allocation(event, "phone-red", 6), "tv-65", 4)
    before = snapshot(store, event.id)
    # The steps before bucket 0's script: units gathered, empty rows for the new SKU.
    store._prepare_update(new, plan_update(event, new), n)
    assert per_bucket(store, event.id, "phone-red")[0][1] >= 12 - 6  # gathered in bucket 0
    assert snapshot(store, event.id) == before  # the new SKU is not on sale yet
    assert store.load_events() == [event]
    assert_consistent(store, event)
    store.update(new)  # run again: completes, once
    store.update(new)
    assert store.load_events() == [new]
    assert store.stock(event.id)["tv-65"].available == 4
    assert_consistent(store, new)


def test_a_crash_inside_a_gathering_transfer_is_counted_and_completed_by_update(
    store: RedisStorage, sales: Sales, event: SaleEvent
) -> None:
    n = store.buckets
    take_bucket_0(sales, event, n)
    assert _lend(store, event.id, 1, "g1", 0, 2) == 2  # cut after step 1: in transit
    assert store.stock(event.id)["phone-red"].available == 12 - shares(12, n)[0]
    lower = with_allocation(event, "phone-red", 12 - 3)
    sales.update(lower)
    assert lent(store, event.id) == 0
    assert store.stock(event.id)["phone-red"].available == 12 - 3 - shares(12, n)[0]
    assert_consistent(store, lower)


def test_a_crash_after_bucket_0_leaves_the_update_done_and_update_again_fixes_the_copies(
    store: RedisStorage, sales: Sales, event: SaleEvent
) -> None:
    n = store.buckets
    sales.reserve(event.id, customers(1, n, 1)[0], "CN", {"phone-red": 1})
    new = with_new_sku(with_allocation(event, "phone-red", 15), "tv-65", 5)
    change = plan_update(event, new)
    store._prepare_update(new, change, n)
    answer = store._apply_update(event.id, n, text(event), text(new), change)
    assert answer == ["ok", "1"]
    # Cut here: no copy of the definition elsewhere, the new units all in bucket 0.
    assert definitions(store, event.id) == [text(new)] + [text(event)] * (n - 1)
    assert per_bucket(store, event.id, "tv-65")[0][0] == 5
    assert store.load_events() == [new]
    assert_consistent(store, new)
    Sales(store, clock=ManualClock(NOW)).open(new)  # setup compares bucket 0's only
    url = _replace_option(redis_url_of(store), buckets="1")
    with from_url(url) as other:  # another process updates it to the same definition
        assert isinstance(other, RedisStorage)
        before = snapshot(other, event.id)
        other.update(new)
        assert snapshot(other, event.id) == before  # the same definition: a no-op ...
        assert definitions(other, event.id) == [text(new)] * n  # ... that fixes the copies
        assert_consistent(other, new)


def test_a_crash_while_spreading_new_units_leaves_them_in_transit_counted(
    store: RedisStorage, sales: Sales, event: SaleEvent
) -> None:
    n = store.buckets
    new = with_new_sku(event, "tv-65", 6)
    change = plan_update(event, new)
    store._prepare_update(new, change, n)
    assert store._apply_update(event.id, n, text(event), text(new), change)[0] == "ok"
    [answer] = store._evalsha([("lend", [store._base(event.id)], ["s1", 1, "tv-65", 2])])
    assert answer == [2]  # cut after step 1 of a spreading transfer
    assert store.stock(event.id)["tv-65"].allocation == 6
    assert_consistent(store, new)
    assert store.expire_due(event.id, NOW) == []  # the sweep completes it
    assert lent(store, event.id) == 0
    assert per_bucket(store, event.id, "tv-65")[1][0] == 2
    assert_consistent(store, new)


def test_a_plan_made_before_another_update_is_refused_by_bucket_0(
    store: RedisStorage, sales: Sales, event: SaleEvent
) -> None:
    n = store.buckets
    first, second = with_allocation(event, "phone-red", 20), with_allocation(event, "phone-red", 8)
    sales.update(first)
    before = snapshot(store, event.id)
    stale = store._apply_update(event.id, n, text(event), text(second), plan_update(event, second))
    assert stale == ["changed"]
    assert snapshot(store, event.id) == before
    sales.update(second)  # planned again from the definition it finds
    assert store.stock(event.id)["phone-red"].allocation == 8
    assert_consistent(store, second)


def test_an_older_copy_of_the_definition_never_replaces_a_newer_one(
    store: RedisStorage, sales: Sales, event: SaleEvent
) -> None:
    first = replace(event, name="first")
    second = replace(event, name="second")
    sales.update(first)
    sales.update(second)
    store._rows(event.id, store.buckets, [], "1", text(first))  # a slow client, late
    assert definitions(store, event.id) == [text(second)] * store.buckets
    assert store.load_events() == [second]
