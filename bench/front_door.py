"""The front door's benchmarks (issue 13).

Run:  .venv/bin/python bench/front_door.py memory [--visitors 1000000] [--prequeue 0.5]
      .venv/bin/python bench/front_door.py cpu [--requests 20000] [--connections 64]
                                              [--storage memory:// --storage sqlite ...]
      .venv/bin/python bench/front_door.py http [--seconds 4] [--rounds 3] [--connections 32]
                                               [--threads 2] [--visitors 5000] [--buyers 30000]
      .venv/bin/python bench/front_door.py adaptive [--visitors 8000] [--clients 200]
                                                   [--rate 100] [--target-ms 20] [--seconds 60]

``cpu``: the ASGI app driven in process (no server, no client: the cost of the app, the
services and storage alone), ``--connections`` coroutines calling it in turn, over each
``--storage`` (default ``memory://`` and a fresh SQLite file), CPU time of this process
per request (every thread: the thread pool's work included) and requests per second,
each phase after as many calls to warm up:

1. ``POST /_bench/empty``: the app answers ``{}`` before routing; the baseline;
2. ``GET /v1/queue/poll``: the poll of a visitor still waiting (a third event, whose room
   admits one a second: everyone waits), the hottest call of a launch (goal: at most
   twice the empty request's CPU). ``--requests / POLLS_EACH`` visitors poll in turn,
   each ``POLLS_EACH`` times, with the numbered ticket of their first poll, as a waiting
   visitor does; the warm-up polls are theirs too (so their buyer tokens are in the
   worker's cache, as after any visitor's first poll);
2b. ``GET /v1/queue/poll``, admitted: the poll that finds its visitor admitted and signs
   an admission (each visitor once);
3. ``POST /v1/holds`` on an event without a front door: one unit of a random SKU, each
   request a buyer of its own; the buy path's baseline;
4. ``POST /v1/holds`` on the same event behind a waiting room: the same requests, each
   with its buyer's admission (``Lampo-Admission``, one hold per admission); the ratio
   of its requests per second to 3.'s says whether the buy path keeps its throughput.

Both events open an hour before the run, the door's admitting a million a second (all
admitted at once: the bench measures the calls, not the wait); rate limits and velocity
limits off, as in ``bench/http_api.py --in-process``.

``http``: the goals' bench, over a real server: ``lampo serve`` (granian, one worker, a
fresh SQLite file, rate and velocity limits off; ``_serving``) and wrk (``DOOR_LUA``), in
``--rounds`` alternating rounds of ``--seconds`` per phase: ``POST /_bench/empty``; the
poll of ``--visitors`` waiting visitors (behind 4,000 others in a room that opened ten
seconds ago admitting one a second), polled in turn with their numbered tickets; ``POST
/v1/holds`` without a front door, a buyer of its own per request; the same behind a
waiting room admitting a million a second, each with its buyer's admission (``--buyers``
a round for each: a run that would reuse one is refused). Tickets and admissions are
minted in this process with the server's secret, in the queue the server keeps. Printed:
requests, requests/s and the server's CPU (every process and thread, from /proc) per
request of each phase; poll/empty and the buy path's ratios.

``adaptive``: a room with ``target_latency_ms`` under HTTP load: ``--visitors`` in its
pre-queue poll over aiohttp at half their ETA (0.25-5 s) and reserve once admitted; each
second, the stored rate, admissions, buys, and the buys' p90 as the client saw it and as
the server's histogram (``/metrics``) bounds it.

``memory``: ``redis_memory``, the Redis memory one million waiting visitors take. Through
the Redis store's own join script (``lua/door_queue.lua``, as ``FrontDoorService.join``
runs it; pipelined 1,000 calls at a time, so a million take seconds rather than
minutes), into one queue under a fresh key prefix: first ``--prequeue`` of them before
the opening (the pre-queue: an entry and a sorted-set member each), then the freeze,
then the rest after it (an entry each). ``INFO memory``'s ``used_memory`` is read before,
after the pre-queue and at the end, and the bytes per visitor of each kind printed. The
keys are deleted afterwards. Buyers are named like accounts of 12 characters
(``acct-0000001``); ticket ids are the service's 32 hex digits.

Server: ``LAMPO_BENCH_REDIS_URL`` (default redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from lampo.domain.frontdoor import rank_key
from lampo.services.ids import new_id
from lampo.storage import from_url
from lampo.storage.door import door_store

REDIS = os.environ.get("LAMPO_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
#: Script calls sent in one pipeline.
PIPELINE = 1_000


@dataclass(frozen=True)
class MemoryFigures:
    """Bytes of ``used_memory`` per waiting visitor: in the pre-queue, after the opening,
    and over all of them."""

    visitors: int
    prequeue: int
    bytes_prequeue: float
    bytes_after: float
    bytes_all: float
    used_before: int
    used_after: int


def _used(client: Any) -> int:
    return int(client.info("memory")["used_memory"])


def redis_memory(
    url: str = REDIS, visitors: int = 1_000_000, prequeue_share: float = 0.5
) -> MemoryFigures:
    """Fill one queue with ``visitors`` (``prequeue_share`` of them before the opening)
    through the Redis store's join script; ``used_memory`` per visitor."""
    prefix = f"lampo-bench-door-{uuid.uuid4().hex[:12]}:"
    sep = "&" if "?" in url else "?"
    store = from_url(f"{url}{sep}prefix={prefix}")
    raw = redis.Redis.from_url(url, decode_responses=True)
    try:
        door: Any = door_store(store)
        keys = door._keys("bench", "IN")  # the queue's keys, as join uses them
        script = door._queue  # the join script, pipelined here (join sends one call)
        seed = door.seed("bench", "IN", os.urandom(32))
        joined = int(datetime.now(UTC).timestamp() * 1_000_000)
        pre = int(visitors * prequeue_share)

        def fill(start: int, stop: int, before_opening: bool) -> None:
            for first in range(start, stop, PIPELINE):
                pipe = raw.pipeline(transaction=False)
                for n in range(first, min(stop, first + PIPELINE)):
                    ticket = new_id()
                    rank = format(rank_key(seed, ticket), "016x") if before_opening else ""
                    args = ["join", f"acct-{n:07}", ticket, joined, rank]
                    script(keys=keys, args=args, client=pipe)
                pipe.execute()

        before = _used(raw)
        fill(0, pre, True)
        middle = _used(raw)
        assert door.freeze("bench", "IN") == pre
        fill(pre, visitors, False)
        after = _used(raw)
        counts = door.counts("bench", "IN")
        assert (counts.prequeue, counts.last) == (pre, visitors), counts
        return MemoryFigures(
            visitors=visitors,
            prequeue=pre,
            bytes_prequeue=(middle - before) / max(pre, 1),
            bytes_after=(after - middle) / max(visitors - pre, 1),
            bytes_all=(after - before) / visitors,
            used_before=before,
            used_after=after,
        )
    finally:
        for key in raw.scan_iter(match=prefix + "*", count=1000):
            raw.unlink(key)
        raw.close()
        store.close()


