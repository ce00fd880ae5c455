"""The reserve endpoint over HTTP beside an empty ASGI endpoint, same server, same run.

Run:  .venv/bin/python bench/http_api.py [--seconds 10] [--connections 64] [--threads 2]
                                     [--config sqlite:1 --config redis:2 ...]
                                     [--buyers 10000] [--sync FULL|NORMAL]

For each configuration (storage kind and worker count; default ``sqlite:1``,
``sqlite:2`` and ``redis:2`` when a Redis server answers) it starts ``lampo serve``
(granian) with the benchmark endpoint on and rate limits off, on a fresh SQLite file or a
fresh Redis key prefix (``LAMPO_BENCH_REDIS_URL``, removed afterwards), loads an event of
10 SKUs with ample stock, writes ``--buyers`` signed buyer tokens for a wrk Lua script,
then runs wrk twice with the same script, connections and duration:

1. ``POST /_bench/empty``: the app answers ``{}`` before routing (the cost of granian,
   the ASGI call and wrk itself);
2. ``POST /v1/holds``: real reservations, one unit of a random SKU for a random buyer,
   each with its own Idempotency-Key;
3. a till sale, ``POST /v1/stores/{store}/sales``: one unit of a random SKU, paid at once,
   with the store's key (issued through the admin API) and a receipt id of its own.

It prints, per configuration, requests/s, p50/p99 latency, non-2xx answers, the server's
CPU time per request (all its processes and threads, from /proc), successful
reservations/s (held units counted from storage before and after, divided by the run
time) and the ratio reserve/empty of that configuration. Needs ``wrk`` on the PATH
(``apt-get install -y wrk``).

``--in-process`` measures the app alone instead: no granian, no wrk, the CPU time per
request of the app, the service and storage (``memory://``, ``sqlite://`` and, when a
Redis server answers, ``redis://``), for reservations, for paying the holds they made,
for reservations of sold-out SKUs, and for till sales (a store's key, reserve and pay in
one call).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lampo.domain.catalog import Category, Sku
from lampo.domain.codec import event_to_dict
from lampo.domain.event import Offer, SaleEvent, Window
from lampo.domain.market import Market
from lampo.domain.money import FxTable, Money
from lampo.web.auth import issue_token

ADMIN_KEY = "bench-admin-key-0123456789abcdef"
SECRET = "bench-buyer-secret-0123456789abcdef"
EVENT = "bench-http"
SOLD_OUT = "bench-http-sold-out"  # the same SKUs, none allocated (--in-process)
SKUS = [f"phone-{i}" for i in range(10)]
#: The store whose till sells in the till scenario, and its registry.
STORE = "bench-store-1"
REGISTRY = (
    f"id,name,kind,market,city,opened,closed,lat,lon\n{STORE},Bench,own,CN,Beijing,2017-04-01,,,\n"
)

LUA = r"""
local tokens = {}
local counter = 0
local nthreads = 0
local skus = {SKUS}

function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
end

