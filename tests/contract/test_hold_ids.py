"""A hold id is used once: a request that reuses one is refused cleanly on every backend."""

from __future__ import annotations

from dataclasses import replace

from lampo.domain.errors import InvalidRequest
from lampo.domain.holds import ReserveRequest
from lampo.services.clock import ManualClock
from lampo.services.sales import ReserveCommand, Sales
from lampo.storage import Storage
from tests.contract.conftest import snapshot
from tests.factories import CN_OPENS, sale_event


def test_a_reservation_that_reuses_a_hold_id_is_refused_and_changes_nothing(
    store: Storage,
) -> None:
    event = sale_event(stock={"redmi-2": 5})
    sales = Sales(store, clock=ManualClock(CN_OPENS))
    sales.open(event)
    first = sales.reserve(event.id, "alice", "CN", {"redmi-2": 1}, key="k1")
    # Another buyer's request that, by a bug or a forger, carries alice's hold id.
    request = sales._request(ReserveCommand(event.id, "bob", "CN", {"redmi-2": 2}, key="k2"))
    clash = ReserveRequest(
        request.key, replace(request.hold, id=first.id), request.sku_limits, request.event_limit
    )
    before = snapshot(store, event.id)
    [result] = store.reserve([clash])
    assert isinstance(result, InvalidRequest)
    assert result.field == "hold_id"
    assert snapshot(store, event.id) == before
    assert store.hold(first.id) == first