# -- cpu: the poll and the buy path, in process --------------------------------------------
CPU_SECRET = b"bench-front-door-secret-0123456789abcdef"
CPU_ADMIN = b"bench-admin-key-0123456789abcdef"
CPU_SKUS = tuple(f"phone-{i}" for i in range(8))
#: How many times each waiting visitor polls in the poll phase.
POLLS_EACH = 10


@dataclass(frozen=True)
class Phase:
    """One timed phase: requests, CPU microseconds per request, requests per second."""

    name: str
    requests: int
    cpu_us: float
    per_second: float


def _cpu_events(now: datetime) -> list[Any]:
    from dataclasses import replace
    from datetime import timedelta

    from lampo.domain.catalog import Category, Sku
    from lampo.domain.event import Offer, SaleEvent, Window
    from lampo.domain.frontdoor import MAX_ADMISSION_SECONDS, MAX_ADMIT_PER_SECOND, FrontDoor
    from lampo.domain.market import Market
    from lampo.domain.money import FxTable, Money

    plain = SaleEvent(
        id="plain",
        name="Buy path without a front door",
        markets={"CN": Market("CN", "China", "CNY", "Asia/Shanghai")},
        windows={"CN": Window(now - timedelta(hours=1), now + timedelta(hours=6))},
        categories={"phone": Category("phone", "Phones")},
        skus={s: Sku(s, "phone", s, "phone") for s in CPU_SKUS},
        offers={s: Offer(s, 5_000_000, {"CN": Money(99_900, "CNY")}) for s in CPU_SKUS},
        fx=FxTable("CNY", now.date(), {}),
        hold_seconds=3600,
    )
    door = FrontDoor(admit_per_second=MAX_ADMIT_PER_SECOND, admission_seconds=MAX_ADMISSION_SECONDS)
    behind = replace(plain, id="door", name="Buy path behind a waiting room", front_door=door)
    slow = FrontDoor(admit_per_second=1, admission_seconds=MAX_ADMISSION_SECONDS)
    room = replace(
        plain, id="room", name="A waiting room that admits one a second", front_door=slow
    )
    return [plain, behind, room]


