"""The reserve endpoint over HTTP beside an empty ASGI endpoint, same server, same run.

Run:  .venv/bin/python bench/http_api.py [--seconds 10] [--connections 64] [--threads 2]
                                     [--workers 1] [--buyers 10000] [--sync FULL|NORMAL]

It starts ``lampo serve`` (granian) on a fresh SQLite file with the benchmark endpoint on
and rate limits off, loads an event of 10 SKUs with ample stock, writes ``--buyers``
signed buyer tokens for a wrk Lua script, then runs wrk twice with the same script,
connections and duration:

1. ``POST /_bench/empty``: the app answers ``{}`` before routing (the cost of granian,
   the ASGI call and wrk itself);
2. ``POST /v1/holds``: real reservations, one unit of a random SKU for a random buyer,
   each with its own Idempotency-Key.

It prints requests/s, p50/p99 latency, non-2xx answers, successful reservations/s (held
units counted from storage before and after, divided by the run time) and the ratio
reserve/empty. Needs ``wrk`` on the PATH (``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
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
SKUS = [f"phone-{i}" for i in range(10)]

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


@dataclass
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: str


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(out: str) -> WrkResult:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
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


def call(port: int, method: str, path: str, body: Any = None) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"X-API-Key": ADMIN_KEY, "Idempotency-Key": f"bench-{time.time_ns()}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        if resp.status >= 300:
            raise SystemExit(f"{method} {path}: {resp.status} {payload[:300]!r}")
        return json.loads(payload)
    finally:
        conn.close()


def bench_event() -> SaleEvent:
    now = datetime.now(UTC).replace(microsecond=0)
    cn = Market("CN", "China", "CNY", "Asia/Shanghai")
    return SaleEvent(
        id=EVENT,
        name="HTTP benchmark",
        markets={"CN": cn},
        windows={"CN": Window(now - timedelta(hours=1), now + timedelta(hours=6))},
        categories={"phone": Category("phone", "Phones")},
        skus={s: Sku(s, "phone", s, "phone") for s in SKUS},
        offers={s: Offer(s, 50_000_000, {"CN": Money(99_900, "CNY")}) for s in SKUS},
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--buyers", type=int, default=10_000)
    parser.add_argument("--sync", default="FULL", choices=["FULL", "NORMAL"])
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="lampo-bench-http-"))
    port = free_port()
    env = {
        **os.environ,
        "LAMPO_SECRET": SECRET,
        "LAMPO_ADMIN_KEY": ADMIN_KEY,
        "LAMPO_WEBHOOK_SECRET": "bench-webhook-secret-0123456789abcdef",
        "LAMPO_BUYER_RATE": "0",
        "LAMPO_IP_RATE": "0",
    }
    storage = f"sqlite:///{tmp / 'bench.db'}?synchronous={args.sync}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lampo.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
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
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                call(port, "GET", "/health")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.1)
        call(port, "POST", "/v1/admin/events", event_to_dict(bench_event()))
        tokens = tmp / "tokens.txt"
        tokens.write_text(
            "\n".join(issue_token(SECRET.encode(), f"b{i}", 7200) for i in range(args.buyers))
        )
        script = tmp / "reserve.lua"
        skus = ", ".join(f'"{s}"' for s in SKUS)
        script.write_text(LUA.replace("{SKUS}", "{" + skus + "}").replace("EVENT", EVENT))

        base = f"http://127.0.0.1:{port}"
        empty = run_wrk(args, f"{base}/_bench/empty", script, tokens)
        before = held(port)
        started = time.monotonic()
        reserve = run_wrk(args, f"{base}/v1/holds", script, tokens)
        elapsed = time.monotonic() - started
        made = held(port) - before
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    ok_per_s = made / args.seconds
    print(
        f"lampo serve (granian, {args.workers} worker(s)), SQLite synchronous={args.sync}; "
        f"wrk {args.threads} threads, {args.connections} connections, {args.seconds} s each, "
        f"{args.buyers:,} buyers, {len(SKUS)} SKUs"
    )
    print(f"{'endpoint':<22}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>10}")
    for name, r in (("POST /_bench/empty", empty), ("POST /v1/holds", reserve)):
        print(
            f"{name:<22}{r.requests_per_s:>10,.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.non_2xx:>10,}"
        )
        if r.errors:
            print(f"  {r.errors}")
    print(
        f"successful reservations: {made:,} in {elapsed:.1f} s -> {ok_per_s:,.0f}/s "
        "(goal >= 10,000/s)"
    )
    print(f"ratio reserve/empty: {reserve.requests_per_s / empty.requests_per_s:.2f} (goal >= 0.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
