"""A payment id settles at most one hold, forever, on every backend (guarantee 3).

The payment id is the idempotency key of a payment: the same id on the same hold again
returns the first result; the same id on another hold is an ``IdempotencyConflict`` (key:
the payment id) and changes nothing, whatever became of the first hold since (refunded
included). A refused payment binds nothing. The concurrency test is in
test_concurrency.py, the state machine's rule in test_state_machine.py.
"""

from __future__ import annotations

import pytest

from lampo.domain.errors import HoldExpired, IdempotencyConflict, InvalidRequest
from lampo.domain.holds import Hold, HoldState, PayRequest
from lampo.domain.money import Money
from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from lampo.storage import Storage
from tests.contract.conftest import assert_consistent, snapshot
from tests.factories import NOW, sale_event

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
