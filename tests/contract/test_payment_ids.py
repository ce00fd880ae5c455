"""A payment id settles at most one hold, forever, on every backend (guarantee 3).

The payment id is the idempotency key of a payment: the same id on the same hold again
returns the first result; the same id on another hold is an ``IdempotencyConflict`` (key:
the payment id) and changes nothing, whatever became of the first hold since (refunded
included). A refused payment binds nothing. The concurrency test is in
test_concurrency.py, the state machine's rule in test_state_machine.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from lampo.domain.errors import HoldExpired, IdempotencyConflict, InvalidRequest, Unavailable
from lampo.domain.holds import Hold, HoldState, PayRequest
from lampo.domain.money import Money
from lampo.domain.totals import recount
from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from lampo.storage import Storage, from_url
from lampo.storage.postgres import PostgresStorage
from lampo.storage.redis import RedisStorage
from lampo.storage.redis.codec import _untag
from lampo.storage.sql.migrations import migrations
from tests.contract.conftest import (
    POSTGRES,
    REDIS,
    REDIS_BUCKETS,
    REDIS_CLUSTER,
    REDIS_CLUSTER_BUCKETS,
    Backend,
    assert_consistent,
    snapshot,
)
from tests.contract.test_concurrency import reasons, together
from tests.factories import NOW, sale_event

DATA = Path(__file__).parent / "data"

EVENT = sale_event(stock={"phone-red": 10, "tv-55": 3}, hold_seconds=600)


@pytest.fixture
def opened(sales: Sales) -> Sales:
    sales.open(EVENT)
    return sales


def two_holds(sales: Sales) -> tuple[Hold, Hold]:
    """Two buyers' holds (two customers: on a bucketed store, maybe two buckets)."""
    first = sales.reserve(EVENT.id, "alice", "CN", {"phone-red": 1})
    second = sales.reserve(EVENT.id, "bruno", "CN", {"phone-red": 2, "tv-55": 1})
    return first, second


def assert_refused_as_used(
    store: Storage, sales: Sales, hold: Hold, payment_id: str, amount: Money | None = None
) -> None:
    """Paying ``hold`` with ``payment_id`` is an ``IdempotencyConflict`` that names only
    the payment id (nothing of the hold it settled) and changes nothing."""
    before = snapshot(store, EVENT.id)
    with pytest.raises(IdempotencyConflict) as caught:
        sales.pay(hold.id, payment_id, amount)
    assert caught.value.detail() == {"key": payment_id}
    assert snapshot(store, EVENT.id) == before
    assert store.hold(hold.id) == hold


def test_a_payment_id_that_paid_one_hold_is_refused_on_another_and_changes_nothing(
    opened: Sales, store: Storage
) -> None:
    first, second = two_holds(opened)
    paid = opened.pay(first.id, "psp-1")
    assert_refused_as_used(store, opened, second, "psp-1")
    assert_refused_as_used(store, opened, second, "psp-1", second.amount)  # the amount is right
    assert opened.pay(first.id, "psp-1") == paid  # the first hold's own retry: the first result
    assert opened.pay(second.id, "psp-2").state is HoldState.PAID  # its own payment id pays it
    assert_consistent(store, EVENT)


def test_a_payment_id_retried_with_another_amount_is_a_conflict_and_changes_nothing(
    opened: Sales, store: Storage
) -> None:
    first, _ = two_holds(opened)
    paid = opened.pay(first.id, "psp-1", first.amount)
    wrong = Money(first.amount.amount + 1, first.amount.currency)
    assert_refused_as_used(store, opened, paid, "psp-1", wrong)
    assert opened.pay(first.id, "psp-1", first.amount) == paid  # the same content: the order
    assert opened.pay(first.id, "psp-1") == paid  # no amount stated: nothing to differ
    assert_consistent(store, EVENT)


def test_a_refunded_payment_id_stays_bound_to_its_order(
    opened: Sales, store: Storage, clock: ManualClock
) -> None:
    first, second = two_holds(opened)
    opened.pay(first.id, "psp-1")
    clock.advance(10)
    refunded = opened.refund(first.id)
    assert_refused_as_used(store, opened, second, "psp-1")
    assert opened.pay(first.id, "psp-1") == refunded  # a late retry gets the order as it is
    assert_consistent(store, EVENT)


