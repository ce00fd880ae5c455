"""Reservations/s of each storage backend, beside redis-benchmark and textbook PostgreSQL.

Run:  .venv/bin/python bench/storage.py [--seconds 3] [--callers 64] [--only redis,redis-benchmark]

What it measures, in one run, each phase for ``--seconds`` with ``--callers`` threads
(and, for lampo's rows, then with as many coroutines of one event loop, as an HTTP worker
calls it):

* **lampo, <backend>**: ``Sales.reserve`` (one unit of one of eight SKUs, a per-customer
  and an event-wide limit, an idempotency key) for distinct customers, over
  ``sqlite://`` (a temporary file), ``postgresql://`` (a temporary schema) and
  ``redis://`` (a temporary key prefix), and ``redis+cluster://`` when
  ``LAMPO_BENCH_REDIS_CLUSTER_URL`` names a cluster. Every answer is a hold placed with all the
  guarantees (stock, limits, idempotency record, hold, deadline index).
* **lampo, memory://**: the same calls over the in-memory backend: the service layer's
  own rate, the ceiling of every backend's row on this machine.
* **redis-benchmark**: the server's own client, ``--callers`` connections, running a
  minimal Lua decrement (``EVAL "<decrement unless zero>" 1 key``). The ceiling of one
  script call per request on this server.
* **textbook PostgreSQL**: ``--callers`` connections, each in a loop of the hot-row
  ``UPDATE stock SET available = available - 1 WHERE sku = $1 AND available > 0``
  (autocommit: one transaction and one WAL flush per request), from Python threads as
  lampo's callers are.

Per lampo row it prints, beside the rates, the **µs inside Redis** per reservation (the
script time of ``INFO commandstats``: ``EVALSHA`` and ``FCALL``, summed over a cluster's
masters, with each master's share) and the **µs of client CPU** per reservation (this
process, every thread, over both phases: the Python side, service layer included; the
redis rows' excess over ``memory://`` is the way to Redis). Two switches measure the
redis backend as it was before issue 14's second round, in the same code:
``LAMPO_BENCH_SCRIPTS=sha`` runs the scripts by ``EVALSHA`` instead of the library's
functions, ``LAMPO_BENCH_WRITER=pool`` sends the writer's rounds through redis-py's pool
and pipeline instead of its own connection.

Goals (issue 5): the redis backend at least 0.5 of redis-benchmark and at least 10x the
textbook PostgreSQL figure. Servers: ``LAMPO_BENCH_REDIS_URL`` (default
redis://127.0.0.1:6379/0), ``LAMPO_BENCH_POSTGRES_URL`` (default
postgresql://postgres@127.0.0.1:5432/test); a missing server skips its rows.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from _workload import ALLOCATION, EVENT, MARKET, SKUS, bench_event
from lampo.domain.errors import LampoError
from lampo.services.sales import Sales
from lampo.storage import Storage, from_url

REDIS = os.environ.get("LAMPO_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES = os.environ.get("LAMPO_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
#: A Redis Cluster to measure too (``redis+cluster://host:port``); no row without it.
REDIS_CLUSTER = os.environ.get("LAMPO_BENCH_REDIS_CLUSTER_URL", "")
DECREMENT = (
    "local v = redis.call('DECR', KEYS[1]) "
    "if v < 0 then redis.call('INCR', KEYS[1]) return -1 end return v"
)


@dataclass
class Row:
    name: str
    rate: float | None
    note: str
    #: The same calls from ``--callers`` coroutines of one event loop (``Sales.areserve``),
    #: as an HTTP worker makes them.
    aio: float | None = None
    #: Microseconds the Redis server spent in script calls per reservation (or per
    #: redis-benchmark call), from INFO commandstats; None for rows without a server.
    inside: float | None = None
    #: Microseconds of this process's CPU (every thread: callers, writer, loop) per
    #: reservation over both phases: the Python side, service layer included.
    client: float | None = None


def _runner() -> asyncio.Runner:
    """An asyncio runner on uvloop when it is installed (as ``lampo serve`` runs)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def run_coroutines(callers: int, seconds: float, sales: Sales, hot: bool) -> tuple[float, int]:
    """Reservations/s of ``callers`` coroutines calling ``Sales.areserve``; and refusals."""
    refused = 0

    async def crowd() -> float:
        nonlocal refused
        deadline = time.perf_counter() + seconds
        counts = [0] * callers

        async def caller(n: int) -> None:
            nonlocal refused
            ops = 0
            while time.perf_counter() < deadline:
                sku = SKUS[0] if hot else SKUS[(n + ops) % len(SKUS)]
                try:
                    await sales.areserve(EVENT, f"a{n}-c{ops}", MARKET, {sku: 1}, key=f"k{ops}")
                except LampoError:
                    refused += 1
                    continue
                ops += 1
            counts[n] = ops

        t0 = time.perf_counter()
        await asyncio.gather(*(caller(n) for n in range(callers)))
        return sum(counts) / (time.perf_counter() - t0)

    with _runner() as runner:
        return runner.run(crowd()), refused


