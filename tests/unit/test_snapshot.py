"""The rehearsal's map between the crowd's time and the servers' (``sim.snapshot``): an
instant comes back where it left, the event the servers get is the scenario's moved and
compressed, and a hold, an order's totals and stock read back equal what the server had."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lampo.domain.bounds import MAX_EVENT_SPAN
from lampo.domain.errors import InvalidRequest
from lampo.domain.holds import Hold, HoldLine, HoldState, StockLevel
from lampo.domain.market import Channel, ChannelKind
from lampo.domain.totals import recount
from lampo.sim.snapshot import TimeMap, hold_of, rebase, stock_of, totals_of
from lampo.web import schemas
from tests.factories import sale_event

ORIGIN = datetime(2014, 9, 2, 8, 30, tzinfo=UTC)
START = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
speeds = st.floats(min_value=0.01, max_value=100_000, allow_nan=False)


@given(speed=speeds, micros=st.integers(min_value=0, max_value=31 * 86_400 * 10**6))
def test_an_instant_comes_back_where_it_left_within_the_speed_s_rounding(
    speed: float, micros: int
) -> None:
    times = TimeMap(ORIGIN, START, speed)
    at = ORIGIN + timedelta(microseconds=micros)
    back = times.to_crowd(times.to_server(at))
    # the server's time is kept to the microsecond: one µs there is ``speed`` µs here
    assert abs(back - at) <= timedelta(microseconds=speed + 1)


@given(speed=speeds)
def test_the_event_served_is_the_scenario_s_moved_to_the_start_and_compressed(
    speed: float,
) -> None:
    event = sale_event("rehearsed", hours=12)
    times = TimeMap(event.opens, START, speed)
    if (event.closes - event.opens) / speed > MAX_EVENT_SPAN:  # slowed down too far
        with pytest.raises(InvalidRequest) as refused:
            rebase(event, "rehearsed-1", times)
        assert refused.value.field == "speed"
        return
    served = rebase(event, "rehearsed-1", times)
    assert served.id == "rehearsed-1"
    assert served.opens == START
    assert served.hold_seconds == max(1, round(event.hold_seconds / speed))
    for code, window in event.windows.items():
        moved = served.windows[code]
        assert abs(moved.length - window.length / speed) <= timedelta(microseconds=2)
    same = ("name", "markets", "categories", "skus", "offers", "fx", "limit_per_customer")
    for name in same:
        assert getattr(served, name) == getattr(event, name)


def test_what_the_server_sends_reads_back_as_what_it_holds() -> None:
    event = sale_event("read-back")
    sku = next(iter(event.offers))
    created = datetime(2026, 12, 3, 8, 0, 1, 250_000, tzinfo=UTC)
    paid = Hold(
        "h-1",
        event.id,
        "in-7",
        "IN",
        Channel(ChannelKind.MARKETPLACE, "flipkart"),
        (HoldLine(sku, 2, 599_900),),
        "INR",
        created,
        created + timedelta(seconds=300),
        HoldState.PAID,
        "pay-h-1",
        created + timedelta(seconds=61),
        created + timedelta(seconds=61),
    )
    held = Hold(
        "h-2",
        event.id,
        "cn-3",
        "CN",
        Channel(ChannelKind.ONLINE, referral="weibo"),
        (HoldLine(sku, 1, 100),),
        "CNY",
        created,
        created + timedelta(seconds=300),
    )
    same_clock = TimeMap(START, START, 1.0)
    for hold in (paid, held):
        sent = msgspec.json.decode(msgspec.json.encode(schemas.hold_out(hold)))
        assert hold_of(sent, event.id, same_clock) == hold
    totals = recount([paid, held])
    sent_totals = msgspec.json.decode(msgspec.json.encode(schemas.totals_out(event.id, totals)))
    assert totals_of(sent_totals) == totals
    levels = {sku: StockLevel(sku, 10, 7, 1, 2)}
    sent_stock = msgspec.json.decode(msgspec.json.encode(schemas.stock_out(event.id, levels)))
    assert stock_of(sent_stock) == levels
