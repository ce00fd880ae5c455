"""Idempotency at the HTTP edge, over a real ``lampo serve`` on SQLite, Redis and
Redis+PostgreSQL, restarted between requests.

The rule (docs/architecture.md, "The idempotency rule"): storage's durable record of a
key is the only source of truth. A process's caches may answer only what that record
would answer, and never a refusal that storage did not make for that exact key and body.
So a restart, which empties the caches, never changes an answer: every answer to (K, A)
after A's first success is that same hold; another request under K is a conflict; and a
refused call is evaluated again, however often it was refused before.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from lampo.domain.errors import Unavailable
from lampo.storage import from_url
from tests.contract._servers import (
    drop_redis_postgres,
    drop_redis_prefix,
    redis_postgres_url,
    redis_url,
)
from tests.e2e._http import Reply, Server, live_event, running_server

#: A sold-out SKU stays known for the whole test and no sweep forgets it, so the
#: sold-out cache answers every time it can (the default lets it forget within a second).
ENV = {"LAMPO_SOLDOUT_TTL": "3000", "LAMPO_SWEEP_INTERVAL": "0"}


@dataclass(frozen=True)
class Storage:
    """How to make the URL of a fresh store, and how to remove it afterwards."""

    name: str
    url: Callable[[Path], str]
    dispose: Callable[[str], None] | None = None


def _sqlite(tmp: Path) -> str:
    return f"sqlite:///{(tmp / 'lampo.db').resolve().as_posix()}"


STORAGES = [
    pytest.param(Storage("sqlite", _sqlite), id="sqlite", marks=pytest.mark.sqlite),
    pytest.param(
        Storage("redis", redis_url, drop_redis_prefix), id="redis", marks=pytest.mark.redis
    ),
    pytest.param(
        Storage("redis+postgresql", redis_postgres_url, drop_redis_postgres),
        id="redis+postgresql",
        marks=pytest.mark.redis_postgres,
    ),
]


def fresh_store(spec: Storage, tmp: Path) -> str:
    """The URL of a fresh store; a missing server skips loudly (fails when CI=true)."""
    url = spec.url(tmp)
    try:
        from_url(url).close()
    except (Unavailable, ImportError, OSError) as exc:
        message = f"{spec.name} unavailable ({exc}): its HTTP idempotency tests did NOT run"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " and CI=true requires every backend")
        pytest.skip(message)
    return url


class Processes:
    """Two ``lampo serve`` processes on one store, each with a memory of its own; requests
    go to ``server``, the current one. ``switch`` makes one current (as a retry that
    lands on another worker does). ``restart`` stops the current one and puts in its place
    a new process on the same store that has answered nothing: nothing of the old one's
    memory survives. To keep a restart short, that process was started ahead, while the
    others served, and the old one stops in the background."""

    def __init__(self, tmp: Path, storage: str) -> None:
        self._tmp, self._storage = tmp, storage
        self._pool = ThreadPoolExecutor(max_workers=3)
        started = [self._pool.submit(self._start) for _ in range(3)]
        self._running = [started[0].result(), started[1].result()]
        self._spare = started[2]
        self._current = 0
        self._stopping: list[Future[None]] = []

    def _start(self) -> tuple[ExitStack, Server]:
        folder = self._tmp / uuid.uuid4().hex  # its log and secrets file
        folder.mkdir()
        stack = ExitStack()
        return stack, stack.enter_context(running_server(folder, storage=self._storage, **ENV))

    @property
    def server(self) -> Server:
        return self._running[self._current][1]

    def switch(self, to: int) -> None:
        """Send the next requests to process ``to`` (0 or 1)."""
        self._current = to

    def restart(self) -> None:
        stack, _ = self._running[self._current]
        self._stopping.append(self._pool.submit(stack.close))
        self._running[self._current] = self._spare.result()
        self._spare = self._pool.submit(self._start)

    def close(self) -> None:
        try:
            for stack, _ in (*self._running, self._spare.result()):
                stack.close()
            for stopping in self._stopping:
                stopping.result()
        finally:
            self._pool.shutdown()


@pytest.fixture(scope="module", params=STORAGES)
def store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    spec: Storage = request.param
    url = fresh_store(spec, tmp_path_factory.mktemp(f"idem-{spec.name}"))
    yield url
    if spec.dispose is not None:
        spec.dispose(url)


@pytest.fixture(scope="module")
def served(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    server = Processes(tmp_path_factory.mktemp("idem-serve"), store_url)
    try:
        yield server
    finally:
        server.close()


def reserve(srv: Server, buyer: str, event: str, key: str, body: dict[str, Any]) -> Reply:
    headers = {**srv.buyer(buyer), "Idempotency-Key": key}
    return srv.request("POST", "/v1/holds", {"event": event, **body}, headers)


def tv(quantity: int, market: str = "CN") -> dict[str, Any]:
    return {"market": market, "items": {"tv-55": quantity}}


def new_event(srv: Server, units: int) -> str:
    event = live_event(f"idem-{uuid.uuid4().hex[:10]}", {"tv-55": units})
    srv.load(event)
    return event.id


# -- the sequences of issue 10 ---------------------------------------------------------------


def test_after_a_restart_another_body_under_a_key_does_not_take_the_key_over(
    served: Processes,
) -> None:
    event = new_event(served.server, 5)
    first = reserve(served.server, "alba", event, "k1", tv(1))
    assert first.status == 201, first.body
    served.restart()
    other = reserve(served.server, "alba", event, "k1", tv(2))
    assert other.status == 422
    assert other.json["reason"] == "idempotency-conflict"
    for _ in range(2):  # the first request keeps its hold, however often it comes back
        again = reserve(served.server, "alba", event, "k1", tv(1))
        assert again.status == 201, again.body
        assert again.json["id"] == first.json["id"]
    assert served.server.stock(event)["tv-55"]["held"] == 1


def test_after_a_restart_the_replay_of_the_last_unit_gets_its_hold_not_sold_out(
    served: Processes,
) -> None:
    event = new_event(served.server, 1)
    first = reserve(served.server, "bea", event, "last", tv(1))
    assert first.status == 201, first.body
    served.restart()
    late = reserve(served.server, "carlo", event, "late", tv(1))
    assert late.status == 409
    assert late.json["reason"] == "sold-out"
    for _ in range(2):  # known sold out now, yet the key's record answers first
        again = reserve(served.server, "bea", event, "last", tv(1))
        assert again.status == 201, again.body
        assert again.json["id"] == first.json["id"]
    # the record of the key answers another request under it too: a conflict
    assert reserve(served.server, "bea", event, "last", tv(1, "IN")).status == 422
    # a key with no record is refused sold-out, and that refusal stays the cache's alone
    assert reserve(served.server, "bea", event, "other", tv(1)).status == 409
    assert served.server.stock(event)["tv-55"] == {
        "sku": "tv-55",
        "allocation": 1,
        "available": 0,
        "held": 1,
        "sold": 0,
    }


def test_a_refused_request_is_evaluated_again_when_it_comes_back(served: Processes) -> None:
    srv = served.server
    event = new_event(srv, 1)
    holder = reserve(srv, "dora", event, "d1", tv(1)).json
    refused = reserve(srv, "elio", event, "e1", tv(1))
    assert refused.status == 409
    headers = {**srv.buyer("dora"), "Idempotency-Key": "release-d1"}
    assert srv.request("POST", f"/v1/holds/{holder['id']}/release", headers=headers).status == 200
    retried = reserve(srv, "elio", event, "e1", tv(1))
    assert retried.status == 201, retried.body
    assert "idempotent-replayed" not in retried.headers


def test_every_route_with_a_key_evaluates_a_refused_call_again(served: Processes) -> None:
    """The admin's refund of a hold not yet paid is refused; once it is paid, the same
    call (same key, same body) refunds it: the refusal was not kept as the key's reply."""
    srv = served.server
    event = new_event(srv, 2)
    hold = reserve(srv, "fede", event, "f1", tv(1)).json
    refund = f"/v1/admin/holds/{hold['id']}/refund"
    early = srv.admin("POST", refund, Idempotency_Key="refund-f1")
    assert early.status == 409
    assert early.json["reason"] == "illegal-transition"
    assert srv.pay("fede", hold["id"], key="pay-f1").status == 200
    refunded = srv.admin("POST", refund, Idempotency_Key="refund-f1")
    assert refunded.status == 200, refunded.body
    assert refunded.json["state"] == "refunded"
    again = srv.admin("POST", refund, Idempotency_Key="refund-f1")
    assert (again.status, again.body) == (200, refunded.body)
    assert again.headers.get("idempotent-replayed") == "true"


