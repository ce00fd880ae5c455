"""A process that reserves as fast as it can on a shared SQLite file, for the test that
several lampo processes take turns on the write lock.

Run as ``python -m tests.contract._writer_child URL NAME COUNT``; prints ``ready``, waits
for a line on stdin (so every process starts at once), then ``COUNT`` reservations from
four threads and four coroutines, and one line per refusal reason at the end:
``<reason> <count>`` (``ok`` for a hold).
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections import Counter

from lampo.domain.errors import LampoError
from lampo.services.clock import ManualClock
from lampo.services.sales import Sales
from lampo.storage import from_url
from tests.factories import NOW, sale_event

EVENT = sale_event("shared-file", stock={"phone-red": 10**6}, hold_seconds=3600)


def main() -> None:
    url, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sales = Sales(from_url(url), clock=ManualClock(NOW))
    sales.open(EVENT)
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def note(outcome: str) -> None:
        with lock:
            seen[outcome] += 1

    def one(i: int) -> None:
        try:
            sales.reserve(EVENT.id, f"{name}-{i}", "CN", {"phone-red": 1}, key=f"k{i}")
            note("ok")
        except LampoError as refusal:
            note(refusal.reason)

    async def aone(i: int) -> None:
        try:
            await sales.areserve(EVENT.id, f"{name}-{i}", "CN", {"phone-red": 1}, key=f"k{i}")
            note("ok")
        except LampoError as refusal:
            note(refusal.reason)

    print("ready", flush=True)
    sys.stdin.readline()
    half = count // 2
    threads = [
        threading.Thread(target=lambda t=t: [one(i) for i in range(t, half, 4)]) for t in range(4)
    ]
    for t in threads:
        t.start()

    async def crowd() -> None:
        async def caller(c: int) -> None:
            for i in range(half + c, count, 4):
                await aone(i)

        await asyncio.gather(*(caller(c) for c in range(4)))

    asyncio.run(crowd())
    for t in threads:
        t.join()
    sales.storage.close()
    for reason, n in sorted(seen.items()):
        print(reason, n, flush=True)


if __name__ == "__main__":
    main()