async def _calls(
    app: Any, requests: list[tuple[str, str, list[tuple[bytes, bytes]], bytes]], connections: int
) -> Counter[int]:
    """Each (method, path, headers, body) once, from ``connections`` coroutines in turn;
    the statuses."""
    statuses: Counter[int] = Counter()

    async def one(method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "query_string": b"",
            "client": ("127.0.0.1", 50000),
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] += 1

        await app(scope, receive, send)

    async def caller(first: int) -> None:
        for i in range(first, len(requests), connections):
            await one(*requests[i])

    await asyncio.gather(*(caller(c) for c in range(connections)))
    return statuses


def _timed(
    app: Any, name: str, warm: list[Any], timed: list[Any], connections: int, status: int
) -> Phase:
    for batch in (warm, timed):  # the second one timed
        cpu, wall = time.process_time(), time.perf_counter()
        statuses = asyncio.run(_calls(app, batch, connections))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if statuses[status] != len(batch):
            raise SystemExit(f"{name}: {dict(statuses)}, not all {status}")
    return Phase(name, len(timed), cpu / len(timed) * 1e6, len(timed) / wall)


def cpu_phases(storage_url: str, requests: int, connections: int) -> list[Phase]:
    """The four phases of ``cpu`` over one storage (see the module's doc)."""
    import random

    from lampo.bootstrap import Config, build_sales
    from lampo.web.app import App
    from lampo.web.asgi import tune_gc
    from lampo.web.auth import issue_token
    from lampo.web.config import WebConfig

    tune_gc()  # as create_app does in a server worker
    engine = Config.from_env({}, storage_url=storage_url)
    config = WebConfig(
        engine=engine,
        secret=CPU_SECRET,
        admin_key=CPU_ADMIN,
        webhook_secret=b"bench-webhook-secret-0123456789abcdef",
        buyer_rate=0,
        ip_rate=0,
        sweep_interval=0,
        bench=True,
        device_rate=0,  # the front door's velocity limits off: a bench of CPU, not limits
        network_rate=0,
    )
    sales = build_sales(engine, storage=from_url(storage_url))
    plain, behind, room = _cpu_events(datetime.now(UTC))
    for event in (plain, behind, room):
        sales.open(event)
    app = App(config, sales)
    door = app.door
    n = 2 * requests  # warm-up and timed: every buyer once
    tokens = [f"Bearer {issue_token(CPU_SECRET, f'b{i}', 7200)}".encode() for i in range(n)]
    tickets, admissions = [], []
    for i in range(n):  # join and poll through the app's own service: same secret
        ticket = door.join("door", "CN", f"b{i}")
        got = door.poll(ticket.token, f"b{i}")
        if got.admission is None:
            raise SystemExit(f"b{i} not admitted: {got}")
        tickets.append(got.ticket.encode())
        admissions.append(got.admission.encode())
    visitors = max(1, requests // POLLS_EACH)
    for i in range(4_000):  # the first ones in line (a second's worth would be admitted)
        door.join("room", "CN", f"w{i}")
    waiting = []
    for i in range(visitors):
        ticket = door.join("room", "CN", f"b{i}")
        got = door.poll(ticket.token, f"b{i}")
        if got.state != "waiting":
            raise SystemExit(f"b{i} is not waiting: {got}")
        waiting.append(got.ticket.encode())
    rng = random.Random(0)
    skus = [rng.choice(CPU_SKUS) for _ in range(n)]

    def empty(i: int) -> Any:
        return ("POST", "/_bench/empty", [(b"authorization", tokens[i])], b"")

    def poll(i: int) -> Any:  # the visitors still waiting, in turn
        v = i % visitors
        headers = [(b"authorization", tokens[v]), (b"lampo-ticket", waiting[v])]
        return ("GET", "/v1/queue/poll", headers, b"")

    def admitted(i: int) -> Any:  # each admitted visitor once
        headers = [(b"authorization", tokens[i]), (b"lampo-ticket", tickets[i])]
        return ("GET", "/v1/queue/poll", headers, b"")

    def buy(event: str, i: int) -> Any:
        body = f'{{"event":"{event}","market":"CN","items":{{"{skus[i]}":1}}}}'.encode()
        headers = [
            (b"authorization", tokens[i]),
            (b"content-type", b"application/json"),
            (b"idempotency-key", f"k{i}".encode()),
        ]
        if event == "door":
            headers.append((b"lampo-admission", admissions[i]))
        return ("POST", "/v1/holds", headers, body)

    def split(make: Any) -> tuple[list[Any], list[Any]]:
        return [make(i) for i in range(requests)], [make(i) for i in range(requests, n)]

    try:
        return [
            _timed(app, "POST /_bench/empty", *split(empty), connections, 200),
            _timed(app, "GET /v1/queue/poll, waiting", *split(poll), connections, 200),
            _timed(app, "GET /v1/queue/poll, admitted", *split(admitted), connections, 200),
            _timed(
                app, "POST /v1/holds, no door", *split(lambda i: buy("plain", i)), connections, 201
            ),
            _timed(
                app,
                "POST /v1/holds, behind the room",
                *split(lambda i: buy("door", i)),
                connections,
                201,
            ),
        ]
    finally:
        sales.storage.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="bench", required=True)
    memory = sub.add_parser("memory", help="Redis memory per waiting visitor")
    memory.add_argument("--visitors", type=int, default=1_000_000)
    memory.add_argument("--prequeue", type=float, default=0.5)
    cpu = sub.add_parser("cpu", help="CPU per poll and buy-path throughput, in process")
    cpu.add_argument("--requests", type=int, default=20_000)
    cpu.add_argument("--connections", type=int, default=64)
    cpu.add_argument("--storage", action="append", default=None)
    over = sub.add_parser("http", help="the poll and the buy path over a real server")
    over.add_argument("--seconds", type=int, default=4)
    over.add_argument("--rounds", type=int, default=3)
    over.add_argument("--visitors", type=int, default=5_000)
    over.add_argument("--buyers", type=int, default=30_000)
    over.add_argument("--threads", type=int, default=2)
    over.add_argument("--connections", type=int, default=32)
    adaptive = sub.add_parser("adaptive", help="the adaptive admission rate over HTTP")
    adaptive.add_argument("--visitors", type=int, default=8_000)
    adaptive.add_argument("--clients", type=int, default=200)
    adaptive.add_argument("--rate", type=int, default=100)
    adaptive.add_argument("--target-ms", type=int, default=20)
    adaptive.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args(argv)
    if args.bench == "adaptive":
        return _adaptive(args)
    if args.bench == "cpu":
        return _cpu(args)
    if args.bench == "http":
        return _http(args)
    if args.bench == "memory":
        f = redis_memory(REDIS, args.visitors, args.prequeue)
        print(f"visitors {f.visitors:,} ({f.prequeue:,} in the pre-queue)")
        print(f"used_memory {f.used_before:,} -> {f.used_after:,} bytes")
        print(f"bytes per visitor: pre-queue {f.bytes_prequeue:.0f}, ", end="")
        print(f"after the opening {f.bytes_after:.0f}, all {f.bytes_all:.0f}")
        print(f"a million such visitors: {f.bytes_all * 1_000_000 / 2**20:,.0f} MiB")
    return 0