def run_threads(threads: int, seconds: float, work: Callable[[int, float], int]) -> float:
    """Ops/s of ``work(thread_no, deadline) -> ops`` run on ``threads`` threads at once."""
    counts = [0] * threads
    failures: list[BaseException] = []
    start = threading.Barrier(threads + 1)

    def body(n: int) -> None:
        start.wait()
        try:
            counts[n] = work(n, deadline)
        except BaseException as exc:  # reported after the run; never hang the barrier
            failures.append(exc)

    pool = [threading.Thread(target=body, args=(n,), daemon=True) for n in range(threads)]
    for t in pool:
        t.start()
    t0 = time.perf_counter()
    deadline = t0 + seconds
    start.wait()
    for t in pool:
        t.join()
    if failures:
        raise failures[0]
    return sum(counts) / (time.perf_counter() - t0)


#: The script commands whose server time is counted as the time spent inside Redis.
SCRIPT_COMMANDS = ("evalsha", "eval", "fcall")


def script_usec(info: dict[str, object]) -> tuple[int, int]:
    """(calls, microseconds) of script calls in one node's ``INFO commandstats``."""
    calls = usec = 0
    for name in SCRIPT_COMMANDS:
        stat = info.get(f"cmdstat_{name}")
        if isinstance(stat, dict):
            calls += int(stat["calls"])
            usec += int(stat["usec"])
    return calls, usec


def server_script_usec(client: Any) -> tuple[int, int]:
    """(calls, microseconds) of script calls so far on a server, or over a cluster's
    nodes. Counts every client of the server: measure on a server of one's own."""
    from redis.cluster import RedisCluster

    if isinstance(client, RedisCluster):
        nodes = client.info("commandstats", target_nodes=RedisCluster.ALL_NODES)
        found = [script_usec(info) for info in nodes.values()]
        return sum(c for c, _ in found), sum(u for _, u in found)
    return script_usec(client.info("commandstats"))


def node_script_usec(client: Any) -> dict[str, int]:
    """Microseconds of script calls so far on each node of a cluster (empty for one
    server): how the reservations' server time spread over the shards."""
    from redis.cluster import RedisCluster

    if not isinstance(client, RedisCluster):
        return {}
    nodes = client.info("commandstats", target_nodes=RedisCluster.PRIMARIES)
    return {name: script_usec(info)[1] for name, info in sorted(nodes.items())}


def server_cpu_usec(client: Any) -> float:
    """Microseconds of CPU the server (every node of a cluster) has used so far: unlike
    the script time, not inflated when a loaded host takes the CPU from the server."""
    from redis.cluster import RedisCluster

    def cpu(info: dict[str, Any]) -> float:
        return (float(info["used_cpu_user"]) + float(info["used_cpu_sys"])) * 1e6

    if isinstance(client, RedisCluster):
        nodes = client.info("cpu", target_nodes=RedisCluster.PRIMARIES)
        return sum(cpu(info) for info in nodes.values())
    return cpu(client.info("cpu"))


