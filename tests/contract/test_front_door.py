"""The front door's storage on every backend (``storage.door.DoorStore``) and the service
over it: registrations unique under concurrency, joins idempotent, the pre-queue's freeze
atomic under concurrent polls, sequence numbers after opening distinct and in arrival
order, the lottery reproducible, refusals changing nothing.

Concurrency runs through several stores over one state (``Backend.open_shared``: as many
processes would open it, each with its own connections and writer), started together on
a barrier; no test waits on a clock.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lampo.domain.errors import AlreadyRegistered, LampoError, NotRegistered
from lampo.domain.frontdoor import AdmissionLine, PlaceState, draw, rank_key, solve
from lampo.services.clock import ManualClock
from lampo.services.frontdoor import FrontDoorService
from lampo.services.sales import Sales
from lampo.storage import Storage
from lampo.storage.door import DoorStore, Entry, Registration, door_store
from lampo.storage.port import CorruptStore
from tests.contract.conftest import (
    MEMORY,
    POSTGRES,
    REDIS,
    REDIS_CLUSTER,
    REDIS_POSTGRES,
    SQLITE,
    Backend,
)
from tests.factories import CN_OPENS, door_event

T = TypeVar("T")

SECRET = b"the contract suite's secret, 32b"
BEFORE = CN_OPENS - timedelta(days=1)

DOOR_STORAGES = [
    pytest.param(MEMORY, id="memory"),
    pytest.param(SQLITE, id="sqlite", marks=pytest.mark.sqlite),
    pytest.param(POSTGRES, id="postgres", marks=pytest.mark.postgres),
    pytest.param(REDIS, id="redis", marks=pytest.mark.redis),
    pytest.param(REDIS_CLUSTER, id="redis-cluster", marks=pytest.mark.redis_cluster),
    pytest.param(REDIS_POSTGRES, id="redis+postgres", marks=pytest.mark.redis_postgres),
]

THREADS = 8


@pytest.fixture(params=DOOR_STORAGES)
def door_backend(request: pytest.FixtureRequest) -> Backend:
    spec: Backend = request.param
    return spec


@pytest.fixture
def shared(door_backend: Backend, tmp_path: Path) -> Iterator[list[Storage]]:
    """``THREADS`` stores over one fresh state, closed after the test."""
    stores = door_backend.open_shared(tmp_path, THREADS)
    try:
        yield stores
    finally:
        for store in {id(s): s for s in stores}.values():
            store.close()


@pytest.fixture
def doors(shared: list[Storage]) -> list[DoorStore]:
    return [door_store(s) for s in shared]


def at_once(work: list[Callable[[], T]]) -> list[T | BaseException]:
    """Run each of ``work`` in its own thread, all released together; their results."""
    barrier = threading.Barrier(len(work))
    out: list[T | BaseException] = [RuntimeError("did not run")] * len(work)

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = work[i]()
        except BaseException as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def state_of(door: DoorStore, buyers: list[str]) -> tuple[object, ...]:
    """Everything of the front door's state a refusal must leave as it was."""
    return (
        door.registrations("fest"),
        list(door.export("fest")),
        door.drawn("fest"),
        door.counts("fest", "CN"),
        [door.entry("fest", "CN", b) for b in buyers],
    )


# -- registrations ------------------------------------------------------------------------
def test_of_many_registering_one_account_at_once_exactly_one_wins(doors: list[DoorStore]) -> None:
    work = [
        (lambda d=d, n=n: d.register("fest", Registration("ann", BEFORE, f"{n:020x}"), ()))
        for n, d in enumerate(doors)
    ]
    found = at_once(work)
    assert sorted(map(str, found)) == ["", *["account"] * (THREADS - 1)]
    assert doors[0].registrations("fest") == 1
    assert doors[0].registered("fest", "ann")


