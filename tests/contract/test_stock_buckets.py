"""Stock buckets of a hot event (``buckets=N``) on one Redis server and on the cluster.

The whole contract suite also runs on both bucketed backends (``redis-buckets`` and
``redis-cluster-buckets`` in ``conftest.py``); these tests aim at what only buckets have:
units moving between buckets, the transfer's crash points and their recovery, the slots.
Customers are chosen by the bucket they hash to, so each test knows where units lie.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lampo.domain.errors import InvalidRequest, SoldOut
from lampo.domain.event import SaleEvent
from lampo.domain.holds import Hold
from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from lampo.storage import from_url
from lampo.storage._buckets import bucket_of, shares
from lampo.storage.redis import RedisStorage
from tests.contract._servers import redis_url
from tests.contract.conftest import (
    REDIS_BUCKETS,
    REDIS_CLUSTER_BUCKETS,
    Backend,
    assert_consistent,
    snapshot,
    units_by_customer,
)
from tests.contract.test_concurrency import reasons, together
from tests.contract.test_hold_ids import assert_reused_hold_id_refused
from tests.factories import NOW, sale_event

BUCKETED = [
    pytest.param(REDIS_BUCKETS, id="redis-buckets", marks=pytest.mark.redis),
    pytest.param(
        REDIS_CLUSTER_BUCKETS, id="redis-cluster-buckets", marks=pytest.mark.redis_cluster
    ),
]


@pytest.fixture(params=BUCKETED)
def spec(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.param
    return backend


@pytest.fixture
def store(spec: Backend, tmp_path: Path) -> Iterator[RedisStorage]:
    opened = spec.open(tmp_path)  # skips (or fails under CI) without the server
    assert isinstance(opened, RedisStorage)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def sales(store: RedisStorage) -> Sales:
    return Sales(store, clock=ManualClock(NOW))


@pytest.fixture
def event(sales: Sales) -> SaleEvent:
    """An event of 12 phones, open for sale."""
    opened = sale_event(stock={"phone-red": 12})
    sales.open(opened)
    return opened


def customers(bucket: int, n: int, count: int) -> list[str]:
    """``count`` customer ids that hash to ``bucket`` of ``n``."""
    out = [f"c{i}" for i in range(100_000) if bucket_of(f"c{i}", n) == bucket]
    return out[:count]


def per_bucket(store: RedisStorage, event: str, sku: str) -> list[tuple[int, int, int, int]]:
    """(allocation share, available, held, sold) of ``sku`` in each bucket."""
    n = store._bucket_count(event)
    view = store._read_view(event, n)
    return [tuple(levels[sku]) for levels in view.levels]  # type: ignore[misc]


def lent(store: RedisStorage, event: str) -> int:
    """Transfer records not settled, in all buckets."""
    n = store._bucket_count(event)
    return sum(store._r.hlen(store._base(event, b) + ":xfer") for b in range(n))


def test_one_bucket_crowd_buys_exactly_the_allocation_spread_over_every_bucket(
    store: RedisStorage,
) -> None:
    stock = 53
    event = sale_event(stock={"phone-red": stock})
    sales = Sales(store, clock=ManualClock(NOW))
    sales.open(event)
    n = store.buckets
    assert [a for a, *_ in per_bucket(store, event.id, "phone-red")] == shares(stock, n)
    crowd = customers(0, n, 200)  # all in bucket 0: every other unit must be borrowed
    results = together(
        len(crowd), lambda i: sales.reserve(event.id, crowd[i], "CN", {"phone-red": 1})
    )
    assert reasons(results) == {"ok": stock, "sold-out": len(crowd) - stock}
    # No unit stranded in a bucket while a customer was refused: the refused saw 0 left.
    assert {r.available for r in results if isinstance(r, SoldOut)} == {0}
    levels = per_bucket(store, event.id, "phone-red")
    assert levels[0] == (stock, 0, stock, 0)
    assert all(level == (0, 0, 0, 0) for level in levels[1:])
    assert lent(store, event.id) == 0
    assert_consistent(store, event)


def test_a_mixed_crowd_buys_exactly_the_allocation_and_refusals_see_zero(
    store: RedisStorage,
) -> None:
    stock = 50
    event = sale_event(stock={"phone-red": stock, "tv-55": 7})
    sales = Sales(store, clock=ManualClock(NOW))
    sales.open(event)

    def buy(i: int) -> Hold:
        items = {"phone-red": 1 + i % 2} if i % 5 else {"phone-red": 1, "tv-55": 1}
        return sales.reserve(event.id, f"buyer{i}", "CN", items)

    results = together(300, buy)
    assert set(reasons(results)) == {"ok", "sold-out"}
    level = store.stock(event.id)["phone-red"]
    # Demand is far above stock and a request takes 1 or 2 units: at most one is left.
    assert level.available <= 1
    assert level.held == stock - level.available
    for refusal in results:
        if isinstance(refusal, SoldOut):
            assert refusal.available < refusal.requested  # a true sold-out, nothing hidden
    assert lent(store, event.id) == 0
    assert_consistent(store, event)


def test_one_customer_firing_at_once_gets_exactly_the_limit_from_other_buckets(
    store: RedisStorage,
) -> None:
    limit, stock = 3, 40
    event = sale_event(stock={"phone-red": stock}, sku_limit=limit)
    sales = Sales(store, clock=ManualClock(NOW))
    sales.open(event)
    n = store.buckets
    greedy, *neighbours = customers(1, n, 40)
    share = shares(stock, n)[1]
    for who in neighbours[:share]:  # the greedy customer's own bucket is empty
        sales.reserve(event.id, who, "CN", {"phone-red": 1})
    assert per_bucket(store, event.id, "phone-red")[1][1] == 0
    results = together(
        100, lambda i: sales.reserve(event.id, greedy, "CN", {"phone-red": 1}, key=f"k{i}")
    )
    assert reasons(results) == {"ok": limit, "limit-exceeded": 100 - limit}
    assert units_by_customer(list(store.holds(event.id)))[(greedy, "phone-red")] == limit
    assert store.stock(event.id)["phone-red"].held == share + limit
    assert_consistent(store, event)


def test_a_refusal_after_balancing_changes_nothing_observable(store: RedisStorage) -> None:
    event = sale_event(stock={"phone-red": 8})
    sales = Sales(store, clock=ManualClock(NOW))
    sales.open(event)
    n = store.buckets
    [buyer] = customers(0, n, 1)
    before = snapshot(store, event.id)
    with pytest.raises(SoldOut) as caught:
        sales.reserve(event.id, buyer, "CN", {"phone-red": 9})
    assert (caught.value.requested, caught.value.available) == (9, 8)
    assert snapshot(store, event.id) == before
    hold = sales.reserve(event.id, buyer, "CN", {"phone-red": 8})  # every bucket's units
    assert hold.units == 8
    assert per_bucket(store, event.id, "phone-red")[0] == (8, 0, 8, 0)
    assert_consistent(store, event)


def _lend(store: RedisStorage, event: str, frm: int, tid: str, to: int, units: int) -> int:
    """Step 1 of a transfer alone, as a client that dies right after it would leave it."""
    [answer] = store._evalsha([("lend", [store._base(event, frm)], [tid, to, "phone-red", units])])
    return int(answer[0])


def _borrow(store: RedisStorage, event: str, to: int, tid: str, units: int) -> int:
    [answer] = store._evalsha([("borrow", [store._base(event, to)], [tid, "phone-red", units])])
    return int(answer[0])


def test_a_crash_after_lending_leaves_units_in_transit_counted_and_opening_completes_it(
    store: RedisStorage, event: SaleEvent
) -> None:
    before = per_bucket(store, event.id, "phone-red")
    assert _lend(store, event.id, 1, "t1", 0, 2) == 2
    # In transit: off bucket 1, not yet in bucket 0, and still counted as available.
    level = store.stock(event.id)["phone-red"]
    assert (level.allocation, level.available, level.held) == (12, 12, 0)
    assert per_bucket(store, event.id, "phone-red")[1][0] == before[1][0] - 2
    assert_consistent(store, event)
    url = _replace_option(redis_url_of(store), buckets=str(store.buckets))
    with from_url(url) as reopened:  # opening a store completes the transfer
        assert isinstance(reopened, RedisStorage)
        assert lent(reopened, event.id) == 0
        after = per_bucket(reopened, event.id, "phone-red")
        assert after[0][0] == before[0][0] + 2
        assert after[1][0] == before[1][0] - 2
        # Completed exactly once: a second recovery and a late step 2 add nothing.
        assert reopened._recover(event.id, reopened.buckets) == 0
        assert _borrow(reopened, event.id, 0, "t1", 2) == 0
        assert per_bucket(reopened, event.id, "phone-red") == after
        assert reopened.stock(event.id)["phone-red"].available == 12
        assert_consistent(reopened, event)


def test_the_expiry_sweep_completes_a_transfer_cut_between_its_steps(
    store: RedisStorage, event: SaleEvent
) -> None:
    before = per_bucket(store, event.id, "phone-red")
    assert _lend(store, event.id, 2, "t2", 1, 3) == 3
    assert _borrow(store, event.id, 1, "t2", 3) == 1  # applied, the record not yet cleared
    assert store.stock(event.id)["phone-red"].available == 12  # not counted twice
    assert _lend(store, event.id, 0, "t3", 1, 1) == 1  # and one cut right after step 1
    assert store.stock(event.id)["phone-red"].available == 12
    assert store.expire_due(event.id, NOW) == []
    assert lent(store, event.id) == 0
    after = per_bucket(store, event.id, "phone-red")
    assert after[1][0] == before[1][0] + 4
    assert after[2][0] == before[2][0] - 3
    assert after[0][0] == before[0][0] - 1
    assert sum(a for a, *_ in after) == 12
    assert_consistent(store, event)


def test_a_reservation_needing_units_in_transit_gets_them(
    store: RedisStorage, sales: Sales, event: SaleEvent
) -> None:
    [buyer] = customers(0, store.buckets, 1)
    assert _lend(store, event.id, 1, "t4", 2, 3) == 3
    hold = sales.reserve(event.id, buyer, "CN", {"phone-red": 12})
    assert hold.units == 12
    assert lent(store, event.id) == 0
    assert_consistent(store, event)


def test_a_hold_id_taken_in_another_bucket_is_refused(
    store: RedisStorage, sales: Sales, event: SaleEvent
) -> None:
    [alice] = customers(0, store.buckets, 1)
    [bob] = customers(1, store.buckets, 1)
    first = sales.reserve(event.id, alice, "CN", {"phone-red": 1}, key="k1")
    assert_reused_hold_id_refused(store, sales, event.id, first, bob, {"phone-red": 2})


def test_an_event_keeps_the_bucket_count_it_was_set_up_with(
    store: RedisStorage, sales: Sales, event: SaleEvent
) -> None:
    held = [sales.reserve(event.id, f"c{i}", "CN", {"phone-red": 1}, key="k") for i in range(6)]
    one_url = _replace_option(redis_url_of(store), buckets="1")
    with from_url(one_url) as plain:
        assert isinstance(plain, RedisStorage)
        assert plain.buckets == 1
        again = Sales(plain, clock=ManualClock(NOW))
        again.open(event)  # setup again: idempotent, whatever the store's own option says
        assert plain.stock(event.id) == store.stock(event.id)
        # The same customer and key reach the same bucket: the first hold comes back.
        assert again.reserve(event.id, "c3", "CN", {"phone-red": 1}, key="k") == held[3]
        assert plain.hold(held[0].id) == held[0]
        assert_consistent(plain, event)


def redis_url_of(store: RedisStorage) -> str:
    """The connection URL of ``store`` (from its client), with its prefix."""
    kwargs: dict[str, Any]
    if store.cluster:
        node = store._r.get_default_node()
        return f"redis+cluster://{node.host}:{node.port}?prefix={store.prefix}"
    kwargs = store._r.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}?prefix={store.prefix}"


def _replace_option(url: str, **options: str) -> str:
    base, _, query = url.partition("?")
    kept = {k: v for k, v in (p.split("=", 1) for p in query.split("&") if p)}
    kept.update(options)
    return base + "?" + "&".join(f"{k}={v}" for k, v in kept.items())


@pytest.mark.redis_cluster
def test_the_buckets_of_a_hot_event_lie_in_different_slots(tmp_path: Path) -> None:
    store = REDIS_CLUSTER_BUCKETS.open(tmp_path)
    assert isinstance(store, RedisStorage)
    with store:
        event = sale_event(stock={"phone-red": 30})
        sales = Sales(store, clock=ManualClock(NOW))
        sales.open(event)
        for i in range(30):
            sales.reserve(event.id, f"c{i}", "CN", {"phone-red": 1})
        slots: dict[int, set[str]] = {}
        for key in store._r.scan_iter(match=store.prefix + "*", count=1000, target_nodes="all"):
            if "{" in key:  # not the hold index, the payment ids, the event ids
                slots.setdefault(int(store._r.keyslot(key)), set()).add(key.split("}")[0] + "}")
        assert len(slots) == store.buckets == 3
        assert all(len(tags) == 1 for tags in slots.values())  # one bucket per slot
        bases = {store._base(event.id, b) for b in range(3)}
        assert {next(iter(tags)) for tags in slots.values()} == bases
        nodes = {store._r.get_node_from_key(base).name for base in bases}
        assert len(nodes) >= 2  # the hot event's load is spread over several masters


@pytest.mark.redis
@pytest.mark.parametrize("bad", ["0", "abc", "65", "-2", ""])
def test_a_bad_bucket_count_is_refused_before_anything_is_written(tmp_path: Path, bad: str) -> None:
    url = redis_url(tmp_path) + f"&buckets={bad}"
    with pytest.raises(InvalidRequest) as caught:
        from_url(url)
    assert caught.value.field == "buckets"


@pytest.mark.redis
def test_the_combined_backend_refuses_buckets(tmp_path: Path) -> None:
    from tests.contract._servers import redis_postgres_url

    with pytest.raises(InvalidRequest) as caught:
        from_url(redis_postgres_url(tmp_path).replace("?", "?buckets=2&", 1))
    assert caught.value.field == "buckets"


@pytest.mark.redis
def test_one_bucket_keeps_todays_key_layout(tmp_path: Path) -> None:
    import redis

    from tests.contract._servers import REDIS, drop_redis_prefix

    url = redis_url(tmp_path) + "&buckets=1"
    store = from_url(url)
    try:
        event = sale_event(stock={"phone-red": 5})
        sales = Sales(store, clock=ManualClock(NOW))
        sales.open(event)
        hold = sales.reserve(event.id, "alice", "CN", {"phone-red": 1})
        sales.pay(hold.id, "p1")
        assert isinstance(store, RedisStorage)
        client = redis.Redis.from_url(REDIS, decode_responses=True)
        keys = set(client.scan_iter(match=store.prefix + "*"))
        client.close()
        outside = {"events", "layout", f"hx:{hold.id}", "px:p1", "px-bound"}  # other slots
        rest = {k[len(store.prefix) :] for k in keys} - outside
        assert {k.split(":")[0] for k in rest} == {"{fest}"}  # one hash tag, one slot
        assert {k.split(":", 1)[1] for k in rest} >= {"def", "stock", "idem", "ou", "lu"}
        assert not {k for k in rest if k.endswith((":nb", ":xfer", ":xin", ":xv"))}
    finally:
        store.close()
        drop_redis_prefix(url)
