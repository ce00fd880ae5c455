"""Group commit for a server backend: one writer thread, many callers, one commit per batch.

Callers (threads or coroutines) queue a unit of work and wait. The writer drains the
queue up to ``max_batch`` requests and hands the whole batch to ``commit``, which runs
every unit in one transaction and returns one result per unit, or raises. A result is
delivered only after ``commit`` returned, that is after the batch is durable; each event
loop is woken once per batch. ``commit`` decides what to do when a batch fails (the
server backends retry each unit alone, so one bad request cannot fail its neighbours).

``try_commit`` (SQLite) changes where coroutines' batches run: the units that the
coroutines of one event loop queue during one turn of that loop are committed together,
at the end of the turn, in the loop's own thread, with no hop to the writer thread and
back. One process has one interpreter lock, so the hop bought no parallelism for work
that holds it (applying a batch); it cost two thread wake-ups per batch and a GIL
convoy: every ``sqlite3`` call of the writer gives the lock up and must win it back from
the busy loop. The loop is blocked while the batch commits (its fsync included), which
is the same time its callers wait anyway. Threads still go through the writer thread; a
lock keeps the writer's batches and the loops' batches one at a time. A loop never waits
for a batch that is not its own: when the lock (or, for SQLite, the file lock another
process holds) is taken, ``try_commit`` answers None at once and the loop's batch goes to
the writer thread instead (an expiry sweep of 1,000 holds holds the lock for about 20 ms).
docs/http-api.md has the measurements.

Hand-written, kept because it was measured to matter: a queue or a thread pool from a
library runs each caller's work alone, in its own transaction, and a ``COMMIT`` with
``synchronous=FULL`` took 620 µs on the development disk (docs/http-api.md), about 1,600
commits/s at most, where batches let 7,123 reservations/s through over HTTP; committing
coroutines' batches in their loop's thread gave 12,285 against 9,990 reservations/s
(bench/README.md).
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
#: ``commit``, or None at once (nothing done) when it would have to wait for a lock.
TryCommit = Callable[[list[Work[S]]], list[tuple[Any, BaseException | None]] | None]


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

    def __init__(
        self,
        commit: Commit[S],
        max_batch: int,
        name: str,
        try_commit: TryCommit[S] | None = None,
    ) -> None:
        self._commit = commit
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._closed = False
        #: Inline mode (see the module's docstring): ``commit`` unless that would wait.
        self._try_commit = try_commit
        #: Held while a batch commits: the writer's and the event loops' take turns.
        self._turn = threading.Lock()
        #: Inline mode: the units each event loop queued in its current turn.
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[Work[S], int, _Future]]] = {}
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
        if self._try_commit is not None:
            pending = self._pending.get(loop)
            if pending is None:
                pending = self._pending[loop] = []
                loop.call_soon(self._flush, loop)  # after the callbacks already ready
            pending.append((work, weight, future))
        else:
            self._queue.put((work, weight, (loop, future)))
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """Inline mode: commit what ``loop``'s coroutines queued this turn, in this thread;
        or, when that would wait (the writer thread's batch, or another process's, is
        committing), hand it to the writer thread, so the loop never waits for a batch
        that is not its own."""
        pending = self._pending.pop(loop, [])
        if self._closed:
            _resolve([(f, None, Unavailable("storage is closed")) for _, _, f in pending])
            return
        assert self._try_commit is not None
        start = 0
        while start < len(pending):
            batch: list[tuple[Work[S], int, _Future]] = []
            size = 0
            while start < len(pending) and (not batch or size < self._max_batch):
                batch.append(pending[start])
                size += pending[start][1]
                start += 1
            outcomes: list[tuple[Any, BaseException | None]] | None = None
            if self._turn.acquire(blocking=False):
                try:
                    outcomes = self._try_commit([work for work, _, _ in batch])
                except BaseException as exc:  # a bug in commit: every caller sees it
                    outcomes = [(None, exc)] * len(batch)
                finally:
                    self._turn.release()
            if outcomes is None:  # busy: this batch and the rest go to the writer, in order
                for work, weight, future in pending[start - len(batch) :]:
                    self._queue.put((work, weight, (loop, future)))
                return
            _resolve([(f, r, e) for (_, _, f), (r, e) in zip(batch, outcomes, strict=True)])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        with self._turn:  # an event loop's batch that already started ends first
            pass

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
                with self._turn:
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