def bench_lampo(storage: Storage, callers: int, seconds: float, hot: bool = False) -> Row:
    scripts = getattr(storage, "_scripts", None)
    if scripts is not None and os.environ.get("LAMPO_BENCH_SCRIPTS") == "sha":
        scripts.functions = False  # EVALSHA, as before Redis 7
    if os.environ.get("LAMPO_BENCH_WRITER") == "pool" and getattr(storage, "_direct", None):
        storage._direct = None  # type: ignore[attr-defined]  # redis-py's pipeline, as before
    sales = Sales(storage)
    sales.open(bench_event(datetime.now(UTC), "storage benchmark"))
    refused = [0] * callers

    def reserve(n: int, deadline: float) -> int:
        ops = 0
        while time.perf_counter() < deadline:
            sku = SKUS[0] if hot else SKUS[(n + ops) % len(SKUS)]
            try:
                sales.reserve(EVENT, f"t{n}-c{ops}", MARKET, {sku: 1}, key=f"k{ops}")
            except LampoError:
                refused[n] += 1
                continue
            ops += 1
        return ops

    r = getattr(storage, "_r", None)  # the redis backend's client: its server's counters
    calls_before, usec_before = server_script_usec(r) if r is not None else (0, 0)
    cpu_before = server_cpu_usec(r) if r is not None else 0.0
    nodes_before = node_script_usec(r) if r is not None else {}
    own_before = time.process_time()
    rate = run_threads(callers, seconds, reserve)
    aio, aio_refused = run_coroutines(callers, seconds, sales, hot)
    own = time.process_time() - own_before
    calls, usec = server_script_usec(r) if r is not None else (0, 0)
    calls, usec = calls - calls_before, usec - usec_before
    cpu = server_cpu_usec(r) - cpu_before if r is not None else 0.0
    stock = sales.stock(EVENT)
    held = sum(level.held for level in stock.values())
    placed = sum(1 for _ in storage.holds(EVENT))
    ok = all(level.conserved for level in stock.values()) and held == placed
    note = f"audit {'ok' if ok else 'FAILED'}: {held:,} units held in {placed:,} holds"
    if sum(refused) + aio_refused:
        note += f"; REFUSED {sum(refused) + aio_refused:,}"
    inside = usec / held if r is not None and held else None
    if r is not None and held:
        note += f"; server CPU {cpu / held:.1f} µs per reservation"
        note += f"; {held / max(calls, 1):.1f} reservations per script call"
        spread = {n: u - nodes_before.get(n, 0) for n, u in node_script_usec(r).items()}
        if spread:  # a cluster: the share of the script time on each master
            total = max(sum(spread.values()), 1)
            note += "; script time by master " + ", ".join(
                f"{n.rsplit(':', 1)[-1]} {u / total:.0%}" for n, u in spread.items()
            )
    return Row("", rate, note, aio, inside, own * 1e6 / held if held else None)


