"""``Storage.recorded``: whether a key has an idempotency record, as a read.

The service asks it before refusing from its sold-out memory, and sends the keys that
have one to ``reserve``. So it must say True exactly for the keys ``reserve`` answers from
their record (the first hold, as it is now, or the conflict) and change nothing. Shown on
every backend, stock buckets (a customer's records live in their bucket) and clusters
included.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lampo.domain.errors import IdempotencyConflict
from lampo.domain.event import SaleEvent
from lampo.domain.holds import Hold, HoldLine, PayRequest, ReserveRequest
from lampo.domain.market import Channel
from lampo.services.ids import new_id
from lampo.storage import Storage
from lampo.storage.port import KeyRef
from tests.contract.conftest import snapshot
from tests.factories import NOW, sale_event

CUSTOMERS = ("c1", "c2", "c3")  # in different stock buckets of 3- and 4-bucket events
KEYS = ("k1", "k2")


@dataclass(frozen=True)
class Ask:
    """A reservation as a buyer sends it."""

    customer: str
    key: str
    market: str
    items: tuple[tuple[str, int], ...]


asks = st.builds(
    Ask,
    st.sampled_from(CUSTOMERS),
    st.sampled_from(KEYS),
    st.sampled_from(["CN", "IN"]),
    st.dictionaries(st.sampled_from(["phone-red", "tv-55"]), st.integers(1, 2), min_size=1).map(
        lambda items: tuple(sorted(items.items()))
    ),
)


def request(event: SaleEvent, ask: Ask) -> ReserveRequest:
    """The storage request of ``ask``, priced from ``event``, with a new hold id."""
    lines = tuple(HoldLine(sku, q, event.price(sku, ask.market).amount) for sku, q in ask.items)
    hold = Hold(
        new_id(),
        event.id,
        ask.customer,
        ask.market,
        Channel(),
        lines,
        event.markets[ask.market].currency,
        NOW,
        NOW + timedelta(seconds=event.hold_seconds),
    )
    return ReserveRequest(f"{event.id}:{ask.customer}:{ask.key}", hold, (None,) * len(lines))


@settings(
    max_examples=25,
    deadline=None,
    # one store for every example: each example sets up an event of its own in it
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    placed=st.lists(st.tuples(asks, st.booleans()), max_size=6),
    asked=st.lists(asks, min_size=1, max_size=6),
)
def test_recorded_answers_as_reserve_would_and_writes_nothing(
    store: Storage, placed: list[tuple[Ask, bool]], asked: list[Ask]
) -> None:
    event = sale_event(f"rec-{uuid.uuid4().hex[:12]}", stock={"phone-red": 5, "tv-55": 2})
    store.setup(event)
    first: dict[tuple[str, str], tuple[Ask, str]] = {}  # (customer, key) -> first ask, hold
    for ask, pay in placed:
        [result] = store.reserve([request(event, ask)])
        if isinstance(result, Hold) and (ask.customer, ask.key) not in first:
            first[(ask.customer, ask.key)] = (ask, result.id)
            if pay:
                store.pay([PayRequest(result.id, f"pay-{result.id}", NOW)])

    requests = [request(event, ask) for ask in asked]
    refs = [KeyRef(event.id, req.hold.customer, req.key) for req in requests]
    before = snapshot(store, event.id)
    found = store.recorded(refs)
    assert snapshot(store, event.id) == before, "a read changed something"
    assert asyncio.run(store.arecorded(refs)) == found

    for ask, req, recorded in zip(asked, requests, found, strict=True):
        known = first.get((ask.customer, ask.key))
        assert recorded == (known is not None), ask
        if known is None:
            continue  # reserve would decide it afresh
        [answer] = store.reserve([req])  # answered from the record
        ask_first, hold_id = known
        if (ask_first.market, ask_first.items) == (ask.market, ask.items):
            assert answer == store.hold(hold_id), (ask, answer)  # as it is now (maybe paid)
        else:
            assert answer == IdempotencyConflict(req.key), (ask, answer)
    assert snapshot(store, event.id) == before, "a replay changed something"


def test_recorded_of_an_unknown_event_finds_nothing(store: Storage) -> None:
    event = f"none-{uuid.uuid4().hex[:12]}"  # never set up
    assert store.recorded([KeyRef(event, "c1", f"{event}:c1:k1")]) == [False]
    assert store.recorded([]) == []


@pytest.mark.parametrize("batch", [1, 600])
def test_recorded_reads_a_batch_of_any_size_in_order(store: Storage, batch: int) -> None:
    event = sale_event(f"big-{uuid.uuid4().hex[:12]}", stock={"phone-red": 1000})
    store.setup(event)
    asks = [Ask(f"c{i}", "k", "CN", (("phone-red", 1),)) for i in range(batch)]
    requests = [request(event, ask) for ask in asks]
    store.reserve(requests[::2])
    found = store.recorded([KeyRef(event.id, r.hold.customer, r.key) for r in requests])
    assert found == [i % 2 == 0 for i in range(batch)]
