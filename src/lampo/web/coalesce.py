"""Coalesce the reservations of concurrent HTTP requests into one service call.

Requests that arrive while a batch is in storage wait for the next one, and every batch
goes to ``Sales.areserve_many`` once: one unit of work for the storage writer (one
transaction on SQLite, one script call on Redis) instead of one per request, and one
cross-thread wake-up of the event loop per batch. At most ``max_inflight`` batches are in
storage at a time, so the next batch fills while the current one commits (group commit,
one level up).

A batch that fails as a whole (an unexpected error, not a refusal: refusals are per
request) is retried one request at a time, so one bad request cannot fail its
neighbours.

Hand-written, kept because it was measured to matter: a web framework hands each request
to its handler alone, and coalescing halved the storage writer's busy time for 40,000
reservations in-process on SQLite (8-9 s against 16-18 s; docs/http-api.md, "What was
cut").
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

C = TypeVar("C")  # a command (a reservation, a hold id to read)
R = TypeVar("R")  # its result


class Coalescer(Generic[C, R]):
    """``await submit(cmd)`` is ``(await reserve_many([cmd]))[0]``, shared with its
    neighbours. One per event loop (an ASGI worker has one). ``on_batch(n)`` is told of
    every batch of ``n`` requests as it goes to storage.

    Generic: the app also coalesces the reads of holds that a payment checks the owner
    of first (one trip to the thread pool per batch instead of one per payment)."""

    def __init__(
        self,
        reserve_many: Callable[[Sequence[C]], Awaitable[list[R]]],
        max_batch: int = 256,
        max_inflight: int = 2,
        on_batch: Callable[[int], object] | None = None,
    ):
        self._reserve_many = reserve_many
        self._on_batch = on_batch
        self._max_batch = max_batch
        self._max_inflight = max_inflight
        self._pending: list[tuple[C, asyncio.Future[R]]] = []
        self._inflight = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        #: Batches sent and requests in them (a mean batch size for metrics).
        self.batches = 0
        self.requests = 0

    async def submit(self, cmd: C) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((cmd, future))
        if not self._scheduled and self._inflight < self._max_inflight:
            # after the callbacks already ready: the requests of this loop turn join in
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        while self._pending and self._inflight < self._max_inflight:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            self._inflight += 1
            self.batches += 1
            self.requests += len(batch)
            if self._on_batch is not None:
                self._on_batch(len(batch))  # the metrics' count of batches
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)  # keep a reference until it is done
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[C, asyncio.Future[R]]]) -> None:
        try:
            await self._settle(batch)
        finally:
            for _, future in batch:
                future.cancel()  # only if still waiting: this task itself was cancelled
            self._inflight -= 1
            if self._pending and not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._flush)

    async def _settle(self, batch: list[tuple[C, asyncio.Future[R]]]) -> None:
        """Give every request of ``batch`` its result, or the error that stopped it."""
        try:
            results = await self._reserve_many([cmd for cmd, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            for item in batch:  # each alone: only the request that fails sees the error
                await self._settle([item])
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():  # done: cancelled, its client went away
                future.set_result(result)
