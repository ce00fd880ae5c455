"""The pieces of the reserve path that were made cheaper: hold ids, the trusted builders of
holds and lines, the fingerprint, the replay cache, the metrics histogram and the
collector's threshold."""

from __future__ import annotations

import gc
import os
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lampo.domain.holds import Hold, HoldLine, ReserveRequest
from lampo.domain.market import Channel, ChannelKind
from lampo.services import ids
from lampo.services.clock import ManualClock
from lampo.services.sales import ReserveCommand, Sales
from lampo.storage.memory import MemoryStorage
from lampo.web import asgi as web_asgi
from lampo.web import schemas
from lampo.web.idempotency import ReplayCache, replayed
from lampo.web.metrics import BUCKETS, Metrics
from tests.factories import NOW, sale_event

T = datetime(2026, 1, 1, tzinfo=UTC)
HEX_ID = re.compile(r"[0-9a-f]{32}")


# -- hold ids -----------------------------------------------------------------------------------


def test_ids_are_32_hex_digits_and_unique_across_many_refills() -> None:
    drawn = [ids.new_id() for _ in range(5_000)]  # about twenty refills of the pool
    assert all(HEX_ID.fullmatch(i) for i in drawn)
    assert len(set(drawn)) == len(drawn)


def test_ids_drawn_by_concurrent_threads_are_unique() -> None:
    per_thread = 3_000
    results: list[list[str]] = [[] for _ in range(8)]
    start = threading.Barrier(len(results))

    def draw(out: list[str]) -> None:
        start.wait()
        out.extend(ids.new_id() for _ in range(per_thread))

    threads = [threading.Thread(target=draw, args=(out,)) for out in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    drawn = [i for out in results for i in out]
    assert len(drawn) == len(results) * per_thread
    assert len(set(drawn)) == len(drawn)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_never_hands_out_the_ids_of_its_parent() -> None:
    ids.new_id()  # the pool is full of ids the parent will hand out next
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report the ids it draws, then leave without cleanup
        try:
            os.close(read_end)
            os.write(write_end, "\n".join(ids.new_id() for _ in range(300)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child = set(pipe.read().decode().split("\n"))
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    parent = {ids.new_id() for _ in range(300)}
    assert len(child) == 300
    assert all(HEX_ID.fullmatch(i) for i in child)
    assert not child & parent


def test_the_service_gives_each_hold_a_fresh_id() -> None:
    sales = Sales(MemoryStorage(), clock=ManualClock(NOW))
    sales.open(sale_event())
    holds = [sales.reserve("fest", f"c{i}", "CN", {"phone-red": 1}) for i in range(20)]
    assert all(HEX_ID.fullmatch(h.id) for h in holds)
    assert len({h.id for h in holds}) == 20


def test_one_batch_reads_the_clock_once_and_its_holds_share_the_time() -> None:
    readings: list[datetime] = []

    def clock() -> datetime:
        readings.append(NOW)
        return NOW

    sales = Sales(MemoryStorage(), clock=clock)
    sales.open(sale_event(hold_seconds=600))
    cmds = [ReserveCommand("fest", f"c{i}", "CN", {"phone-red": 1}) for i in range(5)]
    results = sales.reserve_many(cmds)
    assert len(readings) == 1
    for hold in results:
        assert isinstance(hold, Hold)
        assert hold.created_at == NOW
        assert hold.expires_at == NOW + timedelta(seconds=600)


# -- fingerprint ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "lines", "expected"),
    [
        # the values stored by earlier versions: a replay after an upgrade must still match
        (Channel(), (HoldLine("phone", 1, 99900),), "35fb9c220b7736ee3ed2b70a"),
        (
            Channel(ChannelKind.MARKETPLACE, "flipkart", "weibo"),
            (HoldLine("a", 2, 100), HoldLine("b", 3, 250)),
            "a6c5e908a84393fa1f29505d",
        ),
    ],
)
def test_the_fingerprint_is_the_one_earlier_versions_stored(
    channel: Channel, lines: tuple[HoldLine, ...], expected: str
) -> None:
    customer, market, currency = ("alice", "CN", "CNY") if len(lines) == 1 else ("bob", "IN", "INR")
    hold = Hold("h", "ev", customer, market, channel, lines, currency, T, T)
    assert ReserveRequest("k", hold, (None,) * len(lines)).fingerprint == expected


# -- replay cache ---------------------------------------------------------------------------


def test_the_replay_cache_answers_the_first_success_byte_for_byte() -> None:
    cache = ReplayCache(entries=10, seconds=60)
    key = ("c1", "POST", "/v1/holds", "k1")
    first = (201, b'{"id":"h1"}', ((b"content-type", b"application/json"),))
    assert cache.get(key, b"fp") is None
    cache.put(key, b"fp", first)
    assert cache.get(key, b"fp") == first
    assert replayed(first) == (
        201,
        b'{"id":"h1"}',
        ((b"content-type", b"application/json"), (b"idempotent-replayed", b"true")),
    )
    assert cache.get(key, b"another body") is None  # storage says what that one is


def test_the_replay_cache_forgets_the_oldest_and_the_stale() -> None:
    cache = ReplayCache(entries=2, seconds=60)
    for k in ("k1", "k2", "k3"):
        cache.put(("c1", "POST", "/v1/holds", k), b"fp", (201, k.encode(), ()))
    assert cache.get(("c1", "POST", "/v1/holds", "k1"), b"fp") is None
    assert cache.get(("c1", "POST", "/v1/holds", "k3"), b"fp") is not None
    stale = ReplayCache(entries=2, seconds=-1)
    stale.put(("c1", "POST", "/v1/holds", "k1"), b"fp", (201, b"{}", ()))
    assert stale.get(("c1", "POST", "/v1/holds", "k1"), b"fp") is None


def test_replay_entries_are_not_left_for_the_garbage_collector_to_walk() -> None:
    cache = ReplayCache(entries=10, seconds=60)
    cache.put(("c1", "POST", "/v1/holds", "k1"), b"fp", (201, b"{}", ((b"a", b"b"),)))
    gc.collect()
    gc.collect()  # a tuple is untracked once the tuples in it are
    assert not gc.is_tracked(next(iter(cache._items.values())))


# -- hold JSON ------------------------------------------------------------------------------


def test_the_hold_json_spells_the_state_and_the_channel_kind_as_text() -> None:
    hold = Hold("h1", "ev", "c1", "CN", Channel(), (HoldLine("phone", 2, 100),), "CNY", T, T)
    out = schemas.encoder.encode(schemas.hold_out(hold))
    assert b'"channel":{"kind":"online","name":"","referral":""},"state":"held"' in out
    assert b'"amount":{"amount":200,"currency":"CNY"},"units":2' in out


# -- metrics --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seconds", [0.0, 0.0005, 0.001, 0.0010001, 0.0025, 0.03, 1.0, 2.5, 2.6, 100.0]
)
def test_each_observation_lands_in_the_first_bucket_that_holds_it(seconds: float) -> None:
    metrics = Metrics()
    metrics.observe("/v1/holds", "POST", 201, seconds)
    expected = next((i for i, bound in enumerate(BUCKETS) if seconds <= bound), len(BUCKETS))
    # the exposition's buckets are cumulative: back to one count per bucket
    [histogram] = [
        f
        for f in text_string_to_metric_families(metrics.render({}).decode())
        if f.name == "lampo_http_request_duration_seconds"
    ]
    cumulative = [s.value for s in histogram.samples if s.name.endswith("_bucket")]
    counts = [b - a for a, b in zip([0.0, *cumulative], cumulative, strict=False)]
    assert len(counts) == len(BUCKETS) + 1  # one per bound, and +Inf
    assert counts[expected] == 1
    assert sum(counts) == 1


# -- the collector's threshold ---------------------------------------------------------------


@pytest.fixture
def gc_threshold() -> Iterator[None]:
    saved = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*saved)


@pytest.mark.usefixtures("gc_threshold")
def test_tune_gc_raises_the_young_threshold_only() -> None:
    gc.set_threshold(700, 10, 10)
    web_asgi.tune_gc()
    assert gc.get_threshold() == (web_asgi.GC_YOUNG_THRESHOLD, 10, 10)
    gc.set_threshold(50_000, 5, 5)  # a deployment's own, higher setting stays
    web_asgi.tune_gc()
    assert gc.get_threshold() == (50_000, 5, 5)
