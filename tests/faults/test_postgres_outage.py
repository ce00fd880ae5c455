"""PostgreSQL stops under a spike of buyers: payments are refused cleanly (503-class
``Unavailable``), reserves go on from Redis, and the same lampo process recovers by
itself once PostgreSQL is back. Private redis-server and PostgreSQL instances."""

from __future__ import annotations

import pytest

from lampo.domain.holds import HoldState
from lampo.domain.totals import recount
from lampo.services.clock import ManualClock
from lampo.services.reconcile import reconcile
from lampo.services.sales import Sales
from lampo.storage.combined import RedisPostgresStorage
from tests.contract.conftest import assert_consistent
from tests.factories import NOW, sale_event
from tests.faults._instances import PostgresServer, wait_until
from tests.faults._spike import Spike

pytestmark = [pytest.mark.faults, pytest.mark.redis_postgres]

STOCK = 300
BUYERS = 12


def test_payments_are_refused_cleanly_while_postgres_is_down_and_resume_when_it_returns(
    store: RedisPostgresStorage, postgres_server: PostgresServer
) -> None:
    event = sale_event(stock={"phone-red": STOCK}, sku_limit=2, hold_seconds=3600)
    sales = Sales(store, clock=ManualClock(NOW))
    sales.open(event)
    buyers = Spike(sales, event.id, "phone-red", BUYERS)
    buyers.start()
    try:
        wait_until("a third of the stock paid", lambda: buyers.acknowledged >= STOCK // 3)
        postgres_server.stop("immediate")
        try:
            wait_until("payments refused", lambda: buyers.count("pay-unavailable") >= 3 * BUYERS)
            before = buyers.acknowledged
            # Holds do not need PostgreSQL: they are taken and released during the outage.
            hold = sales.reserve(event.id, "walk-in", "CN", {"phone-red": 1})
            assert sales.release(hold.id).state is HoldState.RELEASED
        finally:
            postgres_server.start()
        wait_until("payments acknowledged again", lambda: buyers.acknowledged > before)
    finally:
        buyers.join()

    assert set(buyers.refusals) <= {"pay-unavailable", "limit-exceeded"}, buyers.refusals
    assert store.pending == []  # what was decided in Redis during the outage got recorded
    for hold_id, payment_id in buyers.acked.items():
        for side in (store.live, store.ledger):
            hold = side.hold(hold_id)
            assert hold is not None, (side, hold_id)
            assert (hold.state, hold.payment_id) == (HoldState.PAID, payment_id), (side, hold)
    assert len(buyers.acked) == STOCK  # every unit sold, and every sale acknowledged
    assert_consistent(store, event)
    assert store.ledger.totals(event.id) == recount(store.ledger.holds(event.id))
    assert store.ledger.totals(event.id) == store.totals(event.id)
    assert reconcile(store.live, store.ledger, check=True).differences == []
