"""The Redis store's scripts as one library of functions (Redis 7+), scripts by SHA as the
fallback, and the writer's own connection (storage/redis/scripts.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from lampo.storage import from_url
from lampo.storage.redis import RedisStorage
from lampo.storage.redis.scripts import library_name
from tests.contract._servers import REDIS, drop_redis_prefix, redis_url
from tests.factories import NOW, sale_event

pytestmark = pytest.mark.redis

EVENT = sale_event("fest", stock={"phone-red": 10, "tv-55": 4}, event_limit=5)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RedisStorage]:
    url = redis_url(tmp_path)
    opened = from_url(url)
    assert isinstance(opened, RedisStorage)
    try:
        yield opened
    finally:
        opened.close()
        drop_redis_prefix(url)


@pytest.fixture
def raw() -> Iterator[Any]:
    client = redis.Redis.from_url(REDIS, decode_responses=True)
    yield client
    client.close()


def _major(raw: Any) -> int:
    return int(str(raw.info("server")["redis_version"]).split(".")[0])


def _writer_id(store: RedisStorage) -> int:
    assert store._direct is not None
    [own_id] = store._direct.send([("CLIENT", "ID")])
    return int(own_id)


def _last_command(raw: Any, client_id: int) -> str:
    """The last command a connection ran, as the server tells (the shared server's
    counters would count other clients' calls too)."""
    [info] = raw.client_list(client_id=[client_id])
    return str(info["cmd"])


def test_on_redis_7_the_scripts_are_the_functions_of_one_loaded_library(
    store: RedisStorage, raw: Any
) -> None:
    if _major(raw) < 7:
        assert not store._scripts.functions
        return
    assert store._scripts.functions
    [lib] = raw.function_list(library=library_name())
    found = dict(zip(lib[::2], lib[1::2], strict=True))
    assert found["library_name"] == library_name()
    assert len(found["functions"]) == 16
    sales = Sales(store, clock=ManualClock(NOW))
    sales.open(EVENT)
    writer = _writer_id(store)
    hold = sales.reserve(EVENT.id, "alice", "CN", {"tv-55": 1}, key="k1")
    assert _last_command(raw, writer) == "fcall"
    assert store.hold(hold.id) == hold


def test_a_server_that_lost_the_library_loads_it_again_and_each_call_runs_once(
    store: RedisStorage, raw: Any
) -> None:
    if not store._scripts.functions:
        pytest.skip("the server has no functions (Redis < 7)")
    sales = Sales(store, clock=ManualClock(NOW))
    sales.open(EVENT)
    sales.reserve(EVENT.id, "alice", "CN", {"tv-55": 1}, key="k1")
    raw.function_delete(library_name())  # as FUNCTION FLUSH or a server without it would
    bob = sales.reserve(EVENT.id, "bob", "CN", {"tv-55": 2}, key="k2")  # the writer's call
    assert store.hold(bob.id) == bob
    raw.function_delete(library_name())
    holds = list(store.holds(EVENT.id))  # holds.lua, through the pool
    assert raw.function_list(library=library_name())
    assert sorted(h.customer for h in holds) == ["alice", "bob"]  # each call ran once
    assert store.stock(EVENT.id)["tv-55"].held == 3


def test_by_sha_the_scripts_give_what_the_functions_give(tmp_path: Path, raw: Any) -> None:
    outcomes = []
    for functions in (True, False):
        url = redis_url(tmp_path)
        try:
            with from_url(url) as store:
                assert isinstance(store, RedisStorage)
                store._scripts.functions = functions and store._scripts.functions
                clock = ManualClock(NOW)
                sales = Sales(store, clock=clock)
                sales.open(EVENT)
                writer = _writer_id(store)
                a = sales.reserve(EVENT.id, "alice", "CN", {"tv-55": 2}, key="k1")
                again = sales.reserve(EVENT.id, "alice", "CN", {"tv-55": 2}, key="k1")
                b = sales.reserve(EVENT.id, "bob", "CN", {"tv-55": 1, "phone-red": 1}, key="k")
                paid = sales.pay(a.id, "pay-1")
                released = sales.release(b.id)
                want = "fcall" if store._scripts.functions else "evalsha"
                assert _last_command(raw, writer) == want
                stock = store.stock(EVENT.id)
                outcomes.append(
                    (
                        again == a,
                        paid.state.value,
                        released.state.value,
                        {sku: (s.available, s.held, s.sold) for sku, s in stock.items()},
                    )
                )
        finally:
            drop_redis_prefix(url)
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] is True
    assert outcomes[0][3]["tv-55"] == (2, 0, 2)


def test_the_writers_connection_closed_by_the_server_while_idle_is_opened_again(
    store: RedisStorage, raw: Any
) -> None:
    sales = Sales(store, clock=ManualClock(NOW))
    sales.open(EVENT)
    sales.reserve(EVENT.id, "alice", "CN", {"tv-55": 1}, key="k1")
    own_id = _writer_id(store)
    assert raw.client_kill_filter(_id=own_id) == 1
    # The pool's connections come back the same way (ConnectionPool.get_connection).
    bob = sales.reserve(EVENT.id, "bob", "CN", {"tv-55": 1}, key="k2")
    assert store.hold(bob.id) == bob
    assert _writer_id(store) != own_id
    assert store.stock(EVENT.id)["tv-55"].held == 2
