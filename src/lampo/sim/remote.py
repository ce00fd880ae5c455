"""The rehearsal against running servers: a scenario's crowd sent over HTTP to one or more
``lampo serve`` (``lampo simulate SCENARIO --target URL``).

**The event.** The scenario's event is loaded on the server (admin key) under a run id
(``<event>-<UTC time>``), its windows moved so that it opens a moment after the start
and, with ``speed`` N, every time span divided by N: the windows and the hold time
(rounded to whole seconds, at least one), so that expiry on the server keeps pace with
the crowd. A time read back from the server maps to the crowd's time by the inverse
(``TimeMap``), so the report reads as the in-process one: on the scenario's own dates.

**Open loop.** The crowd stream is ``crowd.timeline``, the same as in-process. Each
request leaves at its scheduled time whether or not earlier ones were answered (a task
per buyer, started by one scheduler that never waits for an answer), and its latency is
measured from that scheduled time, so a slow server shows as latency rather than as
fewer requests (no coordinated omission). A buyer's payment or release is scheduled from
its hold's scheduled time plus the crowd's delay; it cannot leave before its hold is
answered, and its latency counts from the later of the two. With ``speed=None`` ("as
fast as the server goes") the schedule only orders the requests: each leaves when one of
``connections`` slots is free and its latency counts from then; the server's clock then
runs at its own pace, so holds nobody pays stay held (they expire on the server later)
and a late payment may still find its hold.

**The end.** Once every buyer is done, the run waits until the holds still held are due,
has the server expire them (``POST /v1/admin/expire``), and reads back the definition,
every hold and order, the stock and the live totals (``Snapshot``), on which the CLI runs
the same battle report and audit as in-process.

The client is aiohttp: over keep-alive connections it spent 150-165 µs of CPU per
request against 2,400-2,700 µs for httpx in the same runs (bench/http_clients.py), and
the client must not be what limits the server it measures. Latency goes to an HDR
histogram (``sim.latency``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import msgspec

from lampo.domain.codec import event_from_dict, event_to_dict
from lampo.domain.errors import InvalidRequest
from lampo.domain.holds import Hold
from lampo.domain.market import Channel
from lampo.sim.crowd import (
    DOUBLE_PAY_GAP_MS,
    Plan,
    Visit,
    check_work,
    selling_stores,
    timeline,
)
from lampo.sim.latency import Latency
from lampo.sim.scenario import Scenario
from lampo.sim.snapshot import Snapshot, TimeMap, hold_of, rebase, stock_of, totals_of

#: Seconds between the start of a run and its event's opening on the server (time to
#: load the definition; the other workers read it on first use).
LEAD_SECONDS = 1.5
#: The most a rehearsal may compress time (``--speed``).
MAX_SPEED = 100_000.0
#: The most connections a rehearsal may keep open at once (``--connections``).
MAX_CONNECTIONS = 10_000
#: Seconds one request may take before it counts as a client error (``client-timeout``).
REQUEST_TIMEOUT = 60.0
#: Holds and orders read per page at the end (the server's largest page).
PAGE = 1000
#: Seconds between two progress reports to the live view.
PROGRESS_EVERY = 0.25

KINDS = ("reserve", "pay", "release")


@dataclass(frozen=True, slots=True)
class Remote:
    """Where and how to rehearse: the servers' base URLs (requests go round them in
    turn), the admin key, ``token(buyer)`` giving a buyer's bearer token, ``speed`` (None:
    as fast as the server goes) and the most connections open at once."""

    targets: tuple[str, ...]
    admin_key: str = field(repr=False)
    token: Callable[[str], str] = field(repr=False)
    speed: float | None = 1.0
    connections: int = 256

    def __post_init__(self) -> None:
        if not self.targets:
            raise InvalidRequest("target", "name at least one server URL")
        for url in self.targets:
            if not url.startswith(("http://", "https://")) or len(url) > 2048:
                raise InvalidRequest("target", f"{url[:100]!r} is not an http(s) URL")
        if self.speed is not None and not (0 < self.speed <= MAX_SPEED):
            raise InvalidRequest("speed", f"must be in (0, {MAX_SPEED:,.0f}], or max")
        if not 1 <= self.connections <= MAX_CONNECTIONS:
            raise InvalidRequest("connections", f"must be from 1 to {MAX_CONNECTIONS:,}")


@dataclass(frozen=True, slots=True)
class Live:
    """What the live view shows while a rehearsal runs (a copy: the run goes on)."""

    done: float  # crowd seconds since the opening
    total: float  # crowd seconds of the event
    requests: int
    in_flight: int
    sold: dict[str, int]  # category -> units paid
    refusals: dict[str, int]
    latency_ms: dict[str, float]  # p50, p99, max so far, over every request


@dataclass(slots=True)
class RemoteResult:
    """What a rehearsal over HTTP did, counted by the client from the answers it got."""

    scenario: str
    scale: float
    seed: int
    run_id: str
    targets: tuple[str, ...]
    speed: float | None
    times: TimeMap
    requests: int = 0  # reservation requests sent, resent ones included
    resent: int = 0
    holds: int = 0
    payments: int = 0
    paid: int = 0
    releases: int = 0
    refusals: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # no answer, or an unexpected one
    latency: dict[str, Latency] = field(default_factory=lambda: {k: Latency() for k in KINDS})
    lag: Latency = field(default_factory=Latency)  # how late the client sent, by its clock
    sold: Counter[str] = field(default_factory=Counter)  # category -> units paid
    answered: Counter[int] = field(default_factory=Counter)  # real second -> answers
    paid_in: Counter[int] = field(default_factory=Counter)  # real second -> orders
    seconds: float = 0.0  # wall time from the opening to the last answer
    wall_seconds: float = 0.0  # the whole run, settling and reading back included

    @property
    def sent(self) -> int:
        return sum(h.count for h in self.latency.values())

    def overall(self) -> Latency:
        total = Latency()
        for h in self.latency.values():
            total.add(h)
        return total


Progress = Callable[[Live], None]


def rehearse(
    scenario: Scenario, remote: Remote, seed: int = 42, progress: Progress | None = None
) -> tuple[RemoteResult, Snapshot]:
    """Run ``scenario``'s crowd (seeded by ``seed``) against ``remote``'s servers; return
    what the client counted and the servers' state read back at the end.

    A scenario with walk-ins at stores is refused (``InvalidRequest``, field ``scenario``)
    before anything is sent: a till sale has no HTTP route yet."""
    check_work(scenario)
    check_no_tills(scenario)
    check_no_door(scenario)
    rehearsal = _Rehearsal(scenario, remote, seed, progress)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(rehearsal.run())


def check_no_tills(scenario: Scenario) -> None:
    """Refuse a rehearsal of a crowd that buys at store tills: a till sale over HTTP needs
    ``POST /v1/stores/{store}/sales``, which the server does not serve yet; the crowd's
    store visits run in-process only (``lampo simulate`` without ``--target``)."""
    if selling_stores(scenario):
        raise InvalidRequest(
            "scenario",
            f"{scenario.name} has walk-ins at stores ([crowd.stores]); a till sale cannot be "
            "sent over HTTP yet (no POST /v1/stores/{store}/sales route): run it in-process, "
            "without --target",
        )


def check_no_door(scenario: Scenario) -> None:
    """Refuse a rehearsal over HTTP of an event behind a waiting room or registration: its
    crowd does not register, queue and poll over HTTP yet, so the server would refuse
    every reservation (``not-admitted``) and the run would sell nothing; the door's
    rehearsal runs in-process (``lampo simulate`` without ``--target``, ``sim/door.py``)."""
    door = scenario.event.front_door
    if door is not None:
        raise InvalidRequest(
            "scenario",
            f"{scenario.name}'s event has a front door ([front_door]); a rehearsal over HTTP "
            "does not pass through it yet (its buyers would be refused): run it in-process, "
            "without --target",
        )


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop where it is installed (as the server runs on): less CPU per request
    in the client, which must keep to the schedule."""
    try:
        import uvloop
    except ImportError:  # not on Windows
        return None
    return uvloop.new_event_loop


