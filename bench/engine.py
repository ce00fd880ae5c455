"""Reservations/s and payments/s through the service layer, beside a raw sqlite3 loop.

Run:  .venv/bin/python bench/engine.py [--seconds 3] [--threads 64] [--sync FULL|NORMAL]
                                       [--raw-batch N]

What it measures, in one run:

* **service on sqlite**: ``Sales`` over ``from_url("sqlite:///<tmp>/bench.db")``. ``--threads``
  caller threads each call ``Sales.reserve`` for distinct customers (then ``Sales.pay``
  for their own holds), so the backend's writer can coalesce concurrent calls into one
  transaction (group commit). Every call returns only once its batch is durable.
* **raw sqlite3**: one thread, one file, WAL, the same ``synchronous`` setting, doing the
  same writes in batches of ``--threads`` (one transaction per batch; ``--raw-batch``
  to change it). Per reservation: a
  conditional UPDATE of the stock row, an INSERT of the hold, an upsert of the
  per-customer counter, an INSERT of the idempotency record. Per payment: an UPDATE of
  the hold, an UPDATE of the stock row and an upsert of the totals row.
* **service on memory**, for context: the cost of the service and domain layers alone.

The ratio service/raw is printed as measured; the goal of issue 2 is at least 0.5.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from _workload import ALLOCATION, EVENT, MARKET, PRICE, SKUS, bench_event
from lampo.domain.errors import LampoError
from lampo.services.sales import Sales
from lampo.storage import Storage, from_url


@dataclass
class Phase:
    ops: int
    seconds: float
    errors: int = 0

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0


def run_threads(
    threads: int, seconds: float, work: Callable[[int, float], tuple[int, int]]
) -> Phase:
    """Run ``work(thread_no, deadline)`` on ``threads`` threads at once; it returns
    (ops, errors). Time runs from the common start until the last thread is done."""
    results: list[tuple[int, int]] = [(0, 0)] * threads
    start = threading.Barrier(threads + 1)
    failures: list[BaseException] = []

    def body(n: int) -> None:
        start.wait()
        try:
            results[n] = work(n, deadline)
        except BaseException as exc:  # report it after the run, never hang the barrier
            failures.append(exc)

    pool = [threading.Thread(target=body, args=(n,), daemon=True) for n in range(threads)]
    for t in pool:
        t.start()
    t0 = time.perf_counter()
    deadline = t0 + seconds
    start.wait()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - t0
    if failures:
        raise failures[0]
    return Phase(sum(r[0] for r in results), elapsed, sum(r[1] for r in results))


def bench_service(storage: Storage, threads: int, seconds: float) -> tuple[Phase, Phase, str]:
    """Reserve, then pay, through ``Sales``; returns both phases and an audit line."""
    sales = Sales(storage)
    sales.open(bench_event(datetime.now(UTC), "engine benchmark"))
    holds: list[list[str]] = [[] for _ in range(threads)]

    def reserve(n: int, deadline: float) -> tuple[int, int]:
        mine = holds[n]
        ops = errors = 0
        while time.perf_counter() < deadline:
            sku = SKUS[(n + ops) % len(SKUS)]
            try:
                hold = sales.reserve(EVENT, f"t{n}-c{ops}", MARKET, {sku: 1}, key=f"k{ops}")
            except LampoError:
                errors += 1
                continue
            mine.append(hold.id)
            ops += 1
        return ops, errors

    def pay(n: int, deadline: float) -> tuple[int, int]:
        ops = errors = 0
        for hold_id in holds[n]:
            if time.perf_counter() >= deadline:
                break
            try:
                sales.pay(hold_id, "pay-" + hold_id)
            except LampoError:
                errors += 1
                continue
            ops += 1
        return ops, errors

    reserved = run_threads(threads, seconds, reserve)
    paid = run_threads(threads, seconds, pay)
    note = audit(sales, reserved.ops, paid.ops)
    if reserved.errors or paid.errors:
        note += f"; REFUSED {reserved.errors:,} reserves, {paid.errors:,} payments"
    return reserved, paid, note


def bench_service_async(storage: Storage, callers: int, seconds: float) -> tuple[Phase, Phase, str]:
    """As ``bench_service``, with ``callers`` coroutines on one event loop (the way the HTTP
    server calls): the backend wakes the loop once per committed batch."""
    sales = Sales(storage)
    sales.open(bench_event(datetime.now(UTC), "engine benchmark"))
    holds: list[list[str]] = [[] for _ in range(callers)]

    async def reserve(n: int, deadline: float) -> tuple[int, int]:
        mine = holds[n]
        ops = errors = 0
        while time.perf_counter() < deadline:
            sku = SKUS[(n + ops) % len(SKUS)]
            try:
                hold = await sales.areserve(EVENT, f"a{n}-c{ops}", MARKET, {sku: 1}, key=f"k{ops}")
            except LampoError:
                errors += 1
                continue
            mine.append(hold.id)
            ops += 1
        return ops, errors

    async def pay(n: int, deadline: float) -> tuple[int, int]:
        ops = errors = 0
        for hold_id in holds[n]:
            if time.perf_counter() >= deadline:
                break
            try:
                await sales.apay(hold_id, "pay-" + hold_id)
            except LampoError:
                errors += 1
                continue
            ops += 1
        return ops, errors

    async def phase(work: Callable[[int, float], Awaitable[tuple[int, int]]]) -> Phase:
        t0 = time.perf_counter()
        results = await asyncio.gather(*(work(n, t0 + seconds) for n in range(callers)))
        return Phase(
            sum(r[0] for r in results), time.perf_counter() - t0, sum(r[1] for r in results)
        )

    reserved = asyncio.run(phase(reserve))
    paid = asyncio.run(phase(pay))
    note = audit(sales, reserved.ops, paid.ops)
    if reserved.errors or paid.errors:
        note += f"; REFUSED {reserved.errors:,} reserves, {paid.errors:,} payments"
    return reserved, paid, note


def audit(sales: Sales, reserved: int, paid: int) -> str:
    """Conservation and report truth after the run, so a fast but wrong backend shows."""
    stock = sales.stock(EVENT)
    conserved = all(level.conserved for level in stock.values())
    held = sum(level.held for level in stock.values())
    sold = sum(level.sold for level in stock.values())
    totals = sales.totals(EVENT)
    ok = conserved and sold == paid and held == reserved - paid and totals.units == paid
    ok = (
        ok
        and totals.order_count == paid
        and sum(v.amount for v in totals.orders.values()) == (paid * PRICE)
    )
    verdict = "ok" if ok else "FAILED"
    return f"audit {verdict}: held {held:,}, sold {sold:,}, totals {totals.units:,} units"


RAW_SCHEMA = """
create table stock (event text, sku text, allocation int, available int, held int, sold int,
                    primary key (event, sku)) without rowid;
