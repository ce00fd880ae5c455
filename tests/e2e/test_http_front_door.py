"""The front door over real HTTP against ``lampo serve``, on SQLite and on Redis:
registration, the waiting room's tickets and admissions, the proof of work, and the gate
of the buy path (docs/front-door.md, docs/http-api.md "The front door").

Every event here is set around the server's own (test) clock, read just before, so a
test that moves the clock forward leaves the next one's windows where it wants them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lampo.domain.event import SaleEvent, Window
from lampo.domain.frontdoor import FrontDoor, solve
from tests.contract.conftest import MEMORY, REDIS, SQLITE, Backend
from tests.e2e._http import Reply, Server, running_server
from tests.factories import sale_event
from tests.hostile._stores import fresh_store

DEVICE = "d" * 32
PHONE = "a1" * 16


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(MEMORY, id="memory"),
        pytest.param(SQLITE, marks=pytest.mark.sqlite, id="sqlite"),
        pytest.param(REDIS, marks=pytest.mark.redis, id="redis"),
    ],
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    backend: Backend = request.param
    tmp: Path = tmp_path_factory.mktemp(f"door-{backend.name}")
    with fresh_store(backend, tmp) as (_, url), running_server(tmp, storage=url) as srv:
        yield srv


# -- helpers --------------------------------------------------------------------------
def server_now(server: Server) -> datetime:
    reply = server.admin("POST", "/v1/admin/clock", {"advance_seconds": 0})
    assert reply.status == 200, reply.body
    return datetime.fromisoformat(reply.json["now"])


def advance(server: Server, seconds: float) -> None:
    reply = server.admin("POST", "/v1/admin/clock", {"advance_seconds": seconds})
    assert reply.status == 200, reply.body


def door_event(
    server: Server,
    event_id: str,
    *,
    opens_in: timedelta = timedelta(minutes=-1),
    stock: int = 100,
    **door: Any,
) -> SaleEvent:
    """An event of one phone whose markets open ``opens_in`` from the server's now, with
    the front door ``door`` (a registration window, when asked for, closes at opening)."""
    opens = server_now(server).replace(microsecond=0) + opens_in
    if door.pop("registration", False):
        door.setdefault("registration_opens", opens - timedelta(hours=1))
        door.setdefault("registration_closes", opens)
    event = sale_event(event_id, {"phone-red": stock})
    window = Window(opens, opens + timedelta(hours=12))
    event = replace(event, windows={"CN": window, "IN": window}, front_door=FrontDoor(**door))
    server.load(event)
    return event


def register(server: Server, buyer: str, event: str, body: Any = None) -> Reply:
    headers = server.buyer(buyer)
    return server.request("POST", f"/v1/events/{event}/registrations", body, headers)


def join(server: Server, buyer: str, event: str, market: str = "CN", **body: str) -> Reply:
    return server.request(
        "POST", f"/v1/events/{event}/queue", {"market": market, **body}, server.buyer(buyer)
    )


def poll(server: Server, buyer: str, ticket: str) -> Reply:
    headers = {**server.buyer(buyer), "Lampo-Ticket": ticket}
    return server.request("GET", "/v1/queue/poll", headers=headers)


def admitted(server: Server, buyer: str, event: str) -> str:
    """The admission of ``buyer``, who joins ``event``'s CN queue, nobody before them: a
    second later (on the server's clock) the line has passed them at any rate."""
    ticket = join(server, buyer, event)
    assert ticket.status == 201, ticket.body
    advance(server, 1)
    place = poll(server, buyer, ticket.json["ticket"])
    assert place.status == 200, place.body
    assert place.json["state"] == "admitted", place.json
    admission: str = place.json["admission"]
    return admission


def reserve(
    server: Server, buyer: str, event: str, admission: str | None, key: str | None = None
) -> Reply:
    headers = {**server.buyer(buyer), "Idempotency-Key": key or uuid.uuid4().hex}
    if admission is not None:
        headers["Lampo-Admission"] = admission
    body = {"event": event, "market": "CN", "items": {"phone-red": 1}}
    return server.request("POST", "/v1/holds", body, headers)


def queue_state(server: Server, event: str) -> Any:
    reply = server.admin("GET", f"/v1/admin/events/{event}/queue")
    assert reply.status == 200, reply.body
    return reply.json


# -- registration -----------------------------------------------------------------------
def test_registering_twice_is_already_registered_and_counted_once(server: Server) -> None:
    event = door_event(
        server, "door-reg", opens_in=timedelta(hours=1), registration=True, unique=("device",)
    ).id
    first = register(server, "alice", event, {"device_hash": DEVICE, "phone_hash": PHONE})
    assert first.status == 201, first.body
    assert first.json["account"] == "alice"
    again = register(server, "alice", event, {"device_hash": "e" * 32})
    assert again.status == 409
    assert again.json["reason"] == "already-registered"
    assert again.json["identity"] == "account"
    same_device = register(server, "bruno", event, {"device_hash": DEVICE})
    assert same_device.status == 409
    assert same_device.json["reason"] == "already-registered"
    assert same_device.json["identity"] == "device"
    count = server.request("GET", f"/v1/events/{event}/registrations/count")
    assert count.status == 200
    assert count.json == {"event": event, "registrations": 1}
    csv = server.admin("GET", f"/v1/admin/events/{event}/registrations.csv")
    assert csv.status == 200
    rows = csv.body.decode().splitlines()
    assert rows[0] == "account,registered_at,phone_hash,device_hash"
    assert [r.split(",")[0] for r in rows[1:]] == ["alice"]


def test_a_registration_outside_its_window_is_refused(server: Server) -> None:
    event = door_event(server, "door-reg-late", registration=True).id  # closed at opening
    late = register(server, "carla", event)
    assert late.status == 409
    assert late.json["reason"] == "registration-closed"


def test_without_a_waiting_room_only_registered_buyers_may_reserve(server: Server) -> None:
    event = door_event(
        server,
        "door-reg-only",
        opens_in=timedelta(minutes=10),
        registration=True,
        require_registration=True,
        waiting_room=False,
    ).id
    assert register(server, "dario", event).status == 201
    advance(server, 11 * 60)
    stranger = reserve(server, "elena", event, None)
    assert stranger.status == 403
    assert stranger.json["reason"] == "not-registered"
    registered = reserve(server, "dario", event, None)
    assert registered.status == 201, registered.body
    state = queue_state(server, event)
    assert state["markets"] == []  # no waiting room
    assert state["refusals"] == {"not-registered": 1}


# -- the waiting room -------------------------------------------------------------------
def test_visitors_who_join_before_opening_are_numbered_at_opening(server: Server) -> None:
    event = door_event(server, "door-prequeue", opens_in=timedelta(minutes=5)).id
    tickets = {}
    for buyer in ("fabio", "gino", "hana"):
        reply = join(server, buyer, event)
        assert reply.status == 201, reply.body
        assert reply.json["seq"] == 0  # the pre-queue: no number before opening
        tickets[buyer] = reply.json["ticket"]
    assert join(server, "fabio", event).json["ticket"] == tickets["fabio"]  # one place each
    advance(server, 5 * 60 + 1)
    seqs = {}
    for buyer, ticket in tickets.items():
        place = poll(server, buyer, ticket)
        assert place.status == 200, place.body
        seqs[buyer] = place.json["seq"]
    assert sorted(seqs.values()) == [1, 2, 3]
    state = queue_state(server, event)
    cn = next(m for m in state["markets"] if m["market"] == "CN")
    assert cn["joined"] == 3
    assert cn["prequeue"] == 3
    assert cn["frozen"] is True


def test_an_admission_reserves_once_for_its_own_buyer_until_it_expires(server: Server) -> None:
    event = door_event(server, "door-admit", admit_per_second=1000, admission_seconds=60).id
    admission = admitted(server, "ivo", event)
    other = admitted(server, "jana", event)

    nothing = reserve(server, "ivo", event, None)
    assert nothing.status == 403
    assert nothing.json["reason"] == "not-admitted"
    borrowed = reserve(server, "ivo", event, other)
    assert borrowed.status == 403
    assert borrowed.json["reason"] == "not-admitted"

    first = reserve(server, "ivo", event, admission)
    assert first.status == 201, first.body
    again = reserve(server, "ivo", event, admission)  # another Idempotency-Key, same admission
    assert again.status == 201, again.body
    assert again.json["id"] == first.json["id"]  # the first hold, replayed: one hold
    stock = server.stock(event)["phone-red"]
    assert stock["held"] == 1

    advance(server, 61)
    expired = reserve(server, "jana", event, other)
    assert expired.status == 403
    assert expired.json["reason"] == "not-admitted"
    assert server.stock(event)["phone-red"]["held"] == 1


def test_the_admin_sees_the_queue_and_sets_its_rate(server: Server) -> None:
    event = door_event(server, "door-rate", admit_per_second=5).id
    reply = server.admin(
        "PUT", f"/v1/admin/events/{event}/queue/rate", {"market": "IN", "per_second": 42}
    )
    assert reply.status == 200, reply.body
    assert reply.json["rate"] == 42
    state = queue_state(server, event)
    rates = {m["market"]: m["rate"] for m in state["markets"]}
    assert rates == {"CN": 5, "IN": 42}
    too_fast = server.admin(
        "PUT", f"/v1/admin/events/{event}/queue/rate", {"market": "IN", "per_second": 10**7}
    )
    assert too_fast.status == 400
    assert queue_state(server, event)["markets"] == state["markets"]


# -- proof of work --------------------------------------------------------------------
def test_joining_needs_the_proof_of_work_the_event_asks_for(server: Server) -> None:
    event = door_event(server, "door-pow", pow_bits=8).id
    missing = join(server, "kira", event)
    assert missing.status == 403
    assert missing.json["reason"] == "proof-of-work"
    got = server.request(
        "GET", f"/v1/events/{event}/queue/challenge?market=CN", headers=server.buyer("kira")
    )
    assert got.status == 200, got.body
    challenge, bits = got.json["challenge"], got.json["bits"]
    assert bits == 8
    wrong = next(str(n) for n in range(10_000) if not _solves(challenge, str(n), bits))
    refused = join(server, "kira", event, challenge=challenge, solution=wrong)
    assert refused.status == 403
    assert refused.json["reason"] == "proof-of-work"
    assert queue_state(server, event)["markets"][0]["joined"] == 0
    solved = join(server, "kira", event, challenge=challenge, solution=solve(challenge, bits))
    assert solved.status == 201, solved.body
    stolen = join(server, "lena", event, challenge=challenge, solution=solve(challenge, bits))
    assert stolen.status in (401, 403)  # another buyer's challenge
    assert stolen.json["reason"] in ("bad-token", "proof-of-work")


def _solves(challenge: str, solution: str, bits: int) -> bool:
    from lampo.domain.frontdoor import pow_ok

    return pow_ok(challenge, solution, bits)


# -- forged and garbled tokens ----------------------------------------------------------
_TOKEN_CHARS = st.characters(min_codepoint=33, max_codepoint=126)


def _garbled(token: str) -> st.SearchStrategy[str]:
    """``token`` with a character changed, cut, extended, or something else entirely."""
    changed = st.tuples(st.integers(0, len(token) - 1), _TOKEN_CHARS).map(
        lambda p: token[: p[0]] + p[1] + token[p[0] + 1 :]
    )
    return st.one_of(
        changed.filter(lambda t: t != token),
        st.integers(1, len(token) - 1).map(lambda n: token[:n]),
        st.text(_TOKEN_CHARS, min_size=1, max_size=40).map(lambda s: token + s),
        st.text(_TOKEN_CHARS, min_size=1, max_size=300),
    )


def test_forged_and_garbled_tickets_and_admissions_are_bad_tokens_that_change_nothing(
    server: Server,
) -> None:
    event = door_event(server, "door-forged", admit_per_second=1000).id
    ticket = join(server, "mira", event).json["ticket"]
    admission = admitted(server, "mira", event)
    before = (queue_state(server, event)["markets"], server.stock(event))

    @given(ticket=_garbled(ticket), admission=_garbled(admission))
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    def check(ticket: str, admission: str) -> None:
        polled = poll(server, "mira", ticket)
        assert polled.status == 401, polled.body
        assert polled.json["reason"] == "bad-token"
        held = reserve(server, "mira", event, admission)
        assert held.status == 401, held.body
        assert held.json["reason"] == "bad-token"

    check()
    assert (queue_state(server, event)["markets"], server.stock(event)) == before