def bench_redis_benchmark(callers: int, seconds: float, guess: float) -> Row:
    """redis-benchmark's EVAL of a minimal decrement, sized to run about ``seconds``."""
    exe = shutil.which("redis-benchmark")
    if exe is None:
        return Row("redis-benchmark", None, "redis-benchmark not installed")
    parts = urlsplit(REDIS)
    requests = max(10_000, int(guess * seconds))
    key = f"lampo-bench-{uuid.uuid4().hex[:8]}:stock"
    cmd = [exe, "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379)]
    db = parts.path.strip("/") or "0"
    cmd += ["--dbnum", db, "-n", str(requests), "-c", str(callers), "-q"]
    import redis

    client = redis.Redis.from_url(REDIS)
    try:
        client.set(key, ALLOCATION)
        calls0, usec0 = script_usec(client.info("commandstats"))
        out = subprocess.run(
            [*cmd, "EVAL", DECREMENT, "1", key], capture_output=True, text=True, check=True
        ).stdout
        calls1, usec1 = script_usec(client.info("commandstats"))
        left = int(client.get(key) or 0)
    finally:
        client.delete(key)
        client.close()
    found = re.findall(r"([\d.]+) requests per second", out)
    if not found:
        return Row("redis-benchmark", None, f"unreadable output: {out[-200:]!r}")
    done = ALLOCATION - left
    inside = (usec1 - usec0) / (calls1 - calls0) if calls1 > calls0 else None
    rate = float(found[-1])
    return Row("redis-benchmark EVAL decrement", rate, f"{done:,} decrements", inside=inside)


def bench_textbook_postgres(callers: int, seconds: float) -> Row:
    import psycopg
    from psycopg import sql

    schema = f"lampo_bench_{uuid.uuid4().hex[:12]}"
    admin = psycopg.connect(POSTGRES, autocommit=True)
    try:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        admin.execute(
            sql.SQL("CREATE TABLE {}.stock (sku text PRIMARY KEY, available bigint)").format(
                sql.Identifier(schema)
            )
        )
        admin.execute(
            sql.SQL("INSERT INTO {}.stock VALUES ('phone-0', %s)").format(sql.Identifier(schema)),
            (ALLOCATION,),
        )
        conns = [psycopg.connect(POSTGRES, autocommit=True) for _ in range(callers)]
        update = sql.SQL(
            "UPDATE {}.stock SET available = available - 1 WHERE sku = %s AND available > 0"
        ).format(sql.Identifier(schema))

        def work(n: int, deadline: float) -> int:
            x = conns[n].execute
            ops = 0
            while time.perf_counter() < deadline:
                if x(update, ("phone-0",)).rowcount == 1:
                    ops += 1
            return ops

        try:
            rate = run_threads(callers, seconds, work)
        finally:
            for conn in conns:
                conn.close()
        row = admin.execute(
            sql.SQL("SELECT available FROM {}.stock").format(sql.Identifier(schema))
        ).fetchone()
        sold = ALLOCATION - (row[0] if row else ALLOCATION)
    finally:
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        admin.close()
    return Row("textbook PostgreSQL hot-row UPDATE", rate, f"{sold:,} units, autocommit")


def _with(url: str, option: str) -> str:
    return url + ("&" if "?" in url else "?") + option


def drop_redis_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()


def drop_redis_cluster_prefix(prefix: str) -> None:
    from redis.cluster import RedisCluster

    client = RedisCluster.from_url(REDIS_CLUSTER.replace("redis+cluster://", "redis://", 1))
    try:
        for key in list(client.scan_iter(match=prefix + "*", count=1000, target_nodes="all")):
            client.delete(key)
    finally:
        client.close()


def drop_postgres_schema(schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def lampo_row(
    name: str,
    url: str,
    callers: int,
    seconds: float,
    cleanup: Callable[[], None],
    hot: bool = False,
) -> Row:
    try:
        storage = from_url(url)
    except (LampoError, ImportError) as exc:
        cleanup()
        return Row(name, None, f"not available: {exc}")
    try:
        row = bench_lampo(storage, callers, seconds, hot)
    finally:
        storage.close()
        cleanup()
    row.name = name
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each phase")
    parser.add_argument("--callers", type=int, default=64, help="concurrent callers")
    parser.add_argument(
        "--only",
        default="memory,sqlite,postgres,redis,redis-cluster,redis-benchmark,textbook",
        help="comma-separated rows to run (default: all)",
    )
    parser.add_argument(
        "--buckets",
        type=int,
        default=0,
        help="also measure one hot SKU on redis and redis-cluster, without and with "
        "buckets=N stock buckets (issue 5)",
    )
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    if args.seconds <= 0 or not 1 <= args.callers <= 512:
        parser.error("--seconds must be > 0 and --callers 1..512")
    print(
        f"lampo storage bench: {args.callers} concurrent callers, {args.seconds:g} s per "
        f"phase, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    rows: dict[str, Row] = {}
    if "memory" in only:
        rows["memory"] = lampo_row(
            "lampo memory:// (service alone)", "memory://", args.callers, args.seconds, lambda: None
        )
    if "sqlite" in only:
        with tempfile.TemporaryDirectory(prefix="lampo-bench-") as tmp:
            url = f"sqlite:///{os.path.join(tmp, 'bench.db')}"
            rows["sqlite"] = lampo_row(
                "lampo sqlite://", url, args.callers, args.seconds, lambda: None
            )
    if "postgres" in only:
        schema = f"lampo_bench_{uuid.uuid4().hex[:12]}"
        rows["postgres"] = lampo_row(
            "lampo postgresql://",
            _with(POSTGRES, f"schema={schema}"),
            args.callers,
            args.seconds,
            lambda: drop_postgres_schema(schema),
        )
    if "redis" in only:
        prefix = f"lampo-bench-{uuid.uuid4().hex[:12]}:"
        rows["redis"] = lampo_row(
            "lampo redis://",
            _with(REDIS, f"prefix={prefix}"),
            args.callers,
            args.seconds,
            lambda: drop_redis_prefix(prefix),
        )
    if "redis-cluster" in only and REDIS_CLUSTER:
        cprefix = f"lampo-bench-{uuid.uuid4().hex[:12]}:"
        rows["redis-cluster"] = lampo_row(
            "lampo redis+cluster://",
            _with(REDIS_CLUSTER, f"prefix={cprefix}"),
            args.callers,
            args.seconds,
            lambda: drop_redis_cluster_prefix(cprefix),
        )
    if args.buckets:
        for key, base, drop in (
            ("redis", REDIS, drop_redis_prefix),
            ("redis-cluster", REDIS_CLUSTER, drop_redis_cluster_prefix),
        ):
            if key not in only or not base:
                continue
            for n in (1, args.buckets):
                hprefix = f"lampo-bench-{uuid.uuid4().hex[:12]}:"
                scheme = base.split("://")[0]
                rows[f"{key}-hot-{n}"] = lampo_row(
                    f"lampo {scheme}:// hot, buckets={n}",
                    _with(_with(base, f"prefix={hprefix}"), f"buckets={n}"),
                    args.callers,
                    args.seconds,
                    functools.partial(drop, hprefix),
                    hot=True,
                )
    if "redis-benchmark" in only:
        try:
            rows["redis-benchmark"] = bench_redis_benchmark(args.callers, args.seconds, 100_000)
        except (OSError, subprocess.CalledProcessError, ImportError) as exc:
            rows["redis-benchmark"] = Row("redis-benchmark", None, f"failed: {exc}")
    if "textbook" in only:
        try:
            rows["textbook"] = bench_textbook_postgres(args.callers, args.seconds)
        except Exception as exc:  # no server, no driver: report and go on
            rows["textbook"] = Row("textbook PostgreSQL", None, f"not available: {exc}")

    head = f"{'reserve/s':>10} {'coroutines':>10} {'µs inside':>9} {'µs client':>9}"
    print(f"\n{'':38} {head}  note")
    for row in rows.values():
        rate = f"{row.rate:>10,.0f}" if row.rate is not None else f"{'-':>10}"
        aio = f"{row.aio:>10,.0f}" if row.aio is not None else f"{'-':>10}"
        inside = f"{row.inside:>9.1f}" if row.inside is not None else f"{'-':>9}"
        client = f"{row.client:>9.1f}" if row.client is not None else f"{'-':>9}"
        print(f"{row.name:38} {rate} {aio} {inside} {client}  {row.note}")

    def ratio(a: str, b: str, goal: str) -> None:
        if a not in rows or b not in rows:
            return
        x, y = rows[a].rate, rows[b].rate
        if x is not None and y:
            line = f"{rows[a].name} / {rows[b].name}: {x / y:.2f}"
            aio = rows[a].aio
            if aio is not None:
                line += f", coroutines {aio / y:.2f}"
            print(f"{line}  ({goal})")

    print()
    memory_client = rows["memory"].client if "memory" in rows else None
    for key in rows:
        if key.startswith("redis") and key != "redis-benchmark" and rows[key].inside:
            cap = 1e6 / (rows[key].inside or 1)
            print(
                f"{rows[key].name}: {rows[key].inside:.1f} µs per reservation inside Redis "
                f"(script time from INFO commandstats, all nodes): one Redis core's ceiling "
                f"{cap:,.0f} reservations/s (goal <= 20 µs)"
            )
            own = rows[key].client
            if own is not None:
                line = f"{rows[key].name}: {own:.1f} µs of client CPU per reservation"
                if memory_client is not None:
                    line += f", {own - memory_client:.1f} more than memory:// (the way to Redis)"
                print(line)
    ratio("redis", "redis-benchmark", "issue 14: goal >= 0.25; issue 5: 0.5")
    ratio("memory", "redis-benchmark", "the most any backend could reach through Sales")
    ratio("redis", "memory", "what the redis backend keeps of the service's own rate")
    ratio("redis", "textbook", "goal >= 10")
    for key in ("redis", "redis-cluster"):
        ratio(f"{key}-hot-{args.buckets}", f"{key}-hot-1", "stock buckets, one hot SKU")
    ratio("postgres", "textbook", "for context")
    ratio("sqlite", "textbook", "for context")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