def test_of_many_registering_one_phone_at_once_exactly_one_wins(doors: list[DoorStore]) -> None:
    phone = "ab" * 10
    work = [
        (lambda d=d, n=n: d.register("fest", Registration(f"c{n}", BEFORE, phone), ("phone",)))
        for n, d in enumerate(doors)
    ]
    found = at_once(work)
    assert sorted(map(str, found)) == ["", *["phone"] * (THREADS - 1)]
    [winner] = list(doors[0].export("fest"))
    assert winner.phone_hash == phone
    assert doors[-1].registrations("fest") == 1


def test_a_registration_refused_for_its_device_writes_nothing(doors: list[DoorStore]) -> None:
    door = doors[0]
    assert (
        door.register("fest", Registration("ann", BEFORE, "ab" * 10, "cd" * 10), ("device",)) == ""
    )
    # the phone is not unique here, the device is: refused by the device, nothing kept
    again = Registration("bob", BEFORE, "ab" * 10, "cd" * 10)
    before = state_of(door, ["bob"])
    assert door.register("fest", again, ("phone", "device")) == "device"
    assert state_of(door, ["bob"]) == before
    assert not door.registered("fest", "bob")
    # without the device it registers, sharing the phone: phone is not unique for it
    assert door.register("fest", Registration("bob", BEFORE, "ab" * 10), ("device",)) == ""
    assert [r.account for r in door.export("fest")] == ["ann", "bob"]


# -- the lottery --------------------------------------------------------------------------
def test_the_lottery_is_reproducible_and_the_first_draw_stands(shared: list[Storage]) -> None:
    event = door_event(
        "fest",
        {"tv-55": 2},
        require_registration=True,
        lottery_factor=3,
        registration_closes=CN_OPENS - timedelta(hours=1),
    )
    services = []
    for storage in shared:
        clock = ManualClock(BEFORE)
        sales = Sales(storage, clock=clock)
        sales.open(event)
        services.append((FrontDoorService(sales, door_store(storage), SECRET), clock))
    first, clock = services[0]
    for n in range(40):
        first.register("fest", f"c{n:02}")
    for _, c in services:
        c.set(CN_OPENS - timedelta(minutes=30))
    draws = at_once([(lambda s=s: s.draw("fest")) for s, _ in services])
    kept = draws[0]
    assert not isinstance(kept, BaseException)
    assert all(d == kept for d in draws)
    accounts = [f"c{n:02}" for n in range(40)]
    assert list(kept.winners) == draw(bytes.fromhex(kept.seed), accounts, 6)
    assert kept.registrations == 40
    assert first.store.drawn("fest") == kept
    assert all(first.store.won("fest", w) for w in kept.winners)
    assert sum(first.store.won("fest", a) for a in accounts) == 6


# -- the waiting room -------------------------------------------------------------------
def entry(n: int, seq: int = 0) -> Entry:
    return Entry(f"{n:032x}", seq, BEFORE)


def test_joining_twice_answers_the_first_entry(doors: list[DoorStore]) -> None:
    door = doors[0]
    first = door.join("fest", "CN", "ann", entry(1), rank=5)
    assert door.join("fest", "CN", "ann", entry(2), rank=1) == first
    assert door.counts("fest", "CN").prequeue == 1
    door.freeze("fest", "CN")
    numbered = door.join("fest", "CN", "ann", entry(3), None)
    assert (numbered.ticket, numbered.seq) == (first.ticket, 1)
    assert door.counts("fest", "CN").last == 1


def test_one_buyer_joining_from_many_workers_at_once_gets_one_entry(
    doors: list[DoorStore],
) -> None:
    got = at_once(
        [
            (lambda d=d, n=n: d.join("fest", "CN", "ann", entry(n), None))
            for n, d in enumerate(doors)
        ]
    )
    assert len({(e.ticket, e.seq) for e in got if isinstance(e, Entry)}) == 1
    assert doors[0].counts("fest", "CN").last == 1