class _Rehearsal:
    def __init__(
        self, scenario: Scenario, remote: Remote, seed: int, progress: Progress | None
    ) -> None:
        self.scenario = scenario
        self.remote = remote
        self.seed = seed
        self.progress = progress
        self.speed = remote.speed or 1.0
        self.event = scenario.event
        self.length = (self.event.closes - self.event.opens).total_seconds()
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=LEAD_SECONDS + 1)
        self.times = TimeMap(self.event.opens, start, self.speed)
        run_id = f"{self.event.id[:48]}-{start:%Y%m%d%H%M%S}"
        self.served = rebase(self.event, run_id, self.times)
        self.result = RemoteResult(
            scenario.name, scenario.scale, seed, run_id, remote.targets, remote.speed, self.times
        )
        self.turn = itertools.cycle(remote.targets)
        self.known: set[str] = set()
        self.live: dict[str, datetime] = {}  # hold id -> its expiry, server time
        self.tokens: dict[str, str] = {}
        self.in_flight = 0
        self.last_answer = 0.0
        self.t0 = 0.0  # the loop's clock at the opening
        self.now = -math.inf  # max mode: crowd seconds dispatched so far
        self.waiting: list[tuple[float, int, asyncio.Future[None]]] = []
        self.seq = itertools.count()
        self.slots = asyncio.Semaphore(remote.connections) if remote.speed is None else None
        self.session: aiohttp.ClientSession

    # -- the run -----------------------------------------------------------------------
    async def run(self) -> tuple[RemoteResult, Snapshot]:
        wall = time.perf_counter()
        connector = aiohttp.TCPConnector(limit=self.remote.connections, limit_per_host=0)
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            self.session = session
            await self.load()
            await self.warm()
            loop = asyncio.get_running_loop()
            self.t0 = loop.time() + (self.times.start - datetime.now(UTC)).total_seconds()
            ticker = asyncio.create_task(self.tick()) if self.progress else None
            await self.schedule(timeline(self.scenario, self.seed))
            self.result.seconds = max(0.0, self.last_answer - self.t0)
            if ticker is not None:
                ticker.cancel()
            if self.remote.speed is not None:
                await self.settle()
            snapshot = await self.read_back()
        self.result.wall_seconds = time.perf_counter() - wall
        if self.progress is not None:
            self.progress(self.figures(done=self.length))
        return self.result, snapshot

    async def schedule(self, visits: Iterator[Visit]) -> None:
        """Start a task per buyer at its scheduled time; never wait for an answer."""
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()
        if self.t0 > loop.time():  # nothing before the opening (max mode included)
            await asyncio.sleep(self.t0 - loop.time())
        for visit in visits:
            at = visit.at_ms / 1000
            if self.slots is None:
                delay = self.t0 + at / self.speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                await self.slots.acquire()
                self.advance(at)
            task = asyncio.create_task(self.buyer(visit, at))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        self.advance(math.inf)
        while tasks:
            await asyncio.gather(*list(tasks))

    def advance(self, at: float) -> None:
        """Max mode: the crowd's clock reached ``at``; wake the actions due by then."""
        self.now = at
        while self.waiting and self.waiting[0][0] <= at:
            _, _, future = heapq.heappop(self.waiting)
            if not future.done():
                future.set_result(None)

    async def until(self, at: float) -> float:
        """Wait until crowd time ``at``; return the loop time it was due (max mode: now)."""
        loop = asyncio.get_running_loop()
        if self.slots is None:
            due = self.t0 + at / self.speed
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            return due
        if at > self.now:
            future: asyncio.Future[None] = loop.create_future()
            heapq.heappush(self.waiting, (at, next(self.seq), future))
            await future
        return loop.time()

    # -- a buyer -------------------------------------------------------------------------
    async def buyer(self, visit: Visit, at: float) -> None:
        ev = self.served.id
        ch = visit.channel
        channel = {"kind": ch.kind.value, "name": ch.name, "referral": ch.referral}
        body = {"event": ev, "market": visit.market, "items": dict(visit.items)}
        if ch != Channel():
            body["channel"] = channel
        loop = asyncio.get_running_loop()
        due = self.t0 + at / self.speed if self.slots is None else loop.time()
        self.result.requests += 1
        try:
            status, data = await self.call("reserve", "/v1/holds", body, visit, visit.key, due)
        finally:
            if self.slots is not None:
                self.slots.release()  # taken by the scheduler
        if status not in (200, 201):
            return
        hold_id = str(data["id"])
        if hold_id in self.known:
            self.result.resent += 1
            return
        self.known.add(hold_id)
        self.result.holds += 1
        self.live[hold_id] = datetime.fromisoformat(data["expires_at"])
        plan, delay = visit.plan, visit.delay_ms / 1000
        if plan is Plan.NONE:  # a resent request whose first try was refused got through
            plan = Plan.PAY
        if plan in (Plan.PAY, Plan.PAY_LATE, Plan.PAY_TWICE):
            await self.pay(visit, hold_id, at + delay)
            if plan is Plan.PAY_TWICE:
                await self.pay(visit, hold_id, at + delay + DOUBLE_PAY_GAP_MS / 1000)
        elif plan is Plan.RELEASE:
            path = f"/v1/holds/{hold_id}/release"
            due = await self.until(at + delay)
            self.result.releases += 1
            status, _ = await self.call("release", path, None, visit, f"release-{hold_id}", due)
            if status == 200:
                self.live.pop(hold_id, None)

    async def pay(self, visit: Visit, hold_id: str, at: float) -> None:
        due = await self.until(at)
        self.result.payments += 1
        path = f"/v1/holds/{hold_id}/pay"
        status, data = await self.call("pay", path, None, visit, f"pay-{hold_id}", due)
        if status == 200 and self.live.pop(hold_id, None) is not None:
            self.result.paid += 1
            self.result.paid_in[int(asyncio.get_running_loop().time() - self.t0)] += 1
            for line in data["lines"]:
                self.result.sold[self.event.category_of(line["sku"])] += line["quantity"]

    async def call(
        self, kind: str, path: str, body: Any, visit: Visit, key: str, due: float
    ) -> tuple[int, Any]:
        """One buyer's POST. Its latency counts from ``due``, the loop time it was to
        leave, or from when it could leave if that is later (its hold was answered late;
        in max mode, a connection was free)."""
        loop = asyncio.get_running_loop()
        follow_up = kind != "reserve"
        if self.slots is not None and follow_up:
            await self.slots.acquire()
        try:
            start = loop.time()
            self.result.lag.record(max(0.0, start - due))
            if follow_up:
                due = max(due, start)
            token = self.tokens.get(visit.customer)
            if token is None:
                if len(self.tokens) >= 100_000:  # a buyer comes back a few times at most
                    self.tokens.clear()
                token = self.tokens[visit.customer] = self.remote.token(visit.customer)
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
            self.in_flight += 1
            try:
                status, data = await self.send(next(self.turn), "POST", path, body, headers)
            finally:
                self.in_flight -= 1
        finally:
            if self.slots is not None and follow_up:
                self.slots.release()
        end = loop.time()
        self.last_answer = max(self.last_answer, end)
        self.result.answered[int(end - self.t0)] += 1
        self.result.latency[kind].record(end - due)
        if status == 0 or status >= 300:
            reason = f"http-{status}"
            if status == 0:
                reason = str(data)
            elif isinstance(data, dict) and isinstance(data.get("reason"), str):
                reason = data["reason"]
            self.result.refusals[reason] += 1
            if status == 0 or status >= 500:
                self.result.errors[reason] += 1
        return status, data

    async def send(
        self, base: str, method: str, path: str, body: Any, headers: dict[str, str]
    ) -> tuple[int, Any]:
        """(status, decoded JSON); (0, reason) when no answer came."""
        data = None
        if body is not None:
            data = msgspec.json.encode(body)
            headers = {**headers, "Content-Type": "application/json"}
        try:
            async with self.session.request(
                method, base + path, data=data, headers=headers
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except TimeoutError:
            return 0, "client-timeout"
        except aiohttp.ClientError as exc:
            return 0, f"client-{type(exc).__name__}"
        try:
            return status, msgspec.json.decode(raw) if raw else None
        except msgspec.DecodeError:
            return status, None

    # -- admin -----------------------------------------------------------------------------
    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"X-API-Key": self.remote.admin_key, "Idempotency-Key": uuid.uuid4().hex}
        status, data = await self.send(self.remote.targets[0], method, path, body, headers)
        if status not in (200, 201):
            detail = data.get("detail", data) if isinstance(data, dict) else data
            raise InvalidRequest(
                "target", f"{method} {path} answered {status or 'nothing'}: {detail}"
            )
        return data

    async def load(self) -> None:
        await self.admin("POST", "/v1/admin/events", event_to_dict(self.served))

    async def warm(self) -> None:
        """Open every connection before the opening (``GET /health`` on each at once), so
        the opening's burst does not wait for connections to be made."""

        async def one(base: str) -> None:
            try:
                async with self.session.get(base + "/health") as resp:
                    await resp.read()
            except (TimeoutError, aiohttp.ClientError):
                pass  # the rehearsal itself will count what fails

        await asyncio.gather(*(one(next(self.turn)) for _ in range(self.remote.connections)))

    async def settle(self) -> None:
        """Wait until every hold still held is due, then have the server expire them."""
        due = max(self.live.values(), default=datetime.now(UTC))
        last_sent = self.times.start + timedelta(seconds=self.last_answer - self.t0)
        latest = last_sent + timedelta(seconds=self.served.hold_seconds)
        for deadline in (due, latest):
            while True:
                stock = await self.admin("GET", f"/v1/events/{self.served.id}/stock")
                if not any(row["held"] for row in stock["skus"]):
                    return
                wait = (deadline - datetime.now(UTC)).total_seconds() + 0.01
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            while (await self.admin("POST", "/v1/admin/expire"))["expired"]:
                pass

    async def read_back(self) -> Snapshot:
        run_id = self.served.id
        defined = event_from_dict(await self.admin("GET", f"/v1/events/{run_id}"))
        if defined != self.served:
            raise InvalidRequest("target", f"the server's {run_id} is not the event loaded")
        holds: list[Hold] = []
        after = ""
        while True:
            query = f"?limit={PAGE}" + (f"&after={after}" if after else "")
            page = await self.admin("GET", f"/v1/admin/events/{run_id}/orders{query}")
            holds.extend(hold_of(item, self.event.id, self.times) for item in page["items"])
            if not page["next"]:
                break
            after = page["next"]
        stock = await self.admin("GET", f"/v1/events/{run_id}/stock")
        totals = await self.admin("GET", f"/v1/admin/events/{run_id}/totals")
        return Snapshot(self.event, holds, stock_of(stock), totals_of(totals))

    # -- the live view -----------------------------------------------------------------------
    async def tick(self) -> None:
        assert self.progress is not None
        while True:
            await asyncio.sleep(PROGRESS_EVERY)
            self.progress(self.figures())

    def figures(self, done: float | None = None) -> Live:
        if done is None:
            if self.slots is None:
                loop_now = asyncio.get_running_loop().time()
                done = (loop_now - self.t0) * self.speed
            else:
                done = self.now
        summary = self.result.overall().summary()
        return Live(
            done=min(max(done, 0.0), self.length),
            total=self.length,
            requests=self.result.sent,
            in_flight=self.in_flight,
            sold=dict(self.result.sold),
            refusals=dict(self.result.refusals),
            latency_ms={"p50": summary.p50, "p99": summary.p99, "max": summary.max},
        )