def test_a_payment_id_stays_bound_after_its_first_hold_expired_elsewhere(
    opened: Sales, store: Storage, clock: ManualClock
) -> None:
    first, second = two_holds(opened)
    opened.pay(first.id, "psp-1")
    clock.advance(EVENT.hold_seconds)
    opened.expire_due(EVENT.id)
    expired = store.hold(second.id)
    assert expired is not None
    assert expired.state is HoldState.EXPIRED
    assert_refused_as_used(store, opened, expired, "psp-1")  # not hold-expired: used is first


def test_a_refused_payment_binds_nothing(opened: Sales, store: Storage, clock: ManualClock) -> None:
    first, second = two_holds(opened)
    third = opened.reserve(EVENT.id, "carla", "IN", {"phone-red": 1})
    with pytest.raises(InvalidRequest):
        opened.pay(first.id, "psp-1", Money(1, "CNY"))  # the wrong amount
    assert opened.pay(second.id, "psp-1").payment_id == "psp-1"
    clock.advance(EVENT.hold_seconds)
    with pytest.raises(HoldExpired):
        opened.pay(first.id, "psp-2")
    clock.set(NOW)
    assert opened.pay(third.id, "psp-2").payment_id == "psp-2"
    assert_consistent(store, EVENT)


def test_in_one_batch_a_payment_id_pays_one_hold_only(opened: Sales, store: Storage) -> None:
    """A batch runs as some serial order of its requests (on Redis, not always the list's:
    docs/storage-redis-postgres.md), so each answer is checked against the order in which
    the payment id went to the hold that ended paid."""
    first, second = two_holds(opened)
    wrong = Money(1, "CNY")
    requests = [
        PayRequest(first.id, "psp-1", NOW, wrong),
        PayRequest(second.id, "psp-1", NOW),
        PayRequest(first.id, "psp-1", NOW),
        PayRequest(second.id, "psp-1", NOW),
    ]
    results = store.pay(requests)
    paid = [h for h in (store.hold(first.id), store.hold(second.id)) if h and h.is_order]
    assert len(paid) == 1
    [order] = paid
    assert order.payment_id == "psp-1"
    for request, result in zip(requests, results, strict=True):
        if request.hold_id == order.id and request.amount is None:
            assert result == order
        elif request.hold_id == order.id:  # the wrong amount, before or after the payment
            assert isinstance(result, InvalidRequest) or result == order
        elif request.amount is None:
            assert isinstance(result, IdempotencyConflict)
        else:  # the wrong amount on the hold left unpaid, before or after the payment
            assert isinstance(result, InvalidRequest | IdempotencyConflict)
    assert store.totals(EVENT.id).order_count == 1
    assert_consistent(store, EVENT)


def test_a_refused_payment_in_a_batch_binds_nothing(opened: Sales, store: Storage) -> None:
    first, second = two_holds(opened)
    refused, paid = store.pay(
        [PayRequest(first.id, "psp-1", NOW, Money(1, "CNY")), PayRequest(second.id, "psp-1", NOW)]
    )
    assert isinstance(refused, InvalidRequest | IdempotencyConflict)  # as it ran before or after
    assert isinstance(paid, Hold)
    assert (paid.id, paid.payment_id) == (second.id, "psp-1")
    assert store.hold(first.id) == first
    assert_consistent(store, EVENT)


def test_a_store_sale_pays_with_an_id_of_its_own_hold(opened: Sales, store: Storage) -> None:
    # Two tills (or one, for two customers) may use the same key: each sale is its own hold.
    one = opened.sell_in_store(EVENT.id, "mi-home-1", "walk-in-1", "CN", {"phone-red": 1}, "t-1")
    two = opened.sell_in_store(EVENT.id, "mi-home-2", "walk-in-2", "CN", {"phone-red": 1}, "t-1")
    again = opened.sell_in_store(EVENT.id, "mi-home-1", "walk-in-1", "CN", {"phone-red": 1}, "t-1")
    assert {one.state, two.state} == {HoldState.PAID}
    assert one.id != two.id
    assert one.payment_id != two.payment_id
    assert again == one
    assert store.stock(EVENT.id)["phone-red"].sold == 2
    assert_consistent(store, EVENT)