def test_the_freeze_numbers_the_prequeue_once_under_concurrent_polls(
    doors: list[DoorStore],
) -> None:
    seed = doors[0].seed("fest", "CN", b"\x01" * 32)
    assert doors[-1].seed("fest", "CN", b"\x02" * 32) == seed  # the first stands
    buyers = [f"b{n:03}" for n in range(120)]
    tickets = {}
    for n, buyer in enumerate(buyers):
        e = entry(n)
        tickets[buyer] = e.ticket
        doors[n % THREADS].join("fest", "CN", buyer, e, rank_key(seed, e.ticket))
    assert doors[0].counts("fest", "CN").prequeue == 120

    def poll_some(d: DoorStore, part: list[str]) -> dict[str, int]:
        out = {}
        for buyer in part:
            assert d.freeze("fest", "CN") == 120
            found = d.entry("fest", "CN", buyer)
            assert found is not None
            out[buyer] = found.seq
        return out

    parts = [buyers[i::THREADS] for i in range(THREADS)]
    results = at_once(
        [(lambda d=d, p=p: poll_some(d, p)) for d, p in zip(doors, parts, strict=True)]
    )
    seqs: dict[str, int] = {}
    for r in results:
        assert isinstance(r, dict), r
        seqs.update(r)
    assert sorted(seqs.values()) == list(range(1, 121))
    order = sorted(buyers, key=lambda b: (rank_key(seed, tickets[b]), b))
    assert [seqs[b] for b in order] == list(range(1, 121))
    counts = doors[0].counts("fest", "CN")
    assert (counts.frozen, counts.prequeue, counts.last) == (True, 120, 120)


def test_joins_after_opening_get_distinct_seqs_in_arrival_order(doors: list[DoorStore]) -> None:
    for n in range(10):
        doors[0].join("fest", "CN", f"pre{n}", entry(1000 + n), rank=n)
    per_thread = 25

    def join_many(d: DoorStore, t: int) -> list[int]:
        return [
            d.join("fest", "CN", f"t{t}-{k}", entry(t * 100 + k), None).seq
            for k in range(per_thread)
        ]

    results = at_once([(lambda d=d, t=t: join_many(d, t)) for t, d in enumerate(doors)])
    seqs: list[int] = []
    for r in results:
        assert isinstance(r, list), r
        assert r == sorted(r)  # arrival order within each thread
        seqs += r
    assert sorted(seqs) == list(range(11, 11 + THREADS * per_thread))
    counts = doors[0].counts("fest", "CN")
    assert (counts.prequeue, counts.last, counts.joined) == (
        10,
        10 + THREADS * per_thread,
        10 + THREADS * per_thread,
    )


def test_a_join_to_a_frozen_prequeue_is_numbered_after_it(doors: list[DoorStore]) -> None:
    door = doors[0]
    door.join("fest", "CN", "early", entry(1), rank=3)
    assert door.freeze("fest", "CN") == 1
    late = door.join("fest", "CN", "late", entry(2), rank=1)  # a worker's clock behind
    assert late.seq == 2
    assert door.freeze("fest", "CN") == 1


def test_the_admission_line_is_kept_per_queue(doors: list[DoorStore]) -> None:
    line = AdmissionLine(CN_OPENS, 40, 250)
    doors[0].set_line("fest", "CN", line)
    assert doors[-1].counts("fest", "CN").line == line
    assert doors[-1].counts("fest", "IN").line is None


# -- the service over it -------------------------------------------------------------------
def test_refusals_change_nothing_and_are_counted(shared: list[Storage]) -> None:
    event = door_event(require_registration=True, unique=("phone",), pow_bits=4)
    clock = ManualClock(BEFORE)
    sales = Sales(shared[0], clock=clock)
    sales.open(event)
    door = FrontDoorService(sales, door_store(shared[0]), SECRET)
    door.register("fest", "ann", "ab" * 10)
    before = state_of(door.store, ["ann", "bob"])
    refused: list[type[LampoError]] = []
    for attempt in (
        lambda: door.register("fest", "ann", "ef" * 10),
        lambda: door.register("fest", "bob", "ab" * 10),
        lambda: door.join("fest", "CN", "ann"),  # no proof of work
        lambda: door.poll("ticket.x.y", "ann"),
    ):
        with pytest.raises(LampoError) as refusal:
            attempt()
        refused.append(type(refusal.value))
    challenge = door.challenge("fest", "bob")
    with pytest.raises(NotRegistered):
        door.join("fest", "CN", "bob", challenge.token, solve(challenge.token, 4))
    assert state_of(door.store, ["ann", "bob"]) == before
    assert refused[:2] == [AlreadyRegistered, AlreadyRegistered]
    assert sum(door.refusals.values()) == 5


