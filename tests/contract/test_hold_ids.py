"""A hold id is used once: a request that reuses one is refused cleanly on every backend."""

from __future__ import annotations

from dataclasses import replace

from lampo.domain.errors import InvalidRequest
from lampo.domain.holds import Hold, ReserveRequest
from lampo.services.clock import ManualClock
from lampo.services.sales import ReserveCommand, Sales
from lampo.storage import Storage
from tests.contract.conftest import snapshot
from tests.factories import CN_OPENS, sale_event


def assert_reused_hold_id_refused(
    store: Storage, sales: Sales, event: str, first: Hold, buyer: str, items: dict[str, int]
) -> None:
    """``buyer``'s request carrying ``first``'s hold id (by a bug or a forger) is refused
    as an invalid ``hold_id`` and changes nothing; ``first`` stays as it was."""
    request = sales._request(ReserveCommand(event, buyer, "CN", items, key="k-clash"))
    clash = ReserveRequest(
        request.key, replace(request.hold, id=first.id), request.sku_limits, request.event_limit
    )
    before = snapshot(store, event)
    [result] = store.reserve([clash])
    assert isinstance(result, InvalidRequest)
    assert result.field == "hold_id"
    assert snapshot(store, event) == before
    assert store.hold(first.id) == first


def test_a_reservation_that_reuses_a_hold_id_is_refused_and_changes_nothing(
    store: Storage,
) -> None:
    event = sale_event(stock={"redmi-2": 5})
    sales = Sales(store, clock=ManualClock(CN_OPENS))
    sales.open(event)
    first = sales.reserve(event.id, "alice", "CN", {"redmi-2": 1}, key="k1")
    assert_reused_hold_id_refused(store, sales, event.id, first, "bob", {"redmi-2": 2})