def test_a_retried_store_sale_finds_its_order_whatever_payment_id_paid_it(
    opened: Sales, store: Storage
) -> None:
    """A sale whose hold an earlier lampo paid under ``store:<key>`` sells once on retry."""
    from lampo.domain.market import Channel, ChannelKind

    hold = opened.reserve(
        EVENT.id, "walk-in-3", "CN", {"tv-55": 1}, Channel(ChannelKind.STORE, "s1"), "t-9"
    )
    paid = opened.pay(hold.id, "store:t-9")
    again = opened.sell_in_store(EVENT.id, "s1", "walk-in-3", "CN", {"tv-55": 1}, "t-9")
    assert again == paid
    assert store.stock(EVENT.id)["tv-55"].sold == 1


def test_a_late_retry_of_the_first_payment_is_answered_even_long_after(
    opened: Sales, store: Storage, clock: ManualClock
) -> None:
    first, second = two_holds(opened)
    paid = opened.pay(first.id, "psp-1")
    clock.advance(EVENT.hold_seconds * 3)
    assert opened.pay(first.id, "psp-1") == paid
    clock.advance(2 * 86_400)
    assert_refused_as_used(store, opened, second, "psp-1")


# -- stores written before payment ids were bound -----------------------------------------------


@pytest.mark.sqlite
def test_a_sqlite_file_of_schema_1_is_upgraded_and_its_first_payment_keeps_the_id(
    tmp_path: Path,
) -> None:
    """The upgrade on a file written by schema 1 (data/sqlite-schema-1.sql: psp-1 paid
    alice's hold, then bruno's; psp-2 paid carla's, refunded; dario's is held)."""
    path = tmp_path / "old.db"
    made = sqlite3.connect(path)
    made.executescript((DATA / "sqlite-schema-1.sql").read_text(encoding="utf-8"))
    made.close()
    store = from_url(f"sqlite:///{path}")
    try:
        before = snapshot(store, "fest")
        holds = {h.customer: h for h in store.holds("fest")}
        sales = Sales(store, clock=ManualClock(NOW))
        assert sales.pay(holds["alice"].id, "psp-1") == holds["alice"]
        assert sales.pay(holds["bruno"].id, "psp-1") == holds["bruno"]  # as schema 1 left it
        assert sales.pay(holds["carla"].id, "psp-2") == holds["carla"]
        assert snapshot(store, "fest") == before
        for used in ("psp-1", "psp-2"):
            with pytest.raises(IdempotencyConflict):
                sales.pay(holds["dario"].id, used)
        assert snapshot(store, "fest") == before
        assert sales.pay(holds["dario"].id, "psp-3").state is HoldState.PAID
    finally:
        store.close()
    read = sqlite3.connect(path)
    try:
        newest = max(v for v, _, _ in migrations("sqlite"))  # upgraded through every one
        assert read.execute("SELECT value FROM meta").fetchall() == [(str(newest),)]
        assert dict(read.execute("SELECT payment_id, hold_id FROM payments")) == {
            "psp-1": holds["alice"].id,
            "psp-2": holds["carla"].id,
            "psp-3": holds["dario"].id,
        }
    finally:
        read.close()
    with from_url(f"sqlite:///{path}") as again:  # a second opening upgrades nothing
        assert again.hold(holds["dario"].id) is not None


REDIS_STORES = [
    pytest.param(REDIS, id="redis", marks=pytest.mark.redis),
    pytest.param(REDIS_CLUSTER, id="redis-cluster", marks=pytest.mark.redis_cluster),
    pytest.param(REDIS_BUCKETS, id="redis-buckets", marks=pytest.mark.redis),
    pytest.param(
        REDIS_CLUSTER_BUCKETS, id="redis-cluster-buckets", marks=pytest.mark.redis_cluster
    ),
]