def test_a_numbered_ticket_polls_to_its_admission(shared: list[Storage]) -> None:
    event = door_event(admit_per_second=10)
    clock = ManualClock(BEFORE)
    sales = Sales(shared[0], clock=clock)
    sales.open(event)
    door = FrontDoorService(sales, door_store(shared[0]), SECRET, cache_seconds=0)
    tickets = [door.join("fest", "CN", f"c{n}") for n in range(30)]
    clock.set(CN_OPENS + timedelta(seconds=1))
    polls = [door.poll(t.token, f"c{n}") for n, t in enumerate(tickets)]
    assert sorted(p.seq for p in polls) == list(range(1, 31))
    assert sum(p.state is PlaceState.ADMITTED for p in polls) == 10
    renewed = {p.seq: p.ticket for p in polls}
    again = door.poll(renewed[25], next(f"c{n}" for n, p in enumerate(polls) if p.seq == 25))
    assert (again.state, again.ahead) == (PlaceState.WAITING, 14)
    assert door.state("fest", "CN").admitted == 10


def test_joins_after_the_opening_come_after_the_prequeue_though_nobody_polled(
    shared: list[Storage],
) -> None:
    """The first thing after the opening is a join (no poll froze the pre-queue yet): a
    late arrival is numbered after every pre-queue member, and a member joining again gets
    its place, not 0."""
    event = door_event(admit_per_second=10)
    clock = ManualClock(BEFORE)
    sales = Sales(shared[0], clock=clock)
    sales.open(event)
    door = FrontDoorService(sales, door_store(shared[0]), SECRET, cache_seconds=0)
    early = [door.join("fest", "CN", f"e{n}") for n in range(5)]
    assert {t.seq for t in early} == {0}
    clock.set(CN_OPENS + timedelta(seconds=1))
    again = door.join("fest", "CN", "e2")  # the first thing after the opening
    late = door.join("fest", "CN", "late")
    assert 1 <= again.seq <= 5
    assert late.seq == 6
    seqs = [door.poll(t.token, f"e{n}").seq for n, t in enumerate(early)]
    assert sorted(seqs) == [1, 2, 3, 4, 5]
    assert seqs[2] == again.seq


def test_workers_polling_at_the_opening_freeze_the_prequeue_once(shared: list[Storage]) -> None:
    """A worker per store (as processes would), each polling its share of the pre-queue's
    tickets at once, the first moment after the opening: one seq 1..P each."""
    event = door_event(admit_per_second=5)
    clock = ManualClock(BEFORE)
    services = []
    for storage in shared:
        sales = Sales(storage, clock=clock)
        sales.open(event)
        services.append(FrontDoorService(sales, door_store(storage), SECRET))
    buyers = [f"b{n:03}" for n in range(64)]
    tickets = {b: services[n % THREADS].join("fest", "CN", b).token for n, b in enumerate(buyers)}
    clock.set(CN_OPENS + timedelta(seconds=2))

    def poll_share(service: FrontDoorService, share: list[str]) -> dict[str, int]:
        return {b: service.poll(tickets[b], b).seq for b in share}

    shares = [buyers[i::THREADS] for i in range(THREADS)]
    results = at_once(
        [(lambda s=s, p=p: poll_share(s, p)) for s, p in zip(services, shares, strict=True)]
    )
    seqs: dict[str, int] = {}
    for r in results:
        assert isinstance(r, dict), r
        seqs.update(r)
    assert sorted(seqs.values()) == list(range(1, 65))
    counts = services[0].store.counts("fest", "CN")
    assert (counts.frozen, counts.prequeue, counts.last) == (True, 64, 64)
    assert services[-1].state("fest", "CN").admitted == 10


