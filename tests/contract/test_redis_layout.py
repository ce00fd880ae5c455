"""The Redis store's key layout (lua/_lib.lua): a hold keeps only the fields that exist,
and a store written in the layout before it (layout 1) is refused, whole, when opened."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from lampo.domain.holds import PayRequest
from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from lampo.storage import from_url
from lampo.storage.port import CorruptStore
from lampo.storage.redis import RedisStorage
from lampo.storage.redis.client import LAYOUT
from tests.contract._servers import REDIS, drop_redis_prefix, redis_url
from tests.factories import NOW, sale_event

pytestmark = pytest.mark.redis

EVENT = sale_event("fest", stock={"phone-red": 10, "tv-55": 4}, event_limit=5)

#: What a lampo of layout 1 left for one event and one hold (the fields as it wrote them).
OLD_HOLD = {
    "body": '["h1","fest","alice","CN","online","","","CNY",[["tv-55",1,179900]],1,2]',
    "head": "k1\x1efp\x1eh1\x1ealice\x1e5\x1e1\x1e2\x1e1\x1etv-55\x1e1\x1e\x1e",
    "tot": "CNY\x1e179900\x1eCN\x1fonline\x1f\x1f\x1e1\x1e"
    + "tv-55\x1fCN\x1fonline\x1f\x1f\x1e1\x1e179900\x1e",
    "state": "held",
    "payment_id": "",
    "paid_at": "",
    "ended_at": "",
    "refunded_at": "",
}


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    url = redis_url(tmp_path)
    yield url
    drop_redis_prefix(url)


@pytest.fixture
def raw() -> Iterator[Any]:
    client = redis.Redis.from_url(REDIS, decode_responses=True)
    yield client
    client.close()


def prefix_of(url: str) -> str:
    return url.split("prefix=", 1)[1].split("&", 1)[0]


def content(raw: Any, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in raw.scan_iter(match=prefix + "*", count=1000):
        kind = raw.type(key)
        out[key] = raw.hgetall(key) if kind == "hash" else raw.dump(key)
    return out


def write_layout_1(raw: Any, prefix: str) -> None:
    raw.sadd(prefix + "events", "fest")
    raw.set(prefix + "{fest}:def", "{}")
    raw.hset(
        prefix + "{fest}:stock", mapping={"a:tv-55": 4, "v:tv-55": 3, "h:tv-55": 1, "s:tv-55": 0}
    )
    raw.hset(prefix + "{fest}:h:h1", mapping=OLD_HOLD)
    raw.sadd(prefix + "{fest}:ids", "h1")
    raw.zadd(prefix + "{fest}:due", {"h1": 2})
    raw.hset(prefix + "{fest}:idem", "k1", "fp\x1fh1")
    raw.set(prefix + "hx:h1", "fest")


def test_a_store_written_in_layout_1_is_refused_on_opening_and_left_as_it_is(
    url: str, raw: Any
) -> None:
    prefix = prefix_of(url)
    write_layout_1(raw, prefix)
    before = content(raw, prefix)
    for _ in range(2):  # and again: the refusal marks nothing
        with pytest.raises(CorruptStore, match="layout 1") as caught:
            from_url(url)
        assert "layout 2" in str(caught.value)
        assert content(raw, prefix) == before


def test_a_new_store_is_marked_and_opens_again(url: str, raw: Any) -> None:
    with from_url(url) as store:
        Sales(store, clock=ManualClock(NOW)).open(EVENT)
    assert raw.get(prefix_of(url) + "layout") == LAYOUT
    with from_url(url) as again:
        assert again.events() == [EVENT.id]


def test_a_store_marked_with_another_layout_is_refused(url: str, raw: Any) -> None:
    raw.set(prefix_of(url) + "layout", "3")
    with pytest.raises(CorruptStore, match="layout 3"):
        from_url(url)


def test_a_layout_1_hold_in_a_marked_store_is_a_fault_of_the_store_and_changes_nothing(
    url: str, raw: Any
) -> None:
    prefix = prefix_of(url)
    with from_url(url) as store:
        assert isinstance(store, RedisStorage)
        sales = Sales(store, clock=ManualClock(NOW))
        sales.open(EVENT)
        hold = sales.reserve(EVENT.id, "alice", "CN", {"tv-55": 1})
        key = f"{store._base(EVENT.id)}:h:{hold.id}"
        raw.delete(key)  # as an older lampo, still running, would have written it
        raw.hset(key, mapping=OLD_HOLD)
        before = content(raw, prefix)
        with pytest.raises(CorruptStore, match="older lampo"):
            store.pay([PayRequest(hold.id, "p1", NOW + timedelta(seconds=1))])
        assert content(raw, prefix) == before


def test_a_hold_keeps_only_the_fields_that_exist_in_each_state(url: str, raw: Any) -> None:
    clock = ManualClock(NOW)
    with from_url(url) as store:
        assert isinstance(store, RedisStorage)
        sales = Sales(store, clock=clock)
        sales.open(EVENT)

        def fields(hold_id: str) -> set[str]:
            return set(raw.hkeys(f"{store._base(EVENT.id)}:h:{hold_id}"))

        paid = sales.reserve(EVENT.id, "alice", "CN", {"tv-55": 1})
        released = sales.reserve(EVENT.id, "bruno", "CN", {"phone-red": 2})
        assert fields(paid.id) == fields(released.id) == {"b", "d", "s"}
        sales.pay(paid.id, "p1")
        assert fields(paid.id) == {"b", "d", "s", "p", "pa", "e"}
        sales.release(released.id)
        assert fields(released.id) == {"b", "d", "s", "e"}
        sales.refund(paid.id)
        assert fields(paid.id) == {"b", "d", "s", "p", "pa", "e", "r"}
        expired = sales.reserve(EVENT.id, "carla", "CN", {"tv-55": 1})
        clock.advance(EVENT.hold_seconds + 1)
        assert [h.id for h in store.expire_due(EVENT.id, clock())] == [expired.id]
        assert fields(expired.id) == {"b", "d", "s", "e"}
        assert raw.hget(f"{store._base(EVENT.id)}:h:{expired.id}", "s") == "expired"