@pytest.mark.parametrize("spec", REDIS_STORES)
def test_redis_orders_paid_before_payment_ids_had_keys_get_them_on_opening(
    spec: Backend, tmp_path: Path
) -> None:
    url = spec.fresh_url(tmp_path)
    store = spec.connect(url)
    assert isinstance(store, RedisStorage)
    with store:
        clock = ManualClock(NOW)
        sales = Sales(store, clock=clock)
        sales.open(EVENT)
        alice, bruno = two_holds(sales)
        dario = sales.reserve(EVENT.id, "dario", "CN", {"tv-55": 1})
        sales.pay(alice.id, "psp-1")
        clock.advance(5)
        sales.pay(bruno.id, "psp-x")
        # What an earlier lampo left: no payment id keys, and psp-1 paid bruno's hold too.
        event, bucket = _untag(store._r.get(store._index(bruno.id)))
        store._r.hset(f"{store._base(event, bucket)}:h:{bruno.id}", "p", "psp-1")
        for key in (store._payment_key("psp-1"), store._payment_key("psp-x")):
            store._r.delete(key)
        store._r.delete(store.prefix + "px-bound")
    with spec.connect(url) as opened:
        assert isinstance(opened, RedisStorage)
        sales = Sales(opened, clock=ManualClock(NOW))
        before = snapshot(opened, EVENT.id)
        assert sales.pay(bruno.id, "psp-1").id == bruno.id  # its own retry: as it is
        with pytest.raises(IdempotencyConflict):
            sales.pay(dario.id, "psp-1")
        assert snapshot(opened, EVENT.id) == before
        assert opened._r.hget(opened._payment_key("psp-1"), "hold") == alice.id  # first paid
        assert opened._r.exists(opened.prefix + "px-bound")


# -- the crash points of a payment on a Redis Cluster --------------------------------------------

CLUSTERS = REDIS_STORES[1::2]


@pytest.fixture(params=CLUSTERS)
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisStorage]:
    spec: Backend = request.param
    store = spec.open(tmp_path)
    assert isinstance(store, RedisStorage)
    assert store.cluster
    try:
        yield store
    finally:
        store.close()


def cut_claim(store: RedisStorage, payment_id: str, hold_id: str) -> None:
    """What a crash right after the claim (or after a refusal, before its end) leaves."""
    [answer] = store._evalsha([("claim", [store._payment_key(payment_id)], ["claim", hold_id, ""])])
    assert answer == ["ok"]


def test_a_claim_cut_before_its_payment_keeps_the_id_busy_and_its_retry_pays(
    cluster: RedisStorage,
) -> None:
    sales = Sales(cluster, clock=ManualClock(NOW))
    sales.open(EVENT)
    first, second = two_holds(sales)
    cut_claim(cluster, "psp-1", first.id)
    before = snapshot(cluster, EVENT.id)
    with pytest.raises(Unavailable):  # first may yet be paid with it: retry later
        sales.pay(second.id, "psp-1")
    assert snapshot(cluster, EVENT.id) == before
    assert sales.pay(first.id, "psp-1").state is HoldState.PAID  # the cut payment's retry
    assert_refused_as_used(cluster, sales, second, "psp-1")
    assert cluster._r.hget(cluster._payment_key("psp-1"), "hold") == first.id


@pytest.mark.parametrize("end", ["released", "paid-otherwise", "expired"])
def test_a_claim_cut_for_a_hold_that_ended_unpaid_by_it_is_taken_over(
    cluster: RedisStorage, end: str
) -> None:
    clock = ManualClock(NOW)
    sales = Sales(cluster, clock=clock)
    sales.open(EVENT)
    first = sales.reserve(EVENT.id, "alice", "CN", {"phone-red": 1})
    cut_claim(cluster, "psp-1", first.id)
    if end == "released":
        sales.release(first.id)
    elif end == "paid-otherwise":
        sales.pay(first.id, "psp-9")
    else:
        clock.advance(EVENT.hold_seconds)
        assert [h.id for h in sales.expire_due(EVENT.id)] == [first.id]
    second = sales.reserve(EVENT.id, "bruno", "CN", {"phone-red": 1})
    assert sales.pay(second.id, "psp-1").payment_id == "psp-1"
    assert_consistent(cluster, EVENT)