@pytest.mark.redis
def test_a_corrupt_redis_key_stops_a_write_before_its_first_write(tmp_path: Path) -> None:
    """A join whose pre-queue key holds another type, a registration whose identity key
    does: ``CorruptStore``, and nothing written (the scripts check every key first)."""
    store = REDIS.open(tmp_path)
    try:
        door = door_store(store)
        raw = store._r  # type: ignore[attr-defined]  # the store's own connection
        base = store._base("fest")  # type: ignore[attr-defined]
        raw.set(base + ":dq:CN:p", "not a sorted set")
        with pytest.raises(CorruptStore):
            door.join("fest", "CN", "ann", entry(1), rank=7)
        assert not raw.exists(base + ":dq:CN:e")
        assert raw.hget(base + ":dq:CN", "pre") is None
        raw.set(base + ":di:phone", "not a hash")
        with pytest.raises(CorruptStore):
            door.register("fest", Registration("ann", BEFORE, "ab" * 10), ("phone",))
        assert door.registrations("fest") == 0
    finally:
        store.close()


def test_a_join_after_a_lull_restarts_the_line_at_the_queue(doors: list[DoorStore]) -> None:
    """The line may not run ahead of the queue: a numbered join that finds everyone in
    line admitted restarts the line there, so a quiet spell banks no admissions."""
    door = doors[0]
    default = AdmissionLine(CN_OPENS, 0, 1)

    def join(n: int, seconds: float) -> int:
        at = CN_OPENS + timedelta(seconds=seconds)
        return door.join("fest", "CN", f"c{n}", Entry(f"{n:032x}", 0, at), None, default).seq

    assert join(1, 1.0) == 1  # the line had admitted 1 of 0: restarted at 1 s
    assert door.counts("fest", "CN").line == AdmissionLine(CN_OPENS + timedelta(seconds=1), 0, 1)
    assert join(2, 1.5) == 2  # 0 of 1 admitted at 1.5 s: the line stays
    assert door.counts("fest", "CN").line == AdmissionLine(CN_OPENS + timedelta(seconds=1), 0, 1)
    assert join(3, 100.0) == 3  # both admitted long ago: restarted at 100 s, at 2
    restarted = AdmissionLine(CN_OPENS + timedelta(seconds=100), 2, 1)
    assert doors[-1].counts("fest", "CN").line == restarted
    door.set_line("fest", "CN", AdmissionLine(CN_OPENS, 0, 1_000_000))
    assert join(4, 100.5) == 4  # a kept line counts over the default one
    kept = AdmissionLine(CN_OPENS + timedelta(seconds=100.5), 3, 1_000_000)
    assert door.counts("fest", "CN").line == kept


@given(
    times=st.lists(st.integers(0, 3), min_size=0, max_size=40),
    page=st.integers(1, 9),
)
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_the_export_walks_every_registration_once_in_order_across_pages(
    doors: list[DoorStore], times: list[int], page: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registrations at a few instants (many at one: the pages' bound falls inside a run
    of equal times), read in pages of ``page`` (SQL's export reads page by page): each
    one exactly once, by time then account."""
    from lampo.storage.sql import door as sql_door

    monkeypatch.setattr(sql_door, "EXPORT_PAGE", page)
    door = doors[0]
    event = f"export-{uuid.uuid4().hex[:8]}"
    made = []
    for n, second in enumerate(times):
        reg = Registration(f"acct-{(n * 7919) % 1000:03d}-{n}", BEFORE + timedelta(seconds=second))
        assert not door.register(event, reg, ())  # no identity found registered
        made.append(reg)
    got = list(door.export(event))
    assert got == sorted(made, key=lambda r: (r.at, r.account))