# -- http: the poll and the buy path, over a real server -----------------------------------
#: wrk's script for every phase of ``http``: each thread walks the lines of its file
#: (``token<TAB>ticket or admission``) from its own offset in steps of the thread count;
#: ``mode`` says what a request is. Polls go round the lines; a reservation takes a line
#: of its own (the bench refuses a run that made more reservations than its file has
#: lines: a line used twice would be an idempotent replay, not a reservation).
DOOR_LUA = r"""
local lines = {}
local mode = nil
local nthreads = 0
local step, at, used = 1, 0, 0

function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
end

function init(args)
  for line in io.lines(args[1]) do lines[#lines + 1] = line end
  mode = args[2]
  step = tonumber(args[3])
  at = tid - 1
  if mode == "empty" then
    wrk.method = "POST"
    wrk.path = "/_bench/empty"
    wrk.body = "{}"
  elseif mode == "poll" then
    wrk.method = "GET"
    wrk.path = "/v1/queue/poll"
  else
    wrk.method = "POST"
    wrk.path = "/v1/holds"
    wrk.headers["Content-Type"] = "application/json"
  end
end

function request()
  if mode == "empty" then return wrk.format() end
  local i = at % #lines + 1
  at = at + step
  used = used + 1
  local token, pass = lines[i]:match("([^\t]+)\t([^\t]*)")
  wrk.headers["Authorization"] = "Bearer " .. token
  if mode == "poll" then
    wrk.headers["Lampo-Ticket"] = pass
    return wrk.format()
  end
  local sku = "phone-" .. (i % 8)
  wrk.headers["Idempotency-Key"] = "k" .. mode .. i
  if mode == "door" then wrk.headers["Lampo-Admission"] = pass end
  local body = '{"event":"' .. mode .. '","market":"CN","items":{"' .. sku .. '":1}}'
  return wrk.format(nil, nil, nil, body)
end
"""
#: The server's histogram of answer times, one line per bound (``/metrics``).
HOLDS_BUCKET = "lampo_http_request_duration_seconds_bucket{"
#: The phases of ``http``, in the order each round runs them.
HTTP_PHASES = ("empty", "poll", "plain", "door")