def test_a_claim_is_never_taken_from_the_hold_its_id_paid(cluster: RedisStorage) -> None:
    sales = Sales(cluster, clock=ManualClock(NOW))
    sales.open(EVENT)
    first, second = two_holds(sales)
    sales.pay(first.id, "psp-1")
    key = cluster._payment_key("psp-1")
    assert cluster._r.hgetall(key) == {"hold": first.id, "n": "1"}  # no step after the script
    cluster._r.hset(key, "n", "0")  # even with no attempt counted, the paid hold decides
    assert_refused_as_used(cluster, sales, second, "psp-1")
    assert cluster._r.hget(key, "paid") == "1"  # found paid: said so on the key from now on
    assert_refused_as_used(cluster, sales, second, "psp-1")


def test_a_claim_whose_attempts_were_all_refused_is_taken_over_unless_one_came_meanwhile(
    cluster: RedisStorage,
) -> None:
    sales = Sales(cluster, clock=ManualClock(NOW))
    sales.open(EVENT)
    first, second = two_holds(sales)
    with pytest.raises(InvalidRequest):
        sales.pay(first.id, "psp-1", Money(1, "CNY"))
    key = [cluster._payment_key("psp-1")]
    assert cluster._r.hgetall(key[0]) == {"hold": first.id, "n": "0"}
    # A client found first held with no attempt counted, and takes the claim over; but an
    # attempt for first claimed it in between: the take-over is refused, nothing written.
    cut_claim(cluster, "psp-1", first.id)
    [answer] = cluster._evalsha([("claim", key, ["claim", second.id, first.id, "0"])])
    assert answer == ["other", first.id, "1"]
    assert cluster._r.hgetall(key[0]) == {"hold": first.id, "n": "1"}
    with pytest.raises(Unavailable):  # that attempt may yet pay first
        sales.pay(second.id, "psp-1")
    assert sales.pay(first.id, "psp-1").payment_id == "psp-1"
    assert_refused_as_used(cluster, sales, second, "psp-1")


# -- the record of orders (PostgreSQL, the ledger of redis+postgresql://) ------------------------


@pytest.mark.postgres
def test_the_record_refuses_a_second_order_of_one_payment_id_even_two_at_once(
    tmp_path: Path,
) -> None:
    """``PostgresStorage.record`` (orders decided by a live store) checks the payment id,
    and two transactions recording orders of one new id at once meet at the key."""
    stores = POSTGRES.open_shared(tmp_path, 2)
    ledgers = [store for store in stores if isinstance(store, PostgresStorage)]
    try:
        assert len(ledgers) == 2
        for ledger in ledgers:
            ledger.setup(EVENT)
        live = Sales(from_url("memory://"), clock=ManualClock(NOW))  # holds to record
        live.open(EVENT)
        holds = [live.reserve(EVENT.id, f"c{i}", "CN", {"phone-red": 1}) for i in range(8)]
        record = ledgers[0].record
        assert record([holds[0].pay("psp-0", NOW)])[0].state is HoldState.PAID
        before = snapshot(ledgers[0], EVENT.id)
        [refused] = record([holds[1].pay("psp-0", NOW)])
        assert refused == IdempotencyConflict("psp-0")
        assert snapshot(ledgers[0], EVENT.id) == before
        # Holds 2..7 in pairs, each pair one new payment id, both recorded at once.
        orders = [hold.pay(f"psp-{1 + i // 2}", NOW) for i, hold in enumerate(holds[2:])]
        results = together(
            len(orders),
            lambda i: ledgers[i % 2].record([orders[i]])[0],
        )
        assert sorted(reasons(results).items()) == [("idempotency-conflict", 3), ("ok", 3)]
        recorded = list(ledgers[0].holds(EVENT.id))
        assert sorted(h.payment_id for h in recorded) == ["psp-0", "psp-1", "psp-2", "psp-3"]
        assert ledgers[0].totals(EVENT.id) == recount(recorded)
    finally:
        for store in stores:
            store.close()
