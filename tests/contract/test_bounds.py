"""The bounds of an event's numbers (lampo.domain.bounds) hold end to end on every backend.

An event accepted at the very edge of every bound (an allocation of ``MAX_UNITS``, a
price of ``MAX_MINOR_UNITS``, a hold of every unit) is sold, refunded and sold again with
live totals of ``MAX_AMOUNT`` equal to the recount: no total overflows SQLite INTEGER,
PostgreSQL bigint or a Redis counter. Definitions with numbers around the bounds, huge,
negative or of the wrong type are either such an event, or refused before storage sees
them, changing nothing.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as event_label
from hypothesis import strategies as st

from lampo.domain.bounds import MAX_AMOUNT, MAX_HOLD_SECONDS, MAX_MINOR_UNITS, MAX_UNITS
from lampo.domain.codec import event_from_dict, event_to_dict
from lampo.domain.errors import InvalidRequest
from lampo.domain.event import SaleEvent
from lampo.domain.holds import (
    Hold,
    HoldLine,
    PayRequest,
    RefundRequest,
    ReserveRequest,
)
from lampo.domain.market import Channel
from lampo.domain.money import Money
from lampo.storage import Storage
from tests.contract.conftest import POSTGRES, REDIS_POSTGRES, Backend, assert_consistent
from tests.factories import NOW, sale_event

HALF = MAX_UNITS // 2


def at_the_bounds(event_id: str, allocations: dict[str, int], price: int) -> SaleEvent:
    event = sale_event(event_id, allocations, hold_seconds=MAX_HOLD_SECONDS)
    offers = {
        sku: replace(offer, prices={"CN": Money(price, "CNY"), "IN": Money(price, "INR")})
        for sku, offer in event.offers.items()
    }
    return replace(event, offers=offers)


def everything(event: SaleEvent, hold_id: str, key: str) -> ReserveRequest:
    """A hold of every unit of every SKU, at its CN price."""
    lines = tuple(
        HoldLine(sku, offer.allocation, offer.prices["CN"].amount)
        for sku, offer in sorted(event.offers.items())
        if offer.allocation
    )
    expires = NOW + timedelta(seconds=event.hold_seconds)
    hold = Hold(hold_id, event.id, "whale", "CN", Channel(), lines, "CNY", NOW, expires)
    return ReserveRequest(key, hold, tuple(None for _ in lines))


def one(results: list[Any]) -> Hold:
    [result] = results
    assert isinstance(result, Hold), result
    return result


def test_every_unit_at_the_highest_price_is_sold_refunded_and_sold_again_with_exact_totals(
    store: Storage,
) -> None:
    event = at_the_bounds("edge", {"phone-red": HALF, "tv-55": MAX_UNITS - HALF}, MAX_MINOR_UNITS)
    store.setup(event)
    later = NOW + timedelta(seconds=1)

    first = one(store.reserve([everything(event, "whale-1", "k1")]))
    assert first.amount == Money(MAX_AMOUNT, "CNY")
    one(store.pay([PayRequest(first.id, "p1", later)]))
    assert store.totals(event.id).orders[("CN", "online", "", "")] == (1, MAX_AMOUNT)
    assert_consistent(store, event)

    one(store.refund([RefundRequest(first.id, later)]))
    again = one(store.reserve([everything(event, "whale-2", "k2")]))
    one(store.pay([PayRequest(again.id, "p2", later)]))

    totals = store.totals(event.id)
    assert totals.orders[("CN", "online", "", "")] == (1, MAX_AMOUNT)
    assert totals.units == MAX_UNITS
    assert {sku: level.sold for sku, level in store.stock(event.id).items()} == {
        "phone-red": HALF,
        "tv-55": MAX_UNITS - HALF,
    }
    assert_consistent(store, event)


def test_holds_keep_their_price_when_an_update_changes_it(store: Storage) -> None:
    # Sold at the highest price, then repriced: old orders keep theirs, and no total can
    # pass MAX_AMOUNT because the units sold never pass MAX_UNITS.
    event = at_the_bounds("reprice", {"phone-red": HALF, "tv-55": 0}, MAX_MINOR_UNITS)
    store.setup(event)
    later = NOW + timedelta(seconds=1)
    first = one(store.reserve([everything(event, "r-1", "rk1")]))
    one(store.pay([PayRequest(first.id, "rp1", later)]))
    cheaper = at_the_bounds("reprice", {"phone-red": MAX_UNITS, "tv-55": 0}, 1)
    store.update(cheaper)
    more = everything(cheaper, "r-2", "rk2")
    more = replace(
        more, hold=replace(more.hold, lines=(HoldLine("phone-red", MAX_UNITS - HALF, 1),))
    )
    one(store.pay([PayRequest(one(store.reserve([more])).id, "rp2", later)]))
    amount = store.totals(cheaper.id).orders[("CN", "online", "", "")].amount
    assert amount == HALF * MAX_MINOR_UNITS + (MAX_UNITS - HALF)
    assert amount <= MAX_AMOUNT
    assert_consistent(store, cheaper)


# -- definitions around the bounds, through the codec, into storage --------------------------

_IDS = itertools.count()
BASE = event_to_dict(sale_event("gen", {"phone-red": 10, "tv-55": 5}))


def near(bound: int) -> st.SearchStrategy[int]:
    return st.integers(bound - 2, bound + 2)


NUMBERS = st.one_of(
    near(MAX_UNITS),
    near(MAX_UNITS - 5),
    near(MAX_MINOR_UNITS),
    near(0),
    st.sampled_from([2**63 - 1, 2**63, 10**30, -(2**63)]),
    st.integers(),
)
WRONG = st.one_of(st.booleans(), st.none(), st.floats(), st.text(max_size=5), st.just([1, "CNY"]))
PLACES: list[tuple[str | int, ...]] = [
    ("offers", "phone-red", "allocation"),
    ("offers", "tv-55", "prices", "CN", 0),
    ("hold_seconds",),
    ("limit_per_customer",),
    ("offers", "tv-55", "limit_per_customer"),
]


def every_unit_it_may(event: SaleEvent, sku: str, customer: str) -> ReserveRequest | None:
    """A hold of as many units of ``sku`` as ``customer`` may take (None: none)."""
    offer = event.offers[sku]
    limits = [n for n in (offer.limit_per_customer, event.limit_per_customer) if n is not None]
    quantity = min([offer.allocation, *limits])
    if quantity == 0:
        return None
    line = HoldLine(sku, quantity, offer.prices["CN"].amount)
    expires = NOW + timedelta(seconds=event.hold_seconds)
    hold = Hold(
        f"{event.id}-{sku}", event.id, customer, "CN", Channel(), (line,), "CNY", NOW, expires
    )
    return ReserveRequest(hold.id, hold, (offer.limit_per_customer,), event.limit_per_customer)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.tuples(st.sampled_from(PLACES), NUMBERS | WRONG), min_size=1, max_size=3))
def test_a_definition_around_the_bounds_is_sold_exactly_or_refused_before_storage(
    store: Storage, changes: list[tuple[tuple[str | int, ...], object]]
) -> None:
    data: Any = copy.deepcopy(BASE)
    data["id"] = f"gen-{next(_IDS)}"
    for path, value in changes:
        node = data
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value
    before = store.events()
    try:
        event = event_from_dict(data)
    except InvalidRequest as refusal:
        assert store.events() == before  # refused in the domain: storage never saw it
        event_label(f"refused: {refusal.field}")
        return
    event_label("sold")
    store.setup(event)
    for sku in sorted(event.offers):
        request = every_unit_it_may(event, sku, f"c-{sku}")
        if request is None:
            continue
        held = one(store.reserve([request]))
        paid = one(store.pay([PayRequest(held.id, f"p-{held.id}", NOW)]))  # hold_seconds >= 1
        assert paid.amount.amount <= MAX_AMOUNT
    assert_consistent(store, event)


# -- what the bounds would have stopped is a bug, never an outage ----------------------------


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param(POSTGRES, id="postgres", marks=pytest.mark.postgres),
        pytest.param(REDIS_POSTGRES, id="redis+postgres", marks=pytest.mark.redis_postgres),
    ],
)
def test_a_number_postgresql_cannot_hold_is_an_error_and_not_unavailable(
    backend: Backend, tmp_path: Path
) -> None:
    psycopg = pytest.importorskip("psycopg")
    # An event the domain would refuse, forced past its checks: the bigint overflow is
    # answered as the bug it is (500 over HTTP), never as a retryable outage (503).
    event = sale_event("forced", {"phone-red": 1})
    offer = event.offers["phone-red"]
    object.__setattr__(offer, "allocation", 10**30)
    store = backend.open(tmp_path)
    try:
        with pytest.raises(psycopg.errors.NumericValueOutOfRange):
            store.setup(event)
        assert store.events() == []
    finally:
        store.close()
