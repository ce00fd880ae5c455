"""What only the Redis Cluster needs: one slot per event, and the keys outside it.

The whole contract suite also runs on the private cluster (the ``redis-cluster`` backend
of ``conftest.py``); these tests check the parts of the design that suite cannot see.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from redis.cluster import RedisCluster

from lampo.domain.errors import InvalidRequest
from lampo.services.clock import ManualClock
from lampo.services.sales import ReserveCommand, Sales
from lampo.storage import from_url
from lampo.storage.redis import RedisStorage
from lampo.storage.redis.scripts import library_name
from tests.contract._cluster import redis_cluster_url
from tests.factories import CN_OPENS, sale_event

pytestmark = pytest.mark.redis_cluster


@pytest.fixture
def cluster_store(tmp_path: Path) -> Iterator[RedisStorage]:
    store = from_url(redis_cluster_url(tmp_path))
    assert isinstance(store, RedisStorage)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def admin(cluster_store: RedisStorage) -> Iterator[Any]:
    """A client of its own on the same cluster, to look at and damage its keys."""
    parts = urlsplit(redis_cluster_url(Path()))
    client = RedisCluster(host=parts.hostname, port=parts.port, decode_responses=True)
    try:
        yield client
    finally:
        client.close()


def _keys(admin: Any, prefix: str) -> list[str]:
    return sorted(admin.scan_iter(match=prefix + "*", count=1000, target_nodes="all"))


def test_every_key_of_an_event_lies_in_one_slot(cluster_store: RedisStorage, admin: Any) -> None:
    sales = Sales(cluster_store, clock=ManualClock(CN_OPENS))
    for event in (sale_event("fan-fest", {"redmi-2": 5}), sale_event("double-11", {"mi-4": 5})):
        sales.open(event)
        sku = next(iter(event.offers))
        hold = sales.reserve(event.id, "alice", "CN", {sku: 1}, key="k1")
        sales.pay(hold.id, f"pay-{event.id}")
    slots: dict[str, set[int]] = {}
    for key in _keys(admin, cluster_store.prefix):
        for event in ("fan-fest", "double-11"):
            if "{" + event + "}" in key:
                slots.setdefault(event, set()).add(admin.keyslot(key))
    assert {event: len(found) for event, found in slots.items()} == {
        "fan-fest": 1,
        "double-11": 1,
    }
    assert cluster_store.events() == ["double-11", "fan-fest"]


def test_a_hold_whose_index_write_was_lost_is_found_again_by_a_retry_with_the_same_key(
    cluster_store: RedisStorage, admin: Any
) -> None:
    event = sale_event(stock={"redmi-2": 5})
    sales = Sales(cluster_store, clock=ManualClock(CN_OPENS))
    sales.open(event)
    hold = sales.reserve(event.id, "alice", "CN", {"redmi-2": 1}, key="k1")
    # A crash between the script and the index write: the hold is there, its index not.
    assert admin.delete(f"{cluster_store.prefix}hx:{hold.id}") == 1
    assert cluster_store.hold(hold.id) is None
    again = sales.reserve(event.id, "alice", "CN", {"redmi-2": 1}, key="k1")
    assert again == hold
    assert cluster_store.hold(hold.id) == hold
    assert sales.pay(hold.id, "pay-1").payment_id == "pay-1"
    assert cluster_store.stock(event.id)["redmi-2"].sold == 1


def test_a_cluster_that_lost_its_scripts_loads_them_again(
    cluster_store: RedisStorage, admin: Any
) -> None:
    cluster_store._scripts.functions = False  # by SHA, as before Redis 7
    event = sale_event(stock={"redmi-2": 5})
    sales = Sales(cluster_store, clock=ManualClock(CN_OPENS))
    sales.open(event)
    sales.reserve(event.id, "alice", "CN", {"redmi-2": 1}, key="k1")
    for node in admin.get_primaries():
        admin.execute_command("SCRIPT FLUSH", target_nodes=node)
    assert not any(admin.script_exists(*cluster_store._shas.values()))
    bob = sales.reserve(event.id, "bob", "CN", {"redmi-2": 2}, key="k2")
    assert cluster_store.hold(bob.id) == bob
    assert cluster_store.stock(event.id)["redmi-2"].held == 3


def test_a_batch_over_two_events_after_a_script_flush_runs_both_script_calls_once(
    cluster_store: RedisStorage, admin: Any
) -> None:
    cluster_store._scripts.functions = False  # by SHA, as before Redis 7
    sales = Sales(cluster_store, clock=ManualClock(CN_OPENS))
    first, second = sale_event("fan-fest", {"redmi-2": 5}), sale_event("double-11", {"mi-4": 5})
    for event in (first, second):
        sales.open(event)
    for node in admin.get_primaries():
        admin.execute_command("SCRIPT FLUSH", target_nodes=node)
    # One storage call, two events: two script calls in one pipeline, both reloaded.
    requests = [
        sales._request(ReserveCommand(first.id, "alice", "CN", {"redmi-2": 2}, key="k1")),
        sales._request(ReserveCommand(second.id, "alice", "CN", {"mi-4": 1}, key="k1")),
    ]
    placed = cluster_store.reserve(requests)
    assert placed == [r.hold for r in requests]
    assert cluster_store.stock(first.id)["redmi-2"].held == 2
    assert cluster_store.stock(second.id)["mi-4"].held == 1


def test_a_cluster_whose_nodes_lost_the_library_loads_it_again_on_every_node(
    cluster_store: RedisStorage, admin: Any
) -> None:
    assert cluster_store._scripts.functions  # the private cluster runs Redis 7 or later
    sales = Sales(cluster_store, clock=ManualClock(CN_OPENS))
    first, second = sale_event("fan-fest", {"redmi-2": 5}), sale_event("double-11", {"mi-4": 5})
    for event in (first, second):
        sales.open(event)
    for node in admin.get_primaries():
        admin.execute_command("FUNCTION", "FLUSH", target_nodes=node)
    requests = [
        sales._request(ReserveCommand(first.id, "alice", "CN", {"redmi-2": 2}, key="k1")),
        sales._request(ReserveCommand(second.id, "alice", "CN", {"mi-4": 1}, key="k1")),
    ]
    assert cluster_store.reserve(requests) == [r.hold for r in requests]
    assert cluster_store.stock(first.id)["redmi-2"].held == 2  # each call ran once
    assert cluster_store.stock(second.id)["mi-4"].held == 1
    for node in admin.get_primaries():
        found = admin.execute_command(
            "FUNCTION", "LIST", "LIBRARYNAME", library_name(), target_nodes=node
        )
        assert found


def test_a_prefix_with_a_hash_tag_brace_is_refused_before_connecting() -> None:
    url = redis_cluster_url(Path())
    base, prefix = url.split("?", 1)[0], parse_qs(urlsplit(url).query)["prefix"][0]
    with pytest.raises(InvalidRequest) as caught:
        from_url(f"{base}?prefix={{x}}{prefix}")
    assert caught.value.field == "prefix"