create table holds (id text primary key, event text, customer text, market text, channel text,
                    lines text, currency text, created_at text, expires_at text, state text,
                    payment_id text, paid_at text) without rowid;
create table counters (event text, customer text, sku text, units int,
                       primary key (event, customer, sku)) without rowid;
create table idem (key text primary key, fingerprint text, hold_id text) without rowid;
create table totals (event text, sku text, market text, channel text, units int, amount int,
                     primary key (event, sku, market, channel)) without rowid;
"""


def bench_raw(path: str, batch: int, seconds: float, sync: str) -> tuple[Phase, Phase]:
    """The same writes with plain sqlite3 on one thread, ``batch`` per transaction."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("pragma journal_mode=wal")
    db.execute(f"pragma synchronous={sync}")
    db.executescript(RAW_SCHEMA)
    db.executemany(
        "insert into stock values (?, ?, ?, ?, 0, 0)",
        [(EVENT, s, ALLOCATION, ALLOCATION) for s in SKUS],
    )
    hold_ids: list[tuple[str, str]] = []

    t0 = time.perf_counter()
    deadline = t0 + seconds
    n = 0
    while time.perf_counter() < deadline:
        db.execute("begin immediate")
        for _ in range(batch):
            sku = SKUS[n % len(SKUS)]
            hold_id, customer = uuid.uuid4().hex, f"c{n}"
            now = datetime.now(UTC)
            cur = db.execute(
                "update stock set available = available - 1, held = held + 1"
                " where event = ? and sku = ? and available >= 1",
                (EVENT, sku),
            )
            if cur.rowcount != 1:
                raise RuntimeError("raw loop sold out")
            db.execute(
                "insert into holds values (?, ?, ?, ?, 'online', ?, 'CNY', ?, ?, 'held', '', null)",
                (
                    hold_id,
                    EVENT,
                    customer,
                    MARKET,
                    f'[["{sku}",1,{PRICE}]]',
                    now.isoformat(),
                    (now + timedelta(hours=1)).isoformat(),
                ),
            )
            db.execute(
                "insert into counters values (?, ?, ?, 1) on conflict do update"
                " set units = units + excluded.units",
                (EVENT, customer, sku),
            )
            db.execute(
                "insert into idem values (?, ?, ?)",
                (f"{EVENT}:{customer}:k{n}", uuid.uuid4().hex[:24], hold_id),
            )
            hold_ids.append((hold_id, sku))
            n += 1
        db.execute("commit")
    reserved = Phase(n, time.perf_counter() - t0)

    t0 = time.perf_counter()
    deadline = t0 + seconds
    m = 0
    while m < len(hold_ids) and time.perf_counter() < deadline:
        db.execute("begin immediate")
        for hold_id, sku in hold_ids[m : m + batch]:
            cur = db.execute(
                "update holds set state = 'paid', payment_id = ?, paid_at = ?"
                " where id = ? and state = 'held'",
                ("pay-" + hold_id, datetime.now(UTC).isoformat(), hold_id),
            )
            if cur.rowcount != 1:
                raise RuntimeError("raw loop lost a hold")
            db.execute(
                "update stock set held = held - 1, sold = sold + 1 where event = ? and sku = ?",
                (EVENT, sku),
            )
            db.execute(
                "insert into totals values (?, ?, ?, 'online', 1, ?) on conflict do update"
                " set units = units + excluded.units, amount = amount + excluded.amount",
                (EVENT, sku, MARKET, PRICE),
            )
            m += 1
        db.execute("commit")
    paid = Phase(m, time.perf_counter() - t0)
    db.close()
    return reserved, paid