@dataclass(frozen=True)
class Served:
    """A server of ``_serving``: its process and port; a ``FrontDoorService`` of this
    process over the same file with the server's secret (to mint tickets and admissions
    as the server would, in the queue it keeps: the server only answers them);
    ``bench/http_api.py``; the run's directory."""

    server: Any
    port: int
    door: Any
    http_api: Any
    tmp: Path


@contextlib.contextmanager
def _serving(prefix: str, events: list[Any]) -> Iterator[Served]:
    """``lampo serve`` (granian, one worker, a fresh SQLite file, rate and velocity limits
    off; ``bench/http_api.py``'s) with ``events`` loaded, stopped and removed on exit."""
    import shutil
    import tempfile

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import http_api  # the server's start and stop, and its CPU from /proc
    from lampo.bootstrap import Config, build_sales
    from lampo.domain.codec import event_to_dict
    from lampo.services.frontdoor import FrontDoorService

    os.environ["LAMPO_DEVICE_RATE"] = os.environ["LAMPO_NETWORK_RATE"] = "0"
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    url = f"sqlite:///{tmp / 'door.db'}"
    server, port = http_api.start_server(tmp, url, 1)
    storage = None
    try:
        for event in events:
            http_api.call(port, "POST", "/v1/admin/events", event_to_dict(event))
        storage = from_url(url)
        sales = build_sales(Config.from_env({}, storage_url=url), storage=storage)
        for event in events:
            sales.learn(event)
        door = FrontDoorService(sales, door_store(storage), http_api.SECRET.encode())
        yield Served(server, port, door, http_api, tmp)
    finally:
        if storage is not None:
            storage.close()
        http_api.stop_server(server, tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def _http(args: argparse.Namespace) -> int:
    import dataclasses
    import subprocess
    from datetime import timedelta

    from lampo.web.auth import issue_token

    now = datetime.now(UTC)
    plain, behind, room = _cpu_events(now)
    opened = now.replace(microsecond=0) - timedelta(seconds=10)
    windows = {m: dataclasses.replace(w, opens=opened) for m, w in room.windows.items()}
    room = dataclasses.replace(room, windows=windows)
    with _serving("lampo-bench-door-http-", [plain, behind, room]) as served:
        server, port, door, http_api, tmp = (
            served.server,
            served.port,
            served.door,
            served.http_api,
            served.tmp,
        )
        secret = http_api.SECRET.encode()

        def token(name: str) -> str:
            return issue_token(secret, name, 7200)

        def write(name: str, rows: list[tuple[str, str]]) -> Path:
            path = tmp / f"{name}.txt"
            path.write_text("".join(f"{t}\t{p}\n" for t, p in rows))
            return path

        for i in range(4_000):  # the first ones in line (ten seconds' worth are admitted)
            door.join("room", "CN", f"w{i}")
        polls = [
            (token(f"v{i}"), door.join("room", "CN", f"v{i}").token) for i in range(args.visitors)
        ]
        files = {"empty": write("empty", polls[:1]), "poll": write("poll", polls)}
        for r in range(args.rounds):
            buyers = [f"r{r}b{i}" for i in range(args.buyers)]
            files[f"plain{r}"] = write(f"plain{r}", [(token(b), "") for b in buyers])
            admissions = []
            for b in buyers:
                got = door.poll(door.join("door", "CN", b).token, b)
                if got.admission is None:
                    raise SystemExit(f"{b} not admitted: {got}")
                admissions.append((token(b), got.admission))
            files[f"door{r}"] = write(f"door{r}", admissions)
        script = tmp / "door.lua"
        script.write_text(DOOR_LUA)

        def run(mode: str, lines: Path, seconds: float) -> tuple[int, float, float]:
            """wrk in ``mode`` over ``lines``: requests, seconds, server CPU seconds."""
            before = http_api.tree_cpu(server.pid)
            cmd = [
                "wrk",
                f"-t{args.threads}",
                f"-c{args.connections}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}",
                "--",
                str(lines),
                mode,
                str(args.threads),
            ]
            done = subprocess.run(cmd, check=False, capture_output=True, text=True)
            after = http_api.tree_cpu(server.pid)
            result = http_api.parse_wrk(done.stdout)
            if done.returncode or result.non_2xx or result.errors or before is None:
                raise SystemExit(f"wrk {mode}: {done.stdout}{done.stderr}")
            assert after is not None
            if mode in ("plain", "door") and result.requests > args.buyers:
                raise SystemExit(
                    f"{mode}: {result.requests:,} reservations but {args.buyers:,} buyers "
                    "a round: each needs one of its own (raise --buyers)"
                )
            return result.requests, seconds, after - before

        run("empty", files["empty"], 1)  # warm up: the worker, and every visitor's token
        run("poll", files["poll"], 2)
        totals = {phase: [0.0, 0.0, 0.0] for phase in HTTP_PHASES}
        for r in range(args.rounds):
            for phase in HTTP_PHASES:
                lines = files[phase] if phase in ("empty", "poll") else files[f"{phase}{r}"]
                n, secs, cpu = run(phase, lines, args.seconds)
                totals[phase][0] += n
                totals[phase][1] += secs
                totals[phase][2] += cpu
        print(
            f"lampo serve (granian, 1 worker, SQLite), wrk {args.threads} threads and "
            f"{args.connections} connections, {args.rounds} rounds of {args.seconds} s "
            "per phase, alternating"
        )
        names = {
            "empty": "POST /_bench/empty",
            "poll": "GET /v1/queue/poll, waiting",
            "plain": "POST /v1/holds, no door",
            "door": "POST /v1/holds, behind the room",
        }
        print(f"{'phase':<34}{'requests':>10}{'req/s':>9}{'cpu us':>8}")
        cpu_us: dict[str, float] = {}
        per_second: dict[str, float] = {}
        for phase, (count, spent, used) in totals.items():
            cpu_us[phase], per_second[phase] = used / count * 1e6, count / spent
            print(
                f"{names[phase]:<34}{count:>10,.0f}{per_second[phase]:>9,.0f}{cpu_us[phase]:>8.1f}"
            )
        ratio = cpu_us["poll"] / cpu_us["empty"]
        print(f"poll / empty, server CPU per request: {ratio:.2f} (goal <= 2)")
        print(
            "buy path behind the room / without it: requests per second "
            f"{per_second['door'] / per_second['plain']:.2f}, "
            f"server CPU per request {cpu_us['door'] / cpu_us['plain']:.2f}"
        )
    return 0


# -- adaptive: the admission rate following the buy path's latency, over a real server ------
async def _adaptive_crowd(
    port: int, visitors: list[tuple[str, str]], clients: int, admin: str, seconds: float
) -> list[dict[str, float]]:
    """``visitors`` (buyer token, ticket) poll the room of event ``adaptive`` at the cadence
    its answers suggest (half the ETA, from a quarter second to five), over at most
    ``clients`` connections, and reserve once admitted; every second the queue's stored
    rate and admitted count are read, with the buys of that second and their latency.
    Until everyone bought or ``seconds`` passed."""
    import aiohttp

    base = f"http://127.0.0.1:{port}"
    latencies: list[float] = []
    bought = [0]
    started = time.monotonic()

    async def visitor(session: aiohttp.ClientSession, token: str, ticket: str) -> None:
        auth = {"Authorization": f"Bearer {token}"}
        while time.monotonic() - started < seconds:
            async with session.get(
                f"{base}/v1/queue/poll", headers={**auth, "Lampo-Ticket": ticket}
            ) as answer:
                got = await answer.json()
            if answer.status != 200:
                raise SystemExit(f"poll: {answer.status} {got}")
            ticket = got["ticket"]
            if got["state"] == "admitted":
                body = {"event": "adaptive", "market": "CN", "items": {CPU_SKUS[0]: 1}}
                headers = {
                    **auth,
                    "Lampo-Admission": got["admission"],
                    "Idempotency-Key": ticket[-16:],
                }
                sent = time.perf_counter()
                async with session.post(f"{base}/v1/holds", json=body, headers=headers) as answer:
                    await answer.read()
                if answer.status != 201:
                    raise SystemExit(f"buy: {answer.status}")
                latencies.append(time.perf_counter() - sent)
                bought[0] += 1
                return
            if got["state"] != "waiting":
                raise SystemExit(f"poll: {got}")
            await asyncio.sleep(min(max(got["eta_seconds"] / 2, 0.25), 5.0))

    rows: list[dict[str, float]] = []

    async def server_buckets(session: aiohttp.ClientSession) -> dict[float, float]:
        """The server's histogram of ``/v1/holds`` answers (``/metrics``): count by bound."""
        async with session.get(f"{base}/metrics") as answer:
            text = await answer.text()
        found: dict[float, float] = {}
        for line in text.splitlines():
            if line.startswith(HOLDS_BUCKET) and 'route="/v1/holds"' in line:
                bound = line.split('le="', 1)[1].split('"', 1)[0]
                found[float(bound)] = float(line.rsplit(" ", 1)[1])
        return found

    async def sampler(session: aiohttp.ClientSession) -> None:
        last_admitted, last_bought, last_n = 0, 0, 0
        last_buckets = await server_buckets(session)
        while True:
            await asyncio.sleep(1.0)
            async with session.get(
                f"{base}/v1/admin/events/adaptive/queue", headers={"X-API-Key": admin}
            ) as answer:
                market = (await answer.json())["markets"][0]
            window = sorted(latencies[last_n:])
            last_n = len(latencies)
            p90 = window[len(window) * 9 // 10] * 1000 if window else 0.0
            buckets = await server_buckets(session)
            grown = {b: n - last_buckets.get(b, 0) for b, n in sorted(buckets.items())}
            last_buckets = buckets
            total = grown.get(float("inf"), 0)
            served = next((b for b, n in grown.items() if total and n >= 0.9 * total), 0.0)
            rows.append(
                {
                    "t": time.monotonic() - started,
                    "rate": market["rate"],
                    "admitted": market["admitted"] - last_admitted,
                    "bought": bought[0] - last_bought,
                    "p90_ms": p90,
                    "server_p90_ms": served * 1000,
                    "waiting": market["waiting"],
                }
            )
            last_admitted, last_bought = market["admitted"], bought[0]

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        watch = asyncio.create_task(sampler(session))
        await asyncio.gather(*(visitor(session, token, ticket) for token, ticket in visitors))
        watch.cancel()
    return rows


def _adaptive(args: argparse.Namespace) -> int:
    import dataclasses
    from datetime import timedelta

    from lampo.domain.frontdoor import FrontDoor
    from lampo.web.auth import issue_token

    plain, _, _ = _cpu_events(datetime.now(UTC))
    door = FrontDoor(
        admit_per_second=args.rate, admission_seconds=600, target_latency_ms=args.target_ms
    )
    opens = datetime.now(UTC) + timedelta(seconds=1)
    windows = {m: dataclasses.replace(w, opens=opens) for m, w in plain.windows.items()}
    event = dataclasses.replace(
        plain, id="adaptive", name="An adaptive room", front_door=door, windows=windows
    )
    with _serving("lampo-bench-door-adaptive-", [event]) as served:
        secret = served.http_api.SECRET.encode()
        visitors = [
            (issue_token(secret, f"a{i}", 7200), served.door.join("adaptive", "CN", f"a{i}").token)
            for i in range(args.visitors)
        ]  # all in the pre-queue: numbered at the opening, admitted from there
        wait = (opens - datetime.now(UTC)).total_seconds()
        if wait > 0:
            time.sleep(wait)
        admin = served.http_api.ADMIN_KEY
        rows = asyncio.run(
            _adaptive_crowd(served.port, visitors, args.clients, admin, args.seconds)
        )
    print(
        f"lampo serve (granian, 1 worker, SQLite); {args.visitors:,} visitors in the "
        f"pre-queue, {args.clients} HTTP clients; the room starts at {args.rate}/s, "
        f"target {args.target_ms} ms (the 90th percentile of the buy path, per worker)"
    )
    print(
        "p90: the buys' 90th percentile as this client saw it (its own delays included); "
        "server p90: the bound of the server's histogram under which 90 % of them were "
        "answered (/metrics)"
    )
    head = f"{'s':>4}{'rate':>7}{'admitted':>10}{'bought':>8}{'p90 ms':>8}"
    print(f"{head}{'server p90 ms':>15}{'waiting':>9}")
    for row in rows:
        print(
            f"{row['t']:>4.0f}{row['rate']:>7.0f}{row['admitted']:>10.0f}"
            f"{row['bought']:>8.0f}{row['p90_ms']:>8.1f}{row['server_p90_ms']:>15.1f}"
            f"{row['waiting']:>9.0f}"
        )
    return 0


def _cpu(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="lampo-bench-door-"))
    urls = args.storage or ["memory://", "sqlite"]
    print(
        f"in-process ASGI app, {args.connections} coroutines, {args.requests:,} requests "
        "per phase (after as many to warm up), CPU of this process per request"
    )
    try:
        for url in urls:
            if url == "sqlite":
                url = f"sqlite:///{tmp / 'door.db'}"
            phases = cpu_phases(url, args.requests, args.connections)
            empty, poll, admitted, plain, behind = phases
            print(f"\n{url.split(':', 1)[0]}")
            print(f"{'phase':<34}{'req/s':>9}{'cpu us':>8}")
            for p in phases:
                print(f"{p.name:<34}{p.per_second:>9,.0f}{p.cpu_us:>8.0f}")
            print(
                f"poll / empty, CPU per request: waiting {poll.cpu_us / empty.cpu_us:.2f}, "
                f"admitted {admitted.cpu_us / empty.cpu_us:.2f} (goal <= 2)"
            )
            print(
                f"buy path behind the room / without it, requests per second: "
                f"{behind.per_second / plain.per_second:.2f} "
                f"(CPU per request {behind.cpu_us / plain.cpu_us:.2f})"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
