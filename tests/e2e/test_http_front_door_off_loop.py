"""No front-door handler calls storage on the event loop: registration, the count and the
export, the challenge, join and poll, the gated reservation and the admin's calls, in
process, over a storage and a door store that refuse any blocking call made from a
thread that runs an event loop (``LoopGuard`` of test_http_off_loop.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import cast

import pytest

from lampo.bootstrap import Config
from lampo.domain.frontdoor import FrontDoor, solve
from lampo.services.clock import ManualClock
from lampo.services.frontdoor import FrontDoorService
from lampo.services.sales import Sales
from lampo.storage import Storage
from lampo.storage.door import DoorStore, door_store
from lampo.web.app import App
from lampo.web.config import WebConfig
from tests.contract.conftest import MEMORY, REDIS, SQLITE, Backend
from tests.e2e._http import live_event
from tests.e2e.test_http_off_loop import (
    _ADMIN,
    _JSON,
    ADMIN_KEY,
    SECRET,
    WEBHOOK_SECRET,
    LoopGuard,
    _asker,
    _buyer,
    _concurrently,
    _key,
)
from tests.hostile._requests import Call
from tests.hostile._stores import fresh_store

EVENT = "door-loop"


@pytest.fixture(
    params=[
        pytest.param(MEMORY, id="memory"),
        pytest.param(SQLITE, marks=pytest.mark.sqlite, id="sqlite"),
        pytest.param(REDIS, marks=pytest.mark.redis, id="redis"),
    ]
)
def guarded(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[App, LoopGuard, LoopGuard, ManualClock]]:
    backend: Backend = request.param
    with fresh_store(backend, tmp_path) as (storage, _):
        guard = LoopGuard(storage)
        doors = LoopGuard(cast(Storage, door_store(storage)))
        config = WebConfig(
            engine=Config("memory://"),
            secret=SECRET,
            admin_key=ADMIN_KEY,
            webhook_secret=WEBHOOK_SECRET,
            buyer_rate=1e6,
            ip_rate=1e6,
            buyer_burst=1e6,
            ip_burst=1e6,
            device_rate=1e6,
            device_burst=1e6,
            network_rate=1e6,
            network_burst=1e6,
            report_ttl=0,
        )
        base = live_event(EVENT, {"phone-red": 100}, opens_in=timedelta(hours=1))
        opens = base.opens
        event = replace(
            base,
            front_door=FrontDoor(
                registration_opens=opens - timedelta(hours=2),
                registration_closes=opens,
                require_registration=True,
                admit_per_second=1000,
                pow_bits=4,
            ),
        )
        clock = ManualClock(opens - timedelta(minutes=30))
        sales = Sales(cast(Storage, guard), clock)
        sales.open(event)
        app = App(config, sales)
        app._door = FrontDoorService(sales, cast(DoorStore, doors), SECRET, clock)
        yield app, guard, doors, clock


def test_the_front_door_calls_no_storage_on_the_loop(
    guarded: tuple[App, LoopGuard, LoopGuard, ManualClock],
) -> None:
    app, guard, doors, clock = guarded
    loop = asyncio.new_event_loop()
    try:
        ask = _asker(app, guard, loop)
        buyers = [f"v{i}" for i in range(5)]
        for name in buyers:
            got = ask("POST", f"/v1/events/{EVENT}/registrations", _buyer(name), _JSON, body={})
            assert got.status == 201, got.body
        assert ask("GET", f"/v1/events/{EVENT}/registrations/count").status == 200
        csv = ask("GET", f"/v1/admin/events/{EVENT}/registrations.csv", _ADMIN)
        assert csv.body.count(b"\n") == 1 + len(buyers)

        clock.advance(31 * 60)  # the sale is open
        tickets = {}
        for name in buyers:
            got = ask("GET", f"/v1/events/{EVENT}/queue/challenge?market=CN", _buyer(name))
            challenge = json.loads(got.body)
            body = {
                "market": "CN",
                "challenge": challenge["challenge"],
                "solution": solve(challenge["challenge"], challenge["bits"]),
            }
            joined = ask("POST", f"/v1/events/{EVENT}/queue", _buyer(name), _JSON, body=body)
            assert joined.status == 201, joined.body
            tickets[name] = json.loads(joined.body)["ticket"]
        stranger = ask("GET", f"/v1/events/{EVENT}/queue/challenge?market=CN", _buyer("x"))
        assert stranger.status == 200  # a challenge is for anyone; the join checks

        clock.advance(1)
        polls = [
            Call(
                "GET",
                "/v1/queue/poll",
                (_buyer(name), (b"lampo-ticket", tickets[name].encode())),
                route="GET /v1/queue/poll",
            )
            for name in buyers
        ]
        answers = _concurrently(app, guard, loop, polls)
        assert doors.on_loop == []
        places = [json.loads(a.body) for a in answers]
        assert [p["state"] for p in places] == ["admitted"] * len(buyers), places
        order = {"event": EVENT, "market": "CN", "items": {"phone-red": 1}}
        for name, place in zip(buyers, places, strict=True):
            admission = (b"lampo-admission", place["admission"].encode())
            held = ask("POST", "/v1/holds", _buyer(name), _key(name), _JSON, admission, body=order)
            assert held.status == 201, held.body
        refused = ask("POST", "/v1/holds", _buyer("x"), _key("x"), _JSON, body=order)
        assert refused.status == 403

        assert ask("GET", f"/v1/admin/events/{EVENT}/queue", _ADMIN).status == 200
        rate = {"market": "CN", "per_second": 50}
        put = ask("PUT", f"/v1/admin/events/{EVENT}/queue/rate", _ADMIN, _JSON, body=rate)
        assert put.status == 200, put.body
    finally:
        loop.close()
    assert guard.on_loop == []
    assert doors.on_loop == []
    assert {"register", "join", "counts", "export"} <= set(doors.off_loop)
