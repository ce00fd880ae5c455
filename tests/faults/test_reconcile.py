"""``lampo reconcile`` repairs each way the live store and the record can disagree, and
``--check`` reports them without writing. Private redis-server and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from lampo.cli import main
from lampo.domain.errors import IdempotencyConflict, InvalidRequest
from lampo.domain.holds import HoldState, PayRequest
from lampo.services.clock import ManualClock
from lampo.services.reconcile import reconcile
from lampo.services.sales import Sales
from lampo.storage import from_url
from lampo.storage.combined import RedisPostgresStorage
from tests.contract.conftest import assert_consistent
from tests.factories import NOW, sale_event
from tests.faults._instances import RedisServer

pytestmark = [pytest.mark.faults, pytest.mark.redis_postgres]

LATER = NOW + timedelta(minutes=1)


@pytest.fixture
def sales(store: RedisPostgresStorage) -> Sales:
    return Sales(store, clock=ManualClock(NOW))


def test_a_payment_decided_live_but_never_recorded_is_rolled_forward_onto_the_record(
    url: str, store: RedisPostgresStorage, sales: Sales
) -> None:
    event = sale_event(stock={"phone-red": 5})
    sales.open(event)
    hold = sales.reserve(event.id, "c1", "CN", {"phone-red": 2})
    store.live.pay([PayRequest(hold.id, "p1", NOW)])  # as if lampo died before recording

    assert main(["reconcile", "--storage", url, "--check"]) == 1
    assert store.ledger.hold(hold.id) is None  # --check wrote nothing
    assert main(["reconcile", "--storage", url]) == 0
    assert main(["reconcile", "--storage", url, "--check"]) == 0
    recorded = store.ledger.hold(hold.id)
    assert recorded is not None
    assert (recorded.state, recorded.payment_id) == (HoldState.PAID, "p1")
    assert store.ledger.totals(event.id) == store.totals(event.id)


def test_a_refund_and_a_payment_on_record_are_applied_live(
    store: RedisPostgresStorage, sales: Sales
) -> None:
    event = sale_event(stock={"phone-red": 5})
    sales.open(event)
    refunded = sales.pay(sales.reserve(event.id, "c1", "CN", {"phone-red": 1}).id, "p1")
    held = sales.reserve(event.id, "c2", "CN", {"phone-red": 1})
    # As if Redis lost the last writes: the record has a refund and a payment it lacks.
    store.ledger.record([refunded.refund(LATER), held.pay("p2", NOW)])

    found = reconcile(store.live, store.ledger)
    assert sorted(d.kind for d in found.differences) == ["order-held-live", "refund-not-live"]
    assert found.unresolved == []
    live_refund, live_pay = store.hold(refunded.id), store.hold(held.id)
    assert live_refund is not None
    assert (live_refund.state, live_refund.refunded_at) == (HoldState.REFUNDED, LATER)
    assert live_pay is not None
    assert (live_pay.state, live_pay.payment_id) == (HoldState.PAID, "p2")
    assert_consistent(store, event)
    assert store.ledger.totals(event.id) == store.totals(event.id)
    assert reconcile(store.live, store.ledger, check=True).differences == []


def test_a_recorded_order_takes_back_its_units_from_unpaid_holds_after_a_redis_loss(
    store: RedisPostgresStorage, sales: Sales, redis_server: RedisServer
) -> None:
    event = sale_event(stock={"phone-red": 3})
    sales.open(event)
    orders = [
        sales.pay(sales.reserve(event.id, f"c{i}", "CN", {"phone-red": 1}).id, f"p{i}")
        for i in range(2)
    ]
    redis_server.kill()
    redis_server.wipe()
    redis_server.start()
    # Sales went on from the empty Redis before anyone reconciled: all 3 units held.
    store.live.setup(event)
    clock = sales.clock
    assert isinstance(clock, ManualClock)
    unpaid = []
    for i in range(3):
        clock.advance(1)
        unpaid.append(sales.reserve(event.id, f"late{i}", "CN", {"phone-red": 1}))

    found = reconcile(store.live, store.ledger)
    assert found.unresolved == []
    released = sorted(d.subject for d in found.differences if d.kind == "hold-released")
    assert released == sorted(h.id for h in unpaid[1:])  # the newest gave way
    for order in orders:
        live = store.hold(order.id)
        assert live is not None
        assert (live.state, live.payment_id) == (order.state, order.payment_id)
    level = store.stock(event.id)["phone-red"]
    assert (level.available, level.held, level.sold) == (0, 1, 2)
    assert_consistent(store, event)
    assert reconcile(store.live, store.ledger, check=True).differences == []


def test_an_update_that_went_live_but_not_on_record_is_rolled_forward(
    store: RedisPostgresStorage, sales: Sales
) -> None:
    event = sale_event(stock={"phone-red": 5})
    sales.open(event)
    sales.reserve(event.id, "c1", "CN", {"phone-red": 2})
    offers = {"phone-red": replace(event.offers["phone-red"], allocation=9)}
    grown = replace(event, offers=offers)
    store.live.update(grown)  # as if lampo died before the record took the update

    found = reconcile(store.live, store.ledger, check=True)
    assert [d.kind for d in found.differences] == ["definition-not-on-record"]
    assert store.ledger.load_events() == [event]  # --check wrote nothing
    assert reconcile(store.live, store.ledger).unresolved == []
    assert store.ledger.load_events() == [grown]
    assert store.ledger.stock(event.id)["phone-red"].allocation == 9
    assert reconcile(store.live, store.ledger, check=True).differences == []
    store.update(grown)  # the admin's retry: both have it, nothing changes
    assert_consistent(store, grown)


def test_a_payment_id_the_record_holds_for_another_order_is_a_conflict_reconcile_reports(
    url: str, store: RedisPostgresStorage, sales: Sales
) -> None:
    event = sale_event(stock={"phone-red": 5})
    sales.open(event)
    first = sales.reserve(event.id, "c1", "CN", {"phone-red": 1})
    second = sales.reserve(event.id, "c2", "CN", {"phone-red": 1})
    sales.pay(first.id, "p1")
    store.live._r.delete(store.live._payment_key("p1"))  # Redis lost the key (no AOF)
    with pytest.raises(IdempotencyConflict):  # Redis paid it; the record refuses it
        sales.pay(second.id, "p1")
    assert store.ledger.hold(second.id) is None
    assert store.pending == []  # a refusal, not an outage: nothing to roll forward

    found = reconcile(store.live, store.ledger)
    [conflict] = [d for d in found.unresolved if d.kind == "order-not-on-record"]
    assert conflict.subject == second.id
    assert "'p1'" in conflict.detail
    assert main(["reconcile", "--storage", url, "--check"]) == 1  # a person must refund one
    recorded = store.ledger.hold(first.id)
    assert recorded is not None
    assert recorded.payment_id == "p1"


def test_a_combined_url_without_its_postgresql_part_is_refused_clearly() -> None:
    with pytest.raises(InvalidRequest, match="pg="):
        from_url("redis+postgresql://127.0.0.1:6379/0?prefix=x:")
