"""Redis dies under a spike of buyers; ``reconcile`` brings back what the record knows.

Private redis-server (AOF on, ``appendfsync everysec``) and PostgreSQL instances; see
docs/storage-redis-postgres.md for the order of writes these tests lean on.
"""

from __future__ import annotations

import pytest

from lampo.domain.event import SaleEvent
from lampo.domain.holds import HoldState
from lampo.domain.totals import recount
from lampo.services.clock import ManualClock
from lampo.services.reconcile import reconcile
from lampo.services.sales import Sales
from lampo.storage.combined import RedisPostgresStorage
from tests.contract.conftest import assert_consistent
from tests.factories import NOW, sale_event
from tests.faults._instances import RedisServer, wait_until
from tests.faults._spike import Spike

pytestmark = [pytest.mark.faults, pytest.mark.redis_postgres]

STOCK = 300
BUYERS = 12


def spike(store: RedisPostgresStorage) -> tuple[Spike, SaleEvent]:
    event = sale_event(stock={"phone-red": STOCK}, sku_limit=2, hold_seconds=3600)
    sales = Sales(store, clock=ManualClock(NOW))
    sales.open(event)
    return Spike(sales, event.id, "phone-red", BUYERS), event


def assert_nothing_acknowledged_is_lost(
    store: RedisPostgresStorage, event: SaleEvent, acked: dict[str, str]
) -> None:
    assert acked, "the spike acknowledged no payment: nothing was tested"
    for hold_id, payment_id in acked.items():
        for side in (store.live, store.ledger):
            hold = side.hold(hold_id)
            assert hold is not None, (side, hold_id)
            assert (hold.state, hold.payment_id) == (HoldState.PAID, payment_id), (side, hold)
    level = store.stock(event.id)["phone-red"]
    assert level.conserved, level
    assert level.held + level.sold <= STOCK  # zero oversell
    assert_consistent(store, event)  # live stock and totals equal the recount of the holds
    recorded = list(store.ledger.holds(event.id))
    assert store.ledger.stock(event.id)["phone-red"].sold == level.sold
    assert store.ledger.totals(event.id) == recount(recorded) == store.totals(event.id)


def test_a_redis_killed_mid_spike_loses_no_acknowledged_payment_and_reconciles_clean(
    store: RedisPostgresStorage, redis_server: RedisServer
) -> None:
    buyers, event = spike(store)
    buyers.start()
    try:
        wait_until("a third of the stock paid", lambda: buyers.acknowledged >= STOCK // 3)
        redis_server.kill()
        wait_until(
            "buyers meeting the dead Redis",
            lambda: buyers.count("reserve-unavailable") + buyers.count("pay-unavailable") > 0,
        )
        redis_server.start()  # from its AOF, same port: the store reconnects by itself
    finally:
        buyers.join()

    repaired = reconcile(store.live, store.ledger)
    assert repaired.unresolved == []
    assert reconcile(store.live, store.ledger, check=True).differences == []
    assert_nothing_acknowledged_is_lost(store, event, buyers.acked)
    assert store.stock(event.id)["phone-red"].sold == STOCK  # the spike sold out after all


def test_a_redis_that_lost_its_disk_is_rebuilt_from_the_record(
    store: RedisPostgresStorage, redis_server: RedisServer
) -> None:
    buyers, event = spike(store)
    buyers.start()
    try:
        wait_until("half the stock paid", lambda: buyers.acknowledged >= STOCK // 2)
        buyers.stop.set()
    finally:
        buyers.join()
    redis_server.kill()
    redis_server.wipe()
    redis_server.start()
    assert store.live.events() == []  # everything live is gone

    found = reconcile(store.live, store.ledger, check=True)
    assert not found.ok
    assert {d.kind for d in found.differences} >= {"event-not-live", "order-not-live"}
    repaired = reconcile(store.live, store.ledger)
    assert repaired.unresolved == []
    assert reconcile(store.live, store.ledger).differences == []  # a second run: nothing
    assert_nothing_acknowledged_is_lost(store, event, buyers.acked)
    # Holds lost with Redis are gone, their units available again; sales go on.
    level = store.stock(event.id)["phone-red"]
    assert (level.held, level.available) == (0, STOCK - len(buyers.acked))
    sales = Sales(store, clock=ManualClock(NOW))
    sales.open(event)
    late = sales.reserve(event.id, "late-buyer", "CN", {"phone-red": 1})
    assert sales.pay(late.id, "late-pay").state is HoldState.PAID