# -- generated sequences of (process, key, body), releases and restarts -------------------------

KEYS = ("k1", "k2")
UNITS = 3


@dataclass
class First:
    """The first success under a key: what was asked, and the hold it made."""

    market: str
    quantity: int
    hold: str


def test_generated_sequences_of_requests_and_restarts_keep_every_key_s_first_answer(
    served: Processes,
) -> None:
    """Every answer to (K, A) after A's first success is that hold (whatever the bytes
    of A: storage's fingerprint says what the same request is); another request under K
    is a conflict; a refusal (sold out) is never remembered as K's answer, so the same
    request succeeds once units come back. Checked against a model of the stock and of
    each process's sold-out memory (armed by storage's "0 available", forgotten by a
    release in that process or its restart), which may refuse a key with no record."""

    class Requests(RuleBasedStateMachine):
        @initialize(restarts=st.integers(0, 2))
        def start(self, restarts: int) -> None:
            self.event = new_event(served.server, UNITS)
            self.buyer = f"b-{uuid.uuid4().hex[:8]}"
            self.available = UNITS
            self.first: dict[str, First] = {}
            self.held: dict[str, int] = {}  # hold id -> units, of holds not released
            self.knows_soldout = [False, False]  # per process
            # A restart costs a process start: a third of the examples have one, once a
            # key has an answer to keep (the other process, with a memory of its own, is
            # the free way to the same test).
            self.restarted = restarts != 0

        @rule(
            process=st.sampled_from([0, 1]),
            key=st.sampled_from(KEYS),
            market=st.sampled_from(["CN", "IN"]),
            quantity=st.integers(1, 2),
            spaced=st.booleans(),
        )
        def send(self, process: int, key: str, market: str, quantity: int, spaced: bool) -> None:
            served.switch(process)
            srv = served.server
            body = {"event": self.event, "market": market, "items": {"tv-55": quantity}}
            raw = json.dumps(body, indent=1 if spaced else None).encode()
            headers = {
                **srv.buyer(self.buyer),
                "Idempotency-Key": key,
                "Content-Type": "application/json",
            }
            reply = srv.request("POST", "/v1/holds", raw=raw, headers=headers)
            first = self.first.get(key)
            if first is not None:
                if (first.market, first.quantity) == (market, quantity):
                    assert reply.status == 201, reply.body
                    assert reply.json["id"] == first.hold
                else:
                    assert reply.status == 422, reply.body
                    assert reply.json["reason"] == "idempotency-conflict"
            elif quantity <= self.available and not self.knows_soldout[process]:
                assert reply.status == 201, reply.body
                self.first[key] = First(market, quantity, reply.json["id"])
                self.held[reply.json["id"]] = quantity
                self.available -= quantity
            else:
                assert reply.status == 409, reply.body
                assert reply.json["reason"] == "sold-out"
                if self.available == 0:
                    self.knows_soldout[process] = True

        @precondition(lambda self: bool(self.held))
        @rule(process=st.sampled_from([0, 1]), data=st.data())
        def release(self, process: int, data: st.DataObject) -> None:
            # in the order they were placed: hold ids are random, the draws must not be
            hold = data.draw(st.sampled_from(list(self.held)))
            served.switch(process)
            srv = served.server
            headers = {**srv.buyer(self.buyer), "Idempotency-Key": f"release-{hold}"}
            reply = srv.request("POST", f"/v1/holds/{hold}/release", headers=headers)
            assert reply.status == 200, reply.body
            self.available += self.held.pop(hold)
            self.knows_soldout[process] = False

        @precondition(lambda self: bool(self.first) and not self.restarted)
        @rule(process=st.sampled_from([0, 1]))
        def restart(self, process: int) -> None:
            served.switch(process)
            served.restart()
            self.knows_soldout[process] = False
            self.restarted = True

    run_state_machine_as_test(
        Requests,
        settings=settings(
            max_examples=20,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            # no shrinking: each step of a candidate costs real requests and restarts, and
            # the failing sequence as found (printed step by step) is short enough to read
            phases=(Phase.explicit, Phase.reuse, Phase.generate),
        ),
    )


