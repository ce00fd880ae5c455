"""The rehearsal's schedule is open loop: a slow server makes latency grow, never the
arrivals shrink (``sim.remote``, no coordinated omission).

A small aiohttp server stands in for ``lampo serve``: it takes the event, refuses every
reservation as sold out and reads back an empty sale. Answering at once, it shows the
arrivals the schedule makes. Holding every answer until the last reservation of the crowd
has arrived, it is as slow as a server can be: a closed-loop client would wait for its
first answers and never send the rest; the open-loop client sends every request at its
time anyway, and each one's latency, counted from its scheduled time, is at least the
wait until the last one was due. Nothing here depends on the machine's speed: the bounds
follow from the schedule alone.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from lampo.sim import remote
from lampo.sim import scenario as scenarios
from lampo.sim.crowd import timeline

SEED = 7
SPEED = 4.0
#: Seconds the holding server waits for the last reservation before it gives up (then the
#: test fails: the client did not send it while earlier answers were outstanding).
GIVE_UP = 60.0

SCENARIO = """
[event]
id = "open-loop"
name = "Open loop"
home_market = "IN"
hold_seconds = 60
opens = 2014-09-02T14:00:00
closes = 2014-09-02T14:00:20

[fx]
reporting = "INR"
on = 2014-09-02

[markets.IN]
name = "India"
currency = "INR"
tz = "Asia/Kolkata"

[categories.phones]
name = "Smartphones"
unit = "phones"

[[skus]]
id = "phone"
product = "phone"
name = "Phone"
category = "phones"
allocation = 10
prices = { IN = "100.00" }

[crowd]
decay_seconds = 3
never_pay = 1.0

[crowd.arrivals]
IN = { peak_per_second = 12, baseline_per_second = 1 }

[crowd.demand]
phone = 1.0
"""


@dataclass
class Standin:
    """What the stand-in server saw: each reservation's idempotency key as it arrived,
    and how many reservations it had answered when the last one arrived."""

    expected: int
    hold: bool
    keys: list[str] = field(default_factory=list)
    answered: int = 0
    answered_at_last: int = -1
    port: int = 0
    event: Any = None
    slow: float = 0.0  # seconds each reservation takes on purpose
    inside: int = 0
    most_inside: int = 0


def _app(state: Standin) -> web.Application:
    everyone = asyncio.Event()

    async def load(request: web.Request) -> web.Response:
        state.event = await request.json()
        return web.json_response({"id": state.event["id"]}, status=201)

    async def definition(request: web.Request) -> web.Response:
        return web.json_response(state.event)

    async def reserve(request: web.Request) -> web.Response:
        state.keys.append(request.headers["Idempotency-Key"])
        state.inside += 1
        state.most_inside = max(state.most_inside, state.inside)
        if state.slow:
            await asyncio.sleep(state.slow)
        state.inside -= 1
        if len(state.keys) == state.expected:
            state.answered_at_last = state.answered
            everyone.set()
        if state.hold:
            try:
                await asyncio.wait_for(everyone.wait(), GIVE_UP)
            except TimeoutError:
                pass
        state.answered += 1
        return web.json_response({"reason": "sold-out"}, status=409)

    async def stock(request: web.Request) -> web.Response:
        skus = [
            {"sku": sku, "allocation": o["allocation"], "available": o["allocation"]}
            | {"held": 0, "sold": 0}
            for sku, o in state.event["offers"].items()
        ]
        return web.json_response({"event": state.event["id"], "skus": skus})

    async def orders(request: web.Request) -> web.Response:
        return web.json_response({"items": [], "next": None})

    async def totals(request: web.Request) -> web.Response:
        return web.json_response({"event": state.event["id"], "lines": [], "orders": []})

    app = web.Application()
    app.router.add_post("/v1/admin/events", load)
    app.router.add_get("/v1/events/{event}", definition)
    app.router.add_post("/v1/holds", reserve)
    app.router.add_get("/v1/events/{event}/stock", stock)
    app.router.add_get("/v1/admin/events/{event}/orders", orders)
    app.router.add_get("/v1/admin/events/{event}/totals", totals)
    return app


@contextmanager
def standin(state: Standin) -> Iterator[Standin]:
    """The stand-in server on a free loopback port, in a thread with its own loop."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner = web.AppRunner(_app(state))

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        state.port = runner.addresses[0][1]
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(30), "the stand-in server did not start"
    try:
        yield state
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)


def rehearse(
    state: Standin, speed: float | None = SPEED, connections: int = 0
) -> remote.RemoteResult:
    loaded = scenarios.loads(SCENARIO, "open-loop")
    with standin(state):
        where = remote.Remote(
            (f"http://127.0.0.1:{state.port}",),
            "admin-key-0123456789",
            lambda buyer: "token-of-" + buyer,
            speed,
            connections=connections or state.expected + 10,
        )
        result, _ = remote.rehearse(loaded, where, SEED)
    return result


def test_a_slow_server_makes_latency_grow_and_never_the_arrivals_shrink() -> None:
    loaded = scenarios.loads(SCENARIO, "open-loop")
    visits = list(timeline(loaded, SEED))
    second_of = {v.key: v.at_ms // 1000 for v in visits}
    scheduled = Counter(second_of.values())
    assert len(scheduled) > 3, "a schedule over several seconds"

    prompt = Standin(len(visits), hold=False)
    fast = rehearse(prompt)
    slow_state = Standin(len(visits), hold=True)
    slow = rehearse(slow_state)

    for state, result in ((prompt, fast), (slow_state, slow)):
        # every request of every scheduled second arrived, once
        assert Counter(second_of[k] for k in state.keys) == scheduled
        assert result.requests == len(visits)
        assert result.refusals == Counter({"sold-out": len(visits)})
    # held back, the server had answered nothing when the last request arrived: the client
    # sent the whole crowd while every earlier request was still waiting
    assert slow_state.answered_at_last == 0
    # ... and the latency shows it: the first request waited at least until the last was
    # due, by the schedule's clock (crowd seconds / speed), whatever the machine's speed
    span = (max(v.at_ms for v in visits) - min(v.at_ms for v in visits)) / 1000 / SPEED
    assert slow.latency["reserve"].summary().max >= span * 1000 * 0.999


def test_as_fast_as_the_server_goes_keeps_at_most_the_connections_in_flight() -> None:
    loaded = scenarios.loads(SCENARIO, "open-loop")
    visits = list(timeline(loaded, SEED))
    state = Standin(len(visits), hold=False, slow=0.005)
    result = rehearse(state, speed=None, connections=3)
    # the whole crowd, each request once, never more than three at once
    assert Counter(state.keys) == Counter(v.key for v in visits)
    assert state.most_inside <= 3
    assert result.requests == len(visits)