function init(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  math.randomseed(tid * 7919 + os.time())
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local token = tokens[math.random(#tokens)]
  local sku = skus[math.random(#skus)]
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["Idempotency-Key"] = "k" .. tid .. "-" .. counter .. "-" .. math.random(1e9)
  local body = '{"event":"EVENT","market":"CN","items":{"' .. sku .. '":1}}'
  return wrk.format(nil, nil, nil, body)
end
"""


#: The till scenario: one unit of a random SKU per sale, a new receipt id each, the
#: store's key (the first line of the file wrk is given) in ``Lampo-Store-Key``.
TILL_LUA = r"""
local key = nil
local counter = 0
local nthreads = 0
local skus = {SKUS}

function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
end

function init(args)
  for line in io.lines(args[1]) do key = line break end
  math.randomseed(tid * 7919 + os.time())
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Lampo-Store-Key"] = key
end

function request()
  counter = counter + 1
  local sku = skus[math.random(#skus)]
  local receipt = "r" .. tid .. "-" .. counter .. "-" .. math.random(1e9)
  local body = '{"event":"EVENT","receipt_id":"' .. receipt .. '","items":{"' .. sku .. '":1}}'
  return wrk.format(nil, nil, nil, body)
end
"""


@dataclass
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: str


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if found is None:
        raise SystemExit(f"wrk printed a latency this script cannot read: {text!r}")
    value, unit = found.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}[unit]


def parse_wrk(out: str) -> WrkResult:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return WrkResult(
        rps, p50, p99, total, int(non.group(1)) if non else 0, errors.group(0) if errors else ""
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def call(port: int, method: str, path: str, body: Any = None, media: str = "") -> Any:
    """An admin call; ``body`` as JSON, or as text of the ``media`` type when given."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"X-API-Key": ADMIN_KEY, "Idempotency-Key": f"bench-{time.time_ns()}"}
        data = None
        if body is not None:
            data = body.encode() if media else json.dumps(body).encode()
            headers["Content-Type"] = media or "application/json"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        if resp.status >= 300:
            raise SystemExit(f"{method} {path}: {resp.status} {payload[:300]!r}")
        return json.loads(payload)
    finally:
        conn.close()


def bench_event(event: str = EVENT, allocation: int = 5_000_000) -> SaleEvent:
    now = datetime.now(UTC).replace(microsecond=0)
    cn = Market("CN", "China", "CNY", "Asia/Shanghai")
    return SaleEvent(
        id=event,
        name="HTTP benchmark",
        markets={"CN": cn},
        windows={"CN": Window(now - timedelta(hours=1), now + timedelta(hours=6))},
        categories={"phone": Category("phone", "Phones")},
        skus={s: Sku(s, "phone", s, "phone") for s in SKUS},
        offers={s: Offer(s, allocation, {"CN": Money(99_900, "CNY")}) for s in SKUS},
        fx=FxTable("CNY", now.date(), {}),
        hold_seconds=3600,
    )


def held(port: int) -> int:
    stock = call(port, "GET", f"/v1/events/{EVENT}/stock")
    return sum(row["held"] + row["sold"] for row in stock["skus"])


def run_wrk(args: argparse.Namespace, url: str, script: Path, tokens: Path) -> WrkResult:
    cmd = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.seconds}s",
        "--latency",
        "-s",
        str(script),
        url,
        "--",
        str(tokens),
    ]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"wrk failed: {done.stdout}{done.stderr}")
    return parse_wrk(done.stdout)


@dataclass
class Outcome:
    config: str
    empty: WrkResult
    reserve: WrkResult
    made: int
    elapsed: float
    #: Server CPU (every worker process, every thread) per request, µs; None off Linux.
    empty_cpu_us: float | None
    reserve_cpu_us: float | None
    till: WrkResult
    sold: int
    till_elapsed: float
    till_cpu_us: float | None


def tree_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by ``pid`` and its descendants, from /proc.

    On a machine shared with other work the requests/s move with the CPU share the server
    gets; the CPU it spends per request does not, so the bench prints both."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    todo = [pid]
    try:
        while todo:
            current = todo.pop()
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        return None
    return total


def measured(
    args: argparse.Namespace, pid: int, url: str, script: Path, tokens: Path
) -> tuple[WrkResult, float | None]:
    """wrk against ``url``, and the server's CPU µs per request meanwhile."""
    before = tree_cpu(pid)
    result = run_wrk(args, url, script, tokens)
    after = tree_cpu(pid)
    if before is None or after is None or not result.requests:
        return result, None
    return result, (after - before) / result.requests * 1e6


def storage_url(kind: str, tmp: Path, sync: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'bench.db'}?synchronous={sync}"
    base = os.environ.get("LAMPO_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    return f"{base}{'&' if '?' in base else '?'}prefix=lampo-bench-http-{uuid.uuid4().hex[:12]}:"


def redis_answers() -> bool:
    """Whether the Redis server of the redis configurations is there."""
    import redis

    url = os.environ.get("LAMPO_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    client = redis.Redis.from_url(url.split("?", 1)[0], socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def drop_redis_prefix(url: str) -> None:
    """Remove the keys a Redis run left under its private prefix."""
    import redis

    prefix = url.rsplit("prefix=", 1)[1]
    client = redis.Redis.from_url(url.split("?", 1)[0])
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


def start_server(tmp: Path, storage: str, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    """``lampo serve`` on ``storage`` with the benchmark endpoints on and rate limits off,
    once it answers; and its port."""
    port = free_port()
    env = {
        **os.environ,
        "LAMPO_SECRET": SECRET,
        "LAMPO_ADMIN_KEY": ADMIN_KEY,
        "LAMPO_WEBHOOK_SECRET": "bench-webhook-secret-0123456789abcdef",
        "LAMPO_BUYER_RATE": "0",
        "LAMPO_IP_RATE": "0",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lampo.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--storage",
            storage,
            "--secrets-file",
            str(tmp / "secrets.env"),
            "--bench-endpoints",
        ],
        cwd=tmp,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            call(port, "GET", "/health")
            return server, port
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise SystemExit(f"the server ({workers} workers) did not start") from None
            time.sleep(0.1)


def stop_server(server: subprocess.Popen[bytes], tmp: Path) -> None:
    """Stop ``start_server``'s server (SIGINT, then kill) and remove its directory."""
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
    shutil.rmtree(tmp, ignore_errors=True)


def write_workload(tmp: Path, buyers: int) -> tuple[Path, Path]:
    """The wrk script and its file of ``buyers`` signed buyer tokens."""
    tokens = tmp / "tokens.txt"
    tokens.write_text("\n".join(issue_token(SECRET.encode(), f"b{i}", 7200) for i in range(buyers)))
    script = tmp / "reserve.lua"
    skus = ", ".join(f'"{s}"' for s in SKUS)
    script.write_text(LUA.replace("{SKUS}", "{" + skus + "}").replace("EVENT", EVENT))
    return script, tokens


def run_config(args: argparse.Namespace, kind: str, workers: int) -> Outcome:
    """Start ``lampo serve`` for one configuration, run wrk on both endpoints, stop it."""
    tmp = Path(tempfile.mkdtemp(prefix="lampo-bench-http-"))
    storage = storage_url(kind, tmp, args.sync)
    server, port = start_server(tmp, storage, workers)
    try:
        call(port, "POST", "/v1/admin/events", event_to_dict(bench_event()))
        script, tokens = write_workload(tmp, args.buyers)

        base = f"http://127.0.0.1:{port}"
        empty, empty_cpu = measured(args, server.pid, f"{base}/_bench/empty", script, tokens)
        before = held(port)
        started = time.monotonic()
        reserve, reserve_cpu = measured(args, server.pid, f"{base}/v1/holds", script, tokens)
        elapsed = time.monotonic() - started
        made = held(port) - before
        call(port, "PUT", "/v1/admin/stores?replaces=0", REGISTRY, "text/csv")
        key = call(port, "POST", f"/v1/admin/stores/{STORE}/keys")["key"]
        till_script, key_file = tmp / "till.lua", tmp / "store-key.txt"
        key_file.write_text(key + "\n")
        skus = ", ".join(f'"{s}"' for s in SKUS)
        till_script.write_text(TILL_LUA.replace("{SKUS}", "{" + skus + "}").replace("EVENT", EVENT))
        before = held(port)
        started = time.monotonic()
        till_url = f"{base}/v1/stores/{STORE}/sales"
        till, till_cpu = measured(args, server.pid, till_url, till_script, key_file)
        till_elapsed = time.monotonic() - started
        sold = held(port) - before
    finally:
        stop_server(server, tmp)
        if kind == "redis":
            drop_redis_prefix(storage)
    name = f"{kind}{f' {args.sync}' if kind == 'sqlite' else ''}, {workers} worker(s)"
    return Outcome(
        name,
        empty,
        reserve,
        made,
        elapsed,
        empty_cpu,
        reserve_cpu,
        till,
        sold,
        till_elapsed,
        till_cpu,
    )


def parse_config(text: str) -> tuple[str, int]:
    kind, _, n = text.partition(":")
    if kind not in ("sqlite", "redis") or not n.isdigit() or int(n) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected sqlite:N or redis:N (N workers)")
    return kind, int(n)


async def _drive(
    app: Any,
    path: str,
    requests: int,
    callers: int,
    tokens: list[bytes],
    event: str = EVENT,
    made: list[tuple[bytes, bytes]] | None = None,
) -> Counter[int]:
    """``requests`` calls of the ASGI app from ``callers`` coroutines; the statuses.

    ``path`` ``/v1/holds`` reserves (one unit of a random SKU for a random buyer; with
    ``made``, each hold made is appended to it with its buyer's token); ``pay`` pays the
    holds in ``made`` instead, each with its buyer's token (and a fresh payment id);
    ``till`` sells one unit of a random SKU at the till of ``STORE`` (its key is
    ``tokens[0]`` then, each sale with a receipt id of its own)."""
    import random

    statuses: Counter[int] = Counter()
    paying = path == "pay"
    if paying and (made is None or len(made) < requests):
        raise SystemExit(f"pay: {requests} holds to pay, {len(made or ())} made")
    # the holds' ids read from the reservations' answers before the clock starts
    to_pay = [(json.loads(answer)["id"], token) for answer, token in made or ()] if paying else []

    async def one(i: int) -> None:
        extra: list[tuple[bytes, bytes]] = []
        if paying:
            hold_id, token = to_pay[i]
            body = b""
            target = f"/v1/holds/{hold_id}/pay"
        elif path == "till":
            token = b""
            sku = random.choice(SKUS)
            receipt = f"r{i}-{random.getrandbits(48)}"
            body = f'{{"event":"{event}","receipt_id":"{receipt}","items":{{"{sku}":1}}}}'.encode()
            target = f"/v1/stores/{STORE}/sales"
            extra = [(b"lampo-store-key", tokens[0])]
        else:
            token = random.choice(tokens)
            sku = random.choice(SKUS)
            body = f'{{"event":"{event}","market":"CN","items":{{"{sku}":1}}}}'.encode()
            target = path
        scope = {
            "type": "http",
            "method": "POST",
            "path": target,
            "query_string": b"",
            "client": ("127.0.0.1", 50000),
            "headers": [
                (b"content-type", b"application/json"),
                (b"authorization", b"Bearer " + token),
                (b"idempotency-key", f"k{i}-{random.getrandbits(48)}".encode()),
                (b"content-length", str(len(body)).encode()),
                *extra,
            ],
        }
        status = 0

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                statuses[status] += 1
            elif status == 201 and made is not None and not paying:
                made.append((message["body"], token))

        await app(scope, receive, send)

    async def caller(first: int) -> None:
        for i in range(first, requests, callers):
            await one(i)

    await asyncio.gather(*(caller(c) for c in range(callers)))
    return statuses


def in_process(args: argparse.Namespace) -> int:
    """The ASGI app driven without a server: ``--connections`` coroutines call it in turn
    with the requests wrk sends, over ``memory://``, ``sqlite://`` and, when a server
    answers, ``redis://``; prints the CPU µs per request (every thread of this process)
    for the empty endpoint, for reservations, for reservations of sold-out SKUs (new
    keys: the service's sold-out memory answers, after reading the keys' records), and
    for till sales (``POST /v1/stores/{store}/sales``: a store key, a sale paid at once).
    Steadier than wrk on a shared machine, and blind to granian's cost."""
    from lampo.bootstrap import Config, build_sales
    from lampo.storage import from_url
    from lampo.web.app import App
    from lampo.web.asgi import tune_gc
    from lampo.web.config import WebConfig

    tune_gc()  # as create_app does in a server worker

    requests = max(args.seconds, 1) * 2_000
    tokens = [issue_token(SECRET.encode(), f"b{i}", 7200).encode() for i in range(args.buyers)]
    tmp = Path(tempfile.mkdtemp(prefix="lampo-bench-inproc-"))
    print(
        f"in-process ASGI app, {args.connections} coroutines, {requests:,} requests per "
        f"endpoint (after as many to warm up), SQLite synchronous={args.sync}"
    )
    print(f"{'storage':<10}{'endpoint':<20}{'req/s':>9}{'cpu us':>8}")
    urls = ["memory://", f"sqlite:///{tmp / 'inproc.db'}?synchronous={args.sync}"]
    if redis_answers():
        urls.append(storage_url("redis", tmp, args.sync))
    phases = (  # path, event, the status every call must get
        ("/_bench/empty", EVENT, 200),
        ("/v1/holds", EVENT, 201),
        ("pay", EVENT, 200),  # pays the holds the phase before made
        ("/v1/holds", SOLD_OUT, 409),
        ("till", EVENT, 201),  # a till sale: reserve and pay in one call, by a store key
    )
    try:
        for url in urls:
            engine = Config.from_env({}, storage_url=url, soldout_ttl=1.0)
            config = WebConfig(
                engine=engine,
                secret=SECRET.encode(),
                admin_key=ADMIN_KEY.encode(),
                webhook_secret=b"bench-webhook-secret-0123456789abcdef",
                buyer_rate=0,
                ip_rate=0,
                sweep_interval=0,
                bench=True,
            )
            sales = build_sales(engine, storage=from_url(url))
            sales.open(bench_event())
            sales.open(bench_event(SOLD_OUT, 0))
            app = App(config, sales)
            app.network.import_csv(REGISTRY, 0)
            store_key = [app.network.issue_key(STORE).key.encode()]
            warm: list[tuple[bytes, bytes]] = []  # the holds made, paid in the next phase
            timed: list[tuple[bytes, bytes]] = []
            for path, event, status in phases:
                keys = store_key if path == "till" else tokens
                drive = _drive(app, path, requests, args.connections, keys, event, warm)
                asyncio.run(drive)  # warm up
                cpu, wall = time.process_time(), time.perf_counter()
                drive = _drive(app, path, requests, args.connections, keys, event, timed)
                statuses = asyncio.run(drive)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                if statuses[status] != requests:
                    raise SystemExit(f"{url} {path} {event}: {dict(statuses)}, not all {status}")
                name = url.split(":", 1)[0]
                label = {"pay": "/v1/holds/{id}/pay", "till": "till sale"}.get(path, path)
                label = label if event == EVENT else f"{label} sold out"
                print(f"{name:<10}{label:<20}{requests / wall:>9,.0f}{cpu / requests * 1e6:>8.0f}")
            sales.storage.close()
            if name == "redis":
                drop_redis_prefix(url)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--config",
        action="append",
        type=parse_config,
        help="storage:workers, repeatable (default: sqlite:1, sqlite:2 and, when a Redis "
        "server answers, redis:2); redis:N uses LAMPO_BENCH_REDIS_URL (default "
        "redis://127.0.0.1:6379/0) under a fresh key prefix",
    )
    parser.add_argument("--buyers", type=int, default=10_000)
    parser.add_argument("--sync", default="FULL", choices=["FULL", "NORMAL"])
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="drive the ASGI app without a server or wrk (CPU per request, memory and sqlite)",
    )
    args = parser.parse_args()
    if args.in_process:
        return in_process(args)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    configs: list[tuple[str, int]] = args.config or [("sqlite", 1), ("sqlite", 2)]
    if not args.config:
        if redis_answers():
            configs.append(("redis", 2))
        else:
            print("no Redis server answers: the redis:2 configuration is left out")
    outcomes = [run_config(args, kind, workers) for kind, workers in configs]

    print(
        f"lampo serve (granian); wrk {args.threads} threads, {args.connections} connections, "
        f"{args.seconds} s per endpoint, {args.buyers:,} buyers, {len(SKUS)} SKUs"
    )
    print(
        f"{'configuration':<26}{'endpoint':<19}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'non-2xx':>9}{'cpu us':>8}{'held/s':>9}{'ratio':>7}"
    )
    for o in outcomes:
        ok_per_s = o.made / o.elapsed
        ratio = o.reserve.requests_per_s / o.empty.requests_per_s
        till_ratio = o.till.requests_per_s / o.empty.requests_per_s
        till_extra = f"{o.sold / o.till_elapsed:>9,.0f}{till_ratio:>7.2f}"
        for endpoint, r, cpu, extra in (
            ("POST /_bench/empty", o.empty, o.empty_cpu_us, ""),
            ("POST /v1/holds", o.reserve, o.reserve_cpu_us, f"{ok_per_s:>9,.0f}{ratio:>7.2f}"),
            ("till sale", o.till, o.till_cpu_us, till_extra),
        ):
            cpu_text = "n/a" if cpu is None else f"{cpu:.0f}"
            print(
                f"{o.config:<26}{endpoint:<19}{r.requests_per_s:>9,.0f}{r.p50_ms:>8.2f}"
                f"{r.p99_ms:>8.2f}{r.non_2xx:>9,}{cpu_text:>8}{extra}"
            )
            if r.errors:
                print(f"  {r.errors}")
    print(
        "cpu us: server CPU (all its processes and threads) per request; held/s: "
        "successful reservations per second (units held, counted from storage; goal >= "
        "10,000/s), for the till the units sold; ratio: reserve (or till)/empty req/s in "
        "the same configuration (goal >= 0.5)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
