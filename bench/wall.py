"""The HTTP buy benchmark alone and with viewers of the battle wall, alternating.

Run:  .venv/bin/python bench/wall.py [--viewers 500] [--rounds 4] [--seconds 10]
                                     [--connections 64] [--threads 2] [--sync FULL]

Starts one ``lampo serve`` worker on a fresh SQLite file (benchmark endpoints on, rate
limits off), loads ``http_api.py``'s event and runs its wrk script against
``POST /v1/holds`` (real reservations), in rounds that alternate:

1. alone;
2. with ``--viewers`` browsers' worth of wall viewers connected: a child process holds
   that many connections to ``GET /v1/events/{id}/wall`` and reads every frame (it
   waits until each has its first frame before wrk starts).

It prints each round's reservations/s, p99 latency and the server's CPU per request,
the frames each viewer got, and the ratio with/without of each pair of rounds and of
their medians (the goal: with 500 viewers, at most 10 % fewer reservations/s). The
viewers run on the same machine and take some of its CPU; their own CPU time is printed
too. On a loaded host the requests/s of one round move by a factor of two or more;
the server's CPU per reservation moves far less, so the script prints both ratios.
Needs ``wrk`` on the PATH (``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from http_api import (
    EVENT,
    WrkResult,
    bench_event,
    call,
    measured,
    start_server,
    stop_server,
    storage_url,
    tree_cpu,
    write_workload,
)
from lampo.domain.codec import event_to_dict

FRAME = b"event: wall\n"
BYE = b"event: bye\n"


# -- the viewers' process -------------------------------------------------------------------
async def _viewer(
    port: int, path: str, counts: list[int], index: int, ready: asyncio.Event
) -> None:
    """One browser: a stream, read to its end (an event ``bye``) and opened again at once,
    as EventSource does."""
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"
    while True:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request.encode())
        await writer.drain()
        tail = b""
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            seen = (tail + chunk).count(FRAME)
            if seen and counts[index] == 0:
                ready.set()
            counts[index] += seen
            if BYE in tail + chunk:  # the server ends the stream (the connection stays)
                break
            tail = chunk[-len(FRAME) :]
        writer.close()


async def _watch(port: int, viewers: int) -> None:
    """Connect ``viewers`` streams, say ``ready`` when every one has a frame, read until
    stdin closes, then print the frames each got (min, median, max)."""
    path = f"/v1/events/{EVENT}/wall"
    counts = [0] * viewers
    tasks = []
    for i in range(viewers):
        ready = asyncio.Event()
        tasks.append((asyncio.create_task(_viewer(port, path, counts, i, ready)), ready))
    for _, ready in tasks:
        await ready.wait()
    start = list(counts)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    got = sorted(c - s for c, s in zip(counts, start, strict=True))
    print(f"frames {got[0]} {got[len(got) // 2]} {got[-1]}", flush=True)
    for task, _ in tasks:
        task.cancel()


# -- the benchmark --------------------------------------------------------------------------
@dataclass
class Round:
    viewers: int
    result: WrkResult
    cpu_us: float | None
    frames: str = ""
    viewer_cpu_s: float | None = None


def one_round(
    args: argparse.Namespace, pid: int, port: int, script: Path, tokens: Path, viewers: int
) -> Round:
    url = f"http://127.0.0.1:{port}/v1/holds"
    if not viewers:
        result, cpu = measured(args, pid, url, script, tokens)
        return Round(0, result, cpu)
    watch = subprocess.Popen(
        [sys.executable, __file__, "--watch", str(port), "--viewers", str(viewers)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert watch.stdin is not None
    assert watch.stdout is not None
    if watch.stdout.readline().strip() != "ready":
        raise SystemExit("the viewers did not all get a first frame")
    before = tree_cpu(watch.pid)
    result, cpu = measured(args, pid, url, script, tokens)
    after = tree_cpu(watch.pid)
    watch.stdin.close()
    frames = watch.stdout.readline().strip().removeprefix("frames ")
    watch.wait(timeout=30)
    used = None if before is None or after is None else after - before
    return Round(viewers, result, cpu, frames, used)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=4, help="pairs of rounds")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--buyers", type=int, default=10_000)
    parser.add_argument("--sync", default="FULL", choices=["FULL", "NORMAL"])
    parser.add_argument("--watch", type=int, default=0, help=argparse.SUPPRESS)  # the child
    args = parser.parse_args()
    if args.watch:
        asyncio.run(_watch(args.watch, args.viewers))
        return 0
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="lampo-bench-wall-"))
    server, port = start_server(tmp, storage_url("sqlite", tmp, args.sync), 1)
    rounds: list[Round] = []
    try:
        call(port, "POST", "/v1/admin/events", event_to_dict(bench_event()))
        script, tokens = write_workload(tmp, args.buyers)
        for i in range(args.rounds):
            order = (0, args.viewers) if i % 2 == 0 else (args.viewers, 0)
            for viewers in order:
                done = one_round(args, server.pid, port, script, tokens, viewers)
                rounds.append(done)
                print(
                    f"round {i + 1}, {viewers:>4} viewers: {done.result.requests_per_s:>8,.0f} "
                    f"req/s, p99 {done.result.p99_ms:.1f} ms, "
                    f"cpu {done.cpu_us or 0:.0f} us/req"
                    + (
                        f", frames per viewer (min median max) {done.frames}, viewers' cpu "
                        f"{done.viewer_cpu_s or 0:.1f} s"
                        if viewers
                        else ""
                    ),
                    flush=True,
                )
    finally:
        stop_server(server, tmp)
    alone = [r.result.requests_per_s for r in rounds if not r.viewers]
    watched = [r.result.requests_per_s for r in rounds if r.viewers]
    pairs = [w / a for a, w in zip(alone, watched, strict=True)]
    print(
        f"one worker, SQLite {args.sync}; wrk {args.threads} threads, {args.connections} "
        f"connections, {args.seconds} s per round"
    )
    print(
        f"ratio with/without {args.viewers} viewers, per pair: "
        + ", ".join(f"{p:.3f}" for p in pairs)
    )
    print(
        f"medians: alone {statistics.median(alone):,.0f} req/s, with viewers "
        f"{statistics.median(watched):,.0f} req/s, ratio "
        f"{statistics.median(watched) / statistics.median(alone):.3f} (goal >= 0.90)"
    )
    cpu_alone = [r.cpu_us for r in rounds if not r.viewers and r.cpu_us is not None]
    cpu_watched = [r.cpu_us for r in rounds if r.viewers and r.cpu_us is not None]
    if cpu_alone and cpu_watched:
        a, w = statistics.median(cpu_alone), statistics.median(cpu_watched)
        print(
            f"server CPU per reservation, medians: alone {a:.0f} us, with viewers {w:.0f} us "
            f"(throughput bound by CPU: {a / w:.3f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
