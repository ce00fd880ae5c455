"""Client CPU per request of two async HTTP clients, aiohttp and httpx, against one server.

Run:  .venv/bin/python bench/http_clients.py [--requests 20000] [--concurrency 64] [--rounds 3]

It starts ``lampo serve`` (one worker, the benchmark endpoint on, rate limits off) and,
in alternating rounds, sends ``--requests`` POSTs of a small JSON body to
``/_bench/empty`` from ``--concurrency`` coroutines over keep-alive connections, once
with each client, in this process. It prints, per client and round, requests/s and the
CPU time this process spent per request (``time.process_time``: every thread of the
client, none of the server's). ``lampo simulate --target`` is built on the client that
spends less: the rehearsal's client must not be what limits the server it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_api import ADMIN_KEY, SECRET, free_port

BODY = b'{"event": "bench", "market": "CN", "items": {"sku": 1}}'
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer x"}

Sender = Callable[[str, int, int], Coroutine[Any, Any, None]]


async def with_aiohttp(url: str, requests: int, concurrency: int) -> None:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(n: int) -> None:
            for _ in range(n):
                async with session.post(url, data=BODY, headers=HEADERS) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status

        await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))


async def with_httpx(url: str, requests: int, concurrency: int) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:

        async def worker(n: int) -> None:
            for _ in range(n):
                resp = await client.post(url, content=BODY, headers=HEADERS)
                assert resp.status_code == 200, resp.status_code

        await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))


def measure(send: Sender, url: str, requests: int, concurrency: int) -> tuple[float, float]:
    """(requests/s, client CPU µs per request)."""
    cpu, wall = time.process_time(), time.perf_counter()
    asyncio.run(send(url, requests, concurrency))
    done = requests // concurrency * concurrency
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return done / wall, cpu / done * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lampo-bench-clients-"))
    port = free_port()
    env = {
        **os.environ,
        "LAMPO_SECRET": SECRET,
        "LAMPO_ADMIN_KEY": ADMIN_KEY,
        "LAMPO_WEBHOOK_SECRET": "bench-webhook-secret-0123456789abcdef",
        "LAMPO_IP_RATE": "0",
        "LAMPO_BUYER_RATE": "0",
    }
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "lampo.cli", "serve", "--port", str(port)),
            *("--storage", f"sqlite:///{tmp / 'bench.db'}", "--bench-endpoints"),
        ],
        cwd=tmp,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/_bench/empty"
    try:
        deadline = time.monotonic() + 30
        while True:  # wait for the server to listen
            try:
                measure(with_aiohttp, url, 1, 1)
                break
            except (OSError, aiohttp.ClientError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        clients: list[tuple[str, Sender]] = [("aiohttp", with_aiohttp), ("httpx", with_httpx)]
        print(f"{args.requests:,} requests, {args.concurrency} at once, per round")
        for round_ in range(1, args.rounds + 1):
            for name, send in clients if round_ % 2 else clients[::-1]:
                rate, cpu = measure(send, url, args.requests, args.concurrency)
                print(f"round {round_} {name:8} {rate:8,.0f} requests/s {cpu:6.0f} µs CPU each")
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
