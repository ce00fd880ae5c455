"""One read shared by every concurrent caller, and kept for a moment.

A launch's battle report is watched by many screens at once, each asking every second.
``SharedReads`` makes that cost one storage read per event per ``ttl`` (and per worker),
however many viewers there are: the first caller after the result grew old starts the
read (in a thread, so the event loop keeps serving buyers) and every caller that comes
while it runs awaits the same one. A failed read is handed to the callers that waited
for it and forgotten, so the next caller tries again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class _Read(Generic[T]):
    started: float  # on the cache's clock
    task: asyncio.Future[T]


class SharedReads(Generic[T]):
    """Per key, at most one ``read`` in flight, and its result served for ``ttl`` seconds
    after it started: an answer is never older than ``ttl`` plus the read's own time.
    ``ttl <= 0`` turns sharing off (every call reads)."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._reads: dict[str, _Read[T]] = {}
        #: How many reads were started (what the cache saves is calls minus reads).
        self.reads = 0

    async def get(self, key: str, read: Callable[[], T]) -> T:
        if self.ttl <= 0:
            self.reads += 1
            return await asyncio.to_thread(read)
        now = self._clock()
        current = self._reads.get(key)
        if current is not None and current.task.done():
            if now - current.started < self.ttl:
                return current.task.result()
            current = None
        if current is None:
            current = _Read(now, asyncio.ensure_future(asyncio.to_thread(read)))
            current.task.add_done_callback(lambda task: self._forget_failed(key, task))
            self._reads[key] = current
            self.reads += 1
        # shielded: a caller that goes away (a closed tab) does not cancel the others' read
        return await asyncio.shield(current.task)

    def _forget_failed(self, key: str, task: asyncio.Future[T]) -> None:
        if task.cancelled() or task.exception() is not None:  # exception() marks it seen
            entry = self._reads.get(key)
            if entry is not None and entry.task is task:
                del self._reads[key]
