"""When a record fell (``report.record_falls``, what the battle wall shows as "beaten at
17:42:10"): the payment that first took the figure past the earlier best, checked against a
plain running sum over the orders in the order they were paid."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from lampo.domain.holds import Hold
from lampo.domain.money import Money
from lampo.domain.records import PastResult, compare_records
from lampo.domain.report import record_falls
from lampo.domain.totals import recount
from lampo.services.report import past_result
from tests.factories import CN_OPENS
from tests.unit.test_report import EVENT, order

H12 = timedelta(hours=12)
BEFORE = CN_OPENS - timedelta(days=365)

#: Orders as (seconds after the opening, SKU, quantity).
ORDERS = st.lists(
    st.tuples(
        st.integers(0, 12 * 3600 - 1), st.sampled_from(["phone-red", "tv-55"]), st.integers(1, 3)
    ),
    max_size=30,
)


def first_past(holds: list[Hold], best: int, value: Callable[[Hold], int]) -> datetime | None:
    """The paid_at of the order at which the running sum of ``value(order)`` passes
    ``best``, or None."""
    running = 0
    for hold in sorted(holds, key=lambda h: (h.paid_at or CN_OPENS, h.id)):
        running += value(hold)
        if running > best:
            return hold.paid_at
    return None


def phones(hold: Hold) -> int:
    return sum(ln.quantity for ln in hold.lines if ln.sku == "phone-red")


def money(hold: Hold) -> int:
    return hold.amount.amount


@given(
    orders=ORDERS,
    best_units=st.integers(0, 40),
    best_first_hour=st.integers(0, 20),
    best_money=st.integers(0, 4_000_000),
)
def test_a_record_falls_at_the_payment_that_passed_the_best(
    orders: list[tuple[int, str, int]], best_units: int, best_first_hour: int, best_money: int
) -> None:
    holds = [
        order(i, CN_OPENS + timedelta(seconds=s), sku, qty)
        for i, (s, sku, qty) in enumerate(orders)
    ]
    past = [
        PastResult(
            "earlier",
            "phone",
            BEFORE,
            BEFORE + H12,
            H12,
            best_units,
            Money(best_money, "CNY"),
            best_first_hour,
        )
    ]
    units = {"phone": "phones", "tv": "TVs"}
    records = compare_records(past_result(EVENT, recount(holds), holds), past, units)
    falls = dict(zip((r.title for r in records), record_falls(EVENT, records, holds), strict=True))
    by_title = {r.title: r for r in records}

    window = by_title["most phones in a 12-hour window"]
    expected = first_past(holds, best_units, phones) if window.beaten else None
    assert falls[window.title] == expected
    first_hour = by_title["most phones in the first hour"]
    expected = first_past(holds, best_first_hour, phones) if first_hour.beaten else None
    assert falls[first_hour.title] == expected
    if expected is not None:
        assert expected < CN_OPENS + timedelta(hours=1)
    revenue = by_title.get("most money in a 12-hour window")
    if revenue is not None:  # only when the event took money
        expected = first_past(holds, best_money, money) if revenue.beaten else None
        assert falls[revenue.title] == expected
    # a record nothing was set against never falls
    assert falls["most TVs in a 12-hour window"] is None
