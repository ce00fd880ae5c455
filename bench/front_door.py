"""The front door's benchmarks (issue 13).

Run:  .venv/bin/python bench/front_door.py memory [--visitors 1000000] [--prequeue 0.5]

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
import os
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="bench", required=True)
    memory = sub.add_parser("memory", help="Redis memory per waiting visitor")
    memory.add_argument("--visitors", type=int, default=1_000_000)
    memory.add_argument("--prequeue", type=float, default=0.5)
    args = parser.parse_args(argv)
    if args.bench == "memory":
        f = redis_memory(REDIS, args.visitors, args.prequeue)
        print(f"visitors {f.visitors:,} ({f.prequeue:,} in the pre-queue)")
        print(f"used_memory {f.used_before:,} -> {f.used_after:,} bytes")
        print(f"bytes per visitor: pre-queue {f.bytes_prequeue:.0f}, ", end="")
        print(f"after the opening {f.bytes_after:.0f}, all {f.bytes_all:.0f}")
        print(f"a million such visitors: {f.bytes_all * 1_000_000 / 2**20:,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
