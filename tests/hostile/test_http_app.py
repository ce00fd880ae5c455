"""Every route of the API under generated hostile requests, in process, on real storage.

The property: every answer is a 2xx (or the 302 of ``/live``) or a 4xx RFC 9457 problem
whose ``reason`` is a known type with that status; nothing escapes the app; a refusal
leaves every event's definition, stock, live totals and holds as they were; and the app
still serves a good request at the end. Requests come from ``_requests.calls``: a
well-formed call to one route with up to three parts replaced by hostile values.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lampo.bootstrap import Config
from lampo.domain.frontdoor import FrontDoor
from lampo.services.sales import Sales
from lampo.storage import Storage
from lampo.web import limits
from lampo.web.app import App
from lampo.web.config import WebConfig
from tests.contract.conftest import POSTGRES, REDIS, REDIS_POSTGRES, SQLITE, Backend
from tests.e2e._http import live_event
from tests.hostile import strategies as hs
from tests.hostile._asgi import answer, problems_in, state
from tests.hostile._requests import ROUTES, Api, Call, Route, calls, hostile_parts
from tests.hostile._stores import fresh_store

SECRET = b"hostile-buyer-secret-0123456789abcdef"
ADMIN_KEY = b"hostile-admin-key-0123456789abc"
WEBHOOK_SECRET = b"hostile-webhook-secret-01234567"

#: SQLite without waiting for fsync (WAL, synchronous=NORMAL): durability is not what
#: these tests show, and a flush per refused request would make them slow.
SQLITE_FAST = Backend("sqlite", lambda tmp: SQLITE.url(tmp) + "?synchronous=NORMAL")

#: Examples per backend: SQLite runs the most (it is the default and the fastest here);
#: the servers' backends get enough to reach every route's parsers.
BACKENDS = [
    pytest.param(SQLITE_FAST, 150, id="sqlite", marks=pytest.mark.sqlite),
    pytest.param(POSTGRES, 50, id="postgres", marks=pytest.mark.postgres),
    pytest.param(REDIS, 50, id="redis", marks=pytest.mark.redis),
    pytest.param(REDIS_POSTGRES, 40, id="redis+postgres", marks=pytest.mark.redis_postgres),
]


@dataclass
class Target:
    app: App
    storage: Storage
    api: Api
    loop: asyncio.AbstractEventLoop

    def send(self, call: Call, chunk: int = 4096) -> tuple[int, bytes, bytes]:
        got = self.loop.run_until_complete(answer(self.app, call, chunk))
        return got.status, got.content_type, got.body


def make_target(storage: Storage, loop: asyncio.AbstractEventLoop) -> Target:
    config = WebConfig(
        engine=Config("memory://"),  # unused: the app is given its sales service
        secret=SECRET,
        admin_key=ADMIN_KEY,
        webhook_secret=WEBHOOK_SECRET,
        buyer_rate=1e6,  # the limiter reads every key, but lets the examples through
        ip_rate=1e6,
        buyer_burst=1e6,
        ip_burst=1e6,
        device_rate=1e6,
        device_burst=1e6,
        network_rate=1e6,
        network_burst=1e6,
        report_ttl=0,
        test_clock=True,
    )
    app = App(config)
    sales = Sales(storage, clock=app.clock)
    app.sales = sales
    event = live_event("hostile", {"phone-red": 1000, "phone-black": 1000, "tv-55": 1000})
    sales.open(event)
    held = sales.reserve(event.id, "alice", "CN", {"phone-red": 1}, key="setup-held")
    paid = sales.reserve(event.id, "alice", "CN", {"phone-black": 1}, key="setup-paid")
    sales.pay(paid.id, "setup-payment")
    # the front door's routes reach their service with this one (registration open now,
    # the sale an hour away: joins go to the pre-queue)
    later = live_event("hostile-door", {"phone-red": 100}, opens_in=timedelta(hours=1))
    door_event = replace(
        later,
        front_door=FrontDoor(
            registration_opens=later.opens - timedelta(hours=2),
            registration_closes=later.opens,
        ),
    )
    sales.open(door_event)
    app.start()
    amounts = {h.id: (h.amount.amount, h.amount.currency) for h in (held, paid)}
    api = Api(
        SECRET,
        ADMIN_KEY,
        WEBHOOK_SECRET,
        event,
        "alice",
        held.id,
        paid.id,
        amounts,
        door_event=door_event.id,
    )
    return Target(app, storage, api, loop)


@contextmanager
def running_app(backend: Backend, tmp: Path) -> Iterator[Target]:
    loop = asyncio.new_event_loop()
    try:
        with fresh_store(backend, tmp) as (storage, _):
            yield make_target(storage, loop)
    finally:
        loop.close()


@pytest.mark.parametrize(("backend", "examples"), BACKENDS)
def test_every_answer_is_a_success_or_a_clean_refusal_that_changes_nothing(
    backend: Backend, examples: int, tmp_path: Path
) -> None:
    with running_app(backend, tmp_path) as target:
        run_hostile_calls(target, examples, calls(target.api))


#: Every part of every route that its handler reads, made hostile on purpose (the mixed
#: test above reaches each of them too, but only now and then).
PARTS = [
    pytest.param(route, part, id=f"{route.method} {route.template} {route.auth} [{part}]")
    for route in ROUTES
    for part in hostile_parts(route)
    if part not in ("method", "content-type") or route.body is not None or route.uploads
]
EXAMPLES_PER_PART = 8


@pytest.fixture(scope="module")
def sqlite_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with running_app(SQLITE_FAST, tmp_path_factory.mktemp("hostile")) as target:
        yield target


@pytest.mark.sqlite
@pytest.mark.parametrize(("route", "part"), PARTS)
def test_each_part_of_each_route_takes_hostile_values(
    sqlite_app: Target, route: Route, part: str
) -> None:
    run_hostile_calls(sqlite_app, EXAMPLES_PER_PART, calls(sqlite_app.api, (route,), part))


def run_hostile_calls(target: Target, examples: int, requests: st.SearchStrategy[Call]) -> None:
    @given(call=requests, chunk=st.sampled_from((1, 7, 4096)))
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    def check(call: Call, chunk: int) -> None:
        before = state(target.storage)
        status, content_type, body = target.send(call, chunk)
        wrong = problems_in(call, status, content_type, body)
        assert not wrong, (call, wrong)
        if status >= 400:
            assert state(target.storage) == before, f"{call.route} refused ({status}) but wrote"

    check()
    # still up: a good reservation is served after all that (at the real time again)
    target.app.clock.offset = timedelta(0)
    good = Call(
        "POST",
        "/v1/holds",
        (
            (b"authorization", target.api.token()),
            (b"idempotency-key", b"after-the-storm"),
            (b"content-type", b"application/json"),
        ),
        b'{"event": "hostile", "market": "CN", "items": {"tv-55": 1}}',
        "POST /v1/holds",
    )
    status, _, body = target.send(good)
    assert status == 201, body


@pytest.mark.sqlite
@given(
    after=hs.hostile_text(min_size=limits.MAX_HOLD_ID + 1, max_size=400),
    limit=hs.hostile_number_text().filter(
        lambda t: not (re.fullmatch("[0-9]{1,4}", t) and 1 <= int(t) <= limits.MAX_PAGE)
    ),
    which=st.sampled_from(("after", "limit")),
)
@settings(max_examples=60, deadline=None)
def test_a_page_query_past_its_documented_bound_is_refused(
    sqlite_app: Target, after: str, limit: str, which: str
) -> None:
    """``after`` is at most 128 characters and ``limit`` a whole number in 1..1000
    (ASCII digits), as the OpenAPI document says; anything else is a 400 naming it."""
    value = after if which == "after" else limit
    query = f"{which}={quote(value.encode('utf-8', 'surrogatepass'), safe='')}"
    call = Call(
        "GET",
        f"/v1/admin/events/{sqlite_app.api.event.id}/orders?{query}",
        ((b"x-api-key", sqlite_app.api.admin_key),),
        b"",
        "GET /v1/admin/events/{event_id}/orders",
    )
    status, _, body = sqlite_app.send(call)
    assert status == 400, body
    assert json.loads(body)["field"] == which