def count_batches(storage: Storage) -> list[int]:
    """Sizes of the transactions the backend commits, when its writer can be observed.

    Informative only: wraps the private ``_commit`` of the backend's batcher (one call per
    transaction); for backends without one the list stays empty.
    """
    sizes: list[int] = []
    batcher = getattr(storage, "_batcher", None)
    commit = getattr(batcher, "_commit", None)
    if callable(commit):

        def counted(units: list[object]) -> object:
            sizes.append(len(units))
            return commit(units)

        setattr(batcher, "_commit", counted)  # noqa: B010 (a private hook, on purpose)
    # coroutines' batches commit in their event loop's thread, through ``_try_commit``
    try_commit = getattr(batcher, "_try_commit", None)
    if callable(try_commit):

        def counted_try(units: list[object]) -> object:
            outcome = try_commit(units)
            if outcome is not None:  # None: not committed here (handed to the writer)
                sizes.append(len(units))
            return outcome

        setattr(batcher, "_try_commit", counted_try)  # noqa: B010
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each phase")
    parser.add_argument("--threads", type=int, default=64, help="concurrent callers")
    parser.add_argument(
        "--sync",
        choices=["FULL", "NORMAL"],
        default="FULL",
        type=str.upper,
        help="SQLite synchronous setting, for both the service and raw loop",
    )
    parser.add_argument(
        "--raw-batch",
        type=int,
        default=0,
        help="transactions of the raw loop (default: --threads, the most the service can coalesce)",
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0 or not 1 <= args.threads <= 1024:
        parser.error("--seconds must be > 0 and --threads 1..1024")
    raw_batch = args.raw_batch or args.threads
    if not 1 <= raw_batch <= 100_000:
        parser.error("--raw-batch must be 1..100000")

    print(
        f"lampo engine bench: {args.threads} callers (threads, then coroutines), "
        f"{args.seconds:g} s per phase, "
        f"synchronous={args.sync}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"SQLite {sqlite3.sqlite_version}"
    )
    rows: list[tuple[str, Phase | None, Phase | None, str]] = []
    services: list[tuple[str, Phase, Phase]] = []

    memory = from_url("memory://")
    r, p, note = bench_service(memory, args.threads, args.seconds)
    rows.append(("service, memory://", r, p, note))

    with tempfile.TemporaryDirectory(prefix="lampo-bench-") as tmp:
        callers = (
            ("thr", "threads", bench_service),
            ("aio", "coroutines", bench_service_async),
        )
        for short, how, bench in callers:
            url = f"sqlite:///{os.path.join(tmp, short + '.db')}?synchronous={args.sync}"
            sqlite = from_url(url)
            try:
                sizes = count_batches(sqlite)
                r, p, note = bench(sqlite, args.threads, args.seconds)
                if sizes:
                    note += f"; {len(sizes):,} commits, mean batch {sum(sizes) / len(sizes):.1f}"
                rows.append((f"service, sqlite:// {short}", r, p, note))
                services.append((how, r, p))
            finally:
                sqlite.close()
        raw_r, raw_p = bench_raw(os.path.join(tmp, "raw.db"), raw_batch, args.seconds, args.sync)
        rows.append((f"raw sqlite3, batch {raw_batch}", raw_r, raw_p, "one thread"))

    def cell(phase: Phase | None) -> str:
        return f"{phase.rate:>12,.0f}" if phase else f"{'-':>12}"

    print()
    print(f"{'':<26}{'reserve/s':>12}{'pay/s':>12}  notes")
    for name, r_, p_, note in rows:
        print(f"{name:<26}{cell(r_)}{cell(p_)}  {note}")
    for how, sr, sp in services:
        rr = sr.rate / raw_r.rate if raw_r.rate else 0.0
        pr = sp.rate / raw_p.rate if raw_p.rate else 0.0
        print(f"{'ratio, ' + how:<26}{rr:>12.2f}{pr:>12.2f}  goal: >= 0.50 for both")
    if not services:
        print(f"{'ratio service/raw':<26}{'-':>12}{'-':>12}  sqlite backend missing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