# -- identical requests at once ---------------------------------------------------------------

ROUNDS = 24
SKUS = ("phone-black", "phone-red", "tv-55")
PAIRS = 24  # per round, each for one unit of SKUS[pair % 3]
STOCK = 3  # of each SKU per round: each SKU sells out while its last pairs are coming


def test_two_identical_requests_sent_at_once_get_the_same_answer(
    store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Pairs of identical requests (same buyer, key and body), each pair sent at once on
    two connections, to two workers, while the SKUs sell out: within a pair, the same
    status and the same hold, whichever worker took each request."""
    tmp = tmp_path_factory.mktemp("idem-pairs")
    with running_server(tmp, workers=2, storage=store_url, **ENV) as srv:
        for _ in range(ROUNDS):
            event = live_event(f"pairs-{uuid.uuid4().hex[:10]}", dict.fromkeys(SKUS, STOCK))
            srv.load(event)
            replies = send_pairs(srv, event.id)
            differing = []
            for pair in range(PAIRS):
                a, b = replies[2 * pair], replies[2 * pair + 1]
                answers = [(r.status, r.json.get("id") or r.json.get("reason")) for r in (a, b)]
                if answers[0] != answers[1]:
                    differing.append((pair, *answers))
            assert not differing, (event.id, differing)
            statuses = [replies[2 * pair].status for pair in range(PAIRS)]
            assert statuses.count(201) == STOCK * len(SKUS), statuses
            assert statuses.count(409) == PAIRS - STOCK * len(SKUS), statuses
            assert all(level["held"] == STOCK for level in srv.stock(event.id).values())


def send_pairs(srv: Server, event: str) -> list[Reply]:
    """Every pair's two requests, the two of a pair released together (a barrier), many
    pairs at once; the replies in order (pair i: replies 2i and 2i + 1)."""
    barriers = [threading.Barrier(2, timeout=60) for _ in range(PAIRS)]

    def send(i: int) -> Reply:
        pair = i // 2
        body = {"event": event, "market": "CN", "items": {SKUS[pair % len(SKUS)]: 1}}
        headers = {
            **srv.buyer(f"{event}-{pair}"),
            "Idempotency-Key": f"pair-{pair}",
            "Content-Type": "application/json",
        }
        raw = json.dumps(body).encode()
        barriers[pair].wait()
        return srv.request("POST", "/v1/holds", raw=raw, headers=headers)

    # tasks start in order, so the two of a pair are always taken by two threads
    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(send, range(2 * PAIRS)))
