"""Group commit for a server backend: one writer thread, many callers, one commit per batch.

Callers (threads or coroutines) queue a unit of work and wait. The writer drains the
queue up to ``max_batch`` requests and hands the whole batch to ``commit``, which runs
every unit in one transaction and returns one result per unit, or raises. A result is
delivered only after ``commit`` returned, that is after the batch is durable; each event
loop is woken once per batch. ``commit`` decides what to do when a batch fails (the
server backends retry each unit alone, so one bad request cannot fail its neighbours).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from lampo.domain.errors import Unavailable

S = TypeVar("S")  # what a unit of work runs against (the backend's open transaction)
Work = Callable[[S], Any]
#: ``commit(units) -> one (result, error) per unit``: error is None on success.
Commit = Callable[[list[Work[S]]], list[tuple[Any, BaseException | None]]]


class _Waiter:
    """A bare lock: the cheapest handoff from the writer to one thread."""

    __slots__ = ("error", "lock", "result")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.result: Any = None
        self.error: BaseException | None = None

    def wait(self) -> Any:
        self.lock.acquire()
        if self.error is not None:
            raise self.error
        return self.result


_Future = asyncio.Future[Any]
_Item = tuple[Work[Any], int, _Waiter | tuple[asyncio.AbstractEventLoop, _Future]]
_STOP: Any = object()


def _resolve(items: list[tuple[_Future, Any, BaseException | None]]) -> None:
    for future, result, error in items:
        if future.cancelled():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


class Batcher(Generic[S]):
    """The writer thread and its queue. ``submit``/``asubmit`` run one unit of work."""

    def __init__(self, commit: Commit[S], max_batch: int, name: str) -> None:
        self._commit = commit
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, work: Work[S], weight: int = 1) -> Any:
        if self._closed:
            raise Unavailable("storage is closed")
        waiter = _Waiter()
        self._queue.put((work, weight, waiter))
        return waiter.wait()

    async def asubmit(self, work: Work[S], weight: int = 1) -> Any:
        if self._closed:
            raise Unavailable("storage is closed")
        loop = asyncio.get_running_loop()
        future: _Future = loop.create_future()
        self._queue.put((work, weight, (loop, future)))
        return await future

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        q = self._queue
        while True:
            first = q.get()
            if first is _STOP:
                return
            batch = [first]
            size = first[1]
            stop = False
            while size < self._max_batch:
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
                size += item[1]
            try:
                outcomes = self._commit([work for work, _, _ in batch])
            except BaseException as exc:  # a bug in commit: every caller sees it
                outcomes = [(None, exc)] * len(batch)
            self._deliver(batch, outcomes)
            if stop:
                return

    @staticmethod
    def _deliver(batch: list[_Item], outcomes: list[tuple[Any, BaseException | None]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for (_, _, waiter), (result, error) in zip(batch, outcomes, strict=True):
            if isinstance(waiter, _Waiter):
                waiter.result, waiter.error = result, error
                waiter.lock.release()
            else:
                loop, future = waiter
                by_loop.setdefault(loop, []).append((future, result, error))
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, items)
            except RuntimeError:
                pass  # that loop is closed: nobody is waiting any more
